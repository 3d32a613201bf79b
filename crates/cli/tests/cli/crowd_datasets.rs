//! Consensus methods on the real crowd data sets in `data/`, against their gold labels and
//! the figures recorded in their metadata.

use serde_json::Value;

use crate::support::{concord, data_dir, stderr, stdout};

fn gold_accuracy(dataset: &str, extra: &[&str]) -> f64 {
    let dir = data_dir().join(dataset);
    let labels = dir.join("labels.csv");
    let gold = dir.join("gold.csv");
    let mut args = vec![
        "aggregate",
        labels.to_str().unwrap(),
        "--gold",
        gold.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = concord(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    report["gold"]["label_accuracy"].as_f64().unwrap()
}

#[test]
fn dawid_skene_beats_majority_vote_on_the_bluebirds() {
    // Welinder et al. (2010): 39 annotators of very different reliability on 108 images.
    let mv = gold_accuracy("welinder_bluebirds", &["--method", "mv"]);
    let ds = gold_accuracy(
        "welinder_bluebirds",
        &["--method", "ds", "--iterations", "50", "--tol=-inf"],
    );
    assert!((mv - 0.7593).abs() < 1e-3, "majority vote {mv}");
    assert!(ds > 0.89, "Dawid–Skene {ds}");
}

#[test]
fn consensus_on_the_adult_content_set_matches_the_recorded_figures() {
    // metadata.json: majority vote 0.7598 with random tie-breaking over 333 gold items.
    let mv = gold_accuracy("gal_adult_content2", &["--method", "mv"]);
    assert!((mv - 0.7598).abs() < 0.01, "majority vote {mv}");
    let ds = gold_accuracy("gal_adult_content2", &["--method", "ds"]);
    assert!(ds >= mv, "Dawid–Skene {ds} vs majority vote {mv}");
}
