//! Test–retest consistency: how often an annotator gives the same answer to an item they
//! are served again (intra-rater agreement), per question, for each annotator and for the
//! project, with confidence intervals.
//!
//! Each retest pair is a unit with two ratings, the first answer and the retest's; the
//! figures are Krippendorff's α at the question's level and percent agreement, computed by
//! the same engine path as every agreement figure. The project's figure pools every
//! annotator's pairs (a unit per annotator and item).

use crate::compute::{alpha_and_percent, label_text};
use crate::report::Figure;
use concord_stats::TableBuilder;
use concord_store::{LabelSchema, Question, RetestCounts, RetestPair};
use serde::Serialize;
use std::collections::BTreeMap;

/// Annotators with fewer answered retests than this get their figures, flagged as thin.
pub const FEW_PAIRS: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct RetestReport {
    pub counts: RetestCounts,
    pub questions: Vec<QuestionRetest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionRetest {
    pub key: String,
    pub prompt: String,
    /// Every annotator's pairs together.
    pub project: Consistency,
    pub annotators: Vec<AnnotatorConsistency>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorConsistency {
    pub annotator: String,
    #[serde(flatten)]
    pub consistency: Consistency,
}

/// One group's consistency on one question.
#[derive(Debug, Clone, Serialize)]
pub struct Consistency {
    /// Retest pairs that answer this question both times.
    pub pairs: usize,
    /// Pairs whose two answers are the same.
    pub same: usize,
    pub alpha: Figure,
    pub percent: Figure,
    /// Fewer than [`FEW_PAIRS`] pairs: read the interval, not the value.
    pub thin: bool,
}

/// A project's test–retest report under its current schema, read from the store.
pub async fn project_retest_report(
    store: &concord_store::Store,
    project: &concord_store::Project,
) -> Result<RetestReport, crate::QaError> {
    let schema = store.current_schema(project.id).await?.definition;
    let pairs = store.retest_pairs(project.id).await?;
    let counts = store.retest_counts(project.id).await?;
    Ok(retest_report(&schema, &pairs, counts))
}

/// The report of a project's answered retests under its current schema.
pub fn retest_report(
    schema: &LabelSchema,
    pairs: &[RetestPair],
    counts: RetestCounts,
) -> RetestReport {
    let questions = schema
        .questions
        .iter()
        .map(|question| question_retest(question, pairs))
        .collect();
    RetestReport { counts, questions }
}

fn question_retest(question: &Question, pairs: &[RetestPair]) -> QuestionRetest {
    let answered: Vec<(&RetestPair, String, String)> = pairs
        .iter()
        .filter_map(|pair| {
            let first = pair
                .first
                .get(&question.key)
                .and_then(|v| label_text(question, v))?;
            let retest = pair
                .retest
                .get(&question.key)
                .and_then(|v| label_text(question, v))?;
            Some((pair, first, retest))
        })
        .collect();
    let mut by_annotator: BTreeMap<&str, Vec<&(&RetestPair, String, String)>> = BTreeMap::new();
    for entry in &answered {
        by_annotator
            .entry(entry.0.annotator.as_str())
            .or_default()
            .push(entry);
    }
    QuestionRetest {
        key: question.key.clone(),
        prompt: question.prompt.clone(),
        project: consistency(question, answered.iter()),
        annotators: by_annotator
            .into_iter()
            .map(|(annotator, entries)| AnnotatorConsistency {
                annotator: annotator.to_owned(),
                consistency: consistency(question, entries.into_iter()),
            })
            .collect(),
    }
}

/// α and percent agreement over retest pairs: each pair is a unit (annotator and item)
/// rated by "first" and "retest".
fn consistency<'a>(
    question: &Question,
    entries: impl Iterator<Item = &'a (&'a RetestPair, String, String)>,
) -> Consistency {
    let mut builder = TableBuilder::new();
    let (mut pairs, mut same) = (0, 0);
    for (pair, first, retest) in entries {
        let unit = format!("{}:{}", pair.annotator_id, pair.item_id);
        builder.push(&unit, "first", first);
        builder.push(&unit, "retest", retest);
        pairs += 1;
        same += usize::from(first == retest);
    }
    let (alpha, percent) = if pairs == 0 {
        let none = || Figure {
            undefined: Some("no answered retests yet".into()),
            ..Figure::default()
        };
        (none(), none())
    } else {
        alpha_and_percent(question, builder)
    };
    Consistency {
        pairs,
        same,
        alpha,
        percent,
        thin: pairs < FEW_PAIRS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_store::{ItemId, UserId};
    use serde_json::json;

    fn schema() -> LabelSchema {
        serde_json::from_value(json!({
            "questions": [{"key": "decision", "prompt": "Decision", "kind": "single",
                           "options": [{"value": "OK", "label": "OK"},
                                       {"value": "BAD", "label": "Bad"}]}]
        }))
        .unwrap()
    }

    fn pair(annotator: &str, id: i64, item: i64, first: &str, retest: &str) -> RetestPair {
        RetestPair {
            annotator_id: UserId(id),
            annotator: annotator.into(),
            item_id: ItemId(item),
            first: json!({"decision": first}),
            retest: json!({"decision": retest}),
            retested_at: 0,
        }
    }

    #[test]
    fn a_perfectly_consistent_annotator_has_alpha_one_and_full_agreement() {
        let pairs: Vec<RetestPair> = (0..12)
            .map(|i| {
                pair(
                    "ann",
                    1,
                    i,
                    if i % 3 == 0 { "BAD" } else { "OK" },
                    if i % 3 == 0 { "BAD" } else { "OK" },
                )
            })
            .collect();
        let report = retest_report(&schema(), &pairs, RetestCounts::default());
        let ann = &report.questions[0].annotators[0];
        assert_eq!((ann.consistency.pairs, ann.consistency.same), (12, 12));
        assert_eq!(ann.consistency.alpha.value, Some(1.0));
        assert_eq!(ann.consistency.percent.value, Some(1.0));
        assert!(!ann.consistency.thin);
    }

    #[test]
    fn the_project_pools_every_annotators_pairs_and_each_annotator_has_their_own() {
        // ann: 8 of 10 the same; bob: 5 of 10 (a coin).
        let mut pairs = Vec::new();
        for i in 0..10 {
            let first = if i % 2 == 0 { "OK" } else { "BAD" };
            let ann_retest = if i < 8 {
                first
            } else if first == "OK" {
                "BAD"
            } else {
                "OK"
            };
            pairs.push(pair("ann", 1, i, first, ann_retest));
            let bob_retest = if i < 5 {
                first
            } else if first == "OK" {
                "BAD"
            } else {
                "OK"
            };
            pairs.push(pair("bob", 2, i, first, bob_retest));
        }
        let report = retest_report(&schema(), &pairs, RetestCounts::default());
        let question = &report.questions[0];
        assert_eq!((question.project.pairs, question.project.same), (20, 13));
        assert!((question.project.percent.value.unwrap() - 0.65).abs() < 1e-12);
        let ann = &question.annotators[0].consistency;
        let bob = &question.annotators[1].consistency;
        assert_eq!(question.annotators[0].annotator, "ann");
        assert!((ann.percent.value.unwrap() - 0.8).abs() < 1e-12);
        assert!((bob.percent.value.unwrap() - 0.5).abs() < 1e-12);
        // α for two ratings of balanced binary units: 1 - D_o / D_e with
        // D_e = 2 * 10 * 10 / (20 * 19) for 10 OK and 10 BAD pairable values per 20.
        let expected_ann = 1.0 - 0.2 / (2.0 * 10.0 * 10.0 / (20.0 * 19.0));
        assert!(
            (ann.alpha.value.unwrap() - expected_ann).abs() < 1e-9,
            "{:?}",
            ann.alpha
        );
        assert!(ann.alpha.value > bob.alpha.value);
        let [lo, hi] = ann.percent.ci.expect("an interval on every figure");
        assert!(lo < 0.8 && 0.8 <= hi);
    }

    #[test]
    fn no_answered_retests_say_so_rather_than_show_a_number() {
        let report = retest_report(&schema(), &[], RetestCounts::default());
        let project = &report.questions[0].project;
        assert_eq!(project.pairs, 0);
        assert_eq!(project.alpha.value, None);
        assert_eq!(
            project.alpha.undefined.as_deref(),
            Some("no answered retests yet")
        );
        assert!(report.questions[0].annotators.is_empty());
    }
}
