//! A model run: lease items through the queue as the model account (so it never labels an
//! item twice and resumes where it stopped), answer them, submit valid answers, record the
//! rest as failures. Answers are computed ahead of the lease for the next items in the
//! queue's order (up to the concurrency limit at once); the queue still decides what is
//! served, and an item it serves that was not read ahead is answered then.

use crate::openai::{CallError, ChatClient, ClientOptions};
use crate::prompt::{self, ParsedAnswer};
use crate::rules::RulesModel;
use concord_store::{
    AnswerKind, Id, Item, ModelAnnotator, ModelAnswer, ModelCall, ModelCallKey, ModelKind,
    ModelProvenance, ModelRun, ModelRunCounts, NextItem, Project, SchemaVersion, Store, StoreError,
    Submission, User,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Rules(#[from] crate::rules::RulesError),
    #[error("model {model:?} stopped: {source}")]
    Call {
        model: String,
        #[source]
        source: CallError,
    },
}

/// How a run goes beyond the model's configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this many items (labelled or failed).
    pub limit: Option<u64>,
    /// The background job reporting this run's progress, if any.
    pub job_id: Option<Id>,
    /// Attempts per call for transient errors, and the first back-off.
    pub max_attempts: u32,
    pub backoff: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            limit: None,
            job_id: None,
            max_attempts: 5,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Runs `model` over its project's queue until nothing is left for it (or `limit`).
/// A transient failure that outlasts the retries stops the run with an error; the item
/// it was on stays leased to the model and is answered first by the next run.
pub async fn run_model(
    store: &Store,
    model: &ModelAnnotator,
    options: RunOptions,
) -> Result<ModelRun, RunError> {
    let project = project_of(store, model).await?;
    let account = store.user_by_id(model.user_id).await?;
    let labeller = Arc::new(Labeller::new(store, &project, model, &options).await?);
    let run = store.start_model_run(model.id, options.job_id).await?;
    let outcome = drive(store, &project, &account, model, &labeller, &run, &options).await;
    let finished = store.finish_model_run(run.id).await?;
    if let Some(job) = options.job_id {
        let progress = job_message(&finished.counts);
        store
            .job_progress(
                job,
                finished.counts.labelled + finished.counts.failures,
                None,
                &progress,
            )
            .await?;
    }
    outcome.map(|()| finished)
}

/// The job row's message: done, failures, tokens, cost.
pub fn job_message(c: &ModelRunCounts) -> String {
    format!(
        "labelled {}, failures {}, cached {}, tokens {} in / {} out, cost {:.4}",
        c.labelled, c.failures, c.cached, c.prompt_tokens, c.completion_tokens, c.cost
    )
}

async fn project_of(store: &Store, model: &ModelAnnotator) -> Result<Project, RunError> {
    let projects = store.list_projects().await?;
    projects
        .into_iter()
        .find(|p| p.id == model.project_id)
        .ok_or_else(|| RunError::Config(format!("the project of model {:?} is gone", model.name)))
}

/// What answers an item: the rules, or a language model with its prompt.
struct Labeller {
    store: Store,
    model: ModelAnnotator,
    schema: Arc<SchemaVersion>,
    guideline_version_id: Option<Id>,
    engine: Engine,
}

enum Engine {
    Rules(RulesModel, String),
    Chat {
        client: Arc<ChatClient>,
        instructions: String,
        digest: String,
        answer_schema: Value,
    },
}

/// One item's result before it is submitted.
enum Outcome {
    Answer {
        parsed: ParsedAnswer,
        model_version: String,
        counts: ModelRunCounts,
    },
    Invalid {
        raw: String,
        reason: String,
        counts: ModelRunCounts,
    },
}

impl Labeller {
    async fn new(
        store: &Store,
        project: &Project,
        model: &ModelAnnotator,
        options: &RunOptions,
    ) -> Result<Labeller, RunError> {
        let schema = store.project_schema(project).await?;
        let guideline = match project.current_guideline_version_id {
            Some(id) => Some(store.guideline_by_id(id).await?),
            None => None,
        };
        let engine = match model.kind {
            ModelKind::Rules => {
                let rules = RulesModel::parse(&model.rules, &schema.definition)?;
                let digest = prompt::digest(&model.rules, "rules", 0.0);
                Engine::Rules(rules, digest)
            }
            ModelKind::OpenAi => {
                let api_key = if model.api_key_env.is_empty() {
                    None
                } else {
                    Some(std::env::var(&model.api_key_env).map_err(|_| {
                        RunError::Config(format!(
                            "the environment variable {} (the API key of model {:?}) is not set",
                            model.api_key_env, model.name
                        ))
                    })?)
                };
                let client = ChatClient::new(ClientOptions {
                    base_url: model.base_url.clone(),
                    model: model.model.clone(),
                    api_key,
                    temperature: model.temperature,
                    timeout: Duration::from_millis(model.timeout_ms.max(1) as u64),
                    max_concurrency: model.max_concurrency.max(1) as usize,
                    rate_per_minute: model
                        .rate_per_minute
                        .map(|r| r.clamp(1, u32::MAX as i64) as u32),
                    max_attempts: options.max_attempts,
                    backoff: options.backoff,
                })
                .map_err(RunError::Config)?;
                let instructions = prompt::instructions(
                    &model.prompt_template,
                    guideline.as_ref(),
                    &schema.definition,
                );
                let digest = prompt::digest(&instructions, &model.model, model.temperature);
                Engine::Chat {
                    client,
                    instructions,
                    digest,
                    answer_schema: prompt::answer_schema(&schema.definition),
                }
            }
        };
        Ok(Labeller {
            store: store.clone(),
            model: model.clone(),
            schema,
            guideline_version_id: guideline.map(|g| g.id),
            engine,
        })
    }

    fn digest(&self) -> &str {
        match &self.engine {
            Engine::Rules(_, digest) => digest,
            Engine::Chat { digest, .. } => digest,
        }
    }

    fn model_name(&self) -> String {
        match self.model.kind {
            ModelKind::Rules => format!("rules:{}", self.model.name),
            ModelKind::OpenAi => self.model.model.clone(),
        }
    }

    async fn answer(&self, item: &Item) -> Result<Outcome, RunError> {
        match &self.engine {
            Engine::Rules(rules, digest) => {
                let answered = rules.label(item);
                let rationale = if answered.matched.is_empty() {
                    "no rule matched".to_owned()
                } else {
                    format!("rules matched: {}", answered.matched.join(", "))
                };
                Ok(Outcome::Answer {
                    parsed: ParsedAnswer {
                        answer: answered.answer,
                        rationale,
                        confidence: None,
                    },
                    model_version: format!("rules:{digest}"),
                    counts: ModelRunCounts::default(),
                })
            }
            Engine::Chat {
                client,
                instructions,
                digest,
                answer_schema,
            } => {
                let key = ModelCallKey {
                    item_id: item.id,
                    guideline_version_id: self.guideline_version_id,
                    schema_version_id: self.schema.id,
                    prompt_digest: digest.clone(),
                    model: self.model.model.clone(),
                };
                if let Some(call) = self.store.cached_model_call(&key).await?
                    && let Ok(parsed) =
                        prompt::parse_answer(&call.raw_answer, &self.schema.definition)
                {
                    return Ok(Outcome::Answer {
                        parsed,
                        model_version: call.model_version,
                        counts: ModelRunCounts {
                            cached: 1,
                            ..ModelRunCounts::default()
                        },
                    });
                }
                let user = prompt::item_message(item);
                let mut counts = ModelRunCounts::default();
                let mut reason = String::new();
                let mut raw = String::new();
                // An answer that does not fit the schema is asked for once more.
                for _ in 0..2 {
                    let completion = client
                        .complete(instructions, &user, answer_schema)
                        .await
                        .map_err(|source| RunError::Call {
                            model: self.model.name.clone(),
                            source,
                        })?;
                    counts.prompt_tokens += completion.prompt_tokens;
                    counts.completion_tokens += completion.completion_tokens;
                    counts.cost += completion.prompt_tokens as f64 / 1000.0
                        * self.model.price_in_per_1k
                        + completion.completion_tokens as f64 / 1000.0
                            * self.model.price_out_per_1k;
                    match prompt::parse_answer(&completion.content, &self.schema.definition) {
                        Ok(parsed) => {
                            self.store
                                .save_model_call(
                                    key,
                                    ModelCall {
                                        raw_answer: completion.content,
                                        model_version: completion.model_version.clone(),
                                        prompt_tokens: completion.prompt_tokens,
                                        completion_tokens: completion.completion_tokens,
                                    },
                                )
                                .await?;
                            return Ok(Outcome::Answer {
                                parsed,
                                model_version: completion.model_version,
                                counts,
                            });
                        }
                        Err(why) => {
                            tracing::warn!(item = item.id, reason = %why, "model answer does not fit the schema");
                            reason = why;
                            raw = completion.content;
                        }
                    }
                }
                Ok(Outcome::Invalid {
                    raw,
                    reason,
                    counts,
                })
            }
        }
    }
}

type Pending = JoinHandle<Result<Outcome, RunError>>;

fn spawn_answer(labeller: &Arc<Labeller>, item: Item) -> Pending {
    let labeller = labeller.clone();
    tokio::spawn(async move { labeller.answer(&item).await })
}

async fn drive(
    store: &Store,
    project: &Project,
    account: &User,
    model: &ModelAnnotator,
    labeller: &Arc<Labeller>,
    run: &ModelRun,
    options: &RunOptions,
) -> Result<(), RunError> {
    let mut ahead = ReadAhead {
        width: model.max_concurrency.max(1) as usize,
        pending: HashMap::new(),
        read_up_to: None,
        backlog_done: false,
    };
    let mut handled: u64 = 0;
    let mut next = None;
    let result = loop {
        let left = options.limit.map(|limit| limit.saturating_sub(handled));
        if left == Some(0) {
            break Ok(());
        }
        let served = match next.take() {
            Some(served) => served,
            None => store.next_item(project, account).await?,
        };
        let NextItem::Leased(lease) = served else {
            break Ok(());
        };
        let item = lease.item;
        // The served item first (it may not be among those read ahead), then the rest.
        ahead.start(labeller, &item);
        ahead.fill(store, project, account, labeller, left).await?;
        let outcome = match ahead.take(&item).await {
            Ok(outcome) => outcome,
            Err(e) => break Err(e),
        };
        // The turn that stores this answer leases the next item too, unless this is the
        // last one the run may take (a lease it would not use would wait for the next run).
        let then_lease = left != Some(1);
        next = settle(
            store, project, account, labeller, run, &item, outcome, then_lease,
        )
        .await?;
        handled += 1;
        if let Some(job) = options.job_id
            && handled % 20 == 0
        {
            let counts = store.model_run(run.id).await?.counts;
            store
                .job_progress(
                    job,
                    counts.labelled + counts.failures,
                    None,
                    &job_message(&counts),
                )
                .await?;
        }
    };
    ahead.abort();
    result
}

/// Answers computed ahead of the lease, for the next items in the queue's order (up to the
/// model's concurrency at once).
struct ReadAhead {
    width: usize,
    pending: HashMap<Id, Pending>,
    read_up_to: Option<(i64, Id)>,
    backlog_done: bool,
}

impl ReadAhead {
    /// Starts answering the next items of the model's backlog, up to the width (and no
    /// more than the run has left to do).
    async fn fill(
        &mut self,
        store: &Store,
        project: &Project,
        account: &User,
        labeller: &Arc<Labeller>,
        left: Option<u64>,
    ) -> Result<(), RunError> {
        let wanted = left.map_or(self.width, |left| self.width.min(left as usize));
        if self.backlog_done || self.pending.len() >= wanted {
            return Ok(());
        }
        let more = store
            .model_backlog(
                project.id,
                account.id,
                self.read_up_to,
                (wanted - self.pending.len()) as i64,
            )
            .await?;
        self.backlog_done = more.is_empty();
        for item in more {
            self.read_up_to = Some((item.priority, item.id));
            self.pending
                .entry(item.id)
                .or_insert_with(|| spawn_answer(labeller, item));
        }
        Ok(())
    }

    /// Starts answering a served item, unless that is under way.
    fn start(&mut self, labeller: &Arc<Labeller>, item: &Item) {
        self.pending
            .entry(item.id)
            .or_insert_with(|| spawn_answer(labeller, item.clone()));
    }

    /// The answer to a served item (see [`ReadAhead::start`]).
    async fn take(&mut self, item: &Item) -> Result<Outcome, RunError> {
        let Some(task) = self.pending.remove(&item.id) else {
            return Err(RunError::Config(format!(
                "internal: item {} was served but not started",
                item.id
            )));
        };
        match task.await {
            Ok(outcome) => outcome,
            Err(join) => Err(RunError::Config(format!("a model call panicked: {join}"))),
        }
    }

    fn abort(self) {
        for (_, task) in self.pending {
            task.abort();
        }
    }
}

/// Submits a valid answer with what it was made with (and, when `then_lease`, leases the
/// next item in the same commit), or records a failure and gives the item back, so the
/// model is not served it again. Returns the next item when it was leased here.
#[allow(clippy::too_many_arguments)] // the run's context, the item and what to do next
async fn settle(
    store: &Store,
    project: &Project,
    account: &User,
    labeller: &Labeller,
    run: &ModelRun,
    item: &Item,
    outcome: Outcome,
    then_lease: bool,
) -> Result<Option<NextItem>, RunError> {
    match outcome {
        Outcome::Answer {
            parsed,
            model_version,
            counts,
        } => {
            let answer = ModelAnswer {
                submission: Submission {
                    item_id: item.id,
                    kind: AnswerKind::Label,
                    answer: parsed.answer,
                    rationale: parsed.rationale,
                    flags: Vec::new(),
                    guideline_version_id: labeller.guideline_version_id,
                    time_spent_ms: None,
                    idempotency_key: format!(
                        "model-{}-{}-{}",
                        labeller.model.id,
                        item.id,
                        labeller.digest()
                    ),
                },
                provenance: ModelProvenance {
                    annotator_id: labeller.model.id,
                    model: labeller.model_name(),
                    model_version,
                    prompt_digest: labeller.digest().to_owned(),
                    guideline_version_id: labeller.guideline_version_id,
                    confidence: parsed.confidence,
                },
                run_id: run.id,
                counts,
                then_lease,
            };
            let turn = store.submit_model_answer(project, account, answer).await?;
            Ok(turn.next)
        }
        Outcome::Invalid {
            raw,
            reason,
            mut counts,
        } => {
            store
                .record_model_failure(run.id, item.id, &raw, &reason)
                .await?;
            let why: String = format!("model answer invalid: {reason}")
                .chars()
                .take(400)
                .collect();
            store.skip(project, account, item.id, &why).await?;
            counts.failures = 1;
            store.count_model_run(run.id, counts).await?;
            Ok(None)
        }
    }
}
