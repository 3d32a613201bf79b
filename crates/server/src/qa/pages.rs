//! Qa: page routes.

use crate::AppState;
use crate::access::{ProjectPage, need};
use crate::auth::Auth;
use crate::auth::urlencode;
use crate::error::{AppError, AppResult};
use crate::views::{base, capabilities, render};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::UserId;
use concord_store::{
    AccountKind, Annotation, EscalationStatus, Id, ItemState, JobKind, LabelSchema,
    NewAdjudication, Permission, PrecedentFilter, Project, QaSettings, QuestionKind, Role,
    StoreError,
};
use concord_store::{ItemId, ProjectId};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}/quality", get(quality_page))
        .route("/p/{slug}/dashboard", get(dashboard_page))
        .route(
            "/p/{slug}/guidelines/revision",
            get(revision_page).post(queue_revision),
        )
        .route("/p/{slug}/feedback", get(project_feedback))
        .route("/p/{slug}/feedback/{username}", get(annotator_feedback))
        .route("/p/{slug}/consensus", post(start_consensus_page))
        .route("/p/{slug}/consensus/jobs/{id}", get(consensus_job_fragment))
        .route("/p/{slug}/escalations", get(escalations_page))
        .route(
            "/p/{slug}/adjudicate/{id}",
            get(adjudicate_page).post(adjudicate_submit),
        )
        .route("/p/{slug}/precedents", get(precedents_page))
        .route(
            "/p/{slug}/escalation-rules",
            get(rules_page).post(rules_submit),
        )
}

#[derive(Deserialize, Default)]
struct QualityQuery {
    job: Option<Id>,
}

async fn quality_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
    Query(query): Query<QualityQuery>,
) -> AppResult<Html<String>> {
    let run = state.store.latest_consensus_run(project.id).await?;
    let report = run.as_ref().and_then(concord_qa::report_of);
    let quality = state.store.annotator_quality(project.id).await?;
    // One row per annotator, a column per question.
    let mut annotators: Vec<Value> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (name, q) in quality {
        let at = *index.entry(name.clone()).or_insert_with(|| {
            annotators.push(json!({"name": name, "questions": {}}));
            annotators.len() - 1
        });
        annotators[at]["questions"][&q.question] = serde_json::to_value(&q).unwrap_or_default();
    }
    let (open, overdue, resolved) = state.store.escalation_counts(project.id).await?;
    let (adjudicated, overturned) = state.store.adjudication_counts(project.id).await?;
    let job = match query.job {
        Some(id) => Some(state.store.job(id).await?).filter(|j| j.project_id == Some(project.id)),
        None => None,
    };
    let runs = state.store.consensus_runs(project.id, 10).await?;
    render(
        &state,
        "quality.html",
        context! {
            project, can => capabilities(role), run, report, annotators, job, runs,
            escalations => context! { open, overdue, resolved },
            adjudications => context! { total => adjudicated, overturned },
            ..base(&auth)
        },
    )
}

async fn start_consensus_page(
    State(state): State<AppState>,
    ProjectPage { auth, project, .. }: ProjectPage<need::ReadAnnotations>,
    Path(slug): Path<String>,
) -> AppResult<Redirect> {
    let job = super::start_consensus_job(&state, project, auth.user.id).await?;
    Ok(Redirect::to(&format!("/p/{slug}/quality?job={}", job.id)))
}

async fn consensus_job_fragment(
    State(state): State<AppState>,
    ProjectPage { project, .. }: ProjectPage<need::ReadAnnotations>,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Html<String>> {
    let job = state.store.job(id).await?;
    if job.project_id != Some(project.id) || job.kind != JobKind::Consensus {
        return Err(AppError::not_found(format!("job {id} not found")));
    }
    render(
        &state,
        "job.html",
        context! { project, job, poll_base => "consensus/jobs" },
    )
}

#[derive(Deserialize, Default)]
struct EscalationQuery {
    status: Option<String>,
    done: Option<ItemId>,
    /// Search over title, external id, type and reasons; kept in the URL with the page.
    #[serde(default)]
    q: String,
    page: Option<usize>,
}

async fn escalations_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
    Query(query): Query<EscalationQuery>,
) -> AppResult<Html<String>> {
    let status = match query.status.as_deref() {
        Some("resolved") => EscalationStatus::Resolved,
        _ => EscalationStatus::Open,
    };
    let list = crate::views::ListQuery {
        q: query.q.clone(),
        page: query.page,
    };
    let found: Vec<_> = state
        .store
        .escalations(project.id, status, auth.user.id, 500)
        .await?
        .into_iter()
        .filter(|e| {
            let reasons = e.reasons.to_string();
            list.matches(&[&e.title, &e.external_id, &e.item_type, &reasons])
        })
        .collect();
    let (escalations, pager) = list.page(found);
    let keep = crate::views::kept_filters(&[("status", status.as_str())]);
    let (open, overdue, resolved) = state.store.escalation_counts(project.id).await?;
    let now = concord_store::system_now_ms();
    let done = match query.done {
        Some(id) => state.store.item_adjudications(id).await?.into_iter().next(),
        None => None,
    };
    render(
        &state,
        "escalations.html",
        context! {
            project, can => capabilities(role), escalations, status, now, done, pager, keep,
            counts => context! { open, overdue, resolved },
            ..base(&auth)
        },
    )
}

/// Labels as the expert sees them: names hidden unless the project allows, the automated
/// annotator marked as such.
fn labels_for_expert(
    annotations: &[Annotation],
    show_names: bool,
    version_numbers: &HashMap<Id, i64>,
) -> Vec<Value> {
    let mut aliases: HashMap<Id, String> = HashMap::new();
    // The latest answer of each annotator is the one in force; the ones it replaced stay
    // visible, marked, and are not counted.
    let latest: HashMap<UserId, Id> = annotations.iter().fold(HashMap::new(), |mut latest, a| {
        let id = latest.entry(a.annotator_id).or_insert(a.id);
        *id = (*id).max(a.id);
        latest
    });
    annotations
        .iter()
        .map(|a| {
            let next = aliases.len();
            let who = if a.annotator_kind == AccountKind::Model {
                format!("Automated annotator ({})", a.annotator)
            } else if show_names {
                a.annotator.clone()
            } else {
                aliases
                    .entry(a.annotator_id.get())
                    .or_insert_with(|| format!("Annotator {}", alias(next)))
                    .clone()
            };
            json!({
                "id": a.id, "who": who, "answer": a.answer, "rationale": a.rationale,
                "flags": a.flags, "kind": a.kind, "model": a.annotator_kind == AccountKind::Model,
                "guideline_version": a.guideline_version_id.and_then(|id| version_numbers.get(&id)),
                "created_at": a.created_at,
                "supersedes": a.supersedes, "is_late": a.is_late,
                "superseded": latest.get(&a.annotator_id) != Some(&a.id),
            })
        })
        .collect()
}

fn alias(n: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if n < letters.len() {
        (letters[n] as char).to_string()
    } else {
        format!("{}", n + 1)
    }
}

/// The guideline version numbers the item's labels were given under, ascending.
fn versions_involved(annotations: &[Annotation], version_numbers: &HashMap<Id, i64>) -> Vec<i64> {
    let mut involved: Vec<i64> = annotations
        .iter()
        .filter_map(|a| a.guideline_version_id)
        .filter_map(|id| version_numbers.get(&id).copied())
        .collect();
    involved.sort_unstable();
    involved.dedup();
    involved
}

/// What the decision form starts from (unless it is shown again after an error): the
/// decision in force, else the consensus.
fn prefill_of(
    adjudications: &[concord_store::Adjudication],
    consensus: &[concord_store::ItemConsensus],
) -> Value {
    match adjudications.first() {
        Some(a) => {
            json!({"answer": a.answer, "rationale": "", "guideline_clause": a.guideline_clause})
        }
        None => {
            let answer: serde_json::Map<String, Value> = consensus
                .iter()
                .filter_map(|c| Some((c.question.clone(), c.label.clone()?)))
                .collect();
            json!({"answer": answer})
        }
    }
}

/// The decision the form sends, and the form's fields to show again after an error.
fn decision_from_form(
    schema: &LabelSchema,
    fields: &[(String, String)],
) -> (NewAdjudication, Value) {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let answer = answer_from_form(schema, fields);
    let example_scope = match field("example_scope").as_str() {
        "in_scope" => Some(concord_store::ExampleScope::InScope),
        "out_of_scope" => Some(concord_store::ExampleScope::OutOfScope),
        _ => None,
    };
    let decision = NewAdjudication {
        answer: answer.clone(),
        rationale: field("rationale"),
        guideline_clause: field("guideline_clause"),
        promote_to_gold: field("promote_to_gold") == "on",
        example_scope,
        example_category: Some(field("example_category")).filter(|c| !c.is_empty()),
    };
    let sent = json!({
        "answer": answer, "rationale": decision.rationale, "guideline_clause": decision.guideline_clause,
        "promote_to_gold": decision.promote_to_gold, "example_scope": field("example_scope"),
        "example_category": field("example_category"),
    });
    (decision, sent)
}

/// How the adjudication page is shown: after a refused decision (its error and the fields
/// sent), and whether the expert asked to see the consensus in blind mode.
#[derive(Default)]
struct AdjudicationShown {
    error: Option<String>,
    form: Option<Value>,
    reveal: bool,
}

// long: gathers the item, its labels, consensus, decisions and guideline versions for one page
async fn adjudication_view(
    state: &AppState,
    auth: &Auth,
    project: &Project,
    role: Role,
    item_id: ItemId,
    shown: AdjudicationShown,
) -> AppResult<Html<String>> {
    let AdjudicationShown {
        error,
        form,
        reveal,
    } = shown;
    let item = state.store.item(project.id, item_id).await?;
    let settings = &project.settings.qa;
    let annotations = state.store.item_annotations(item.id).await?;
    let labelled_by_viewer = annotations.iter().any(|a| a.annotator_id == auth.user.id);
    let consensus = state.store.item_consensus(item.id).await?;
    let adjudications = state.store.item_adjudications(item.id).await?;
    let escalations = state.store.item_escalations(item.id, auth.user.id).await?;
    let schema = state.store.current_schema(project.id).await?;
    let versions = state.store.guideline_versions(project.id).await?;
    let version_numbers: HashMap<Id, i64> = versions.iter().map(|v| (v.id, v.version)).collect();
    let labels = labels_for_expert(
        &annotations,
        settings.show_annotator_names,
        &version_numbers,
    );
    let involved = versions_involved(&annotations, &version_numbers);
    let current_guideline = versions
        .iter()
        .find(|v| Some(v.id) == project.current_guideline_version_id)
        .map(|v| v.version);
    // Blind mode: until a decision exists (or the expert asks), no consensus and no
    // pre-selected answer.
    let blind = settings.blind_adjudication && adjudications.is_empty() && !reveal;
    let prefill = match form {
        Some(sent) => sent,
        None if blind => json!({}),
        None => prefill_of(&adjudications, &consensus),
    };
    let in_force = labels.iter().filter(|l| l["superseded"] != true).count();
    let html = render(
        state,
        "adjudicate.html",
        context! {
            project, can => capabilities(role), item, labels, consensus, adjudications, escalations,
            schema => schema.definition, involved, current_guideline, labelled_by_viewer, error,
            prefill, show_names => settings.show_annotator_names, blind, in_force,
            blind_setting => settings.blind_adjudication,
            ..base(auth)
        },
    )?;
    Ok(html)
}

async fn adjudicate_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::Adjudicate>,
    Path((_, id)): Path<(String, ItemId)>,
    Query(query): Query<AdjudicateQuery>,
) -> AppResult<Html<String>> {
    let shown = AdjudicationShown {
        reveal: query.reveal.is_some(),
        ..Default::default()
    };
    adjudication_view(&state, &auth, &project, role, id, shown).await
}

/// `?reveal=1`: show the consensus in blind mode (the expert asked for it).
#[derive(Deserialize)]
struct AdjudicateQuery {
    reveal: Option<String>,
}

/// Builds a schema answer from form fields named `q.<key>` (repeated for multi-label).
fn answer_from_form(schema: &LabelSchema, fields: &[(String, String)]) -> Value {
    let mut answer = serde_json::Map::new();
    for question in &schema.questions {
        let name = format!("q.{}", question.key);
        let values: Vec<&str> = fields
            .iter()
            .filter(|(k, v)| *k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        match question.kind {
            QuestionKind::Multi => {
                answer.insert(question.key.clone(), json!(values));
            }
            QuestionKind::Single | QuestionKind::Ordinal => {
                if let Some(value) = values.first() {
                    answer.insert(question.key.clone(), json!(value));
                }
            }
        }
    }
    Value::Object(answer)
}

async fn adjudicate_submit(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::Adjudicate>,
    Path((slug, id)): Path<(String, ItemId)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let schema: LabelSchema = state.store.current_schema(project.id).await?.definition;
    let (decision, sent) = decision_from_form(&schema, &fields);
    match state
        .store
        .adjudicate(project.id, id, auth.user.id, decision)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/p/{slug}/escalations?done={id}")).into_response()),
        Err(e @ (StoreError::Invalid(_) | StoreError::Conflict(_))) => {
            let status = if matches!(e, StoreError::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let html = adjudication_view(
                &state,
                &auth,
                &project,
                role,
                id,
                AdjudicationShown {
                    error: Some(e.to_string()),
                    form: Some(sent),
                    reveal: false,
                },
            )
            .await?;
            Ok((status, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct PrecedentQuery {
    q: Option<String>,
    code: Option<String>,
    clause: Option<String>,
    overturned: Option<String>,
}

async fn precedents_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ViewProject>,
    Query(query): Query<PrecedentQuery>,
) -> AppResult<Html<String>> {
    let filter = PrecedentFilter {
        text: query.q.clone(),
        code: query.code.clone(),
        clause: query.clause.clone(),
        overturned: match query.overturned.as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        },
        limit: Some(200),
    };
    let precedents = state.store.precedents(project.id, &filter).await?;
    let schema = state.store.current_schema(project.id).await?;
    render(
        &state,
        "precedents.html",
        context! {
            project, can => capabilities(role), precedents, schema => schema.definition,
            f => context! { q => query.q, code => query.code, clause => query.clause, overturned => query.overturned },
            ..base(&auth)
        },
    )
}

async fn rules_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSettings>,
) -> AppResult<Html<String>> {
    rules_view(&state, &auth, &project, role, None, None)
        .await
        .map(|(_, html)| html)
}

async fn rules_view(
    state: &AppState,
    auth: &Auth,
    project: &Project,
    role: Role,
    error: Option<String>,
    notice: Option<&str>,
) -> AppResult<(StatusCode, Html<String>)> {
    let settings = &project.settings.qa;
    let schema = state.store.current_schema(project.id).await?;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let html = render(
        state,
        "escalation_rules.html",
        context! {
            project, can => capabilities(role), settings, schema => schema.definition, error, notice,
            methods => concord_store::CONSENSUS_METHODS,
            report_metrics => REPORT_METRIC_CHOICES
                .iter()
                .map(|(key, name)| context! { key, name })
                .collect::<Vec<_>>(),
            ..base(auth)
        },
    )?;
    Ok((status, html))
}

/// The coefficients a project may show in its quality report, as the rules form lists them.
const REPORT_METRIC_CHOICES: [(&str, &str); 9] = [
    ("krippendorff_alpha", "Krippendorff's α"),
    ("percent_agreement", "Percent agreement"),
    ("fleiss_generalized", "Fleiss' κ (generalised)"),
    ("gwet_ac", "Gwet's AC1 / AC2"),
    ("brennan_prediger", "Brennan–Prediger"),
    ("conger_kappa", "Conger's κ"),
    ("scott_pi", "Scott's π"),
    ("fleiss_kappa", "Fleiss' κ (fixed marginals)"),
    ("randolph_kappa", "Randolph's κ"),
];

#[derive(Deserialize)]
struct RulesForm {
    method: String,
    /// Checked coefficients (a repeated field); parsed by hand below.
    #[serde(skip)]
    metrics: Vec<String>,
    target_alpha: String,
    #[serde(default)]
    show_annotator_names: Option<String>,
    #[serde(default)]
    blind_adjudication: Option<String>,
    min_posterior: String,
    min_agreement: String,
    #[serde(default)]
    on_unsure: Option<String>,
    #[serde(default)]
    on_tie: Option<String>,
    severity_at_or_above: String,
    #[serde(default)]
    model_disagreement: Option<String>,
    min_labels: String,
    urgent_categories: String,
    high_categories: String,
    sla_hours_urgent: String,
    sla_hours_high: String,
    sla_hours_normal: String,
}

fn parse_field<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{name}: {:?} is not a number", text.trim()))
}

fn optional_share(name: &str, text: &str) -> Result<Option<f64>, String> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse_field(name, text).map(Some)
    }
}

fn codes(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The form's QA settings; what the form does not edit (the costs of disagreement, the
/// calibration settings, the DSA category map) is kept from `current`.
fn settings_from_form(form: &RulesForm, current: &QaSettings) -> Result<QaSettings, String> {
    let escalation = concord_store::EscalationRules {
        min_posterior: optional_share("minimum posterior", &form.min_posterior)?,
        min_agreement: optional_share("minimum agreement", &form.min_agreement)?,
        on_unsure: form.on_unsure.is_some(),
        on_tie: form.on_tie.is_some(),
        severity_at_or_above: Some(form.severity_at_or_above.trim().to_owned())
            .filter(|s| !s.is_empty()),
        model_disagreement: form.model_disagreement.is_some(),
        min_labels: parse_field("minimum labels", &form.min_labels)?,
        urgent_categories: codes(&form.urgent_categories),
        high_categories: codes(&form.high_categories),
        sla_hours_urgent: parse_field("SLA (urgent)", &form.sla_hours_urgent)?,
        sla_hours_high: parse_field("SLA (high)", &form.sla_hours_high)?,
        sla_hours_normal: parse_field("SLA (normal)", &form.sla_hours_normal)?,
    };
    let settings = QaSettings {
        method: form.method.trim().to_owned(),
        target_alpha: parse_field("target α", &form.target_alpha)?,
        show_annotator_names: form.show_annotator_names.is_some(),
        blind_adjudication: form.blind_adjudication.is_some(),
        // No box checked: the default set (a report always shows some agreement).
        metrics: if form.metrics.is_empty() {
            concord_store::DEFAULT_REPORT_METRICS
                .map(String::from)
                .to_vec()
        } else {
            form.metrics.clone()
        },
        escalation,
        costs: current.costs.clone(),
        calibration: current.calibration.clone(),
        dsa_categories: current.dsa_categories.clone(),
    };
    settings.validate()?;
    Ok(settings)
}

impl RulesForm {
    /// `metrics` repeats (one per checked box), which a struct form cannot take.
    fn parse(fields: Vec<(String, String)>) -> AppResult<RulesForm> {
        let mut single = serde_json::Map::new();
        let mut metrics = Vec::new();
        for (name, value) in fields {
            if name == "metrics" {
                metrics.push(value);
            } else {
                single.insert(name, serde_json::Value::String(value));
            }
        }
        let mut form: RulesForm = serde_json::from_value(serde_json::Value::Object(single))
            .map_err(|e| AppError::bad_request(format!("the rules form: {e}")))?;
        form.metrics = metrics;
        Ok(form)
    }
}

/// The first code the rules name that the schema does not have: codes must exist, so a
/// typo does not silently switch a rule off.
fn unknown_rule_code<'a>(
    schema: &LabelSchema,
    rules: &'a concord_store::EscalationRules,
) -> Option<&'a String> {
    let known = |code: &str| {
        schema
            .questions
            .iter()
            .any(|q| q.options.iter().any(|o| o.value == code))
    };
    rules
        .urgent_categories
        .iter()
        .chain(&rules.high_categories)
        .chain(&rules.severity_at_or_above)
        .find(|c| !known(c))
}

async fn rules_submit(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditSettings>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<(StatusCode, Html<String>)> {
    let form = RulesForm::parse(fields)?;
    let settings = match settings_from_form(&form, &project.settings.qa) {
        Ok(settings) => settings,
        Err(message) => {
            return rules_view(&state, &auth, &project, role, Some(message), None).await;
        }
    };
    let schema: LabelSchema = state.store.current_schema(project.id).await?.definition;
    if let Some(code) = unknown_rule_code(&schema, &settings.escalation) {
        return rules_view(
            &state,
            &auth,
            &project,
            role,
            Some(format!("{code:?} is not a code of the label schema")),
            None,
        )
        .await;
    }
    let mut all = project.settings.as_json().clone();
    all["qa"] = serde_json::to_value(&settings).map_err(AppError::internal)?;
    state
        .store
        .update_project(
            project.id,
            &project.name,
            &project.description,
            all,
            Some(auth.user.id),
        )
        .await?;
    rules_view(
        &state,
        &auth,
        &project,
        role,
        None,
        Some("Saved. The next consensus run applies them."),
    )
    .await
}

/// The dashboard's completion and volume: items done of all, and three bar charts.
struct VolumeCharts {
    total: i64,
    done: i64,
    by_state: String,
    per_day: String,
    per_annotator: String,
}

async fn volume_charts(state: &AppState, project_id: ProjectId) -> AppResult<VolumeCharts> {
    use crate::charts::bars;
    let states = state.store.item_state_counts(project_id).await?;
    let total: i64 = states.iter().map(|(_, n)| n).sum();
    let done: i64 = states
        .iter()
        .filter(|(s, _)| matches!(s, ItemState::Labelled | ItemState::Adjudicated))
        .map(|(_, n)| n)
        .sum();
    // No items at all is the chart's empty state, not a row of zero bars.
    let by_state: Vec<(String, f64)> = states
        .iter()
        .filter(|_| total > 0)
        .map(|(s, n)| (s.as_str().replace('_', " "), *n as f64))
        .collect();
    let per_day: Vec<(String, f64)> = state
        .store
        .labels_per_day(project_id)
        .await?
        .iter()
        .map(|(day, n)| (concord_qa::date_of(day * 86_400_000), *n as f64))
        .collect();
    let per_annotator: Vec<(String, f64)> = state
        .store
        .labels_per_annotator(project_id, 20)
        .await?
        .iter()
        .map(|(name, kind, n)| match kind {
            AccountKind::Model => (format!("{name} (model)"), *n as f64),
            AccountKind::Human => (name.clone(), *n as f64),
        })
        .collect();
    Ok(VolumeCharts {
        total,
        done,
        by_state: bars(
            "chart-states",
            "Items by state",
            &by_state,
            "No items yet: the items by state appear here once items are imported.",
        ),
        per_day: bars(
            "chart-volume",
            "Labels per day",
            &per_day,
            "No labels yet: the labels per day appear here once annotators submit.",
        ),
        per_annotator: bars(
            "chart-annotators",
            "Labels per annotator (top 20)",
            &per_annotator,
            "No labels yet: the labels per annotator appear here once annotators submit.",
        ),
    })
}

/// Per question of the latest report: α per week with the guideline versions marked, and
/// the consensus labels.
fn question_charts(
    report: Option<&concord_qa::report::QualityReport>,
    versions: &[concord_store::GuidelineVersion],
) -> Vec<Value> {
    use crate::charts::{LineLegend, Point, bars, line};
    let legend = LineLegend {
        line: "Krippendorff's α of the week",
        interval: "95 % confidence interval",
        marker: "guideline version published",
    };
    let mut questions: Vec<Value> = Vec::new();
    for q in report
        .iter()
        .flat_map(|r| &r.questions)
        .filter(|q| q.items > 0)
    {
        let points: Vec<Point> = q
            .by_week
            .iter()
            .map(|s| Point {
                label: s.slice.trim_start_matches("week of ").to_owned(),
                value: s.alpha.value,
                ci: s.alpha.ci,
            })
            .collect();
        // A version published during week k is marked at the start of week k.
        let markers: Vec<(usize, String)> = versions
            .iter()
            .filter_map(|v| {
                let published = v.published_at?;
                let week = concord_qa::week_start(published);
                let at = q.by_week.iter().filter(|s| s.key < week).count();
                Some((at, format!("v{}", v.version)))
            })
            .collect();
        let over_time = line(
            &format!("chart-alpha-{}", q.key),
            &format!("Krippendorff's α per week: {}", q.key),
            &points,
            (-0.2, 1.0),
            &markers,
            &legend,
            "No α yet: α per week appears here once a week has items labelled by two or more annotators.",
        );
        let consensus = bars(
            &format!("chart-consensus-{}", q.key),
            &format!("Consensus labels: {}", q.key),
            &q.consensus_counts
                .iter()
                .map(|(code, n)| (code.clone(), *n as f64))
                .collect::<Vec<_>>(),
            "No consensus labels yet: they appear here after a consensus run.",
        );
        questions.push(json!({
            "key": q.key, "prompt": q.prompt, "alpha": q.alpha(),
            "over_time": over_time, "consensus": consensus,
        }));
    }
    questions
}

/// The project dashboard: completion, volume, who labels, agreement over time with the
/// guideline versions marked, escalation and overturn rates.
async fn dashboard_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
) -> AppResult<Html<String>> {
    let volume = volume_charts(&state, project.id).await?;
    let run = state.store.latest_consensus_run(project.id).await?;
    let report = run.as_ref().and_then(concord_qa::report_of);
    let versions = state.store.guideline_versions(project.id).await?;
    let questions = question_charts(report.as_ref(), &versions);
    let (open, overdue, resolved) = state.store.escalation_counts(project.id).await?;
    let (adjudicated, overturned) = state.store.adjudication_counts(project.id).await?;
    let labelled = report.as_ref().map(|r| r.labelled_items).unwrap_or(0) as f64;
    let escalation_rate = (labelled > 0.0).then(|| (open + resolved) as f64 / labelled);
    let overturn_rate = (adjudicated > 0).then(|| overturned as f64 / adjudicated as f64);
    let assist = state.store.model_assist_savings(project.id).await?;
    let assist_enabled = project.settings.queue.model_assist.enabled;
    let overlap = concord_qa::overlap_savings(&state.store, &project).await?;
    let dynamic = project.settings.queue.dynamic;
    let predictions = crate::predictions::dashboard_reports(&state, &project).await?;
    render(
        &state,
        "dashboard.html",
        context! {
            project, can => capabilities(role), run, total => volume.total, done => volume.done,
            completion => (volume.total > 0).then(|| volume.done as f64 / volume.total as f64),
            by_state => volume.by_state, volume => volume.per_day,
            annotators => volume.per_annotator, questions, escalation_rate, overturn_rate,
            assist, assist_enabled, predictions, overlap, dynamic,
            escalations => context! { open, overdue, resolved },
            adjudications => context! { total => adjudicated, overturned },
            ..base(&auth)
        },
    )
}

#[derive(Deserialize, Default)]
struct FeedbackQuery {
    format: Option<String>,
}

async fn project_feedback(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
    Query(query): Query<FeedbackQuery>,
) -> AppResult<Response> {
    let report = concord_qa::feedback::feedback_report(&state.store, &project, None).await?;
    feedback_response(
        &state,
        &auth,
        project,
        role,
        report,
        query.format.as_deref(),
    )
}

/// An annotator's report: for analysts, managers and experts, and for the annotator.
async fn annotator_feedback(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ViewProject>,
    Path((_, username)): Path<(String, String)>,
    Query(query): Query<FeedbackQuery>,
) -> AppResult<Response> {
    if username != auth.user.username && !role.allows(Permission::ReadAnnotations) {
        return Err(AppError::forbidden(
            "you can read your own feedback; other people's is for QA analysts and managers",
        ));
    }
    let annotator = state.store.user_by_name(&username).await?;
    let report =
        concord_qa::feedback::feedback_report(&state.store, &project, Some(&annotator)).await?;
    feedback_response(
        &state,
        &auth,
        project,
        role,
        report,
        query.format.as_deref(),
    )
}

fn feedback_response(
    state: &AppState,
    auth: &Auth,
    project: Project,
    role: concord_store::Role,
    report: concord_qa::feedback::Feedback,
    format: Option<&str>,
) -> AppResult<Response> {
    use axum::http::header;
    let stem = match &report.annotator {
        Some(a) => format!("{}-feedback-{a}", project.slug),
        None => format!("{}-feedback", project.slug),
    };
    let attachment = |body: String, content_type: &str, ext: &str| {
        (
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{stem}.{ext}\""),
                ),
            ],
            body,
        )
            .into_response()
    };
    match format {
        Some("md") => Ok(attachment(
            concord_qa::feedback::to_markdown(&report),
            "text/markdown; charset=utf-8",
            "md",
        )),
        Some("csv") => Ok(attachment(
            concord_qa::feedback::to_csv(&report)?,
            "text/csv; charset=utf-8",
            "csv",
        )),
        None | Some("html") => Ok(render(
            state,
            "feedback.html",
            context! { project, can => capabilities(role), report, ..base(auth) },
        )?
        .into_response()),
        Some(other) => Err(AppError::bad_request(format!(
            "format must be html, md or csv, not {other:?}"
        ))),
    }
}

/// Categories whose examples differ between two guideline versions.
fn changed_categories(
    from: &[concord_store::GuidelineExample],
    to: &[concord_store::GuidelineExample],
) -> Vec<String> {
    let of = |examples: &[concord_store::GuidelineExample], category: &str| {
        let mut texts: Vec<String> = examples
            .iter()
            .filter(|e| e.category == category)
            .map(|e| format!("{:?}:{}", e.scope, e.text))
            .collect();
        texts.sort();
        texts
    };
    let mut categories: Vec<String> = from.iter().chain(to).map(|e| e.category.clone()).collect();
    categories.sort();
    categories.dedup();
    categories
        .into_iter()
        .filter(|c| of(from, c) != of(to, c))
        .collect()
}

/// Reads `from`, `to` and repeated `category` fields (query string or form).
fn revision_fields(fields: &[(String, String)]) -> (Option<i64>, Option<i64>, Option<Vec<String>>) {
    let number = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
    };
    let chosen: Vec<String> = fields
        .iter()
        .filter(|(k, v)| k == "category" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let asked = fields.iter().any(|(k, _)| k == "chosen");
    (number("from"), number("to"), asked.then_some(chosen))
}

/// The two published versions a revision compares: those asked for, else the current
/// version and the one before it.
fn compared_versions<'a>(
    project: &Project,
    versions: &'a [concord_store::GuidelineVersion],
    published: &[&'a concord_store::GuidelineVersion],
    from: Option<i64>,
    to: Option<i64>,
) -> (
    Option<&'a concord_store::GuidelineVersion>,
    Option<&'a concord_store::GuidelineVersion>,
) {
    let current = project
        .current_guideline_version_id
        .and_then(|id| versions.iter().find(|v| v.id == id));
    let to = to
        .and_then(|n| published.iter().copied().find(|v| v.version == n))
        .or(current);
    let from = from
        .and_then(|n| published.iter().copied().find(|v| v.version == n))
        .or_else(|| {
            to.and_then(|t| {
                published
                    .iter()
                    .copied()
                    .filter(|v| v.version < t.version)
                    .max_by_key(|v| v.version)
            })
        });
    (from, to)
}

/// Categories the latest run's report flags for a guideline revision (low agreement).
fn flagged_categories(run: Option<&concord_store::ConsensusRun>) -> Vec<Value> {
    run.and_then(concord_qa::report_of)
        .iter()
        .flat_map(|r| r.questions.clone())
        .flat_map(|q| {
            q.categories
                .into_iter()
                .filter(|c| c.revise)
                .map(move |c| json!({"question": q.key, "code": c.code, "alpha": c.alpha.value}))
        })
        .collect()
}

async fn revision_view(
    state: &AppState,
    auth: &Auth,
    project: &Project,
    role: Role,
    fields: &[(String, String)],
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let versions = state.store.guideline_versions(project.id).await?;
    let published: Vec<&concord_store::GuidelineVersion> = versions
        .iter()
        .filter(|v| v.published_at.is_some())
        .collect();
    let (from, to, chosen) = revision_fields(fields);
    let (from, to) = compared_versions(project, &versions, &published, from, to);
    let changed = match (from, to) {
        (Some(f), Some(t)) => changed_categories(&f.examples, &t.examples),
        _ => Vec::new(),
    };
    let run = state.store.latest_consensus_run(project.id).await?;
    let flagged = flagged_categories(run.as_ref());
    let chosen = chosen.unwrap_or_else(|| changed.clone());
    let page = revision_page_number(fields);
    let (total, candidates) = match to {
        Some(t) => {
            let total = state
                .store
                .count_labels_under_older_versions(project.id, t.version, &chosen)
                .await?;
            let offset = (page - 1) * REVISION_PAGE;
            let shown = state
                .store
                .labels_under_older_versions(project.id, t.version, &chosen, REVISION_PAGE, offset)
                .await?;
            (total, shown)
        }
        None => (0, Vec::new()),
    };
    let pages = ((total + REVISION_PAGE - 1) / REVISION_PAGE).max(1);
    let pager = context! {
        page, pages, total, query => revision_query(fields),
        prev => (page > 1).then(|| page - 1), next => (page < pages).then(|| page + 1),
    };
    let schema = state.store.current_schema(project.id).await?;
    render(
        state,
        "revision.html",
        context! {
            project, can => capabilities(role), from, to, changed, flagged, chosen, candidates,
            notice, published, schema => schema.definition, pager,
            ..base(auth)
        },
    )
}

/// Labels the revision page lists at once.
const REVISION_PAGE: i64 = 100;

/// The revision page's `page` field (from 1).
fn revision_page_number(fields: &[(String, String)]) -> i64 {
    fields
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1)
}

/// The revision page's query without its page number, for the pager's links.
fn revision_query(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .filter(|(k, _)| k != "page" && k != "csrf")
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn revision_page(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::ReadAnnotations>,
    Query(fields): Query<Vec<(String, String)>>,
) -> AppResult<Html<String>> {
    revision_view(&state, &auth, &project, role, &fields, None).await
}

/// Queues every listed label for re-review by the annotator who gave it.
async fn queue_revision(
    State(state): State<AppState>,
    ProjectPage {
        auth,
        project,
        role,
        ..
    }: ProjectPage<need::EditGuidelines>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Html<String>> {
    let (_, to, chosen) = revision_fields(&fields);
    let (Some(to), Some(chosen)) = (to, chosen) else {
        return Err(AppError::bad_request(
            "name the version (to) and the categories",
        ));
    };
    // Every listed label, a page of the store's at a time.
    let mut candidates = Vec::new();
    loop {
        let offset = candidates.len() as i64;
        let batch = state
            .store
            .labels_under_older_versions(project.id, to, &chosen, 10_000, offset)
            .await?;
        let done = batch.len() < 10_000;
        candidates.extend(batch);
        if done {
            break;
        }
    }
    let pairs: Vec<(ItemId, UserId)> = candidates
        .iter()
        .map(|c| (c.item_id, c.annotator_id))
        .collect();
    let queued = state
        .store
        .queue_rereviews(
            project.id,
            pairs,
            &format!("guideline v{to} changed {}", chosen.join(", ")),
            Some(auth.user.id),
        )
        .await?;
    let notice = format!(
        "Queued {queued} re-review(s); {} were already waiting.",
        candidates.len() - queued
    );
    revision_view(&state, &auth, &project, role, &fields, Some(notice)).await
}
