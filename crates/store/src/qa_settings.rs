//! Per-project QA settings (stored under `settings.qa`): the consensus model, the agreement
//! target, and the escalation rules with their priorities and SLA. Plain configuration with
//! validation; the rules are applied by `concord-qa`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        let rules = &self.escalation;
        for (name, value) in [
            ("min_posterior", rules.min_posterior),
            ("min_agreement", rules.min_agreement),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(format!("qa.escalation.{name} must be between 0 and 1"));
            }
        }
        if rules
            .severity_at_or_above
            .as_deref()
            .is_some_and(|code| code.trim().is_empty())
        {
            return Err(
                "qa.escalation.severity_at_or_above: give a severity code or leave it out".into(),
            );
        }
        if !(1..=50).contains(&rules.min_labels) {
            return Err("qa.escalation.min_labels must be between 1 and 50".into());
        }
        for (name, hours) in [
            ("sla_hours_urgent", rules.sla_hours_urgent),
            ("sla_hours_high", rules.sla_hours_high),
            ("sla_hours_normal", rules.sla_hours_normal),
        ] {
            if !(1..=24 * 365).contains(&hours) {
                return Err(format!(
                    "qa.escalation.{name} must be between 1 hour and a year"
                ));
            }
        }
        Ok(())
    }
}

impl EscalationRules {
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
}
