//! Automated annotators: their configuration (each labels as its own model account), the
//! call cache that makes a re-run free, runs with their token and cost counters, answers that
//! never became labels, and what each machine label was made with.
//!
//! The store keeps these records only; calling a model and deciding what is valid is the
//! caller's (`concord-annotators`). The API key is never here: a configuration names the
//! environment variable that holds it.

use crate::audit::{self, AuditEvent};
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError};
use crate::ids::ModelAnnotatorId;
use crate::ids::{ItemId, ProjectId, UserId};
use crate::items::item_from_row;
use crate::model::{AccountKind, AuditAction, Id, Item, Project};
use crate::vocabulary::ModelKind;
use crate::{Store, accounts};
use serde::Serialize;
use std::collections::HashMap;

/// A configured automated annotator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelAnnotator {
    pub id: ModelAnnotatorId,
    pub project_id: ProjectId,
    /// The model account it labels as.
    pub user_id: UserId,
    pub username: String,
    pub name: String,
    pub kind: ModelKind,
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (never the key).
    pub api_key_env: String,
    pub temperature: f64,
    pub max_concurrency: i64,
    /// Requests started per minute at most; `None` is unlimited.
    pub rate_per_minute: Option<i64>,
    pub timeout_ms: i64,
    /// Extra instructions put before the guideline in the prompt.
    pub prompt_template: String,
    /// The rules file's text (rules models).
    pub rules: String,
    pub price_in_per_1k: f64,
    pub price_out_per_1k: f64,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An automated annotator to configure. `name` becomes part of its account's user name
/// (`{project}.{name}`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewModelAnnotator {
    pub name: String,
    pub kind: ModelKind,
    pub base_url: String,
    pub model: String,
    pub api_key_env: String,
    pub temperature: f64,
    pub max_concurrency: i64,
    pub rate_per_minute: Option<i64>,
    pub timeout_ms: i64,
    pub prompt_template: String,
    pub rules: String,
    pub price_in_per_1k: f64,
    pub price_out_per_1k: f64,
}

impl NewModelAnnotator {
    /// A configuration with the defaults (4 concurrent requests, a minute's timeout, no
    /// rate limit, free).
    pub fn new(name: &str, kind: ModelKind) -> NewModelAnnotator {
        NewModelAnnotator {
            name: name.to_owned(),
            kind,
            base_url: String::new(),
            model: String::new(),
            api_key_env: String::new(),
            temperature: 0.0,
            max_concurrency: 4,
            rate_per_minute: None,
            timeout_ms: 60_000,
            prompt_template: String::new(),
            rules: String::new(),
            price_in_per_1k: 0.0,
            price_out_per_1k: 0.0,
        }
    }

    /// Checks the configuration; the message names the field.
    pub fn check(&self) -> Result<()> {
        self.check_name()?;
        self.check_kind_fields()?;
        self.check_api_key_env()?;
        self.check_limits()
    }

    fn check_name(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(StoreError::invalid(format!(
                "model name {:?} must be 1–40 letters, digits, - or _",
                self.name
            )));
        }
        Ok(())
    }

    /// What each kind cannot do without: an endpoint and a model name, or its rules.
    fn check_kind_fields(&self) -> Result<()> {
        match self.kind {
            ModelKind::OpenAi => {
                if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://"))
                {
                    return Err(StoreError::invalid(format!(
                        "base_url {:?} must be an http:// or https:// URL",
                        self.base_url
                    )));
                }
                if self.model.trim().is_empty() {
                    return Err(StoreError::invalid("an openai model needs --model"));
                }
            }
            ModelKind::Rules => {
                if self.rules.trim().is_empty() {
                    return Err(StoreError::invalid("a rules model needs its rules file"));
                }
            }
        }
        Ok(())
    }

    fn check_api_key_env(&self) -> Result<()> {
        let env_ok = self
            .api_key_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !env_ok || self.api_key_env.len() > 128 {
            return Err(StoreError::invalid(format!(
                "api_key_env {:?} must be the name of an environment variable (letters, digits, _)",
                self.api_key_env
            )));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<()> {
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(StoreError::invalid("temperature must be between 0 and 2"));
        }
        if !(1..=256).contains(&self.max_concurrency) {
            return Err(StoreError::invalid("max_concurrency must be 1 to 256"));
        }
        if self.rate_per_minute.is_some_and(|r| r < 1) {
            return Err(StoreError::invalid("rate_per_minute must be at least 1"));
        }
        if !(100..=3_600_000).contains(&self.timeout_ms) {
            return Err(StoreError::invalid("the timeout must be 100 ms to an hour"));
        }
        let price_ok = |p: f64| p.is_finite() && p >= 0.0;
        if !price_ok(self.price_in_per_1k) || !price_ok(self.price_out_per_1k) {
            return Err(StoreError::invalid(
                "prices per 1k tokens must be zero or positive",
            ));
        }
        Ok(())
    }
}

/// What determines a model's answer; a cached answer is reused only when all of it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelCallKey {
    pub item_id: ItemId,
    /// `None` when the project had no published guideline.
    pub guideline_version_id: Option<Id>,
    pub schema_version_id: Id,
    pub prompt_digest: String,
    pub model: String,
}

/// A model's raw answer as it came back, with what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    pub raw_answer: String,
    pub model_version: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Counters of one run (also used as an increment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ModelRunCounts {
    pub labelled: i64,
    pub failures: i64,
    /// Answers taken from the cache (no call, no cost).
    pub cached: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRun {
    pub id: Id,
    pub annotator_id: ModelAnnotatorId,
    pub job_id: Option<Id>,
    pub counts: ModelRunCounts,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// An answer that did not become a label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFailure {
    pub id: Id,
    pub run_id: Id,
    pub item_id: ItemId,
    pub raw_answer: String,
    pub reason: String,
    pub created_at: i64,
}

/// What a machine label is made with, before it is stored (its annotation does not exist yet).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelProvenance {
    pub annotator_id: ModelAnnotatorId,
    pub model: String,
    pub model_version: String,
    pub prompt_digest: String,
    pub guideline_version_id: Option<Id>,
    /// The model's stated confidence in its answer, when it gave one.
    pub confidence: Option<f64>,
}

/// A stored machine label: its annotation and what it was made with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelLabel {
    pub annotation_id: Id,
    #[serde(flatten)]
    pub provenance: ModelProvenance,
}

const ANNOTATOR_COLUMNS: &str = "m.id, m.project_id, m.user_id, u.username, m.name, m.kind, \
     m.base_url, m.model, m.api_key_env, m.temperature, m.max_concurrency, m.rate_per_minute, \
     m.timeout_ms, m.prompt_template, m.rules, m.price_in_per_1k, m.price_out_per_1k, \
     m.enabled, m.created_at, m.updated_at";

fn annotator_from_row(row: &impl Columns) -> Result<ModelAnnotator> {
    Ok(ModelAnnotator {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        user_id: row.col("user_id")?,
        username: row.col("username")?,
        name: row.col("name")?,
        kind: row.col("kind")?,
        base_url: row.col("base_url")?,
        model: row.col("model")?,
        api_key_env: row.col("api_key_env")?,
        temperature: row.col("temperature")?,
        max_concurrency: row.col("max_concurrency")?,
        rate_per_minute: row.col("rate_per_minute")?,
        timeout_ms: row.col("timeout_ms")?,
        prompt_template: row.col("prompt_template")?,
        rules: row.col("rules")?,
        price_in_per_1k: row.col("price_in_per_1k")?,
        price_out_per_1k: row.col("price_out_per_1k")?,
        enabled: row.col::<i64>("enabled")? != 0,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

fn run_from_row(row: &impl Columns) -> Result<ModelRun> {
    Ok(ModelRun {
        id: row.col("id")?,
        annotator_id: row.col("annotator_id")?,
        job_id: row.col("job_id")?,
        counts: ModelRunCounts {
            labelled: row.col("labelled")?,
            failures: row.col("failures")?,
            cached: row.col("cached")?,
            prompt_tokens: row.col("prompt_tokens")?,
            completion_tokens: row.col("completion_tokens")?,
            cost: row.col("cost")?,
        },
        started_at: row.col("started_at")?,
        finished_at: row.col("finished_at")?,
    })
}

pub(crate) async fn add_to_run(c: &mut Conn<'_>, run_id: Id, delta: &ModelRunCounts) -> Result<()> {
    c.execute(
        stmt(
            "UPDATE model_runs SET labelled = labelled + $1, failures = failures + $2, \
             cached = cached + $3, prompt_tokens = prompt_tokens + $4, \
             completion_tokens = completion_tokens + $5, cost = cost + $6 WHERE id = $7",
        )
        .bind(delta.labelled)
        .bind(delta.failures)
        .bind(delta.cached)
        .bind(delta.prompt_tokens)
        .bind(delta.completion_tokens)
        .bind(delta.cost)
        .bind(run_id),
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_model_label(c: &mut Conn<'_>, label: &ModelLabel) -> Result<()> {
    c.execute(
        stmt(
            "INSERT INTO model_labels (annotation_id, annotator_id, model, model_version, \
             prompt_digest, guideline_version_id, confidence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (annotation_id) DO NOTHING",
        )
        .bind(label.annotation_id)
        .bind(label.provenance.annotator_id)
        .bind(&label.provenance.model)
        .bind(&label.provenance.model_version)
        .bind(&label.provenance.prompt_digest)
        .bind(label.provenance.guideline_version_id)
        .bind(label.provenance.confidence),
    )
    .await?;
    Ok(())
}

/// The account a model labels as: kind `model`, never a person.
async fn insert_model_account(c: &mut Conn<'_>, username: &str, display_name: &str) -> Result<Id> {
    let user = c
        .fetch_one(
            stmt(
                "INSERT INTO users (username, display_name, is_admin, kind) \
         VALUES ($1, $2, 0, $3) RETURNING id",
            )
            .bind(username)
            .bind(display_name)
            .bind(AccountKind::Model.as_str()),
        )
        .await?;
    user.col("id")
}

// long: one column list and its binds, in the same order.
async fn insert_model_configuration(
    c: &mut Conn<'_>,
    project_id: ProjectId,
    user_id: UserId,
    new: &NewModelAnnotator,
) -> Result<Id> {
    let row = c
        .fetch_one(
            stmt(
                "INSERT INTO model_annotators (project_id, user_id, name, kind, base_url, \
         model, api_key_env, temperature, max_concurrency, rate_per_minute, \
         timeout_ms, prompt_template, rules, price_in_per_1k, price_out_per_1k) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         RETURNING id",
            )
            .bind(project_id)
            .bind(user_id)
            .bind(&new.name)
            .bind(new.kind.as_str())
            .bind(&new.base_url)
            .bind(&new.model)
            .bind(&new.api_key_env)
            .bind(new.temperature)
            .bind(new.max_concurrency)
            .bind(new.rate_per_minute)
            .bind(new.timeout_ms)
            .bind(&new.prompt_template)
            .bind(&new.rules)
            .bind(new.price_in_per_1k)
            .bind(new.price_out_per_1k),
        )
        .await?;
    row.col("id")
}

impl Store {
    /// Configures an automated annotator and creates the model account it labels as
    /// (`{project slug}.{name}`), in one transaction.
    pub async fn create_model_annotator(
        &self,
        project: &Project,
        new: NewModelAnnotator,
        actor: Option<UserId>,
    ) -> Result<ModelAnnotator> {
        new.check()?;
        let username = format!("{}.{}", project.slug, new.name);
        if !accounts::valid_username(&username) {
            return Err(StoreError::invalid(format!(
                "the model account name {username:?} is too long; choose a shorter model name"
            )));
        }
        let project_id = project.id;
        let name = new.name.clone();
        let created = self
            .write_conn(move |mut c| {
                let username = username.clone();
                let new = new.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let user_id = insert_model_account(c, &username, &new.name).await?;
                    let id =
                        insert_model_configuration(c, project_id, UserId(user_id), &new).await?;
                    let after = c
                        .fetch_one(
                            stmt(format!(
                                "SELECT {ANNOTATOR_COLUMNS} FROM model_annotators m \
                         JOIN users u ON u.id = m.user_id WHERE m.id = $1"
                            ))
                            .bind(id),
                        )
                        .await?;
                    let annotator = annotator_from_row(&after)?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: Some(project_id),
                            action: AuditAction::Create,
                            entity: "model_annotator",
                            entity_id: Some(id),
                            before: None,
                            after: audit::snapshot(&annotator),
                        },
                    )
                    .await?;
                    Ok(annotator)
                })
            })
            .await;
        match created {
            Err(e) if e.is_unique_violation() => Err(StoreError::conflict(format!(
                "a model named {name:?} (or its account) already exists"
            ))),
            other => other,
        }
    }

    /// The project's automated annotators, by name.
    pub async fn model_annotators(&self, project_id: ProjectId) -> Result<Vec<ModelAnnotator>> {
        let statement = stmt(format!(
            "SELECT {ANNOTATOR_COLUMNS} FROM model_annotators m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 ORDER BY m.name"
        ))
        .bind(project_id);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(annotator_from_row).collect()
    }

    /// Every enabled automated annotator of every project (what `concord serve` runs).
    pub async fn enabled_model_annotators(&self) -> Result<Vec<ModelAnnotator>> {
        let statement = stmt(format!(
            "SELECT {ANNOTATOR_COLUMNS} FROM model_annotators m JOIN users u ON u.id = m.user_id \
             WHERE m.enabled = 1 ORDER BY m.project_id, m.name"
        ));
        let rows = self.read_rows(statement).await?;
        rows.iter().map(annotator_from_row).collect()
    }

    pub async fn model_annotator(
        &self,
        project_id: ProjectId,
        name: &str,
    ) -> Result<ModelAnnotator> {
        let statement = stmt(format!(
            "SELECT {ANNOTATOR_COLUMNS} FROM model_annotators m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 AND m.name = $2"
        ))
        .bind(project_id)
        .bind(name);
        let row = self
            .read_optional(statement)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("model {name:?} in this project")))?;
        annotator_from_row(&row)
    }

    /// Turns a model on or off; a disabled model is not run by `concord serve`.
    pub async fn set_model_enabled(
        &self,
        project_id: ProjectId,
        name: &str,
        enabled: bool,
        actor: Option<UserId>,
    ) -> Result<ModelAnnotator> {
        let before = self.model_annotator(project_id, name).await?;
        let now = self.dialect().now_ms();
        let id = before.id;
        let after = self
            .write_conn(move |mut c| {
                let before = before.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let statement = stmt(format!(
                        "UPDATE model_annotators SET enabled = $1, updated_at = {now} WHERE id = $2"
                    ))
                    .bind(enabled as i64)
                    .bind(id);
                    c.execute(statement).await?;
                    let row = c
                        .fetch_one(
                            stmt(format!(
                                "SELECT {ANNOTATOR_COLUMNS} FROM model_annotators m \
                         JOIN users u ON u.id = m.user_id WHERE m.id = $1"
                            ))
                            .bind(id),
                        )
                        .await?;
                    let after = annotator_from_row(&row)?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: Some(project_id),
                            action: AuditAction::Update,
                            entity: "model_annotator",
                            entity_id: Some(id.get()),
                            before: audit::snapshot(&before),
                            after: audit::snapshot(&after),
                        },
                    )
                    .await?;
                    Ok(after)
                })
            })
            .await?;
        Ok(after)
    }

    /// The cached answer for exactly these inputs, if any.
    pub async fn cached_model_call(&self, key: &ModelCallKey) -> Result<Option<ModelCall>> {
        let statement = stmt(
            "SELECT raw_answer, model_version, prompt_tokens, completion_tokens FROM model_calls \
             WHERE item_id = $1 AND guideline_version_id = $2 AND schema_version_id = $3 \
               AND prompt_digest = $4 AND model = $5",
        )
        .bind(key.item_id)
        .bind(key.guideline_version_id.unwrap_or(0))
        .bind(key.schema_version_id)
        .bind(&key.prompt_digest)
        .bind(&key.model);
        let row = self.read_optional(statement).await?;
        row.map(|row| {
            Ok(ModelCall {
                raw_answer: row.col("raw_answer")?,
                model_version: row.col("model_version")?,
                prompt_tokens: row.col("prompt_tokens")?,
                completion_tokens: row.col("completion_tokens")?,
            })
        })
        .transpose()
    }

    /// Keeps a model's answer for these inputs; the first answer stored stays.
    pub async fn save_model_call(&self, key: ModelCallKey, call: ModelCall) -> Result<()> {
        self.write_conn(move |mut c| {
            let key = key.clone();
            let call = call.clone();
            Box::pin(async move {
                let c = &mut c;
                let statement = stmt(
                    "INSERT INTO model_calls (item_id, guideline_version_id, schema_version_id, \
                     prompt_digest, model, raw_answer, model_version, prompt_tokens, \
                     completion_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (item_id, guideline_version_id, schema_version_id, \
                     prompt_digest, model) DO NOTHING",
                )
                .bind(key.item_id)
                .bind(key.guideline_version_id.unwrap_or(0))
                .bind(key.schema_version_id)
                .bind(&key.prompt_digest)
                .bind(&key.model)
                .bind(&call.raw_answer)
                .bind(&call.model_version)
                .bind(call.prompt_tokens)
                .bind(call.completion_tokens);
                c.execute(statement).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn start_model_run(
        &self,
        annotator_id: ModelAnnotatorId,
        job_id: Option<Id>,
    ) -> Result<ModelRun> {
        let id = self
            .write_conn(move |mut c| {
                Box::pin(async move {
                    let c = &mut c;
                    let statement = stmt(
                        "INSERT INTO model_runs (annotator_id, job_id) VALUES ($1, $2) RETURNING id",
                    )
                    .bind(annotator_id)
                    .bind(job_id);
                    let row = c.fetch_one(statement)
                    .await?;
                    row.col::<Id>("id")
                })
            })
            .await?;
        self.model_run(id).await
    }

    /// Adds `delta` to a run's counters.
    pub async fn count_model_run(&self, run_id: Id, delta: ModelRunCounts) -> Result<()> {
        self.write_conn(move |mut c| {
            Box::pin(async move { add_to_run(&mut c, run_id, &delta).await })
        })
        .await
    }

    pub async fn finish_model_run(&self, run_id: Id) -> Result<ModelRun> {
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt(format!(
                        "UPDATE model_runs SET finished_at = {now} WHERE id = $1"
                    ))
                    .bind(run_id),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.model_run(run_id).await
    }

    pub async fn model_run(&self, run_id: Id) -> Result<ModelRun> {
        let row = self
            .read_optional(stmt("SELECT * FROM model_runs WHERE id = $1").bind(run_id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("model run {run_id}")))?;
        run_from_row(&row)
    }

    /// A model's runs, newest first.
    pub async fn model_runs(
        &self,
        annotator_id: ModelAnnotatorId,
        limit: i64,
    ) -> Result<Vec<ModelRun>> {
        let rows = self
            .read_rows(
                stmt("SELECT * FROM model_runs WHERE annotator_id = $1 ORDER BY id DESC LIMIT $2")
                    .bind(annotator_id)
                    .bind(limit),
            )
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn record_model_failure(
        &self,
        run_id: Id,
        item_id: ItemId,
        raw_answer: &str,
        reason: &str,
    ) -> Result<()> {
        let (raw_answer, reason) = (raw_answer.to_owned(), reason.to_owned());
        self.write_conn(move |mut c| {
            let reason = reason.clone();
            let raw_answer = raw_answer.clone();
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt(
                        "INSERT INTO model_failures (run_id, item_id, raw_answer, reason) \
                     VALUES ($1, $2, $3, $4)",
                    )
                    .bind(run_id)
                    .bind(item_id)
                    .bind(raw_answer)
                    .bind(reason),
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// A run's failures in the order they happened.
    pub async fn model_failures(&self, run_id: Id) -> Result<Vec<ModelFailure>> {
        let rows = self
            .read_rows(
                stmt("SELECT * FROM model_failures WHERE run_id = $1 ORDER BY id").bind(run_id),
            )
            .await?;
        rows.iter().map(failure_from_row).collect()
    }

    /// Records what a machine label was made with. Recording the same label again (a
    /// replayed submission) keeps the first record.
    pub async fn record_model_label(&self, label: ModelLabel) -> Result<()> {
        self.write_conn(move |mut c| {
            let label = label.clone();
            Box::pin(async move { insert_model_label(&mut c, &label).await })
        })
        .await
    }

    pub async fn model_label(&self, annotation_id: Id) -> Result<Option<ModelLabel>> {
        let row = self
            .read_optional(
                stmt("SELECT * FROM model_labels WHERE annotation_id = $1").bind(annotation_id),
            )
            .await?;
        row.map(|row| {
            Ok(ModelLabel {
                annotation_id: row.col("annotation_id")?,
                provenance: ModelProvenance {
                    annotator_id: row.col("annotator_id")?,
                    model: row.col("model")?,
                    model_version: row.col("model_version")?,
                    prompt_digest: row.col("prompt_digest")?,
                    guideline_version_id: row.col("guideline_version_id")?,
                    confidence: row.col("confidence")?,
                },
            })
        })
        .transpose()
    }

    /// The next items a model account has not had, in the queue's order for models (no
    /// lease taken): what a run may start answering before the queue serves them. The queue
    /// remains the judge of what is served; this is a read ahead.
    pub async fn model_backlog(
        &self,
        project_id: ProjectId,
        user_id: UserId,
        after: Option<(i64, Id)>,
        limit: i64,
    ) -> Result<Vec<Item>> {
        let (priority, after_id) = after.unwrap_or((i64::MAX, 0));
        let statement = stmt(
            "SELECT i.id, i.project_id, i.external_id, i.item_type, i.title, i.creators, \
                    i.metadata, i.text_fields, i.media_url, i.priority, i.state, i.is_gold, \
                    i.gold_answer, i.created_at, i.updated_at \
             FROM items i WHERE i.project_id = $1 AND i.is_gold = 0 AND i.state <> 'adjudicated' \
               AND (i.priority < $3 OR (i.priority = $3 AND i.id > $4)) \
               AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = $2) \
             ORDER BY i.priority DESC, i.id LIMIT $5",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(priority)
        .bind(after_id)
        .bind(limit);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(item_from_row).collect()
    }
}

/// What a model has done over all its runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ModelTotals {
    pub runs: i64,
    /// Labels it has made (machine labels recorded).
    pub labels: i64,
    pub failures: i64,
    pub cached: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
}

fn failure_from_row(row: &impl Columns) -> Result<ModelFailure> {
    Ok(ModelFailure {
        id: row.col("id")?,
        run_id: row.col("run_id")?,
        item_id: row.col("item_id")?,
        raw_answer: row.col("raw_answer")?,
        reason: row.col("reason")?,
        created_at: row.col("created_at")?,
    })
}

impl Store {
    /// A model's counters over all its runs, and the labels it has made.
    pub async fn model_totals(&self, annotator_id: ModelAnnotatorId) -> Result<ModelTotals> {
        let row = self
            .read_one(
                stmt(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS runs, \
                    CAST(COALESCE(SUM(failures), 0) AS BIGINT) AS failures, \
                    CAST(COALESCE(SUM(cached), 0) AS BIGINT) AS cached, \
                    CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
                    CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
                    CAST(COALESCE(SUM(cost), 0) AS DOUBLE PRECISION) AS cost, \
                    (SELECT CAST(COUNT(*) AS BIGINT) FROM model_labels l \
                      WHERE l.annotator_id = $1) AS labels \
             FROM model_runs WHERE annotator_id = $1",
                )
                .bind(annotator_id),
            )
            .await?;
        Ok(ModelTotals {
            runs: row.col("runs")?,
            labels: row.col("labels")?,
            failures: row.col("failures")?,
            cached: row.col("cached")?,
            prompt_tokens: row.col("prompt_tokens")?,
            completion_tokens: row.col("completion_tokens")?,
            cost: row.col("cost")?,
        })
    }

    /// A model's latest failures over all its runs, newest first.
    pub async fn recent_model_failures(
        &self,
        annotator_id: ModelAnnotatorId,
        limit: i64,
    ) -> Result<Vec<ModelFailure>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT f.id, f.run_id, f.item_id, f.raw_answer, f.reason, f.created_at \
             FROM model_failures f JOIN model_runs r ON r.id = f.run_id \
             WHERE r.annotator_id = $1 ORDER BY f.id DESC LIMIT $2",
                )
                .bind(annotator_id)
                .bind(limit),
            )
            .await?;
        rows.iter().map(failure_from_row).collect()
    }

    /// The stated confidence of the machine labels of a project, keyed by (item, model
    /// account); a later label of the same pair replaces an earlier one.
    pub async fn model_confidences(
        &self,
        project_id: ProjectId,
    ) -> Result<HashMap<(ItemId, UserId), f64>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT a.item_id, a.annotator_id, l.confidence \
             FROM model_labels l JOIN annotations a ON a.id = l.annotation_id \
             WHERE a.project_id = $1 AND l.confidence IS NOT NULL ORDER BY a.id",
                )
                .bind(project_id),
            )
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            out.insert(
                (row.col("item_id")?, row.col("annotator_id")?),
                row.col("confidence")?,
            );
        }
        Ok(out)
    }
}
