//! The prompt a language model is given: the manager's instructions, the project's current
//! guideline (text and the in-scope / out-of-scope examples of every category), the label
//! schema, and then the item. The answer is asked for as JSON matching [`answer_schema`].

use concord_store::{ExampleScope, GuidelineVersion, Item, LabelSchema, QuestionKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The longest excerpt of one text field put in a prompt (lyrics, transcripts).
const EXCERPT_CHARS: usize = 4_000;

/// The part of the prompt shared by every item; its digest names the prompt.
pub fn instructions(
    template: &str,
    guideline: Option<&GuidelineVersion>,
    schema: &LabelSchema,
) -> String {
    let mut out = String::new();
    if !template.trim().is_empty() {
        out += template.trim();
        out += "\n\n";
    }
    out += "You label catalog items for a policy team. Answer with one JSON object whose keys are \
            the question keys below, plus \"rationale\" (one or two sentences) and \"confidence\" \
            (0 to 1, how likely your answer is right).\n\n";
    if let Some(guideline) = guideline {
        let _ = writeln!(
            out,
            "# Guideline (version {})\n\n{}\n",
            guideline.version,
            guideline.body.trim()
        );
        let mut categories: Vec<&str> = Vec::new();
        for example in &guideline.examples {
            if !categories.contains(&example.category.as_str()) {
                categories.push(&example.category);
            }
        }
        for category in categories {
            let _ = writeln!(out, "## Examples for {category}");
            for example in guideline.examples.iter().filter(|e| e.category == category) {
                let scope = match example.scope {
                    ExampleScope::InScope => "in scope",
                    ExampleScope::OutOfScope => "out of scope",
                };
                let _ = writeln!(out, "- ({scope}) {}", example.text.trim());
            }
            out += "\n";
        }
    }
    out += "# Questions\n\n";
    for q in &schema.questions {
        let how = match q.kind {
            QuestionKind::Single => "one code",
            QuestionKind::Multi => "a list of codes (may be empty)",
            QuestionKind::Ordinal => "one code, an ordered scale from least to most",
        };
        let _ = writeln!(out, "- \"{}\": {} — {how}:", q.key, q.prompt);
        for o in &q.options {
            let _ = writeln!(out, "  - {}: {}", o.value, o.label);
        }
    }
    out
}

/// A short, stable name of the instructions (hex SHA-256, 16 characters).
pub fn digest(instructions: &str, model: &str, temperature: f64) -> String {
    let mut hash = Sha256::new();
    hash.update(instructions.as_bytes());
    hash.update([0]);
    hash.update(model.as_bytes());
    hash.update([0]);
    hash.update(temperature.to_bits().to_le_bytes());
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The item as the model sees it: metadata, description and excerpts of long texts.
pub fn item_message(item: &Item) -> String {
    let excerpt = |value: &Value| -> Value {
        match value {
            Value::String(s) if s.chars().count() > EXCERPT_CHARS => {
                Value::String(s.chars().take(EXCERPT_CHARS).collect::<String>() + " […]")
            }
            other => other.clone(),
        }
    };
    let text = match &item.text {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), excerpt(v)))
                .collect(),
        ),
        other => other.clone(),
    };
    let shown = json!({
        "type": item.item_type,
        "title": item.title,
        "creators": item.creators,
        "metadata": item.metadata,
        "text": text,
    });
    format!("Label this item:\n{shown}")
}

/// The JSON schema of an answer (for `response_format`), with rationale and confidence.
pub fn answer_schema(schema: &LabelSchema) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for q in &schema.questions {
        let codes: Vec<&str> = q.options.iter().map(|o| o.value.as_str()).collect();
        let property = match q.kind {
            QuestionKind::Multi => {
                json!({"type": "array", "items": {"type": "string", "enum": codes}})
            }
            _ => json!({"type": "string", "enum": codes}),
        };
        properties.insert(q.key.clone(), property);
        required.push(q.key.clone());
    }
    properties.insert("rationale".into(), json!({"type": "string"}));
    properties.insert("confidence".into(), json!({"type": "number"}));
    required.push("rationale".into());
    required.push("confidence".into());
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A model's answer, checked against the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAnswer {
    pub answer: Value,
    pub rationale: String,
    pub confidence: Option<f64>,
}

/// Reads a model's reply (a JSON object, possibly in a Markdown code fence) and checks it
/// against the schema. The error says what is wrong, for the failure record.
pub fn parse_answer(content: &str, schema: &LabelSchema) -> Result<ParsedAnswer, String> {
    let trimmed = content.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed)
        .trim();
    let value: Value =
        serde_json::from_str(unfenced).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("the answer is not a JSON object".into());
    };
    let rationale = match fields.remove("rationale") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err("rationale is not a string".into()),
    };
    let confidence = match fields.remove("confidence") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(c) if (0.0..=1.0).contains(&c) => Some(c),
            _ => return Err(format!("confidence {n} is not between 0 and 1")),
        },
        None | Some(Value::Null) => None,
        Some(_) => return Err("confidence is not a number".into()),
    };
    let answer = Value::Object(fields);
    schema.validate_answer(&answer)?;
    Ok(ParsedAnswer {
        answer,
        rationale,
        confidence,
    })
}
