//! Dynamic overlap replayed on real crowd labels (gal_adult_content2, Apache-2.0, in
//! data/): each gold item's labels arrive in file order, and the queue's own rule
//! (`decide_overlap` over `vote_agreement`) decides when to stop asking. Prints labels used
//! and majority-vote accuracy against gold for fixed and dynamic overlap (BENCHMARKS.md).

use concord_store::queue_rules::{OverlapDecision, QueueSettings, decide_overlap, vote_agreement};
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
    let schema = LabelSchema {
        questions: vec![Question {
            key: "rating".into(),
            prompt: "Content rating".into(),
            kind: QuestionKind::Ordinal,
            options: ["G", "P", "R", "X"]
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
    };
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
