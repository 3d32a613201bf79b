//! An automated annotator scored like a person, on a run small enough to check by hand:
//! three people agree on every item (the consensus), a model labels the same items and two
//! gold items, sometimes stating a confidence.

use concord_qa::compute_run;
use concord_qa::report::{ModelQuestionScore, Share};
use concord_store::{
    AccountKind, AnnotatorFact, AnswerKind, ConsensusInput, ItemFact, ItemState, LabelSchema,
    QaSettings, Question, QuestionKind, SchemaOption,
};
use concord_store::{ItemId, UserId};
use serde_json::json;

const N: &str = "NOT_VIOLATING";
const B: &str = "BORDERLINE";
const V: &str = "VIOLATING";

fn schema() -> LabelSchema {
    let option = |value: &str| SchemaOption {
        value: value.into(),
        label: value.to_lowercase(),
        family: None,
        description: String::new(),
    };
    LabelSchema {
        questions: vec![Question {
            key: "decision".into(),
            prompt: "Does the item break the policy?".into(),
            kind: QuestionKind::Single,
            options: vec![option(N), option(B), option(V)],
            required: true,
        }],
        rationale: "optional".into(),
        context_flags: Vec::new(),
    }
}

fn item(id: i64, gold: Option<&str>) -> ItemFact {
    ItemFact {
        id,
        external_id: format!("t{id}"),
        title: format!("Track {id}"),
        state: ItemState::Labelled,
        is_gold: gold.is_some(),
        gold_answer: gold.map(|g| json!({"decision": g})),
        escalation_reason: None,
        adjudicated: false,
        open_escalation: false,
    }
}

/// Items 1–8: the people's unanimous answer, the model's, and the model's confidence.
/// Items 9 and 10 are gold (V and N), labelled by the model only, each at 0.99.
const ITEMS: [(i64, &str, &str, Option<f64>); 8] = [
    (1, N, N, Some(0.95)),
    (2, N, N, Some(0.92)),
    (3, N, V, Some(0.91)),
    (4, N, N, Some(0.55)),
    (5, V, V, Some(0.85)),
    (6, V, N, Some(0.52)),
    (7, B, B, None),
    (8, B, V, Some(0.3)),
];

fn input() -> ConsensusInput {
    let person = |id: i64| AnnotatorFact {
        id,
        username: format!("person{id}"),
        kind: AccountKind::Human,
    };
    let model = AnnotatorFact {
        id: 100,
        username: "tracks.rules".into(),
        kind: AccountKind::Model,
    };
    let mut input = ConsensusInput::default();
    let label = |value: &str| json!({"decision": value});
    for (id, people, said, confidence) in ITEMS {
        input.items.push(item(id, None));
        for who in 1..=3 {
            let answer = label(people);
            input
                .labels
                .push(ItemId(id), &person(who), AnswerKind::Label, answer, None, 0);
        }
        input
            .labels
            .push(ItemId(id), &model, AnswerKind::Label, label(said), None, 0);
        if let Some(c) = confidence {
            input
                .model_confidence
                .insert((ItemId(id), UserId(model.id)), c);
        }
    }
    for (id, gold) in [(9, V), (10, N)] {
        input.items.push(item(id, Some(gold)));
        input
            .labels
            .push(ItemId(id), &model, AnswerKind::Label, label(V), None, 0);
        input
            .model_confidence
            .insert((ItemId(id), UserId(model.id)), 0.99);
    }
    input
}

fn scores() -> ModelQuestionScore {
    let settings = QaSettings {
        method: "mv".into(),
        ..QaSettings::default()
    };
    let computed = compute_run(&schema(), &settings, &input()).unwrap();
    let models = computed.report.models;
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].annotator, "tracks.rules");
    assert_eq!(models[0].labels, 10);
    models[0].questions[0].clone()
}

fn assert_share(share: &Share, successes: u64, trials: u64, ci: [f64; 2], what: &str) {
    assert_eq!(
        (share.successes, share.trials),
        (successes, trials),
        "{what}"
    );
    let [low, high] = share.ci.unwrap_or_else(|| panic!("{what}: no interval"));
    assert!(
        (low - ci[0]).abs() < 1e-5 && (high - ci[1]).abs() < 1e-5,
        "{what}: [{low}, {high}] is not {ci:?}"
    );
}

#[test]
fn agreement_and_gold_accuracy_carry_wilson_intervals() {
    let score = scores();
    assert_eq!(score.question, "decision");
    // Items 1, 2, 4, 5 and 7 of the eight decided ones; 95 % Wilson: (0.305742, 0.863156).
    assert_share(&score.agreement, 5, 8, [0.305742, 0.863156], "agreement");
    assert_eq!(score.agreement.estimate, Some(0.625));
    // Gold: right on item 9, wrong on item 10.
    assert_share(&score.gold, 1, 2, [0.094531, 0.905469], "gold");
}

#[test]
fn each_category_is_scored_against_the_consensus_and_the_gold() {
    let score = scores();
    let codes: Vec<&str> = score.categories.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, [N, B, V], "schema order");
    let [n, b, v] = [0, 1, 2].map(|i| &score.categories[i]);
    assert_share(&n.agreement, 3, 4, [0.300642, 0.954413], "N by consensus");
    assert_share(&b.agreement, 1, 2, [0.094531, 0.905469], "B by consensus");
    assert_share(&v.agreement, 1, 2, [0.094531, 0.905469], "V by consensus");
    assert_share(&v.gold, 1, 1, [0.206549, 1.0], "V on gold (item 9)");
    assert_share(&n.gold, 0, 1, [0.0, 0.793451], "N on gold (item 10)");
    assert_eq!(b.gold.trials, 0, "no gold item is borderline");
    assert_eq!(b.gold.ci, None);
}

#[test]
fn the_calibration_table_bands_stated_confidence_against_the_consensus() {
    let score = scores();
    let bands: Vec<(f64, f64, u64, u64)> = score
        .calibration
        .iter()
        .map(|b| (b.low, b.high, b.accuracy.successes, b.accuracy.trials))
        .collect();
    // Item 7 stated nothing; items 9 and 10 have no consensus: neither is in the table.
    assert_eq!(
        bands,
        [
            (0.0, 0.5, 0, 1),
            (0.5, 0.6, 1, 2),
            (0.8, 0.9, 1, 1),
            (0.9, 1.0, 2, 3)
        ]
    );
    let means: Vec<f64> = score
        .calibration
        .iter()
        .map(|b| b.mean_confidence)
        .collect();
    for (mean, expected) in means
        .iter()
        .zip([0.3, 0.535, 0.85, (0.95 + 0.92 + 0.91) / 3.0])
    {
        assert!((mean - expected).abs() < 1e-12, "{means:?}");
    }
    assert_share(
        &score.calibration[3].accuracy,
        2,
        3,
        [0.20766, 0.938508],
        "0.9–1.0",
    );
}

#[test]
fn the_confusion_matrix_is_model_answer_by_consensus() {
    let confusion = scores()
        .confusion
        .expect("a single-choice question has one");
    assert_eq!(confusion.classes, [N, B, V]);
    // Rows: the model said N (items 1, 2, 4 right; 6 where V), B (7), V (3, 5, 8).
    assert_eq!(confusion.counts, [[3, 0, 1], [0, 1, 0], [1, 1, 1]]);
    assert_eq!(confusion.max, 3);
}

#[test]
fn a_report_stored_before_these_scores_still_reads() {
    let old = json!({"annotator": "tracks.rules", "labels": 3, "agreement": {"decision": 0.5}});
    let report: concord_qa::report::ModelReport = serde_json::from_value(old).unwrap();
    assert!(report.questions.is_empty());
}
