//! DSA statements of reasons from a project's adjudicated decisions: one statement per
//! decision in force made in the period whose severity calls for an action, in the EU
//! Transparency Database's record format, each checked against the schema's allowed values
//! before any is written. No statistics.
//!
//! The action follows the severity scale (the schema's first ordinal question): its first
//! step is no action (no statement), the second a label (`CONTENT_LABELLED`), the third
//! demotion, any higher step removal. The category comes from the decision's categories
//! (the first multi-choice question) through [`DEFAULT_CATEGORIES`] and the project's
//! `settings.qa.dsa_categories`; an `IL.*` category
//! makes the ground illegal content, anything else incompatible content, with the
//! decision's guideline clause as the ground and its rationale as the explanation.

use crate::date_of;
use concord_formats::dsa::{EEA, InvalidStatement, Statement};
use concord_store::{DecisionFacts, LabelSchema, Project, QuestionKind, Store, StoreError};
use serde_json::Value;

/// The catalog-safety taxonomy's codes → Transparency Database (v2) categories, without the
/// `STATEMENT_CATEGORY_` prefix. Advisory codes (`ADV.*`) are not restrictions and have none.
pub const DEFAULT_CATEGORIES: [(&str, &str); 17] = [
    ("DG.VIOL", "VIOLENCE"),
    ("DG.EXTR", "RISK_FOR_PUBLIC_SECURITY"),
    ("DG.HATE", "ILLEGAL_OR_HARMFUL_SPEECH"),
    ("DG.HARASS", "ILLEGAL_OR_HARMFUL_SPEECH"),
    ("DG.SELF", "SELF_HARM"),
    ("DG.MED", "OTHER_VIOLATION_TC"),
    ("DG.CHILD", "PROTECTION_OF_MINORS"),
    ("DC.IMP", "OTHER_VIOLATION_TC"),
    (
        "DC.SYNTH",
        "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    ),
    (
        "DC.ELECT",
        "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    ),
    ("DC.SCAM", "SCAMS_AND_FRAUD"),
    ("DC.SPAM", "OTHER_VIOLATION_TC"),
    ("DC.META", "OTHER_VIOLATION_TC"),
    ("SN.GRAPH", "VIOLENCE"),
    ("SN.SEX", "OTHER_VIOLATION_TC"),
    ("IL.LAW", "RISK_FOR_PUBLIC_SECURITY"),
    ("IL.IP", "INTELLECTUAL_PROPERTY_INFRINGEMENTS"),
];

#[derive(Debug, thiserror::Error)]
pub enum DsaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A statement that cannot be valid: the item and field, and why. Nothing is written.
    #[error("{0}; no statements were exported")]
    Invalid(#[from] InvalidStatement),
    #[error("{0}")]
    Request(String),
}

/// The statements of a period, and what was left out and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DsaExport {
    pub statements: Vec<Statement>,
    /// Decisions in force made in the period.
    pub decisions: usize,
    /// Decisions at the scale's first step, or advisory only: no restriction, no statement.
    pub without_action: usize,
    /// Decisions on items not offered in the EU / EEA.
    pub outside_eea: usize,
}

/// Milliseconds at the start of a `YYYY-MM-DD` day (UTC).
pub fn day_start_ms(date: &str) -> Result<i64, DsaError> {
    let bad = || DsaError::Request(format!("{date:?} is not a date (YYYY-MM-DD)"));
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (year, month, day): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if y.len() != 4 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = days * 86_400_000;
    match date_of(ms) == date {
        true => Ok(ms),
        false => Err(bad()),
    }
}

/// The statements for the decisions made from `from` to `to` (both `YYYY-MM-DD`, inclusive).
pub async fn dsa_statements(
    store: &Store,
    project: &Project,
    from: &str,
    to: &str,
) -> Result<DsaExport, DsaError> {
    let from_ms = day_start_ms(from)?;
    let to_ms = day_start_ms(to)? + 86_400_000;
    if to_ms <= from_ms {
        return Err(DsaError::Request(format!(
            "the period ends ({to}) before it starts ({from})"
        )));
    }
    let schema = store.project_schema(project).await?;
    let decisions = store
        .decisions_in_period(project.id, from_ms, to_ms)
        .await?;
    let mut export = DsaExport {
        statements: Vec::new(),
        decisions: decisions.len(),
        without_action: 0,
        outside_eea: 0,
    };
    let categories = CategoryMap::of(&project.settings.qa.dsa_categories);
    for facts in &decisions {
        match statement(&project.slug, &schema.definition, &categories, facts)? {
            Built::Statement(s) => export.statements.push(*s),
            Built::NoAction => export.without_action += 1,
            Built::OutsideEea => export.outside_eea += 1,
        }
    }
    Ok(export)
}

/// Taxonomy codes → Transparency Database categories (without the prefix): the defaults,
/// then the project's `settings.qa.dsa_categories` over them.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryMap(std::collections::BTreeMap<String, String>);

impl CategoryMap {
    pub fn of(project: &std::collections::BTreeMap<String, String>) -> CategoryMap {
        let mut map: std::collections::BTreeMap<String, String> = DEFAULT_CATEGORIES
            .iter()
            .map(|(code, dsa)| (code.to_string(), dsa.to_string()))
            .collect();
        for (code, dsa) in project {
            if dsa.is_empty() {
                map.remove(code);
            } else {
                map.insert(code.clone(), dsa.clone());
            }
        }
        CategoryMap(map)
    }

    fn get(&self, code: &str) -> Option<&str> {
        self.0.get(code).map(String::as_str)
    }
}

impl Default for CategoryMap {
    fn default() -> Self {
        CategoryMap::of(&Default::default())
    }
}

/// What one decision becomes.
#[derive(Debug, PartialEq)]
pub enum Built {
    Statement(Box<Statement>),
    NoAction,
    OutsideEea,
}

/// The statement for one decision, validated.
pub fn statement(
    slug: &str,
    schema: &LabelSchema,
    categories_of: &CategoryMap,
    facts: &DecisionFacts,
) -> Result<Built, InvalidStatement> {
    // long: one field of the record after another, in the schema's order.
    let a = &facts.adjudication;
    let puid: String = format!("concord-{slug}-{}", a.id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fail = |field: &'static str, message: String| InvalidStatement {
        item: a.external_id.clone(),
        puid: puid.clone(),
        field,
        message,
    };
    let Some(scale) = schema
        .questions
        .iter()
        .find(|q| q.kind == QuestionKind::Ordinal)
    else {
        let message = "the schema has no ordinal (severity) question to decide the action".into();
        return Err(fail("decision_visibility", message));
    };
    let severity = a.answer.get(&scale.key).and_then(Value::as_str);
    let level = severity
        .and_then(|code| scale.options.iter().position(|o| o.value == code))
        .unwrap_or(0);
    let codes: Vec<&str> = schema
        .questions
        .iter()
        .find(|q| q.kind == QuestionKind::Multi)
        .and_then(|q| a.answer.get(&q.key))
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut categories: Vec<String> = Vec::new();
    for code in &codes {
        if let Some(dsa) = categories_of.get(code) {
            let full = format!("STATEMENT_CATEGORY_{dsa}");
            if !categories.contains(&full) {
                categories.push(full);
            }
        }
    }
    if level == 0 || (level == 1 && categories.is_empty()) {
        return Ok(Built::NoAction);
    }
    let Some(category) = categories.first().cloned() else {
        let message = format!(
            "the decision names no category with a DSA category ({})",
            match codes.is_empty() {
                true => "none given".to_owned(),
                false => codes.join(", "),
            }
        );
        return Err(fail("category", message));
    };
    let markets: Option<Vec<String>> =
        facts
            .metadata
            .get("markets")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_uppercase)
                    .collect()
            });
    let territorial_scope: Vec<String> = EEA
        .iter()
        .filter(|c| markets.as_ref().is_none_or(|m| m.iter().any(|x| x == *c)))
        .map(|c| (*c).to_owned())
        .collect();
    if territorial_scope.is_empty() {
        return Ok(Built::OutsideEea);
    }
    let visibility = match level {
        1 => "DECISION_VISIBILITY_CONTENT_LABELLED",
        2 => "DECISION_VISIBILITY_CONTENT_DEMOTED",
        _ => "DECISION_VISIBILITY_CONTENT_REMOVED",
    };
    let illegal = codes.iter().any(|c| c.starts_with("IL."));
    let clause = Some(a.guideline_clause.trim().to_owned()).filter(|c| !c.is_empty());
    let explanation =
        Some(a.rationale.trim().chars().take(2000).collect::<String>()).filter(|r| !r.is_empty());
    let mut content_type = vec!["CONTENT_TYPE_AUDIO".to_owned()];
    if codes.iter().any(|c| *c == "DC.SYNTH" || *c == "DC.IMP") {
        content_type.push("CONTENT_TYPE_SYNTHETIC_MEDIA".into());
    }
    let labels: Vec<String> = codes
        .iter()
        .map(|code| {
            schema
                .questions
                .iter()
                .flat_map(|q| &q.options)
                .find(|o| o.value == *code)
                .map_or_else(|| (*code).to_owned(), |o| format!("{code} {}", o.label))
        })
        .collect();
    let facts_text = format!(
        "{} Guideline clause: {}. Categories: {}. Severity: {}.",
        a.rationale.trim(),
        clause.as_deref().unwrap_or("none cited"),
        labels.join(", "),
        severity.unwrap_or("?")
    );
    let statement = Statement {
        decision_visibility: Some(vec![visibility.to_owned()]),
        decision_monetary: None,
        decision_provision: None,
        decision_account: None,
        decision_ground: match illegal {
            true => "DECISION_GROUND_ILLEGAL_CONTENT",
            false => "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        }
        .to_owned(),
        illegal_content_legal_ground: clause.clone().filter(|_| illegal),
        illegal_content_explanation: explanation.clone().filter(|_| illegal),
        incompatible_content_ground: clause.filter(|_| !illegal),
        incompatible_content_explanation: explanation.filter(|_| !illegal),
        category,
        category_addition: categories[1..].to_vec(),
        content_type,
        source_type: "SOURCE_VOLUNTARY".into(),
        automated_detection: match facts.model_flagged {
            true => "Yes",
            false => "No",
        }
        .into(),
        // An expert decided: the automated annotator, if any, only flagged.
        automated_decision: "AUTOMATED_DECISION_NOT_AUTOMATED".into(),
        territorial_scope,
        decision_facts: facts_text.chars().take(5000).collect(),
        content_date: content_date(&facts.metadata)
            .unwrap_or_else(|| date_of(facts.item_created_at)),
        application_date: date_of(a.created_at),
        content_language: facts
            .metadata
            .get("language")
            .and_then(Value::as_str)
            .map(|l| {
                l.split(['-', '_'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase()
            })
            .filter(|l| l.len() == 2),
        puid,
    };
    statement.validate(&a.external_id)?;
    Ok(Built::Statement(Box::new(statement)))
}

/// The item's release date as `YYYY-MM-DD` (a year or month alone starts at its first day).
fn content_date(metadata: &Value) -> Option<String> {
    let raw = match metadata.get("release_date")? {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("date")?.as_str()?.to_owned(),
        _ => return None,
    };
    let raw = raw.trim();
    match raw.len() {
        4 => Some(format!("{raw}-01-01")),
        7 => Some(format!("{raw}-01")),
        n if n >= 10 => Some(raw[..10].to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_store::Adjudication;
    use concord_store::{ItemId, ProjectId, UserId};
    use serde_json::json;

    fn facts(answer: Value, clause: &str, metadata: Value) -> DecisionFacts {
        DecisionFacts {
            adjudication: Adjudication {
                id: 17,
                project_id: ProjectId(1),
                item_id: ItemId(5),
                external_id: "trk-9".into(),
                title: "Night drive".into(),
                expert_id: UserId(2),
                expert: "eli".into(),
                answer,
                rationale: "Lyrics call a faith group pests to be got rid of.".into(),
                guideline_clause: clause.into(),
                guideline_version: Some(2),
                promoted_to_gold: false,
                example_scope: None,
                example_category: None,
                consensus_before: None,
                overturned: false,
                supersedes: None,
                superseded: false,
                created_at: 1_767_225_600_000, // 2026-01-01
            },
            item_type: "track".into(),
            metadata,
            item_created_at: 1_700_000_000_000,
            model_flagged: true,
        }
    }

    fn built(f: &DecisionFacts) -> Result<Built, InvalidStatement> {
        statement(
            "podcasts",
            &LabelSchema::catalog_safety(),
            &CategoryMap::default(),
            f,
        )
    }

    #[test]
    fn a_project_maps_its_own_codes_and_takes_a_default_away() {
        let hate = facts(
            json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}),
            "Hate 2.1",
            json!({"markets": ["DE"]}),
        );
        let project: std::collections::BTreeMap<String, String> = [
            ("DG.HATE".to_string(), "CYBER_VIOLENCE".to_string()),
            ("IL.IP".to_string(), String::new()),
        ]
        .into();
        let map = CategoryMap::of(&project);
        let Built::Statement(s) =
            statement("p", &LabelSchema::catalog_safety(), &map, &hate).unwrap()
        else {
            panic!("a statement")
        };
        assert_eq!(s.category, "STATEMENT_CATEGORY_CYBER_VIOLENCE");
        assert_eq!(map.get("IL.IP"), None, "taken away");
        assert_eq!(map.get("DG.SELF"), Some("SELF_HARM"), "defaults stay");
    }

    #[test]
    fn a_removal_for_hate_becomes_a_valid_statement() {
        let f = facts(
            json!({"decision": "VIOLATING", "category": ["DG.HATE", "DC.SYNTH"], "severity": "S3"}),
            "Hate 2.1",
            json!({"markets": ["DE", "US", "fr"], "language": "en-GB", "release_date": "2019-05"}),
        );
        let Built::Statement(s) = built(&f).unwrap() else {
            panic!("a statement")
        };
        assert_eq!(s.puid, "concord-podcasts-17");
        assert_eq!(
            s.decision_visibility.as_deref(),
            Some(&["DECISION_VISIBILITY_CONTENT_REMOVED".to_owned()][..])
        );
        assert_eq!(s.decision_ground, "DECISION_GROUND_INCOMPATIBLE_CONTENT");
        assert_eq!(s.incompatible_content_ground.as_deref(), Some("Hate 2.1"));
        assert_eq!(s.category, "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH");
        assert_eq!(
            s.category_addition,
            ["STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS"]
        );
        assert_eq!(
            s.content_type,
            ["CONTENT_TYPE_AUDIO", "CONTENT_TYPE_SYNTHETIC_MEDIA"]
        );
        assert_eq!(s.territorial_scope, ["DE", "FR"]);
        assert_eq!(s.automated_detection, "Yes");
        assert_eq!(s.content_date, "2019-05-01");
        assert_eq!(s.application_date, "2026-01-01");
        assert_eq!(s.content_language.as_deref(), Some("EN"));
        assert!(
            s.decision_facts.contains("Guideline clause: Hate 2.1"),
            "{}",
            s.decision_facts
        );
    }

    #[test]
    fn illegal_categories_advisories_and_markets_decide_the_ground_or_no_statement() {
        let il = facts(
            json!({"decision": "VIOLATING", "category": ["IL.IP"], "severity": "S2"}),
            "IP 1",
            json!({}),
        );
        let Built::Statement(s) = built(&il).unwrap() else {
            panic!("a statement")
        };
        assert_eq!(s.decision_ground, "DECISION_GROUND_ILLEGAL_CONTENT");
        assert_eq!(s.illegal_content_legal_ground.as_deref(), Some("IP 1"));
        assert!(s.incompatible_content_ground.is_none());
        assert_eq!(
            s.territorial_scope.len(),
            30,
            "no markets: offered everywhere"
        );
        let none = facts(
            json!({"decision": "NOT_VIOLATING", "severity": "S0"}),
            "",
            json!({}),
        );
        assert_eq!(built(&none).unwrap(), Built::NoAction);
        let advisory = facts(
            json!({"decision": "NOT_VIOLATING", "category": ["ADV.EXPL"], "severity": "S1"}),
            "",
            json!({}),
        );
        assert_eq!(built(&advisory).unwrap(), Built::NoAction);
        let us_only = facts(
            json!({"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S4"}),
            "V 1",
            json!({"markets": ["US"]}),
        );
        assert_eq!(built(&us_only).unwrap(), Built::OutsideEea);
    }

    #[test]
    fn a_decision_that_cannot_make_a_valid_statement_names_the_item_and_field() {
        let no_clause = facts(
            json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}),
            " ",
            json!({}),
        );
        let err = built(&no_clause).unwrap_err();
        assert_eq!(
            (err.item.as_str(), err.field),
            ("trk-9", "incompatible_content_ground")
        );
        let no_category = facts(
            json!({"decision": "VIOLATING", "category": ["ADV.EXPL"], "severity": "S3"}),
            "X",
            json!({}),
        );
        assert_eq!(built(&no_category).unwrap_err().field, "category");
        let old = facts(
            json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}),
            "X",
            json!({"release_date": "1987-03-01"}),
        );
        assert_eq!(built(&old).unwrap_err().field, "content_date");
    }

    #[test]
    fn days_parse_strictly() {
        assert_eq!(day_start_ms("2026-01-01").unwrap(), 1_767_225_600_000);
        assert!(day_start_ms("2026-02-30").is_err());
        assert!(day_start_ms("26-01-01").is_err());
    }
}
