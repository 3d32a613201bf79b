//! DSA statements of reasons in the EU Transparency Database's record format (the
//! statement API's field names and enum values), checked against the schema's allowed
//! values before anything is written, as JSON (an array) or CSV (one row per statement,
//! list fields as JSON arrays).

use serde::Serialize;
use std::io::Write;

/// One statement of reasons. Optional fields left `None` are omitted from JSON and empty
/// in CSV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_visibility: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_monetary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_provision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_account: Option<String>,
    pub decision_ground: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub illegal_content_legal_ground: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub illegal_content_explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible_content_ground: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible_content_explanation: Option<String>,
    pub category: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub category_addition: Vec<String>,
    pub content_type: Vec<String>,
    pub source_type: String,
    pub automated_detection: String,
    pub automated_decision: String,
    pub territorial_scope: Vec<String>,
    pub decision_facts: String,
    pub content_date: String,
    pub application_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    pub puid: String,
}

/// The columns of the CSV, in order: the statement API's field names.
pub const FIELDS: [&str; 22] = [
    "puid",
    "decision_visibility",
    "decision_monetary",
    "decision_provision",
    "decision_account",
    "decision_ground",
    "illegal_content_legal_ground",
    "illegal_content_explanation",
    "incompatible_content_ground",
    "incompatible_content_explanation",
    "category",
    "category_addition",
    "content_type",
    "source_type",
    "automated_detection",
    "automated_decision",
    "territorial_scope",
    "decision_facts",
    "content_date",
    "application_date",
    "content_language",
    "end_date_visibility_restriction",
];

pub const DECISION_VISIBILITY: [&str; 7] = [
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
];
pub const DECISION_MONETARY: [&str; 3] = [
    "DECISION_MONETARY_SUSPENSION",
    "DECISION_MONETARY_TERMINATION",
    "DECISION_MONETARY_OTHER",
];
pub const DECISION_PROVISION: [&str; 4] = [
    "DECISION_PROVISION_PARTIAL_SUSPENSION",
    "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION",
    "DECISION_PROVISION_TOTAL_TERMINATION",
];
pub const DECISION_ACCOUNT: [&str; 2] =
    ["DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"];
pub const DECISION_GROUND: [&str; 2] = [
    "DECISION_GROUND_ILLEGAL_CONTENT",
    "DECISION_GROUND_INCOMPATIBLE_CONTENT",
];
/// The statement categories of the database's v2 schema (from 1 July 2025).
pub const CATEGORY: [&str; 16] = [
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
];
pub const CONTENT_TYPE: [&str; 8] = [
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_OTHER",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
];
pub const SOURCE_TYPE: [&str; 4] = [
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
];
pub const AUTOMATED_DETECTION: [&str; 2] = ["Yes", "No"];
pub const AUTOMATED_DECISION: [&str; 3] = [
    "AUTOMATED_DECISION_FULLY",
    "AUTOMATED_DECISION_PARTIALLY",
    "AUTOMATED_DECISION_NOT_AUTOMATED",
];
/// EU and EEA member states (ISO 3166-1 alpha-2).
pub const EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
];

/// A statement that does not fit the schema: which one (its item) and which field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("item {item} ({puid}): field {field}: {message}")]
pub struct InvalidStatement {
    pub item: String,
    pub puid: String,
    pub field: &'static str,
    pub message: String,
}

fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    match allowed.contains(&value) {
        true => Ok(()),
        false => Err(format!("{value:?} is not one of the allowed values")),
    }
}

fn text(value: &str, max: usize) -> Result<(), String> {
    match value.trim().is_empty() {
        true => Err("is required".into()),
        false if value.chars().count() > max => Err(format!("is longer than {max} characters")),
        false => Ok(()),
    }
}

fn date(value: &str, earliest: &str) -> Result<(), String> {
    let b = value.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(format!("{value:?} is not a date (YYYY-MM-DD)"));
    }
    match value < earliest {
        true => Err(format!("{value} is before {earliest}")),
        false => Ok(()),
    }
}

impl Statement {
    /// Checks every field against the schema's allowed values and limits; the first
    /// field that does not fit is named. `item` names the item in the message.
    pub fn validate(&self, item: &str) -> Result<(), InvalidStatement> {
        let fail = |field: &'static str, message: String| InvalidStatement {
            item: item.to_owned(),
            puid: self.puid.clone(),
            field,
            message,
        };
        let puid_ok = !self.puid.is_empty()
            && self.puid.len() <= 500
            && self
                .puid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !puid_ok {
            return Err(fail(
                "puid",
                "must be 1–500 characters of A-Z a-z 0-9 _ -".into(),
            ));
        }
        let restrictions = [
            self.decision_visibility
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            self.decision_monetary.is_some(),
            self.decision_provision.is_some(),
            self.decision_account.is_some(),
        ];
        if !restrictions.contains(&true) {
            let message = "one of decision_visibility, decision_monetary, decision_provision, \
                           decision_account is required"
                .into();
            return Err(fail("decision_visibility", message));
        }
        for v in self.decision_visibility.iter().flatten() {
            one_of(v, &DECISION_VISIBILITY).map_err(|m| fail("decision_visibility", m))?;
        }
        let optional = [
            (
                "decision_monetary",
                &self.decision_monetary,
                &DECISION_MONETARY[..],
            ),
            (
                "decision_provision",
                &self.decision_provision,
                &DECISION_PROVISION[..],
            ),
            (
                "decision_account",
                &self.decision_account,
                &DECISION_ACCOUNT[..],
            ),
        ];
        for (field, value, allowed) in optional {
            if let Some(v) = value {
                one_of(v, allowed).map_err(|m| fail(field, m))?;
            }
        }
        one_of(&self.decision_ground, &DECISION_GROUND).map_err(|m| fail("decision_ground", m))?;
        let grounds = match self.decision_ground.as_str() {
            "DECISION_GROUND_ILLEGAL_CONTENT" => [
                (
                    "illegal_content_legal_ground",
                    &self.illegal_content_legal_ground,
                    500,
                ),
                (
                    "illegal_content_explanation",
                    &self.illegal_content_explanation,
                    2000,
                ),
            ],
            _ => [
                (
                    "incompatible_content_ground",
                    &self.incompatible_content_ground,
                    500,
                ),
                (
                    "incompatible_content_explanation",
                    &self.incompatible_content_explanation,
                    2000,
                ),
            ],
        };
        for (field, value, max) in grounds {
            text(value.as_deref().unwrap_or(""), max).map_err(|m| fail(field, m))?;
        }
        one_of(&self.category, &CATEGORY).map_err(|m| fail("category", m))?;
        for c in &self.category_addition {
            one_of(c, &CATEGORY).map_err(|m| fail("category_addition", m))?;
        }
        if self.content_type.is_empty() {
            return Err(fail("content_type", "is required".into()));
        }
        for c in &self.content_type {
            one_of(c, &CONTENT_TYPE).map_err(|m| fail("content_type", m))?;
        }
        one_of(&self.source_type, &SOURCE_TYPE).map_err(|m| fail("source_type", m))?;
        one_of(&self.automated_detection, &AUTOMATED_DETECTION)
            .map_err(|m| fail("automated_detection", m))?;
        one_of(&self.automated_decision, &AUTOMATED_DECISION)
            .map_err(|m| fail("automated_decision", m))?;
        if self.territorial_scope.is_empty() {
            return Err(fail("territorial_scope", "is required".into()));
        }
        for c in &self.territorial_scope {
            one_of(c, &EEA).map_err(|m| fail("territorial_scope", m))?;
        }
        text(&self.decision_facts, 5000).map_err(|m| fail("decision_facts", m))?;
        date(&self.content_date, "2000-01-01").map_err(|m| fail("content_date", m))?;
        date(&self.application_date, "2020-01-01").map_err(|m| fail("application_date", m))?;
        if let Some(language) = &self.content_language {
            let ok = language.len() == 2 && language.bytes().all(|b| b.is_ascii_uppercase());
            if !ok {
                let message = format!("{language:?} is not an upper-case ISO 639-1 code");
                return Err(fail("content_language", message));
            }
        }
        Ok(())
    }

    fn csv_row(&self) -> Vec<String> {
        let list = |v: &[String]| match v.is_empty() {
            true => String::new(),
            false => serde_json::to_string(v).unwrap_or_default(),
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.puid.clone(),
            list(self.decision_visibility.as_deref().unwrap_or(&[])),
            opt(&self.decision_monetary),
            opt(&self.decision_provision),
            opt(&self.decision_account),
            self.decision_ground.clone(),
            opt(&self.illegal_content_legal_ground),
            opt(&self.illegal_content_explanation),
            opt(&self.incompatible_content_ground),
            opt(&self.incompatible_content_explanation),
            self.category.clone(),
            list(&self.category_addition),
            list(&self.content_type),
            self.source_type.clone(),
            self.automated_detection.clone(),
            self.automated_decision.clone(),
            list(&self.territorial_scope),
            self.decision_facts.clone(),
            self.content_date.clone(),
            self.application_date.clone(),
            opt(&self.content_language),
            String::new(),
        ]
    }
}

/// How the statements are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementFormat {
    Json,
    Csv,
}

impl std::str::FromStr for StatementFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(StatementFormat::Json),
            "csv" => Ok(StatementFormat::Csv),
            other => Err(format!("format must be json or csv, not {other:?}")),
        }
    }
}

/// Writes already validated statements.
pub fn write_statements<W: Write>(
    out: W,
    statements: &[Statement],
    format: StatementFormat,
) -> std::io::Result<W> {
    match format {
        StatementFormat::Json => {
            let mut out = out;
            serde_json::to_writer_pretty(&mut out, statements)?;
            out.write_all(b"\n")?;
            Ok(out)
        }
        StatementFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(FIELDS)?;
            for s in statements {
                writer.write_record(s.csv_row())?;
            }
            writer.flush()?;
            writer
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One change to a valid statement.
    type Change = Box<dyn Fn(&mut Statement)>;

    fn statement() -> Statement {
        Statement {
            decision_visibility: Some(vec!["DECISION_VISIBILITY_CONTENT_REMOVED".into()]),
            decision_monetary: None,
            decision_provision: None,
            decision_account: None,
            decision_ground: "DECISION_GROUND_INCOMPATIBLE_CONTENT".into(),
            illegal_content_legal_ground: None,
            illegal_content_explanation: None,
            incompatible_content_ground: Some("Hate 2.1".into()),
            incompatible_content_explanation: Some("Slur aimed at a faith group.".into()),
            category: "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH".into(),
            category_addition: vec![],
            content_type: vec!["CONTENT_TYPE_AUDIO".into()],
            source_type: "SOURCE_VOLUNTARY".into(),
            automated_detection: "No".into(),
            automated_decision: "AUTOMATED_DECISION_NOT_AUTOMATED".into(),
            territorial_scope: vec!["DE".into(), "FR".into()],
            decision_facts: "Slur aimed at a faith group.".into(),
            content_date: "2021-04-02".into(),
            application_date: "2026-01-10".into(),
            content_language: Some("EN".into()),
            puid: "concord-podcasts-17".into(),
        }
    }

    #[test]
    fn a_statement_that_fits_the_schema_passes_and_each_misfit_names_its_field() {
        statement().validate("t1").unwrap();
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|s| {
                    s.category = "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT".into()
                }),
                "category",
            ),
            (
                Box::new(|s| s.decision_visibility = None),
                "decision_visibility",
            ),
            (
                Box::new(|s| s.incompatible_content_ground = Some(" ".into())),
                "incompatible_content_ground",
            ),
            (
                Box::new(|s| s.territorial_scope = vec!["US".into()]),
                "territorial_scope",
            ),
            (
                Box::new(|s| s.content_date = "1999-12-31".into()),
                "content_date",
            ),
            (Box::new(|s| s.puid = "concord/1".into()), "puid"),
            (
                Box::new(|s| s.decision_facts = "x".repeat(5001)),
                "decision_facts",
            ),
            (
                Box::new(|s| s.content_language = Some("en".into())),
                "content_language",
            ),
            (
                Box::new(|s| s.automated_detection = "yes".into()),
                "automated_detection",
            ),
        ];
        for (change, field) in cases {
            let mut s = statement();
            change(&mut s);
            let err = s.validate("t1").unwrap_err();
            assert_eq!(err.field, field, "{err}");
            let expected = format!("item t1 ({}): field {field}: ", s.puid);
            assert!(err.to_string().starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn statements_are_written_as_json_and_as_csv_with_the_api_field_names() {
        let json = write_statements(Vec::new(), &[statement()], StatementFormat::Json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value[0]["category"],
            "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
        );
        assert_eq!(
            value[0]["territorial_scope"],
            serde_json::json!(["DE", "FR"])
        );
        assert!(value[0].get("decision_monetary").is_none());
        let csv = write_statements(Vec::new(), &[statement()], StatementFormat::Csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, FIELDS);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[0], "concord-podcasts-17");
        assert_eq!(&row[16], r#"["DE","FR"]"#);
    }
}
