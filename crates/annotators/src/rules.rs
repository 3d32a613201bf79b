//! The rules model: keyword and regular-expression rules, each giving part of an answer,
//! applied to an item's text fields. Offline, deterministic, the baseline a team starts with.
//!
//! A rules file is JSON:
//!
//! ```json
//! {
//!   "default": {"decision": "NOT_VIOLATING", "severity": "S0"},
//!   "rules": [
//!     {"name": "threats", "keywords": ["kill you"], "patterns": ["(?i)\\bshoot\\b"],
//!      "fields": ["title", "text.lyrics"],
//!      "answer": {"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S3"}}
//!   ]
//! }
//! ```
//!
//! Keywords match case-insensitively as whole words; patterns are regular expressions.
//! Without `fields` a rule reads the title, the creators and every text and metadata string.
//! When several rules match, a multi-choice question takes the union of their options, an
//! ordinal one the highest, and a single-choice one the first matching rule's (file order is
//! precedence). Questions no rule answers take the default.

use concord_store::{Item, LabelSchema, QuestionKind};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RulesError {
    #[error("rules file: {0}")]
    Syntax(String),
    #[error("rules file: rule {rule:?}: {reason}")]
    Rule { rule: String, reason: String },
    #[error("rules file: default answer: {0}")]
    Default(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    default: Map<String, Value>,
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
    answer: Map<String, Value>,
}

struct Rule {
    name: String,
    matchers: Vec<Regex>,
    fields: Vec<String>,
    answer: Map<String, Value>,
}

/// A checked rules file, ready to label items under one schema.
pub struct RulesModel {
    default: Map<String, Value>,
    rules: Vec<Rule>,
    schema: LabelSchema,
}

/// The rules model's answer for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesAnswer {
    pub answer: Value,
    /// The names of the rules that matched, in file order.
    pub matched: Vec<String>,
}

impl RulesModel {
    /// Reads and checks a rules file against the schema its answers must fit.
    pub fn parse(text: &str, schema: &LabelSchema) -> Result<RulesModel, RulesError> {
        let file: RulesFile = serde_json::from_str(text).map_err(|e| {
            RulesError::Syntax(format!("line {}, column {}: {e}", e.line(), e.column()))
        })?;
        schema
            .validate_answer(&Value::Object(file.default.clone()))
            .map_err(RulesError::Default)?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for spec in file.rules {
            let fail = |reason: String| RulesError::Rule {
                rule: spec.name.clone(),
                reason,
            };
            if spec.keywords.is_empty() && spec.patterns.is_empty() {
                return Err(fail("needs at least one keyword or pattern".into()));
            }
            schema
                .validate_partial_answer(&Value::Object(spec.answer.clone()))
                .map_err(fail)?;
            let mut matchers = Vec::new();
            for keyword in &spec.keywords {
                if keyword.trim().is_empty() {
                    return Err(fail("a keyword is empty".into()));
                }
                let words = regex::escape(keyword.trim());
                matchers.push(compile(&format!(r"(?i)\b{words}\b")).map_err(fail)?);
            }
            for pattern in &spec.patterns {
                matchers
                    .push(compile(pattern).map_err(|e| fail(format!("pattern {pattern:?}: {e}")))?);
            }
            rules.push(Rule {
                name: spec.name,
                matchers,
                fields: spec.fields,
                answer: spec.answer,
            });
        }
        Ok(RulesModel {
            default: file.default,
            rules,
            schema: schema.clone(),
        })
    }

    /// Labels one item. The answer always fits the schema: every part of it was checked
    /// when the file was read and combining keeps to the questions' kinds.
    pub fn label(&self, item: &Item) -> RulesAnswer {
        let texts = item_texts(item);
        let mut answer = self.default.clone();
        let mut answered: Vec<&str> = Vec::new();
        let mut matched = Vec::new();
        for rule in &self.rules {
            let hit = texts.iter().any(|(field, text)| {
                (rule.fields.is_empty() || rule.fields.iter().any(|f| f == field))
                    && rule.matchers.iter().any(|m| m.is_match(text))
            });
            if !hit {
                continue;
            }
            matched.push(rule.name.clone());
            for question in &self.schema.questions {
                let Some(value) = rule.answer.get(&question.key) else {
                    continue;
                };
                let first = !answered.contains(&question.key.as_str());
                let combined = match question.kind {
                    QuestionKind::Multi if !first => union(answer.get(&question.key), value),
                    QuestionKind::Ordinal if !first => {
                        let rank = |v: Option<&Value>| {
                            v.and_then(Value::as_str).and_then(|code| {
                                question.options.iter().position(|o| o.value == code)
                            })
                        };
                        if rank(Some(value)) > rank(answer.get(&question.key)) {
                            value.clone()
                        } else {
                            continue;
                        }
                    }
                    QuestionKind::Single if !first => continue,
                    _ => value.clone(),
                };
                answer.insert(question.key.clone(), combined);
                answered.push(&question.key);
            }
        }
        RulesAnswer {
            answer: Value::Object(answer),
            matched,
        }
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

fn union(current: Option<&Value>, more: &Value) -> Value {
    let mut codes: Vec<Value> = current
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for code in more.as_array().into_iter().flatten() {
        if !codes.contains(code) {
            codes.push(code.clone());
        }
    }
    Value::Array(codes)
}

/// The item's text fields by name: `title`, `creators`, `text.NAME`, `metadata.NAME`.
pub fn item_texts(item: &Item) -> Vec<(String, String)> {
    let mut out = vec![("title".to_owned(), item.title.clone())];
    let mut creators = Vec::new();
    strings(&item.creators, &mut creators);
    if !creators.is_empty() {
        out.push(("creators".to_owned(), creators.join(", ")));
    }
    for (prefix, value) in [("text", &item.text), ("metadata", &item.metadata)] {
        if let Value::Object(fields) = value {
            for (name, value) in fields {
                let mut parts = Vec::new();
                strings(value, &mut parts);
                if !parts.is_empty() {
                    out.push((format!("{prefix}.{name}"), parts.join("\n")));
                }
            }
        }
    }
    out
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(values) => values.iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}
