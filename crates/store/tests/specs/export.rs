use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ProjectId;
use concord_store::{ExportRow, NewAnnotation, OnConflict};
use serde_json::json;

async fn exported(store: &TestStore, project_id: ProjectId) -> Vec<ExportRow> {
    let mut rx = store.export(project_id);
    let mut records = Vec::new();
    while let Some(record) = rx.recv().await {
        records.push(record.unwrap());
    }
    records
}

async fn an_export_holds_every_item_once_with_its_annotations_oldest_first(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let other = fixtures::project(&store, "other").await;
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let jsonl = r#"{"id": "c-first", "item_type": "episode", "title": "First in file", "priority": 2}
{"id": "a-second", "item_type": "track", "title": "Second in file", "gold": {"decision": "VIOLATING", "severity": "S4"}}
{"id": "b-third", "item_type": "chapter", "title": "Third in file", "text": {"description": "Quiet"}}
"#;
    fixtures::import_items(&store, project.id, "items.jsonl", jsonl, OnConflict::Error)
        .await
        .unwrap();
    fixtures::import_items(
        &store,
        other.id,
        "other.csv",
        &fixtures::tracks_csv(2),
        OnConflict::Error,
    )
    .await
    .unwrap();
    store
        .save_guideline_draft(project.id, "Rules", &[], "", None)
        .await
        .unwrap();
    let guideline = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    let first = store
        .item_by_external_id(project.id, "c-first")
        .await
        .unwrap();
    let third = store
        .item_by_external_id(project.id, "b-third")
        .await
        .unwrap();

    let bobs = store
        .add_annotation(
            project.id,
            bob.id,
            NewAnnotation {
                rationale: "loud".into(),
                guideline_version_id: Some(guideline.id),
                time_spent_ms: Some(900),
                ..fixtures::annotation(first.id, fixtures::answer("BORDERLINE", "S2"))
            },
        )
        .await
        .unwrap();
    let anas = store
        .add_annotation(
            project.id,
            ana.id,
            fixtures::annotation(third.id, fixtures::answer("NOT_VIOLATING", "S0")),
        )
        .await
        .unwrap();
    let anas_on_first = store
        .add_annotation(
            project.id,
            ana.id,
            fixtures::annotation(first.id, fixtures::answer("VIOLATING", "S3")),
        )
        .await
        .unwrap();
    let correction = store
        .add_annotation(
            project.id,
            bob.id,
            NewAnnotation {
                supersedes: Some(bobs.id),
                ..fixtures::annotation(first.id, fixtures::answer("VIOLATING", "S4"))
            },
        )
        .await
        .unwrap();

    let records = exported(&store, project.id).await;
    let ids: Vec<_> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c-first", "a-second", "b-third"]);

    let on_first: Vec<_> = records[0]
        .annotations
        .iter()
        .map(|a| (a.id, a.annotator.as_str(), a.supersedes))
        .collect();
    assert_eq!(
        on_first,
        [
            (bobs.id, "bob", None),
            (anas_on_first.id, "ana", None),
            (correction.id, "bob", Some(bobs.id))
        ]
    );
    let as_json = serde_json::to_value(&records).unwrap();
    let oldest = &records[0].annotations[0];
    assert_eq!(
        as_json[0]["annotations"][0]["answer"],
        fixtures::answer("BORDERLINE", "S2")
    );
    assert_eq!(oldest.rationale, "loud");
    assert_eq!(oldest.guideline_version, Some(1));
    assert_eq!(oldest.time_spent_ms, Some(900));
    assert_eq!(records[0].item_type, "episode");
    assert_eq!(records[0].priority, 2);

    assert!(records[1].annotations.is_empty());
    assert!(records[1].is_gold);
    assert_eq!(
        as_json[1]["gold_answer"],
        fixtures::answer("VIOLATING", "S4")
    );
    assert_eq!(records[1].state, "queued");

    assert_eq!(records[2].annotations.len(), 1);
    assert_eq!(records[2].annotations[0].id, anas.id);
    assert_eq!(as_json[2]["text"], json!({"description": "Quiet"}));
}

async fn an_export_of_many_items_streams_them_all_in_order(store: TestStore) {
    let project = fixtures::project(&store, "big").await;
    let ana = fixtures::user(&store, "ana").await;
    fixtures::import_items(
        &store,
        project.id,
        "big.csv",
        &fixtures::tracks_csv(700),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let last = store
        .item_by_external_id(project.id, "item-00700")
        .await
        .unwrap();
    store
        .add_annotation(
            project.id,
            ana.id,
            fixtures::annotation(last.id, fixtures::answer("VIOLATING", "S3")),
        )
        .await
        .unwrap();
    let mut rx = store.export(project.id);
    let mut ids = Vec::new();
    let mut annotated = Vec::new();
    while let Some(record) = rx.recv().await {
        let record = record.unwrap();
        if ids.len() % 100 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if !record.annotations.is_empty() {
            annotated.push(record.id.clone());
        }
        ids.push(record.id);
    }
    let expected: Vec<String> = (1..=700).map(|n| format!("item-{n:05}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(annotated, ["item-00700"]);
}

async fn an_export_of_a_project_without_items_is_empty(store: TestStore) {
    let project = fixtures::project(&store, "empty").await;
    assert!(exported(&store, project.id).await.is_empty());
}

on_every_backend!(
    an_export_holds_every_item_once_with_its_annotations_oldest_first,
    an_export_of_many_items_streams_them_all_in_order,
    an_export_of_a_project_without_items_is_empty,
);
