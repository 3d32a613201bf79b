//! A model run: lease items through the queue as the model account (so it never labels an
//! item twice and resumes where it stopped), answer them, submit valid answers, record the
//! rest as failures. The run works in lanes, one per concurrent request the model allows:
//! each lane holds one lease, answers it, and stores the answer and leases its next item in
//! one commit; the store's single writer commits the lanes' turns together.

use crate::openai::{CallError, ChatClient, ClientOptions};
use crate::prompt::{self, ParsedAnswer};
use crate::rules::RulesModel;
use concord_store::{
    AnswerKind, Id, Item, Lease, ModelAnnotator, ModelAnswer, ModelCall, ModelCallKey, ModelKind,
    ModelProvenance, ModelRun, ModelRunCounts, NextItem, Project, SchemaVersion, Store, StoreError,
    Submission, User,
};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
                            tracing::warn!(item = item.id.get(), reason = %why, "model answer does not fit the schema");
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

/// What a run's lanes share: the run, the item budget, the count of items handled, the
/// stop signal (the first lane error stops the others after their current item) and the
/// leases a stopped run left, which are answered first.
struct Lanes {
    store: Store,
    project: Project,
    account: User,
    labeller: Arc<Labeller>,
    run: ModelRun,
    job_id: Option<Id>,
    limit: Option<u64>,
    claimed: AtomicU64,
    handled: AtomicU64,
    stop: AtomicBool,
    left_over: Mutex<Vec<Lease>>,
}

impl Lanes {
    /// Takes one item from the run's budget; false once the limit is reached or the run stops.
    fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.limit {
            None => true,
            Some(limit) => self.claimed.fetch_add(1, Ordering::Relaxed) < limit,
        }
    }

    /// A lease a stopped run left, else a new one.
    async fn first_item(&self) -> Result<NextItem, RunError> {
        let left_over = self.left_over.lock().ok().and_then(|mut held| held.pop());
        match left_over {
            Some(lease) => Ok(NextItem::Leased(Box::new(lease))),
            None => Ok(self
                .store
                .lease_model_item(&self.project, &self.account)
                .await?),
        }
    }

    /// One lane: answer the leased item, store the answer and lease the next in one turn,
    /// until the queue has nothing for the model, the budget is spent or the run stops.
    async fn lane(&self) -> Result<(), RunError> {
        if !self.claim() {
            return Ok(());
        }
        let mut next = self.first_item().await?;
        loop {
            let NextItem::Leased(lease) = next else {
                return Ok(());
            };
            let item = lease.item;
            let outcome = match self.labeller.answer(&item).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    // The item stays leased to the model: the next run answers it first.
                    self.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            let then_lease = self.claim();
            let leased = settle(self, &item, outcome, then_lease).await?;
            self.progress().await?;
            if !then_lease {
                return Ok(());
            }
            next = match leased {
                Some(next) => next,
                None => {
                    self.store
                        .lease_model_item(&self.project, &self.account)
                        .await?
                }
            };
        }
    }

    /// Counts a handled item; every 20, the job row shows the run's counters.
    async fn progress(&self) -> Result<(), RunError> {
        let handled = self.handled.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(job) = self.job_id
            && handled % 20 == 0
        {
            let counts = self.store.model_run(self.run.id).await?.counts;
            self.store
                .job_progress(
                    job,
                    counts.labelled + counts.failures,
                    None,
                    &job_message(&counts),
                )
                .await?;
        }
        Ok(())
    }
}

/// Runs the model's lanes (one per allowed concurrent request) to the end; the first
/// error, if any, is the run's.
async fn drive(
    store: &Store,
    project: &Project,
    account: &User,
    model: &ModelAnnotator,
    labeller: &Arc<Labeller>,
    run: &ModelRun,
    options: &RunOptions,
) -> Result<(), RunError> {
    let mut left_over = store.held_leases(project, account).await?;
    // Popped from the end: the oldest lease first.
    left_over.reverse();
    let lanes = Arc::new(Lanes {
        store: store.clone(),
        project: project.clone(),
        account: account.clone(),
        labeller: labeller.clone(),
        run: run.clone(),
        job_id: options.job_id,
        limit: options.limit,
        claimed: AtomicU64::new(0),
        handled: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        left_over: Mutex::new(left_over),
    });
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..model.max_concurrency.max(1) {
        let lanes = lanes.clone();
        running.spawn(async move { lanes.lane().await });
    }
    let mut first_error = None;
    while let Some(finished) = running.join_next().await {
        let outcome = finished
            .unwrap_or_else(|join| Err(RunError::Config(format!("a model lane panicked: {join}"))));
        if let Err(e) = outcome {
            lanes.stop.store(true, Ordering::Relaxed);
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Submits a valid answer with what it was made with (and, when `then_lease`, leases the
/// next item in the same commit), or records a failure and gives the item back, so the
/// model is not served it again. Returns the next item when it was leased here.
async fn settle(
    lanes: &Lanes,
    item: &Item,
    outcome: Outcome,
    then_lease: bool,
) -> Result<Option<NextItem>, RunError> {
    let (store, labeller, run) = (&lanes.store, &lanes.labeller, &lanes.run);
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
            let turn = store
                .submit_model_answer(&lanes.project, &lanes.account, answer)
                .await?;
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
            store
                .skip(&lanes.project, &lanes.account, item.id, &why)
                .await?;
            counts.failures = 1;
            store.count_model_run(run.id, counts).await?;
            Ok(None)
        }
    }
}
