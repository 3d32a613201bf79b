//! Model-assisted overlap in the live queue, and a model's imported predictions: the
//! all-or-nothing import, the stratified sample that becomes review work, and the human
//! labels on it that the estimate reads.

use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::{
    AccountKind, AnswerKind, ItemState, NewPredictionSample, NewUser, NextItem, OnConflict,
    PredictionRow, Project, REVIEW_PRIORITY, SampledItem, Store, Submission, User,
};
use serde_json::{Value, json};

async fn project_with(store: &Store, slug: &str, settings: Value, count: usize) -> Project {
    let project = fixtures::project(store, slug).await;
    let project = store
        .update_project(project.id, &project.name, "", settings, None)
        .await
        .unwrap();
    fixtures::import_items(
        store,
        project.id,
        "items.csv",
        &fixtures::tracks_csv(count),
        OnConflict::Error,
    )
    .await
    .unwrap();
    project
}

async fn model_account(store: &Store, username: &str) -> User {
    let new = NewUser {
        username: username.into(),
        display_name: None,
        password: None,
        is_admin: false,
        kind: AccountKind::Model,
    };
    store.create_user(new, None).await.unwrap()
}

fn submission(item_id: ItemId, decision: &str, severity: &str, key: &str) -> Submission {
    let mut answer = fixtures::answer(decision, severity);
    if decision == "VIOLATING" {
        answer["category"] = json!(["DG.VIOL"]);
    }
    Submission {
        item_id,
        kind: AnswerKind::Label,
        answer,
        rationale: String::new(),
        flags: Vec::new(),
        guideline_version_id: None,
        time_spent_ms: Some(1_000),
        idempotency_key: key.into(),
    }
}

/// Serves the next item to `who` and labels it.
async fn label_next(
    store: &Store,
    project: &Project,
    who: &User,
    decision: &str,
    key: &str,
) -> ItemId {
    let NextItem::Leased(lease) = store.next_item(project, who).await.unwrap() else {
        panic!("{} expected an item", who.username);
    };
    let severity = if decision == "VIOLATING" { "S4" } else { "S0" };
    let key = format!("predictions-spec-{key}");
    let s = submission(lease.item.id, decision, severity, &key);
    store.submit(project, who, s).await.unwrap();
    lease.item.id
}

fn assist(on_disagreement: &str) -> Value {
    json!({"queue": {"dynamic": true, "min_overlap": 2, "overlap": 3, "model_assist": {
        "enabled": true, "min_score": 0.8, "human_labels": 1,
        "on_disagreement": on_disagreement}}})
}

async fn a_confident_model_and_one_agreeing_human_finish_an_item_and_disagreement_raises_it(
    store: TestStore,
) {
    let project = project_with(&store, "assist", assist("raise_overlap"), 2).await;
    let model = model_account(&store, "assist-model").await;
    // A rules-style label states no confidence: its severity S4 scores 1.0.
    label_next(&store, &project, &model, "VIOLATING", "model-1").await;
    label_next(&store, &project, &model, "VIOLATING", "model-2").await;
    let (ann, ben) = (
        fixtures::user(&store, "ann").await,
        fixtures::user(&store, "ben").await,
    );
    let agreed = label_next(&store, &project, &ann, "VIOLATING", "ann-1").await;
    assert_eq!(
        store.item(project.id, agreed).await.unwrap().state,
        ItemState::Labelled,
        "one human agreeing with a confident model is enough"
    );
    let disputed = label_next(&store, &project, &ben, "NOT_VIOLATING", "ben-1").await;
    assert_ne!(disputed, agreed);
    // Disagreement raised the overlap from 2 to 3: a second human label is not enough.
    let carl = fixtures::user(&store, "carl").await;
    let NextItem::Leased(lease) = store.next_item(&project, &carl).await.unwrap() else {
        panic!("the disputed item needs more labels");
    };
    assert_eq!(lease.item.id, disputed);
    let s = submission(disputed, "NOT_VIOLATING", "S0", "predictions-spec-carl-1");
    store.submit(&project, &carl, s).await.unwrap();
    assert_eq!(
        store.item(project.id, disputed).await.unwrap().state,
        ItemState::InProgress
    );
    let saved = store.model_assist_savings(project.id).await.unwrap();
    assert_eq!((saved.items, saved.labels_saved), (1, 1));
}

async fn disagreeing_with_a_confident_model_escalates_when_so_configured(store: TestStore) {
    let project = project_with(&store, "assist-esc", assist("escalate"), 1).await;
    let model = model_account(&store, "esc-model").await;
    label_next(&store, &project, &model, "VIOLATING", "model-1").await;
    let ann = fixtures::user(&store, "ann").await;
    let item = label_next(&store, &project, &ann, "NOT_VIOLATING", "ann-1").await;
    assert_eq!(
        store.item(project.id, item).await.unwrap().state,
        ItemState::Escalated
    );
    let saved = store.model_assist_savings(project.id).await.unwrap();
    assert_eq!((saved.items, saved.labels_saved), (0, 0));
}

async fn without_model_assist_a_model_label_changes_no_overlap(store: TestStore) {
    let settings = json!({"queue": {"overlap": 2}});
    let project = project_with(&store, "no-assist", settings, 1).await;
    let model = model_account(&store, "plain-model").await;
    label_next(&store, &project, &model, "VIOLATING", "model-1").await;
    let ann = fixtures::user(&store, "ann").await;
    let item = label_next(&store, &project, &ann, "VIOLATING", "ann-1").await;
    assert_eq!(
        store.item(project.id, item).await.unwrap().state,
        ItemState::InProgress
    );
}

fn row(line: u64, item: &str, model: &str, label: &str, score: f64) -> PredictionRow {
    PredictionRow {
        line,
        item: item.into(),
        model: model.into(),
        label: label.into(),
        score,
    }
}

/// Items 1–6 predicted VIOLATING at 0.9, items 7–12 NOT_VIOLATING at 0.2.
fn good_rows() -> Vec<PredictionRow> {
    (1..=12)
        .map(|n| {
            let (label, score) = if n <= 6 {
                ("VIOLATING", 0.9)
            } else {
                ("NOT_VIOLATING", 0.2)
            };
            row(n + 1, &format!("item-{n:05}"), "clf", label, score)
        })
        .collect()
}

async fn predictions_import_all_or_nothing_with_the_line_and_field_at_fault(store: TestStore) {
    let project = project_with(&store, "preds", json!({}), 12).await;
    for (bad, says) in [
        (
            row(3, "item-00002", "clf", "MAYBE", 0.5),
            "line 3: field label",
        ),
        (
            row(4, "item-99999", "clf", "VIOLATING", 0.5),
            "line 4: field item",
        ),
        (
            row(5, "item-00002", "other", "VIOLATING", 0.5),
            "line 5: field model",
        ),
        (
            row(6, "item-00002", "clf", "VIOLATING", 1.5),
            "line 6: field score",
        ),
    ] {
        let mut rows = vec![row(2, "item-00001", "clf", "VIOLATING", 0.9)];
        rows.push(bad);
        let err = store
            .import_predictions(&project, "clf", rows)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err} should name {says}");
        assert!(
            store
                .predictions(project.id, "clf")
                .await
                .unwrap()
                .is_empty()
        );
    }
    let imported = store
        .import_predictions(&project, "clf", good_rows())
        .await
        .unwrap();
    assert_eq!(imported, 12);
    let err = store
        .import_predictions(
            &project,
            "clf",
            vec![row(2, "item-00003", "clf", "VIOLATING", 0.1)],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already has a different prediction"), "{err}");
    let again = store
        .import_predictions(&project, "clf", good_rows())
        .await
        .unwrap();
    assert_eq!(again, 0, "a retried import changes nothing");
    let stored = store.predictions(project.id, "clf").await.unwrap();
    assert_eq!(stored.len(), 12);
    assert_eq!(
        (stored[0].label.as_str(), stored[0].score),
        ("VIOLATING", 0.9)
    );
    assert_eq!(store.prediction_models(project.id).await.unwrap(), ["clf"]);
}

async fn a_sample_becomes_review_work_and_carries_the_human_labels(store: TestStore) {
    let project = project_with(&store, "sample", json!({"queue": {"overlap": 1}}), 12).await;
    store
        .import_predictions(&project, "clf", good_rows())
        .await
        .unwrap();
    let predictions = store.predictions(project.id, "clf").await.unwrap();
    // Two sampled items: one from each stratum, inclusion 1/6.
    let picked = [predictions[4].item_id, predictions[9].item_id];
    let items = vec![
        SampledItem {
            item_id: picked[0],
            stratum: "VIOLATING | 0.50–1.00".into(),
            inclusion: 1.0 / 6.0,
        },
        SampledItem {
            item_id: picked[1],
            stratum: "NOT_VIOLATING | 0.00–0.50".into(),
            inclusion: 1.0 / 6.0,
        },
    ];
    let new = NewPredictionSample {
        model: "clf".into(),
        size: 2,
        bands: 2,
        seed: 7,
        items,
    };
    let sample = store.create_prediction_sample(&project, new).await.unwrap();
    assert_eq!((sample.items, sample.queued_for_review), (2, 2));
    assert_eq!(sample.question, "decision");
    let item = store.item(project.id, picked[0]).await.unwrap();
    assert_eq!(item.priority, REVIEW_PRIORITY);
    // People are served the sampled items first.
    let ann = fixtures::user(&store, "ann").await;
    let first = label_next(&store, &project, &ann, "VIOLATING", "ann-1").await;
    let second = label_next(&store, &project, &ann, "VIOLATING", "ann-2").await;
    let mut served = [first, second];
    served.sort_unstable();
    let mut expected = picked;
    expected.sort_unstable();
    assert_eq!(served, expected);
    let latest = store
        .latest_prediction_sample(project.id, "clf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, sample.id);
    assert_eq!(latest.queued_for_review, 0);
    let units = store
        .prediction_sample_units(project.id, &latest)
        .await
        .unwrap();
    assert_eq!(units.len(), 2);
    for unit in &units {
        assert_eq!(unit.human_labels, ["VIOLATING"]);
        assert!((unit.inclusion - 1.0 / 6.0).abs() < 1e-12);
    }
    assert_eq!(units[0].predicted, "VIOLATING");
    assert_eq!(units[1].predicted, "NOT_VIOLATING");
}

on_every_backend!(
    a_confident_model_and_one_agreeing_human_finish_an_item_and_disagreement_raises_it,
    disagreeing_with_a_confident_model_escalates_when_so_configured,
    without_model_assist_a_model_label_changes_no_overlap,
    predictions_import_all_or_nothing_with_the_line_and_field_at_fault,
    a_sample_becomes_review_work_and_carries_the_human_labels,
);
