//! Label schemas: the questions an annotator answers, over a policy taxonomy with codes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// Exactly one option.
    Single,
    /// Any number of options (binary relevance in consensus).
    Multi,
    /// One option from an ordered scale (severity); agreement uses ordinal distances.
    Ordinal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaOption {
    /// The stored code, e.g. `DG.HATE` or `S3`.
    pub value: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub key: String,
    pub prompt: String,
    pub kind: QuestionKind,
    pub options: Vec<SchemaOption>,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSchema {
    pub questions: Vec<Question>,
    /// `off`, `optional` or `required`.
    #[serde(default = "optional")]
    pub rationale: String,
    #[serde(default)]
    pub context_flags: Vec<String>,
}

fn optional() -> String {
    "optional".to_owned()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl LabelSchema {
    /// Checks the schema is usable; the message names the offending question or option.
    pub fn validate(&self) -> Result<(), String> {
        if self.questions.is_empty() {
            return Err("a label schema needs at least one question".into());
        }
        if !["off", "optional", "required"].contains(&self.rationale.as_str()) {
            return Err(format!(
                "rationale must be off, optional or required, not {:?}",
                self.rationale
            ));
        }
        let mut keys = std::collections::HashSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            let at = format!("question {} ({:?})", i + 1, q.key);
            if !valid_key(&q.key) {
                return Err(format!(
                    "{at}: the key must be lower-case letters, digits and underscores"
                ));
            }
            if !keys.insert(q.key.as_str()) {
                return Err(format!("{at}: the key is used twice"));
            }
            let minimum = if q.kind == QuestionKind::Multi { 1 } else { 2 };
            if q.options.len() < minimum {
                return Err(format!("{at}: needs at least {minimum} options"));
            }
            let mut values = std::collections::HashSet::new();
            for option in &q.options {
                if option.value.trim().is_empty() {
                    return Err(format!("{at}: an option has an empty code"));
                }
                if !values.insert(option.value.as_str()) {
                    return Err(format!("{at}: option {:?} appears twice", option.value));
                }
            }
        }
        let mut flags = std::collections::HashSet::new();
        for flag in &self.context_flags {
            if !valid_key(flag) || !flags.insert(flag.as_str()) {
                return Err(format!(
                    "context flag {flag:?} must be a unique lower-case key"
                ));
            }
        }
        Ok(())
    }

    /// Checks an answer (`{question key: code or [codes]}`) against the schema.
    pub fn validate_answer(&self, answer: &Value) -> Result<(), String> {
        self.check_answer(answer, true)
    }

    /// Checks only the codes an answer gives, with no question required: an "unsure"
    /// answer may carry a partial best guess.
    pub fn validate_partial_answer(&self, answer: &Value) -> Result<(), String> {
        self.check_answer(answer, false)
    }

    fn check_answer(&self, answer: &Value, enforce_required: bool) -> Result<(), String> {
        let Some(object) = answer.as_object() else {
            return Err("the answer must be an object of question keys".into());
        };
        for key in object.keys() {
            if !self.questions.iter().any(|q| &q.key == key) {
                return Err(format!("the answer names an unknown question {key:?}"));
            }
        }
        for q in &self.questions {
            let known = |code: &str| q.options.iter().any(|o| o.value == code);
            match (object.get(&q.key), q.kind) {
                (None | Some(Value::Null), _) => {
                    if q.required && enforce_required {
                        return Err(format!("question {:?} needs an answer", q.key));
                    }
                }
                (Some(Value::String(code)), QuestionKind::Single | QuestionKind::Ordinal) => {
                    if !known(code) {
                        return Err(format!("{code:?} is not an option of {:?}", q.key));
                    }
                }
                (Some(Value::Array(codes)), QuestionKind::Multi) => {
                    if q.required && enforce_required && codes.is_empty() {
                        return Err(format!("question {:?} needs at least one option", q.key));
                    }
                    for code in codes {
                        match code.as_str() {
                            Some(c) if known(c) => {}
                            _ => {
                                return Err(format!("{code} is not an option of {:?}", q.key));
                            }
                        }
                    }
                }
                (Some(_), QuestionKind::Multi) => {
                    return Err(format!("question {:?} takes a list of options", q.key));
                }
                (Some(_), _) => {
                    return Err(format!("question {:?} takes one option code", q.key));
                }
            }
        }
        Ok(())
    }

    /// The catalog-safety template: decision, policy categories and severity
    /// (see docs of the demo taxonomy), used when a project starts without a schema.
    pub fn catalog_safety() -> LabelSchema {
        // long: a data table (the template's questions and codes), clearer in one piece.
        fn opt(value: &str, label: &str, family: Option<&str>) -> SchemaOption {
            SchemaOption {
                value: value.into(),
                label: label.into(),
                family: family.map(Into::into),
                description: String::new(),
            }
        }
        let categories = [
            ("DG.VIOL", "Incitement or threats of violence", "Dangerous"),
            ("DG.EXTR", "Violent extremism, terrorism", "Dangerous"),
            ("DG.HATE", "Hate against protected groups", "Dangerous"),
            ("DG.HARASS", "Targeted harassment, doxxing", "Dangerous"),
            ("DG.SELF", "Promoting suicide or self-harm", "Dangerous"),
            ("DG.MED", "Dangerous false medical claims", "Dangerous"),
            (
                "DG.CHILD",
                "Sexualisation or exploitation of minors",
                "Dangerous",
            ),
            (
                "DC.IMP",
                "Impersonation, unauthorised voice clones",
                "Deceptive",
            ),
            (
                "DC.SYNTH",
                "Harmful synthetic or manipulated media",
                "Deceptive",
            ),
            ("DC.ELECT", "Interference with elections", "Deceptive"),
            ("DC.SCAM", "Scams, phishing, malware", "Deceptive"),
            ("DC.SPAM", "Spam and platform manipulation", "Deceptive"),
            (
                "DC.META",
                "Content mismatch, misleading metadata",
                "Deceptive",
            ),
            ("SN.GRAPH", "Gratuitous gore, animal cruelty", "Sensitive"),
            ("SN.SEX", "Sexually explicit content", "Sensitive"),
            ("IL.LAW", "Sanctions breaches, promoting crimes", "Illegal"),
            ("IL.IP", "IP infringement", "Illegal"),
            ("ADV.EXPL", "Explicit content advisory", "Advisory"),
        ];
        LabelSchema {
            questions: vec![
                Question {
                    key: "decision".into(),
                    prompt: "Does the item break the policy?".into(),
                    kind: QuestionKind::Single,
                    options: vec![
                        opt("NOT_VIOLATING", "Not violating", None),
                        opt("BORDERLINE", "Borderline", None),
                        opt("VIOLATING", "Violating", None),
                    ],
                    required: true,
                },
                Question {
                    key: "category".into(),
                    prompt: "Which policy categories apply?".into(),
                    kind: QuestionKind::Multi,
                    options: categories
                        .iter()
                        .map(|(code, label, family)| opt(code, label, Some(family)))
                        .collect(),
                    required: false,
                },
                Question {
                    key: "severity".into(),
                    prompt: "How severe is it?".into(),
                    kind: QuestionKind::Ordinal,
                    options: vec![
                        opt("S0", "S0 none", None),
                        opt("S1", "S1 advisory", None),
                        opt("S2", "S2 borderline", None),
                        opt("S3", "S3 violating", None),
                        opt("S4", "S4 egregious / urgent", None),
                    ],
                    required: true,
                },
            ],
            rationale: "optional".into(),
            context_flags: [
                "educational",
                "documentary",
                "news",
                "artistic_fiction",
                "satire_parody",
                "counter_speech",
                "quoted_or_reported",
                "historical",
                "scientific",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_catalog_safety_template_is_valid_and_checks_answers() {
        let schema = LabelSchema::catalog_safety();
        schema.validate().unwrap();
        schema
            .validate_answer(
                &json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}),
            )
            .unwrap();
        let err = schema
            .validate_answer(&json!({"decision": "MAYBE", "severity": "S3"}))
            .unwrap_err();
        assert!(
            err.contains("\"MAYBE\" is not an option of \"decision\""),
            "{err}"
        );
        let err = schema
            .validate_answer(&json!({"decision": "VIOLATING"}))
            .unwrap_err();
        assert!(err.contains("severity"), "{err}");
        // A partial answer (an unsure best guess) needs no question, but its codes must exist.
        schema
            .validate_partial_answer(&json!({"severity": "S2"}))
            .unwrap();
        let err = schema
            .validate_partial_answer(&json!({"severity": "S9"}))
            .unwrap_err();
        assert!(err.contains("\"S9\" is not an option"), "{err}");
    }

    #[test]
    fn duplicate_keys_and_codes_are_rejected_with_their_names() {
        let mut schema = LabelSchema::catalog_safety();
        schema.questions[1].key = "decision".into();
        assert!(schema.validate().unwrap_err().contains("used twice"));
        let mut schema = LabelSchema::catalog_safety();
        schema.questions[2].options[1].value = "S0".into();
        assert!(
            schema
                .validate()
                .unwrap_err()
                .contains("\"S0\" appears twice")
        );
    }
}
