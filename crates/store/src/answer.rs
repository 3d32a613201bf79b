//! What an answer is and when two say the same thing. An answer is `{question: value}`; a
//! value is a code, a list of codes (a multi-label answer: a set, so order does not matter),
//! or any other JSON the schema allows. Every comparison of answers in the workspace (replay
//! of a retried submission, gold scoring, vote agreement, overturned labels, agreement with the
//! consensus) goes through [`same_value`] and [`value_key`], so they cannot drift apart.

use serde_json::Value;

/// Canonical text of one question's value: a code, or the sorted set of codes joined by `|`.
/// None for other JSON (numbers, objects, null), which compare as JSON.
pub fn value_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(codes) => {
            let mut codes: Vec<&str> = codes.iter().filter_map(Value::as_str).collect();
            codes.sort_unstable();
            Some(codes.join("|"))
        }
        _ => None,
    }
}

/// True when two values of one question say the same thing.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (value_key(a), value_key(b)) {
        (Some(p), Some(q)) => p == q,
        _ => a == b,
    }
}

/// True when two answers say the same thing: the same questions, each with the same value.
/// A retried submission is a replay only if this holds.
pub fn same_answer(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(x), Some(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| same_value(value, other)))
        }
        _ => a == b,
    }
}

/// True when an answer matches a gold answer on every question the gold answer names.
pub fn matches_gold(answer: &Value, gold: &Value) -> bool {
    let Some(gold) = gold.as_object() else {
        return false;
    };
    gold.iter().all(|(key, expected)| {
        let given = answer.get(key).and_then(value_key);
        given.is_some() && given == value_key(expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_label_values_are_sets_and_codes_compare_as_text() {
        assert!(same_value(&json!(["b", "a"]), &json!(["a", "b"])));
        assert!(!same_value(&json!(["a"]), &json!(["a", "b"])));
        assert!(same_value(&json!("safe"), &json!("safe")));
        assert!(!same_value(&json!("safe"), &json!(["safe", "x"])));
        assert!(same_value(&json!(3), &json!(3)));
        assert!(!same_value(&json!(3), &json!("3x")));
    }

    #[test]
    fn answers_are_the_same_when_every_question_has_the_same_value_sets_unordered() {
        let a = json!({"explicit": "yes", "topics": ["drugs", "violence"]});
        assert!(same_answer(
            &a,
            &json!({"topics": ["violence", "drugs"], "explicit": "yes"})
        ));
        assert!(!same_answer(
            &a,
            &json!({"explicit": "no", "topics": ["drugs", "violence"]})
        ));
        assert!(!same_answer(&a, &json!({"explicit": "yes"})));
        assert!(!same_answer(
            &a,
            &json!({"explicit": "yes", "topics": ["drugs"]})
        ));
    }

    #[test]
    fn gold_matches_on_the_questions_gold_names_with_sets_unordered() {
        let gold = json!({"decision": "VIOLATING", "category": ["DG.HATE", "DG.VIOL"]});
        assert!(matches_gold(
            &json!({"decision": "VIOLATING", "category": ["DG.VIOL", "DG.HATE"], "severity": "S2"}),
            &gold
        ));
        assert!(!matches_gold(
            &json!({"decision": "VIOLATING", "category": ["DG.VIOL"]}),
            &gold
        ));
        assert!(!matches_gold(&json!({"decision": "VIOLATING"}), &gold));
    }
}
