//! The queue's settings and its pure rules: how many annotators an item needs, when labels
//! agree enough to stop asking, whether a gold item is due, and whether an answer matches gold.
//! No SQL here, so the rules can be replayed on a real data set (see the dynamic-overlap
//! replay in the CLI's platform bench) exactly as the server applies them.

use crate::answer::value_key;
use crate::ids::{ItemId, UserId};
use crate::schema::{LabelSchema, QuestionKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// Per-project queue settings, stored under `settings.queue` of the project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Distinct human annotators per item (fixed overlap; the maximum when dynamic).
    pub overlap: i64,
    /// Share of items (percent) that get the full overlap; the rest get one label.
    pub coverage_percent: i64,
    /// Dynamic overlap: start at `min_overlap`, add one annotator while the labels disagree,
    /// up to `overlap`; an item still unresolved at `overlap` is escalated.
    pub dynamic: bool,
    pub min_overlap: i64,
    /// Vote share of the most common answer (on every question) that counts as agreement.
    pub target_agreement: f64,
    /// How long a served item stays reserved for its annotator.
    pub lease_seconds: i64,
    /// Most submissions per annotator per UTC day; `None` for no cap.
    pub daily_cap: Option<i64>,
    /// Share of served items that are gold items (0 to 1).
    pub gold_rate: f64,
    /// `immediate`: the result is shown after the submission; `deferred`: from the next day,
    /// in "My work".
    pub gold_feedback: GoldFeedbackMode,
    /// Auto-pause an annotator when the upper bound of the 95 % interval on their gold
    /// accuracy (since their last resume) is below this: the record shows they are below it,
    /// not just a bad start…
    pub pause_below: f64,
    /// …and only after at least this many gold answers. 0 turns auto-pause off.
    pub pause_min_gold: i64,
    /// Gold planning: the 95 % interval on an annotator's gold accuracy should be at most
    /// ± this wide; the team page says how many more gold answers that takes.
    pub gold_target_half_width: f64,
    /// Severity option (code of the first ordinal question) from which time spent counts as
    /// time on high-severity content; `None`: the two most severe levels.
    pub high_severity_from: Option<String>,
    /// Model-assisted overlap (off by default): a confident model label that the first
    /// human agrees with ends the item early.
    pub model_assist: ModelAssist,
    /// Test–retest (off by default): a share of each annotator's labels is served to them
    /// again after a delay, to measure their consistency.
    pub retest: RetestPlan,
    /// Wellbeing: a daily limit, per annotator and category, on high-severity content (see
    /// `high_severity_from`); off by default.
    pub exposure: ExposureBudget,
}

/// Exposure budgets, `settings.queue.exposure`: each annotator's high-severity labels and
/// time per category and UTC day, and the limits past which the queue stops serving them
/// items flagged in that category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExposureBudget {
    /// The limit of every category without one of its own.
    pub daily: ExposureLimit,
    /// Limits of particular categories (by code), e.g. a lower one for self-harm.
    pub categories: std::collections::BTreeMap<String, ExposureLimit>,
}

/// Minutes or items of high-severity content a day; either may be absent (no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExposureLimit {
    pub minutes: Option<f64>,
    pub items: Option<i64>,
}

impl ExposureLimit {
    pub fn is_set(&self) -> bool {
        self.minutes.is_some() || self.items.is_some()
    }

    /// The share of the limit used (the larger of time and items); `None` without a limit.
    pub fn used(&self, items: i64, time_ms: i64) -> Option<f64> {
        let by_items = self.items.map(|limit| items as f64 / limit.max(1) as f64);
        let by_time = self
            .minutes
            .map(|limit| time_ms as f64 / 60_000.0 / limit.max(f64::MIN_POSITIVE));
        match (by_items, by_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

impl ExposureBudget {
    pub fn is_on(&self) -> bool {
        self.daily.is_set() || self.categories.values().any(ExposureLimit::is_set)
    }

    /// The limit that applies to a category.
    pub fn limit_for(&self, category: &str) -> ExposureLimit {
        self.categories.get(category).copied().unwrap_or(self.daily)
    }

    fn validate(&self) -> Result<(), String> {
        let named = std::iter::once(("daily".to_owned(), &self.daily)).chain(
            self.categories
                .iter()
                .map(|(code, limit)| (format!("categories.{code}"), limit)),
        );
        for (name, limit) in named {
            if limit
                .minutes
                .is_some_and(|m| !(m > 0.0 && m <= 24.0 * 60.0))
            {
                return Err(format!(
                    "exposure.{name}.minutes must be more than 0 and at most a day (1440)"
                ));
            }
            if limit.items.is_some_and(|n| n < 1) {
                return Err(format!("exposure.{name}.items must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Test–retest scheduling, `settings.queue.retest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetestPlan {
    /// Share of an annotator's labels (0 to 0.5) that get a retest; 0 turns retests off.
    pub rate: f64,
    /// Hours after the first answer before the retest may be served (an annotator who
    /// remembers their answer measures memory, not consistency).
    pub delay_hours: f64,
}

impl Default for RetestPlan {
    fn default() -> Self {
        RetestPlan {
            rate: 0.0,
            delay_hours: 24.0,
        }
    }
}

impl RetestPlan {
    /// Whether this annotator's label of this item gets a retest: a fixed function of the
    /// pair, so a retried submission decides the same, and about `rate` of the labels.
    pub fn drawn(&self, user_id: UserId, item_id: ItemId) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let mixed = (item_id.get() as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
            ^ (user_id.get() as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let unit = (mixed.wrapping_mul(0xFF51_AFD7_ED55_8CCD) >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.rate
    }

    /// The delay in milliseconds.
    pub fn delay_ms(&self) -> i64 {
        (self.delay_hours * 3_600_000.0).round() as i64
    }
}

/// Model-assisted overlap, `settings.queue.model_assist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelAssist {
    pub enabled: bool,
    /// The model's score (its stated confidence; a rules model's severity, scaled to 0–1)
    /// from which its label counts as confident.
    pub min_score: f64,
    /// Human labels an item stops at when they all agree with a confident model label.
    pub human_labels: i64,
    /// What a first human label that disagrees with a confident model label does.
    pub on_disagreement: ModelDisagreementAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelDisagreementAction {
    /// The item needs the full overlap.
    RaiseOverlap,
    /// The item goes to expert review at once (escalation reason `model_disagreement`).
    Escalate,
}

impl Default for ModelAssist {
    fn default() -> Self {
        ModelAssist {
            enabled: false,
            min_score: 0.9,
            human_labels: 1,
            on_disagreement: ModelDisagreementAction::RaiseOverlap,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoldFeedbackMode {
    Immediate,
    Deferred,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            overlap: 3,
            coverage_percent: 100,
            dynamic: false,
            min_overlap: 2,
            target_agreement: 0.75,
            lease_seconds: 900,
            daily_cap: None,
            gold_rate: 0.0,
            gold_feedback: GoldFeedbackMode::Immediate,
            pause_below: 0.6,
            pause_min_gold: 10,
            gold_target_half_width: 0.10,
            high_severity_from: None,
            model_assist: ModelAssist::default(),
            retest: RetestPlan::default(),
            exposure: ExposureBudget::default(),
        }
    }
}

impl QueueSettings {
    /// Reads `settings.queue` of a project (defaults where absent).
    pub fn from_project_settings(settings: &Value) -> Result<QueueSettings, String> {
        let parsed: QueueSettings = match settings.get("queue") {
            None | Some(Value::Null) => QueueSettings::default(),
            Some(queue) => {
                serde_json::from_value(queue.clone()).map_err(|e| format!("queue settings: {e}"))?
            }
        };
        parsed.validate()?;
        Ok(parsed)
    }

    /// Checks the settings make sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=50).contains(&self.overlap) {
            return Err("overlap must be between 1 and 50 annotators".into());
        }
        if !(0..=100).contains(&self.coverage_percent) {
            return Err("coverage must be a percentage between 0 and 100".into());
        }
        if self.dynamic && !(1..=self.overlap).contains(&self.min_overlap) {
            return Err(format!(
                "the minimum overlap must be between 1 and the overlap ({})",
                self.overlap
            ));
        }
        if !(0.0..=1.0).contains(&self.target_agreement) {
            return Err("target agreement must be between 0 and 1".into());
        }
        if !(10..=7 * 24 * 3600).contains(&self.lease_seconds) {
            return Err("a lease lasts between 10 seconds and 7 days".into());
        }
        if self.daily_cap.is_some_and(|c| c < 1) {
            return Err("a daily cap must be at least 1 (leave it empty for no cap)".into());
        }
        if !(0.0..=1.0).contains(&self.gold_rate) {
            return Err("the gold rate must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.pause_below) {
            return Err("the pause threshold must be between 0 and 1".into());
        }
        if self.pause_min_gold < 0 {
            return Err("the minimum number of gold answers cannot be negative".into());
        }
        if !(0.0..=0.5).contains(&self.gold_target_half_width) || self.gold_target_half_width == 0.0
        {
            return Err("gold_target_half_width must be more than 0 and at most 0.5".into());
        }
        let assist = &self.model_assist;
        if !(0.0..=1.0).contains(&assist.min_score) {
            return Err("model_assist.min_score must be between 0 and 1".into());
        }
        if !(1..=self.overlap).contains(&assist.human_labels) {
            return Err(format!(
                "model_assist.human_labels must be between 1 and the overlap ({})",
                self.overlap
            ));
        }
        if !(0.0..=0.5).contains(&self.retest.rate) {
            return Err(
                "retest.rate must be between 0 and 0.5 (a share of each annotator's labels)".into(),
            );
        }
        if !(0.0..=24.0 * 365.0).contains(&self.retest.delay_hours) {
            return Err("retest.delay_hours must be between 0 and a year (8760 hours)".into());
        }
        self.exposure.validate()?;
        Ok(())
    }

    /// Annotators an item needs when it is first served. Whether an item is inside the
    /// coverage share is a fixed function of its id, so every server agrees.
    pub fn initial_needed(&self, item_id: ItemId) -> i64 {
        let full = if self.dynamic {
            self.min_overlap
        } else {
            self.overlap
        };
        if in_coverage(item_id, self.coverage_percent) {
            full
        } else {
            1
        }
    }
}

/// Whether an item is inside the coverage share (a fixed function of its id).
pub fn in_coverage(item_id: ItemId, percent: i64) -> bool {
    // A multiplicative hash spreads consecutive ids evenly over the 100 buckets.
    let bucket = (item_id.get() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    ((bucket % 100) as i64) < percent
}

/// An upper confidence bound on an annotator's gold accuracy, from `correct` of `answered`
/// gold answers: the statistic the pause rule compares with `pause_below`. The caller gives
/// it to the store ([`crate::StoreOptions`]; concord-qa's is the engine's 95 % Wilson bound),
/// because the store computes no statistics; the rule itself runs inside a submission's
/// transaction.
pub type GoldAccuracyBound = fn(correct: u64, answered: u64) -> f64;

/// For the store's own tests that never reach the pause rule: a bound that never pauses.
#[cfg(test)]
pub(crate) fn never_pauses(_correct: u64, _answered: u64) -> f64 {
    1.0
}

/// The pause rule: at least `pause_min_gold` gold answers since the last resume, and even
/// the interval's upper bound is below `pause_below`. Two wrong answers out of two are not
/// enough evidence (upper bound 0.66); three are, against the default 0.6 (0.56).
pub fn should_pause(
    settings: &QueueSettings,
    bound: GoldAccuracyBound,
    window_correct: i64,
    window_answered: i64,
) -> bool {
    let min = settings.pause_min_gold;
    min > 0
        && window_answered >= min
        && bound(window_correct.max(0) as u64, window_answered.max(0) as u64) < settings.pause_below
}

/// What to do with an item once it has as many labels as it currently needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapDecision {
    /// The labels agree (or the overlap is fixed): the item is labelled.
    Done,
    /// Disagreement under dynamic overlap: ask one more annotator.
    AskOneMore,
    /// Disagreement at the maximum overlap: mark the item for expert review.
    Escalate,
}

/// The dynamic-overlap rule, applied when an item reaches its current `needed` labels.
pub fn decide_overlap(settings: &QueueSettings, needed: i64, agreement: f64) -> OverlapDecision {
    if !settings.dynamic || agreement + 1e-9 >= settings.target_agreement {
        OverlapDecision::Done
    } else if needed < settings.overlap {
        OverlapDecision::AskOneMore
    } else {
        OverlapDecision::Escalate
    }
}

/// A model's label on an item and its score (0–1) for model-assisted overlap.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVote {
    pub answer: Value,
    pub score: f64,
}

impl ModelVote {
    /// The score of a model label: its stated confidence, else (a rules model states none)
    /// the severity of its answer scaled to 0–1 on the schema's first ordinal question; a
    /// label with neither scores 0, so it never ends an item early.
    pub fn from_label(schema: &LabelSchema, answer: Value, confidence: Option<f64>) -> ModelVote {
        let score = confidence.unwrap_or_else(|| severity_score(schema, &answer).unwrap_or(0.0));
        ModelVote { answer, score }
    }
}

fn severity_score(schema: &LabelSchema, answer: &Value) -> Option<f64> {
    let levels = schema
        .questions
        .iter()
        .find(|q| q.kind == QuestionKind::Ordinal)?
        .options
        .len();
    let index = severity_index(schema, answer)?;
    Some(if levels > 1 {
        index as f64 / (levels - 1) as f64
    } else {
        1.0
    })
}

/// What the queue does with an item after a counted human label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapStep {
    /// Keep collecting up to the current overlap.
    Wait,
    /// The item is labelled.
    Done,
    /// The item now needs this many human labels.
    Need(i64),
    /// Expert review, for this reason.
    Escalate(EscalationReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationReason {
    NoAgreement,
    ModelDisagreement,
}

impl EscalationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::NoAgreement => "no_agreement",
            EscalationReason::ModelDisagreement => "model_disagreement",
        }
    }
}

/// The overlap rule with the model's vote: a confident model label (score ≥
/// `model_assist.min_score`) that every human so far agrees with ends the item at
/// `model_assist.human_labels`; a first human label that disagrees with it raises the
/// overlap to the maximum or escalates. Otherwise (assist off, no confident model label)
/// the plain rule (`decide_overlap`) applies once the item has `needed` labels.
pub fn decide_overlap_assisted(
    settings: &QueueSettings,
    schema: &LabelSchema,
    needed: i64,
    humans: &[Value],
    model: Option<&ModelVote>,
) -> OverlapStep {
    let assist = &settings.model_assist;
    let confident = model.filter(|m| assist.enabled && m.score >= assist.min_score);
    if let (Some(m), Some(first)) = (confident, humans.first()) {
        if !agrees(schema, first, &m.answer) {
            if humans.len() == 1 {
                match assist.on_disagreement {
                    ModelDisagreementAction::Escalate => {
                        return OverlapStep::Escalate(EscalationReason::ModelDisagreement);
                    }
                    ModelDisagreementAction::RaiseOverlap if needed < settings.overlap => {
                        return OverlapStep::Need(settings.overlap);
                    }
                    ModelDisagreementAction::RaiseOverlap => {}
                }
            }
        } else if humans.len() as i64 >= assist.human_labels
            && humans.iter().all(|h| agrees(schema, h, &m.answer))
        {
            return OverlapStep::Done;
        }
    }
    if (humans.len() as i64) < needed {
        return OverlapStep::Wait;
    }
    match decide_overlap(settings, needed, vote_agreement(schema, humans)) {
        OverlapDecision::Done => OverlapStep::Done,
        OverlapDecision::AskOneMore => OverlapStep::Need(needed + 1),
        OverlapDecision::Escalate => OverlapStep::Escalate(EscalationReason::NoAgreement),
    }
}

/// Whether a human answer agrees with a model answer on every question the model answered
/// (multi-choice sets compare regardless of order).
pub fn agrees(schema: &LabelSchema, human: &Value, model: &Value) -> bool {
    schema
        .questions
        .iter()
        .all(|q| match model.get(&q.key).and_then(value_key) {
            None => true,
            Some(m) => human.get(&q.key).and_then(value_key) == Some(m),
        })
}

/// Agreement among labels as the share of the most common answer, taken on every question
/// of the schema and the lowest kept (an item agrees when every question does). Questions
/// nobody answered are ignored; with no answers at all the agreement is 1.
pub fn vote_agreement(schema: &LabelSchema, answers: &[Value]) -> f64 {
    let mut lowest: f64 = 1.0;
    for question in &schema.questions {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut total = 0usize;
        for answer in answers {
            if let Some(key) = answer.get(&question.key).and_then(value_key) {
                *counts.entry(key).or_default() += 1;
                total += 1;
            }
        }
        if total > 0 {
            let top = counts.values().copied().max().unwrap_or(0);
            lowest = lowest.min(top as f64 / total as f64);
        }
    }
    lowest
}

/// Whether the next item served to an annotator should be a gold item: keeps their gold
/// share at `rate`, with a per-annotator phase so that gold does not come at the same
/// positions for everybody (the first item is not always gold).
pub fn gold_due(rate: f64, served: i64, gold_served: i64, phase_seed: i64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let phase = ((phase_seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64
        / (1u64 << 53) as f64;
    // Gold due so far after this item: floor(rate × (served + 1) + phase).
    (gold_served as f64) < (rate * (served as f64 + 1.0) + phase).floor()
}

/// Index of the answer's option on the schema's first ordinal question (its severity), if any.
pub fn severity_index(schema: &LabelSchema, answer: &Value) -> Option<i64> {
    let question = schema
        .questions
        .iter()
        .find(|q| q.kind == QuestionKind::Ordinal)?;
    let code = answer.get(&question.key)?.as_str()?;
    question
        .options
        .iter()
        .position(|o| o.value == code)
        .map(|i| i as i64)
}

/// The severity index from which time counts as high-severity time.
pub fn high_severity_threshold(schema: &LabelSchema, settings: &QueueSettings) -> Option<i64> {
    let question = schema
        .questions
        .iter()
        .find(|q| q.kind == QuestionKind::Ordinal)?;
    match &settings.high_severity_from {
        Some(code) => question
            .options
            .iter()
            .position(|o| &o.value == code)
            .map(|i| i as i64),
        None => Some(question.options.len().saturating_sub(2) as i64),
    }
}

/// Category codes an answer names: the first multi-label question's codes.
pub fn answer_categories(schema: &LabelSchema, answer: &Value) -> Vec<String> {
    schema
        .questions
        .iter()
        .find(|q| q.kind == QuestionKind::Multi)
        .and_then(|q| answer.get(&q.key))
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_default_when_absent_and_refuse_nonsense_naming_the_field() {
        let s = QueueSettings::from_project_settings(&json!({})).unwrap();
        assert_eq!(s, QueueSettings::default());
        let err =
            QueueSettings::from_project_settings(&json!({"queue": {"overlap": 0}})).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
        let err =
            QueueSettings::from_project_settings(&json!({"queue": {"overlapp": 2}})).unwrap_err();
        assert!(err.contains("overlapp"), "{err}");
        let err = QueueSettings::from_project_settings(
            &json!({"queue": {"dynamic": true, "overlap": 3, "min_overlap": 4}}),
        )
        .unwrap_err();
        assert!(err.contains("minimum overlap"), "{err}");
    }

    /// A stand-in statistic for the rule's own logic: the point estimate.
    fn point_estimate(correct: u64, answered: u64) -> f64 {
        correct as f64 / answered as f64
    }

    #[test]
    fn the_pause_rule_compares_the_callers_bound_once_there_are_enough_gold_answers() {
        let settings = QueueSettings {
            pause_below: 0.6,
            pause_min_gold: 2,
            ..QueueSettings::default()
        };
        assert!(should_pause(&settings, point_estimate, 1, 2));
        assert!(!should_pause(&settings, point_estimate, 2, 2));
        // Fewer answers than the minimum, or auto-pause off: never.
        assert!(!should_pause(&settings, point_estimate, 0, 1));
        let off = QueueSettings {
            pause_min_gold: 0,
            ..settings.clone()
        };
        assert!(!should_pause(&off, point_estimate, 0, 50));
    }

    #[test]
    fn coverage_gives_the_full_overlap_to_about_its_share_of_items() {
        let settings = QueueSettings {
            overlap: 3,
            coverage_percent: 30,
            ..QueueSettings::default()
        };
        let full = (1..=10_000)
            .filter(|id| settings.initial_needed(ItemId(*id)) == 3)
            .count();
        assert!((2_800..=3_200).contains(&full), "{full}");
        let all = QueueSettings::default();
        assert!((1..=1000).all(|id| all.initial_needed(ItemId(id)) == 3));
    }

    #[test]
    fn dynamic_overlap_asks_for_more_until_agreement_or_the_maximum() {
        let s = QueueSettings {
            dynamic: true,
            min_overlap: 2,
            overlap: 4,
            target_agreement: 0.75,
            ..QueueSettings::default()
        };
        assert_eq!(decide_overlap(&s, 2, 1.0), OverlapDecision::Done);
        assert_eq!(decide_overlap(&s, 2, 0.5), OverlapDecision::AskOneMore);
        assert_eq!(
            decide_overlap(&s, 3, 2.0 / 3.0),
            OverlapDecision::AskOneMore
        );
        assert_eq!(decide_overlap(&s, 4, 0.75), OverlapDecision::Done);
        assert_eq!(decide_overlap(&s, 4, 0.5), OverlapDecision::Escalate);
        let fixed = QueueSettings::default();
        assert_eq!(decide_overlap(&fixed, 3, 0.34), OverlapDecision::Done);
    }

    #[test]
    fn vote_agreement_is_the_weakest_questions_top_share() {
        let schema = LabelSchema::catalog_safety();
        let answers = [
            json!({"decision": "VIOLATING", "category": ["DG.HATE", "DG.VIOL"], "severity": "S3"}),
            json!({"decision": "VIOLATING", "category": ["DG.VIOL", "DG.HATE"], "severity": "S4"}),
            json!({"decision": "BORDERLINE", "category": ["DG.HATE", "DG.VIOL"], "severity": "S3"}),
            json!({"decision": "VIOLATING", "category": ["DG.HATE", "DG.VIOL"], "severity": "S3"}),
        ];
        // decision 3/4, category sets 4/4 (order ignored), severity 3/4.
        assert!((vote_agreement(&schema, &answers) - 0.75).abs() < 1e-12);
        assert!((vote_agreement(&schema, &answers[..2]) - 0.5).abs() < 1e-12);
        assert_eq!(vote_agreement(&schema, &[]), 1.0);
    }

    #[test]
    fn gold_comes_at_the_configured_rate_not_first_for_everybody() {
        for seed in 1..50 {
            let (mut served, mut gold) = (0, 0);
            for _ in 0..200 {
                if gold_due(0.1, served, gold, seed) {
                    gold += 1;
                }
                served += 1;
            }
            assert!((19..=21).contains(&gold), "seed {seed}: {gold}");
        }
        let first_is_gold = (1..200).filter(|seed| gold_due(0.1, 0, 0, *seed)).count();
        assert!(first_is_gold < 40, "{first_is_gold}");
        assert!(gold_due(1.0, 5, 5, 7));
        assert!(!gold_due(0.0, 5, 0, 7));
    }

    #[test]
    fn severity_and_categories_come_from_the_schema_questions() {
        let schema = LabelSchema::catalog_safety();
        let answer = json!({"decision": "VIOLATING", "category": ["DG.SELF"], "severity": "S4"});
        assert_eq!(severity_index(&schema, &answer), Some(4));
        assert_eq!(answer_categories(&schema, &answer), vec!["DG.SELF"]);
        let settings = QueueSettings::default();
        assert_eq!(high_severity_threshold(&schema, &settings), Some(3));
    }
}
