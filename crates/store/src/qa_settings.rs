//! Per-project QA settings (stored under `settings.qa`): the consensus model, the agreement
//! target, and the escalation rules with their priorities and SLA. Plain configuration with
//! validation; the rules are applied by `concord-qa`.

use crate::schema::{Question, QuestionKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The consensus models a project may choose (keys of the engine's models that take
/// categorical labels from any number of classes).
pub const CONSENSUS_METHODS: [&str; 7] = ["mv", "wawa", "zbs", "ds", "one-coin-ds", "glad", "mace"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QaSettings {
    /// Consensus model key, one of [`CONSENSUS_METHODS`].
    pub method: String,
    /// Krippendorff's α below which a category is flagged "revise guideline".
    pub target_alpha: f64,
    /// Whether experts and analysts see annotator names next to labels.
    pub show_annotator_names: bool,
    /// Blind adjudication: the expert decides before seeing the consensus and its posterior
    /// (and the form pre-selects nothing), so the crowd's answer does not anchor the
    /// decision. On unless a project turns it off.
    pub blind_adjudication: bool,
    /// The agreement coefficients the quality report shows, in order (engine metric keys:
    /// `krippendorff_alpha`, `percent_agreement`, `fleiss_generalized`, `gwet_ac`,
    /// `brennan_prediger`, `conger_kappa`, `scott_pi`, …). Ordinal questions get them
    /// weighted (Gwet's AC2 and the other weighted forms, ordinal weights).
    pub metrics: Vec<String>,
    pub escalation: EscalationRules,
    /// Costs of disagreement per question key (`settings.qa.costs`): they weigh α and Gwet's
    /// AC2 in the quality report and rank the expert queue by expected cost. An ordinal
    /// question without one costs the number of levels apart.
    pub costs: BTreeMap<String, CostSetting>,
    /// Calibration rounds (`settings.qa.calibration`).
    pub calibration: CalibrationSettings,
    /// The project's taxonomy codes → EU Transparency Database categories for DSA
    /// statements (`settings.qa.dsa_categories`, without the `STATEMENT_CATEGORY_` prefix),
    /// over the catalog-safety defaults; an empty value takes a code's category away.
    pub dsa_categories: BTreeMap<String, String>,
}

/// How calibration rounds judge annotators, and when they repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationSettings {
    /// Pass mark of a new round: the least share of an annotator's answers equal to the key,
    /// on every question.
    pub threshold: f64,
    /// A new round holds its annotators from production work until they pass.
    pub hold_until_verdict: bool,
    /// Publishing a guideline revision opens a repeat of the latest round (same items, same
    /// threshold), when no round is open.
    pub repeat_on_revision: bool,
}

impl Default for CalibrationSettings {
    fn default() -> Self {
        CalibrationSettings {
            threshold: 0.8,
            hold_until_verdict: true,
            repeat_on_revision: false,
        }
    }
}

/// Checks a calibration pass mark; the message names the field.
pub fn check_calibration_threshold(threshold: f64, field: &str) -> Result<(), String> {
    if threshold.is_finite() && threshold > 0.0 && threshold <= 1.0 {
        Ok(())
    } else {
        Err(format!(
            "{field} must be a share above 0 and at most 1 (0.8: four answers in five equal the key)"
        ))
    }
}

/// A question's cost matrix as the project manager writes it: `matrix[t][l]` is the cost of
/// the label `classes[l]` when the truth is `classes[t]`. Square over the classes, zero on
/// the diagonal, non-negative; it need not be symmetric (calling explicit content clean may
/// cost more than the reverse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSetting {
    pub classes: Vec<String>,
    pub matrix: Vec<Vec<f64>>,
}

/// Where a question's costs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// `settings.qa.costs`.
    Settings,
    /// An ordinal question's default: the number of levels apart.
    OrdinalDefault,
}

impl CostSetting {
    /// Checks the shape and values; the message names the question, row and column.
    fn validate(&self, question: &str) -> Result<(), String> {
        let at = format!("qa.costs.{question}");
        let q = self.classes.len();
        if q < 2 {
            return Err(format!("{at}: list at least two classes"));
        }
        for (i, class) in self.classes.iter().enumerate() {
            if self.classes[..i].contains(class) {
                return Err(format!("{at}: class {class:?} is listed twice"));
            }
        }
        if self.matrix.len() != q {
            return Err(format!(
                "{at}: the matrix has {} rows for {q} classes (it must be square over them)",
                self.matrix.len()
            ));
        }
        for (t, row) in self.matrix.iter().enumerate() {
            let truth = &self.classes[t];
            if row.len() != q {
                return Err(format!(
                    "{at}: row {truth} has {} entries for {q} classes",
                    row.len()
                ));
            }
            for (l, &cost) in row.iter().enumerate() {
                let label = &self.classes[l];
                if !cost.is_finite() || cost < 0.0 {
                    return Err(format!(
                        "{at}: the cost of {label} when the truth is {truth} must be a \
                         non-negative number, not {cost}"
                    ));
                }
                if t == l && cost != 0.0 {
                    return Err(format!(
                        "{at}: the diagonal must be 0 (the right label costs nothing), but \
                         {truth} → {truth} is {cost}"
                    ));
                }
            }
        }
        if !self.matrix.iter().flatten().any(|&c| c > 0.0) {
            return Err(format!("{at}: at least one cost must be positive"));
        }
        Ok(())
    }

    /// The matrix over `question`'s options in schema order; an error names the classes
    /// that do not match the question's.
    pub fn in_question_order(&self, question: &Question) -> Result<Vec<Vec<f64>>, String> {
        let codes: Vec<&str> = question.options.iter().map(|o| o.value.as_str()).collect();
        let position = |code: &str| self.classes.iter().position(|c| c == code);
        let missing: Vec<&str> = codes
            .iter()
            .copied()
            .filter(|&c| position(c).is_none())
            .collect();
        let extra: Vec<&str> = self
            .classes
            .iter()
            .map(String::as_str)
            .filter(|c| !codes.contains(c))
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(format!(
                "qa.costs.{}: the classes must be the question's options ({}); missing: [{}], \
                 not options: [{}]",
                question.key,
                codes.join(", "),
                missing.join(", "),
                extra.join(", ")
            ));
        }
        Ok(codes
            .iter()
            .map(|&t| {
                codes
                    .iter()
                    .map(|&l| match (position(t), position(l)) {
                        (Some(t), Some(l)) => self.matrix[t][l],
                        _ => 0.0,
                    })
                    .collect()
            })
            .collect())
    }
}

/// A question's cost matrix over its options in schema order, and where it comes from.
pub type QuestionCosts = (Vec<Vec<f64>>, CostSource);

impl QaSettings {
    /// The question's costs over its options in schema order, and where they come from:
    /// the settings, or for an ordinal question the levels apart. `None` for a question
    /// without costs (agreement then counts every disagreement alike).
    pub fn costs_for(&self, question: &Question) -> Option<Result<QuestionCosts, String>> {
        if let Some(setting) = self.costs.get(&question.key) {
            return Some(
                setting
                    .in_question_order(question)
                    .map(|m| (m, CostSource::Settings)),
            );
        }
        (question.kind == QuestionKind::Ordinal && question.options.len() >= 2).then(|| {
            let q = question.options.len();
            let matrix = (0..q)
                .map(|t| (0..q).map(|l| t.abs_diff(l) as f64).collect())
                .collect();
            Ok((matrix, CostSource::OrdinalDefault))
        })
    }
}

/// What the quality report shows unless a project chooses.
/// Every name (and alias) of an agreement coefficient the quality report computes, lower
/// case with `_` for `-`: the engine's spellings, kept here because the store validates
/// settings without depending on the engine (a test in `concord-qa` checks they agree).
pub const REPORT_METRICS: [&str; 33] = [
    "percent",
    "percent_agreement",
    "pa",
    "cohen",
    "cohen_kappa",
    "kappa",
    "scott",
    "scott_pi",
    "pi",
    "bp",
    "brennan_prediger",
    "bennett_s",
    "s",
    "fleiss",
    "fleiss_kappa",
    "fleiss_generalized",
    "fleiss_generalised",
    "fleiss_kappa_generalized",
    "gfleiss",
    "randolph",
    "randolph_kappa",
    "free_marginal",
    "conger",
    "conger_kappa",
    "gwet",
    "ac1",
    "ac2",
    "gwet_ac",
    "gwet_ac1_ac2",
    "alpha",
    "krippendorff",
    "krippendorff_alpha",
    "kripp",
];

pub const DEFAULT_REPORT_METRICS: [&str; 7] = [
    "krippendorff_alpha",
    "percent_agreement",
    "fleiss_generalized",
    "gwet_ac",
    "brennan_prediger",
    "conger_kappa",
    "scott_pi",
];

impl Default for QaSettings {
    fn default() -> Self {
        QaSettings {
            method: "ds".into(),
            target_alpha: 0.667,
            show_annotator_names: false,
            blind_adjudication: true,
            metrics: DEFAULT_REPORT_METRICS.map(String::from).to_vec(),
            escalation: EscalationRules::default(),
            costs: BTreeMap::new(),
            calibration: CalibrationSettings::default(),
            dsa_categories: BTreeMap::new(),
        }
    }
}

/// When an item goes to the QA-expert queue. Each rule is checked per question; any match
/// escalates, and the item carries every reason that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationRules {
    /// Consensus posterior of the chosen label below this (None: off).
    pub min_posterior: Option<f64>,
    /// Share of agreeing pairs of labels below this (None: off).
    pub min_agreement: Option<f64>,
    /// Any annotator answered "unsure".
    pub on_unsure: bool,
    /// The vote is tied.
    pub on_tie: bool,
    /// Any label at or above this option of an ordinal question, when the labels are not
    /// unanimous (None: off). A code of the ordinal scale, e.g. `S3`.
    pub severity_at_or_above: Option<String>,
    /// The automated annotator's answer differs from the human consensus.
    pub model_disagreement: bool,
    /// Items are escalated only once they have at least this many human labels (unsure
    /// answers and model disagreement escalate at once).
    pub min_labels: i64,
    /// Categories that make an escalation urgent (e.g. minors).
    pub urgent_categories: Vec<String>,
    /// Categories that make it high priority (offline harm, illegal content).
    pub high_categories: Vec<String>,
    /// Hours an escalation of each priority may wait before it is overdue.
    pub sla_hours_urgent: i64,
    pub sla_hours_high: i64,
    pub sla_hours_normal: i64,
}

impl Default for EscalationRules {
    fn default() -> Self {
        EscalationRules {
            min_posterior: Some(0.7),
            min_agreement: Some(0.5),
            on_unsure: true,
            on_tie: true,
            severity_at_or_above: None,
            model_disagreement: true,
            min_labels: 2,
            urgent_categories: vec!["DG.CHILD".into()],
            high_categories: ["DG.VIOL", "DG.EXTR", "DG.SELF", "DG.MED", "IL.LAW", "IL.IP"]
                .into_iter()
                .map(String::from)
                .collect(),
            sla_hours_urgent: 4,
            sla_hours_high: 24,
            sla_hours_normal: 72,
        }
    }
}

impl QaSettings {
    /// Reads `settings.qa` of a project (defaults where absent).
    pub fn from_project_settings(settings: &Value) -> Result<QaSettings, String> {
        let parsed: QaSettings = match settings.get("qa") {
            None | Some(Value::Null) => QaSettings::default(),
            Some(qa) => {
                serde_json::from_value(qa.clone()).map_err(|e| format!("qa settings: {e}"))?
            }
        };
        parsed.validate()?;
        Ok(parsed)
    }

    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.check_consensus_and_metrics()?;
        self.escalation.validate()?;
        check_calibration_threshold(self.calibration.threshold, "qa.calibration.threshold")?;
        check_dsa_categories(&self.dsa_categories)?;
        for (question, costs) in &self.costs {
            costs.validate(question)?;
        }
        Ok(())
    }

    fn check_consensus_and_metrics(&self) -> Result<(), String> {
        if !CONSENSUS_METHODS.contains(&self.method.as_str()) {
            return Err(format!(
                "qa.method: {:?} is not a consensus model ({})",
                self.method,
                CONSENSUS_METHODS.join(", ")
            ));
        }
        if self.metrics.is_empty() {
            return Err("qa.metrics must name at least one agreement coefficient".into());
        }
        for name in &self.metrics {
            let spelled = name.to_ascii_lowercase().replace('-', "_");
            if !REPORT_METRICS.contains(&spelled.as_str()) {
                return Err(format!(
                    "qa.metrics: unknown metric '{spelled}' (percent, cohen, scott, bp, fleiss, \
                     fleiss-generalized, randolph, conger, gwet, alpha)"
                ));
            }
        }
        if !(-1.0..=1.0).contains(&self.target_alpha) {
            return Err("qa.target_alpha must be between -1 and 1".into());
        }
        Ok(())
    }
}

/// Every mapped category must be one the Transparency Database knows (or none, "").
fn check_dsa_categories(map: &BTreeMap<String, String>) -> Result<(), String> {
    for (code, category) in map {
        let full = format!("STATEMENT_CATEGORY_{category}");
        if !category.is_empty() && !concord_formats::dsa::CATEGORY.contains(&full.as_str()) {
            let allowed: Vec<&str> = concord_formats::dsa::CATEGORY
                .iter()
                .map(|c| c.trim_start_matches("STATEMENT_CATEGORY_"))
                .collect();
            return Err(format!(
                "qa.dsa_categories.{code}: {category:?} is not a Transparency Database \
                 category ({})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

impl EscalationRules {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("min_posterior", self.min_posterior),
            ("min_agreement", self.min_agreement),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(format!("qa.escalation.{name} must be between 0 and 1"));
            }
        }
        if self
            .severity_at_or_above
            .as_deref()
            .is_some_and(|code| code.trim().is_empty())
        {
            return Err(
                "qa.escalation.severity_at_or_above: give a severity code or leave it out".into(),
            );
        }
        if !(1..=50).contains(&self.min_labels) {
            return Err("qa.escalation.min_labels must be between 1 and 50".into());
        }
        for (name, hours) in [
            ("sla_hours_urgent", self.sla_hours_urgent),
            ("sla_hours_high", self.sla_hours_high),
            ("sla_hours_normal", self.sla_hours_normal),
        ] {
            if !(1..=24 * 365).contains(&hours) {
                return Err(format!(
                    "qa.escalation.{name} must be between 1 hour and a year"
                ));
            }
        }
        Ok(())
    }

    /// SLA in milliseconds for a priority (2 urgent, 1 high, 0 normal).
    pub fn sla_ms(&self, priority: i64) -> i64 {
        let hours = match priority {
            p if p >= 2 => self.sla_hours_urgent,
            1 => self.sla_hours_high,
            _ => self.sla_hours_normal,
        };
        hours * 3_600_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_apply_and_bad_values_are_named() {
        let settings = QaSettings::from_project_settings(&json!({})).unwrap();
        assert_eq!(settings.method, "ds");
        let err =
            QaSettings::from_project_settings(&json!({"qa": {"method": "vote"}})).unwrap_err();
        assert!(err.contains("qa.method"), "{err}");
        let err = QaSettings::from_project_settings(
            &json!({"qa": {"escalation": {"min_posterior": 1.5}}}),
        )
        .unwrap_err();
        assert!(err.contains("min_posterior"), "{err}");
        let err = QaSettings::from_project_settings(&json!({"qa": {"escalation": {"colour": 1}}}))
            .unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn a_cost_matrix_is_square_over_its_classes_zero_on_the_diagonal_and_not_negative() {
        let ok = json!({"qa": {"costs": {"decision": {
            "classes": ["NOT_VIOLATING", "BORDERLINE", "VIOLATING"],
            "matrix": [[0, 1, 4], [1, 0, 1], [10, 1, 0]]}}}});
        let settings = QaSettings::from_project_settings(&ok).unwrap();
        assert_eq!(
            settings.costs["decision"].matrix[2][0], 10.0,
            "asymmetric is fine"
        );
        for (costs, says) in [
            (
                json!({"classes": ["A", "B"], "matrix": [[0, 1]]}),
                "1 rows for 2 classes",
            ),
            (
                json!({"classes": ["A", "B"], "matrix": [[0, 1], [1]]}),
                "row B has 1 entries",
            ),
            (
                json!({"classes": ["A", "B"], "matrix": [[0, -1], [1, 0]]}),
                "B when the truth is A",
            ),
            (
                json!({"classes": ["A", "B"], "matrix": [[2, 1], [1, 0]]}),
                "diagonal must be 0",
            ),
            (
                json!({"classes": ["A", "A"], "matrix": [[0, 1], [1, 0]]}),
                "listed twice",
            ),
            (
                json!({"classes": ["A", "B"], "matrix": [[0, 0], [0, 0]]}),
                "positive",
            ),
        ] {
            let err = QaSettings::from_project_settings(&json!({"qa": {"costs": {"q": costs}}}))
                .unwrap_err();
            assert!(err.contains("qa.costs.q") && err.contains(says), "{err}");
        }
    }

    #[test]
    fn dsa_categories_must_be_transparency_database_categories() {
        let ok = json!({"qa": {"dsa_categories": {"DG.HATE": "CYBER_VIOLENCE", "IL.IP": ""}}});
        let settings = QaSettings::from_project_settings(&ok).unwrap();
        assert_eq!(settings.dsa_categories["DG.HATE"], "CYBER_VIOLENCE");
        let bad = json!({"qa": {"dsa_categories": {"DG.HATE": "HATE"}}});
        let err = QaSettings::from_project_settings(&bad).unwrap_err();
        assert!(
            err.contains("qa.dsa_categories.DG.HATE") && err.contains("ILLEGAL_OR_HARMFUL_SPEECH"),
            "{err}"
        );
    }

    #[test]
    fn costs_follow_the_questions_option_order_and_ordinal_questions_have_a_default() {
        let schema = crate::schema::LabelSchema::catalog_safety();
        let severity = schema
            .questions
            .iter()
            .find(|q| q.kind == QuestionKind::Ordinal)
            .unwrap();
        let settings = QaSettings::default();
        let (matrix, source) = settings.costs_for(severity).unwrap().unwrap();
        assert_eq!(source, CostSource::OrdinalDefault);
        assert_eq!(matrix[0][2], 2.0);
        let decision = &schema.questions[0];
        assert!(settings.costs_for(decision).is_none(), "{}", decision.key);
        let codes: Vec<String> = decision.options.iter().map(|o| o.value.clone()).collect();
        let mut reversed = codes.clone();
        reversed.reverse();
        let q = codes.len();
        // Written in reverse order: cost 5 for the last class when the truth is the first.
        let mut rows = vec![vec![0.0; q]; q];
        rows[q - 1][0] = 5.0;
        let settings = QaSettings {
            costs: BTreeMap::from([(
                decision.key.clone(),
                CostSetting {
                    classes: reversed,
                    matrix: rows,
                },
            )]),
            ..QaSettings::default()
        };
        let (matrix, source) = settings.costs_for(decision).unwrap().unwrap();
        assert_eq!(source, CostSource::Settings);
        assert_eq!(matrix[0][q - 1], 5.0);
        let other = CostSetting {
            classes: vec!["X".into(), codes[0].clone()],
            matrix: vec![vec![0.0, 1.0], vec![1.0, 0.0]],
        };
        let err = other.in_question_order(decision).unwrap_err();
        assert!(err.contains("not options: [X]"), "{err}");
    }
}
