//! Automated annotators: models that label in parallel with the people, through the same
//! work queue, as model accounts (never counted in the human consensus, scored like a
//! person by the QA loop).
//!
//! * `rules` — the offline rules model (keywords and regular expressions per category).
//! * `openai` — an OpenAI-compatible chat-completions client with retries and limits.
//! * `prompt` — the prompt from the current guideline and the schema; answers parsed and
//!   checked against the schema.
//! * `run` — a run over the queue: lease, answer, submit or record the failure.
//! * `predictions` — imported predictions sampled for review by class × score band, and
//!   the model's precision / recall estimated from the humans' labels on the sample.
//!
//! The only crate that calls a model over HTTP; it writes no SQL (the store keeps the
//! configurations, the call cache, runs and failures).

mod background;
pub mod openai;
pub mod predictions;
pub mod prompt;
pub mod rules;
mod run;

pub use background::run_enabled_models;
pub use run::{RunError, RunOptions, job_message, run_model};
