//! Dynamic overlap replayed on real crowd labels (gal_adult_content2, Apache-2.0, in
//! data/): each gold item's labels arrive in file order, and the queue's own rule
//! (`decide_overlap` over `vote_agreement`) decides when to stop asking. Prints labels used
//! and majority-vote accuracy against gold for fixed and dynamic overlap (BENCHMARKS.md).
//! Model-assisted overlap is replayed the same way with `decide_overlap_assisted` and a
//! simulated model derived from gold with a fixed seed (no real model output exists for
//! this data set).

use concord_store::ItemId;
use concord_store::queue_rules::{
    EscalationReason, ModelAssist, ModelDisagreementAction, ModelVote, OverlapDecision,
    OverlapStep, QueueSettings, decide_overlap, decide_overlap_assisted, vote_agreement,
};
use concord_store::{LabelSchema, Question, QuestionKind, SchemaOption};
use serde_json::{Value, json};
use std::collections::HashMap;

fn read_csv(path: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("the data set ships in data/");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn majority(labels: &[&str]) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    let mut best: Vec<(&str, usize)> = counts.into_iter().collect();
    best.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    best[0].0.to_owned()
}

fn rating_schema(classes: &[&str]) -> LabelSchema {
    LabelSchema {
        questions: vec![Question {
            key: "rating".into(),
            prompt: "Content rating".into(),
            kind: QuestionKind::Ordinal,
            options: classes
                .iter()
                .map(|v| SchemaOption {
                    value: (*v).into(),
                    label: (*v).into(),
                    family: None,
                    description: String::new(),
                })
                .collect(),
            required: true,
        }],
        rationale: "off".into(),
        context_flags: vec![],
    }
}

#[test]
fn dynamic_overlap_saves_labels_on_gal_adult_content2_at_little_accuracy_cost() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/gal_adult_content2");
    let mut by_item: HashMap<String, Vec<String>> = HashMap::new();
    for row in read_csv(&format!("{root}/labels.csv")) {
        by_item
            .entry(row[0].clone())
            .or_default()
            .push(row[2].clone());
    }
    let gold: Vec<(String, String)> = read_csv(&format!("{root}/gold.csv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let schema = rating_schema(&["G", "P", "R", "X"]);
    let max: usize = 5;
    let dynamic = QueueSettings {
        dynamic: true,
        min_overlap: 2,
        overlap: max as i64,
        target_agreement: 0.75,
        ..QueueSettings::default()
    };
    let (mut fixed_labels, mut dynamic_labels) = (0usize, 0usize);
    let (mut fixed_right, mut dynamic_right, mut escalated, mut n) = (0, 0, 0, 0);
    for (item, truth) in &gold {
        let Some(labels) = by_item.get(item) else {
            continue;
        };
        if labels.len() < max {
            continue;
        }
        n += 1;
        let all: Vec<&str> = labels[..max].iter().map(String::as_str).collect();
        fixed_labels += max;
        fixed_right += usize::from(majority(&all) == *truth);
        let mut needed = dynamic.min_overlap as usize;
        loop {
            let answers: Vec<Value> = all[..needed].iter().map(|l| json!({"rating": l})).collect();
            match decide_overlap(&dynamic, needed as i64, vote_agreement(&schema, &answers)) {
                OverlapDecision::AskOneMore => needed += 1,
                decision => {
                    escalated += usize::from(decision == OverlapDecision::Escalate);
                    break;
                }
            }
        }
        dynamic_labels += needed;
        dynamic_right += usize::from(majority(&all[..needed]) == *truth);
    }
    let saved = 1.0 - dynamic_labels as f64 / fixed_labels as f64;
    let (fixed_acc, dynamic_acc) = (
        fixed_right as f64 / n as f64,
        dynamic_right as f64 / n as f64,
    );
    println!("gal_adult_content2, {n} gold items with ≥ {max} labels");
    println!("fixed overlap {max}:       {fixed_labels} labels, accuracy {fixed_acc:.4}");
    println!(
        "dynamic 2→{max} at 0.75: {dynamic_labels} labels ({:.1} % saved), accuracy {dynamic_acc:.4}, {escalated} escalated",
        saved * 100.0
    );
    assert!(n > 100, "{n}");
    assert!(saved > 0.25, "dynamic overlap should save labels: {saved}");
    assert!(
        fixed_acc - dynamic_acc < 0.05,
        "{fixed_acc} vs {dynamic_acc}"
    );
}

/// A deterministic generator (SplitMix64) for the simulated model.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A simulated model, derived from gold with a fixed seed (there is no real model output
/// for this data set): right with probability 0.8, else a uniformly chosen wrong class;
/// its score is uniform on [0.6, 1] when right and on [0.3, 0.95] when wrong, so a high
/// score is more often right but not always.
fn simulated_model(truth: &str, classes: &[&str], rng: &mut SplitMix) -> ModelVote {
    let right = rng.next() < 0.8;
    let label = if right {
        truth.to_owned()
    } else {
        let others: Vec<&&str> = classes.iter().filter(|c| **c != truth).collect();
        (*others[(rng.next() * others.len() as f64) as usize % others.len()]).to_owned()
    };
    let score = if right {
        0.6 + 0.4 * rng.next()
    } else {
        0.3 + 0.65 * rng.next()
    };
    ModelVote {
        answer: json!({ "rating": label }),
        score,
    }
}

/// Labels one item takes under a scheme, and whether it was escalated.
fn replay_item(
    settings: &QueueSettings,
    schema: &LabelSchema,
    labels: &[&str],
    model: Option<&ModelVote>,
) -> (usize, bool) {
    let answers: Vec<Value> = labels.iter().map(|l| json!({ "rating": l })).collect();
    let mut needed = settings.initial_needed(ItemId(1));
    let mut k = 1usize;
    loop {
        match decide_overlap_assisted(settings, schema, needed, &answers[..k], model) {
            OverlapStep::Wait | OverlapStep::Need(_) if k >= answers.len() => return (k, false),
            OverlapStep::Wait => k += 1,
            OverlapStep::Need(more) => {
                needed = more;
                k += 1;
            }
            OverlapStep::Done => return (k, false),
            OverlapStep::Escalate(_) => return (k, true),
        }
    }
}

#[test]
fn model_assisted_overlap_saves_labels_on_gal_adult_content2_with_a_simulated_model() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/gal_adult_content2");
    let mut by_item: HashMap<String, Vec<String>> = HashMap::new();
    for row in read_csv(&format!("{root}/labels.csv")) {
        by_item
            .entry(row[0].clone())
            .or_default()
            .push(row[2].clone());
    }
    let gold: Vec<(String, String)> = read_csv(&format!("{root}/gold.csv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let classes = ["G", "P", "R", "X"];
    let schema = rating_schema(&classes);
    let max = 5usize;
    let fixed = QueueSettings {
        overlap: max as i64,
        ..QueueSettings::default()
    };
    let dynamic = QueueSettings {
        dynamic: true,
        min_overlap: 2,
        target_agreement: 0.75,
        ..fixed.clone()
    };
    let assist =
        |base: &QueueSettings, min_score: f64, on: ModelDisagreementAction| QueueSettings {
            model_assist: ModelAssist {
                enabled: true,
                min_score,
                human_labels: 1,
                on_disagreement: on,
            },
            ..base.clone()
        };
    let schemes: Vec<(String, QueueSettings)> = vec![
        (format!("fixed overlap {max}"), fixed.clone()),
        ("dynamic 2 → 5 at 0.75".into(), dynamic.clone()),
        (
            "fixed 5 + model assist ≥ 0.9, raise".into(),
            assist(&fixed, 0.9, ModelDisagreementAction::RaiseOverlap),
        ),
        (
            "dynamic + model assist ≥ 0.9, raise".into(),
            assist(&dynamic, 0.9, ModelDisagreementAction::RaiseOverlap),
        ),
        (
            "dynamic + model assist ≥ 0.8, raise".into(),
            assist(&dynamic, 0.8, ModelDisagreementAction::RaiseOverlap),
        ),
        (
            "dynamic + model assist ≥ 0.9, escalate".into(),
            assist(&dynamic, 0.9, ModelDisagreementAction::Escalate),
        ),
    ];
    let mut rng = SplitMix(25);
    let mut items = Vec::new();
    for (item, truth) in &gold {
        if let Some(labels) = by_item.get(item).filter(|l| l.len() >= max) {
            let model = simulated_model(truth, &classes, &mut rng);
            items.push((truth.clone(), labels[..max].to_vec(), model));
        }
    }
    let model_right = items
        .iter()
        .filter(|(t, _, m)| m.answer["rating"] == t.as_str())
        .count();
    println!(
        "gal_adult_content2, {} gold items with ≥ {max} labels; simulated model right on {model_right}",
        items.len()
    );
    let mut results = Vec::new();
    for (name, settings) in &schemes {
        let (mut used, mut right, mut escalated) = (0usize, 0usize, 0usize);
        for (truth, labels, model) in &items {
            let all: Vec<&str> = labels.iter().map(String::as_str).collect();
            let (k, up) = replay_item(settings, &schema, &all, Some(model));
            used += k;
            escalated += usize::from(up);
            right += usize::from(majority(&all[..k]) == *truth);
        }
        let accuracy = right as f64 / items.len() as f64;
        println!("{name}: {used} labels, accuracy {accuracy:.3}, {escalated} escalated");
        results.push((used, accuracy));
    }
    let (fixed_used, fixed_acc) = results[0];
    let (assisted_used, assisted_acc) = results[2];
    assert!(items.len() > 100);
    assert!(
        assisted_used < fixed_used,
        "model assist should save labels: {assisted_used} vs {fixed_used}"
    );
    assert!(
        fixed_acc - assisted_acc < 0.1,
        "{fixed_acc} vs {assisted_acc}"
    );
    assert!(
        results[3].0 < results[1].0,
        "assist on top of dynamic saves more"
    );
}

// The model-assisted overlap rule on the catalog-safety schema.

fn assisted(on_disagreement: ModelDisagreementAction) -> QueueSettings {
    QueueSettings {
        overlap: 3,
        model_assist: ModelAssist {
            enabled: true,
            min_score: 0.8,
            human_labels: 1,
            on_disagreement,
        },
        ..QueueSettings::default()
    }
}

#[test]
fn a_confident_model_and_an_agreeing_first_human_end_the_item_at_one_label() {
    let schema = LabelSchema::catalog_safety();
    let s = assisted(ModelDisagreementAction::RaiseOverlap);
    let violating =
        json!({"decision": "VIOLATING", "category": ["DG.VIOL", "DG.HATE"], "severity": "S3"});
    let same_set =
        json!({"decision": "VIOLATING", "category": ["DG.HATE", "DG.VIOL"], "severity": "S3"});
    let model = ModelVote {
        answer: violating.clone(),
        score: 0.85,
    };
    let step = decide_overlap_assisted(
        &s,
        &schema,
        3,
        std::slice::from_ref(&same_set),
        Some(&model),
    );
    assert_eq!(step, OverlapStep::Done);
    // Not confident enough, or assist off: the plain fixed overlap of 3.
    let unsure = ModelVote {
        score: 0.79,
        ..model.clone()
    };
    let step = decide_overlap_assisted(
        &s,
        &schema,
        3,
        std::slice::from_ref(&same_set),
        Some(&unsure),
    );
    assert_eq!(step, OverlapStep::Wait);
    let off = QueueSettings {
        overlap: 3,
        ..QueueSettings::default()
    };
    let step = decide_overlap_assisted(
        &off,
        &schema,
        3,
        std::slice::from_ref(&same_set),
        Some(&model),
    );
    assert_eq!(step, OverlapStep::Wait);
    assert_eq!(
        decide_overlap_assisted(
            &off,
            &schema,
            3,
            &[same_set.clone(), violating.clone(), violating],
            None
        ),
        OverlapStep::Done
    );
}

#[test]
fn disagreeing_with_a_confident_model_raises_the_overlap_or_escalates() {
    let schema = LabelSchema::catalog_safety();
    let model = ModelVote {
        answer: json!({"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S3"}),
        score: 0.95,
    };
    let human = json!({"decision": "NOT_VIOLATING", "category": [], "severity": "S0"});
    let raise = QueueSettings {
        dynamic: true,
        min_overlap: 2,
        ..assisted(ModelDisagreementAction::RaiseOverlap)
    };
    let step = decide_overlap_assisted(
        &raise,
        &schema,
        2,
        std::slice::from_ref(&human),
        Some(&model),
    );
    assert_eq!(step, OverlapStep::Need(3));
    let escalate = assisted(ModelDisagreementAction::Escalate);
    let step = decide_overlap_assisted(&escalate, &schema, 3, &[human], Some(&model));
    assert_eq!(
        step,
        OverlapStep::Escalate(EscalationReason::ModelDisagreement)
    );
}

#[test]
fn a_rules_model_scores_by_severity_and_the_assist_settings_are_checked() {
    let schema = LabelSchema::catalog_safety();
    let s4 = json!({"decision": "VIOLATING", "category": ["DG.SELF"], "severity": "S4"});
    assert_eq!(ModelVote::from_label(&schema, s4.clone(), None).score, 1.0);
    assert_eq!(ModelVote::from_label(&schema, s4, Some(0.4)).score, 0.4);
    let s0 = json!({"decision": "NOT_VIOLATING", "category": [], "severity": "S0"});
    assert_eq!(ModelVote::from_label(&schema, s0, None).score, 0.0);
    let err = QueueSettings::from_project_settings(
        &json!({"queue": {"model_assist": {"enabled": true, "min_score": 1.5}}}),
    )
    .unwrap_err();
    assert!(err.contains("model_assist.min_score"), "{err}");
    let err = QueueSettings::from_project_settings(
        &json!({"queue": {"overlap": 2, "model_assist": {"human_labels": 3}}}),
    )
    .unwrap_err();
    assert!(err.contains("model_assist.human_labels"), "{err}");
    let on = QueueSettings::from_project_settings(&json!({"queue": {"model_assist": {
        "enabled": true, "on_disagreement": "escalate"}}}))
    .unwrap();
    assert!(on.model_assist.enabled);
    assert!(!QueueSettings::default().model_assist.enabled);
}
