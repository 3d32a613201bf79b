//! Escalation rules: which items go to the QA-expert queue, why, and how urgently.

use concord_store::{EscalationRules, LabelSchema, QuestionKind};
use serde::Serialize;
use serde_json::Value;

/// What the run learned about one question of an item.
#[derive(Debug, Clone, Default)]
pub struct QuestionOutcome {
    pub question: String,
    pub kind: Option<QuestionKind>,
    pub label: Option<Value>,
    pub confidence: Option<f64>,
    pub agreement: Option<f64>,
    pub n_labels: i64,
    pub tied: bool,
    /// The distinct labels given (codes, or JSON lists for multi-label questions).
    pub given: Vec<String>,
}

/// What the run learned about one item.
#[derive(Debug, Clone, Default)]
pub struct ItemOutcome {
    pub questions: Vec<QuestionOutcome>,
    pub unsure: usize,
    /// Every code any annotator (human or automated) gave.
    pub codes: Vec<String>,
    pub model_disagreements: Vec<String>,
    /// The queue already escalated the item (e.g. no agreement at the maximum overlap).
    pub queue_reason: Option<String>,
}

/// Why an item was escalated.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reason {
    pub rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    pub detail: String,
}

/// "A label at or above this severity, with any dissent", resolved against the schema.
#[derive(Debug, Clone)]
pub struct SeverityRule {
    question: String,
    /// Codes at or above the threshold.
    severe: Vec<String>,
    threshold: String,
}

impl SeverityRule {
    /// The rule on the first ordinal question that has the configured code; a note when
    /// the code is on no ordinal question.
    pub fn from_schema(
        schema: &LabelSchema,
        rules: &EscalationRules,
        notes: &mut Vec<String>,
    ) -> Option<SeverityRule> {
        let code = rules.severity_at_or_above.as_deref()?;
        for question in &schema.questions {
            if question.kind != QuestionKind::Ordinal {
                continue;
            }
            if let Some(at) = question.options.iter().position(|o| o.value == code) {
                return Some(SeverityRule {
                    question: question.key.clone(),
                    severe: question.options[at..]
                        .iter()
                        .map(|o| o.value.clone())
                        .collect(),
                    threshold: code.to_string(),
                });
            }
        }
        notes.push(format!(
            "the severity rule names {code:?}, which is on no ordinal question of the schema; it was not applied"
        ));
        None
    }
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

/// Every rule the item matches, in a fixed order.
pub fn reasons(
    outcome: &ItemOutcome,
    rules: &EscalationRules,
    severity: Option<&SeverityRule>,
) -> Vec<Reason> {
    let mut out = Vec::new();
    if rules.on_unsure && outcome.unsure > 0 {
        out.push(Reason {
            rule: "unsure",
            question: None,
            detail: format!(
                "{} annotator{} answered unsure",
                outcome.unsure,
                if outcome.unsure == 1 { "" } else { "s" }
            ),
        });
    }
    if let Some(reason) = &outcome.queue_reason {
        // The queue stopped serving the item, so it must reach an expert whatever the rules.
        let said_already = reason == "unsure" && rules.on_unsure && outcome.unsure > 0;
        if !said_already {
            out.push(Reason {
                rule: "queue",
                question: None,
                detail: match reason.as_str() {
                    "no_agreement" => "no agreement at the maximum overlap".into(),
                    other => other.replace('_', " "),
                },
            });
        }
    }
    for q in &outcome.questions {
        if q.n_labels < rules.min_labels {
            continue;
        }
        let question = Some(q.question.clone());
        if rules.on_tie && q.tied {
            out.push(Reason {
                rule: "tie",
                question: question.clone(),
                detail: format!("the labels are tied ({})", q.given.join(" / ")),
            });
        }
        if let (Some(min), Some(confidence)) = (rules.min_posterior, q.confidence) {
            if confidence < min {
                out.push(Reason {
                    rule: "low_posterior",
                    question: question.clone(),
                    detail: format!("consensus posterior {} < {}", pct(confidence), pct(min)),
                });
            }
        }
        if let (Some(min), Some(agreement)) = (rules.min_agreement, q.agreement) {
            if agreement < min {
                out.push(Reason {
                    rule: "low_agreement",
                    question: question.clone(),
                    detail: format!("{} of label pairs agree (< {})", pct(agreement), pct(min)),
                });
            }
        }
        if let Some(rule) = severity {
            let severe: Vec<&String> = q.given.iter().filter(|g| rule.severe.contains(g)).collect();
            if rule.question == q.question && !severe.is_empty() && q.given.len() > 1 {
                out.push(Reason {
                    rule: "severity_dissent",
                    question: question.clone(),
                    detail: format!(
                        "labelled {} (≥ {}) by some and {} by others",
                        severe
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        rule.threshold,
                        q.given
                            .iter()
                            .filter(|g| !rule.severe.contains(g))
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    if rules.model_disagreement {
        for detail in &outcome.model_disagreements {
            out.push(Reason {
                rule: "model_disagreement",
                question: None,
                detail: detail.clone(),
            });
        }
    }
    out
}

/// Priority (2 urgent, 1 high, 0 normal) and why: the project's urgent and high categories
/// (minors; offline harm and illegal content), and the top of any ordinal scale.
pub fn priority(
    outcome: &ItemOutcome,
    schema: &LabelSchema,
    rules: &EscalationRules,
) -> (i64, String) {
    let named = |list: &[String]| -> Vec<String> {
        outcome
            .codes
            .iter()
            .filter(|c| list.contains(c))
            .cloned()
            .collect()
    };
    let urgent = named(&rules.urgent_categories);
    if !urgent.is_empty() {
        return (2, format!("labelled {}", urgent.join(", ")));
    }
    let top_of_scale: Vec<String> = schema
        .questions
        .iter()
        .filter(|q| q.kind == QuestionKind::Ordinal && q.options.len() > 2)
        .filter_map(|q| q.options.last())
        .filter(|o| outcome.codes.contains(&o.value))
        .map(|o| o.value.clone())
        .collect();
    if !top_of_scale.is_empty() {
        return (
            2,
            format!("labelled {} (top of the scale)", top_of_scale.join(", ")),
        );
    }
    let high = named(&rules.high_categories);
    if !high.is_empty() {
        return (1, format!("labelled {}", high.join(", ")));
    }
    (0, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split_severity() -> ItemOutcome {
        ItemOutcome {
            questions: vec![QuestionOutcome {
                question: "severity".into(),
                kind: Some(QuestionKind::Ordinal),
                label: Some(json!("S1")),
                confidence: Some(0.5),
                agreement: Some(0.0),
                n_labels: 2,
                tied: true,
                given: vec!["S1".into(), "S3".into()],
            }],
            codes: vec!["S1".into(), "S3".into()],
            ..ItemOutcome::default()
        }
    }

    #[test]
    fn a_split_item_names_every_rule_it_breaks() {
        let schema = LabelSchema::catalog_safety();
        let rules = EscalationRules {
            severity_at_or_above: Some("S3".into()),
            ..EscalationRules::default()
        };
        let mut notes = Vec::new();
        let severity = SeverityRule::from_schema(&schema, &rules, &mut notes);
        assert!(notes.is_empty());
        let found: Vec<&str> = reasons(&split_severity(), &rules, severity.as_ref())
            .iter()
            .map(|r| r.rule)
            .collect();
        assert_eq!(
            found,
            ["tie", "low_posterior", "low_agreement", "severity_dissent"]
        );
    }

    #[test]
    fn rules_that_are_off_or_below_min_labels_do_not_fire() {
        let rules = EscalationRules {
            min_posterior: None,
            min_agreement: None,
            on_tie: false,
            ..EscalationRules::default()
        };
        assert!(reasons(&split_severity(), &rules, None).is_empty());
        let rules = EscalationRules {
            min_labels: 3,
            ..EscalationRules::default()
        };
        assert!(reasons(&split_severity(), &rules, None).is_empty());
        // Unsure escalates whatever the count.
        let unsure = ItemOutcome {
            unsure: 1,
            ..ItemOutcome::default()
        };
        assert_eq!(
            reasons(&unsure, &rules, None)[0].detail,
            "1 annotator answered unsure"
        );
    }

    #[test]
    fn minors_come_first_then_the_top_of_the_scale_then_harm_and_illegal_content() {
        let schema = LabelSchema::catalog_safety();
        let rules = EscalationRules::default();
        let with = |codes: &[&str]| ItemOutcome {
            codes: codes.iter().map(|c| c.to_string()).collect(),
            ..ItemOutcome::default()
        };
        assert_eq!(priority(&with(&["DG.CHILD", "S2"]), &schema, &rules).0, 2);
        assert_eq!(priority(&with(&["S4"]), &schema, &rules).0, 2);
        assert_eq!(
            priority(&with(&["IL.LAW", "S3"]), &schema, &rules),
            (1, "labelled IL.LAW".into())
        );
        assert_eq!(priority(&with(&["DG.HATE", "S3"]), &schema, &rules).0, 0);
    }

    #[test]
    fn a_severity_code_missing_from_the_schema_is_noted_not_applied() {
        let rules = EscalationRules {
            severity_at_or_above: Some("X".into()),
            ..EscalationRules::default()
        };
        let mut notes = Vec::new();
        assert!(
            SeverityRule::from_schema(&LabelSchema::catalog_safety(), &rules, &mut notes).is_none()
        );
        assert!(notes[0].contains("\"X\""), "{notes:?}");
    }
}
