use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::{
    AccountKind, AnnotationSource, ImportOutcome, ItemState, LoginCheck, NewAnnotation, OnConflict,
    Project, Role, StoreError,
};
use serde_json::json;

/// A project with three queued tracks `item-00001` to `item-00003`.
async fn project_with_items(store: &TestStore) -> (Project, Vec<ItemId>) {
    let project = fixtures::project(store, "podcasts").await;
    fixtures::import_items(
        store,
        project.id,
        "items.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let item = store
            .item_by_external_id(project.id, &format!("item-{n:05}"))
            .await
            .unwrap();
        ids.push(item.id);
    }
    (project, ids)
}

async fn an_annotation_is_stored_with_what_the_annotator_said(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let schema = store.current_schema(project.id).await.unwrap();
    let stored = store
        .add_annotation(
            project.id,
            ana.id,
            NewAnnotation {
                item_id: ItemId((items[0]).get()),
                answer: json!({"decision": "VIOLATING", "category": ["DG.HATE", "DC.SCAM"], "severity": "S3"}),
                rationale: "Slur in the second verse".into(),
                flags: vec!["quoted_or_reported".into()],
                time_spent_ms: Some(12_500),
                ..NewAnnotation::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.project_id, project.id);
    assert_eq!(stored.item_id, ItemId((items[0]).get()));
    assert_eq!(stored.annotator_id, ana.id);
    assert_eq!(stored.annotator, "ana");
    assert_eq!(
        stored.answer,
        json!({"decision": "VIOLATING", "category": ["DG.HATE", "DC.SCAM"], "severity": "S3"})
    );
    assert_eq!(stored.rationale, "Slur in the second verse");
    assert_eq!(stored.flags, ["quoted_or_reported"]);
    assert_eq!(stored.time_spent_ms, Some(12_500));
    assert_eq!(stored.schema_version_id, Some(schema.id));
    assert_eq!(stored.supersedes, None);
    assert_eq!(
        stored.source,
        AnnotationSource::Override,
        "outside the queue and no correction"
    );
    assert_eq!(
        store.annotation(stored.id).await.unwrap().answer,
        stored.answer
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 1);
}

async fn an_answer_that_breaks_the_schema_is_rejected_naming_the_question(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let cases = [
        (
            json!({"decision": "MAYBE", "severity": "S1"}),
            "\"decision\"",
        ),
        (json!({"decision": "VIOLATING"}), "\"severity\""),
        (
            json!({"decision": "VIOLATING", "severity": "S3", "mood": "sad"}),
            "\"mood\"",
        ),
        (
            json!({"decision": "VIOLATING", "severity": "S3", "category": "DG.HATE"}),
            "\"category\"",
        ),
        (
            json!({"decision": "VIOLATING", "severity": "S3", "category": ["XX.NOPE"]}),
            "\"category\"",
        ),
    ];
    for (answer, question) in cases {
        let err = store
            .add_annotation(
                project.id,
                ana.id,
                fixtures::annotation(ItemId((items[0]).get()), answer.clone()),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(question)),
            "{answer}: {err}"
        );
    }
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
}

async fn answers_are_checked_against_the_published_schema_not_a_draft(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let schema = fixtures::schema_with_s5();
    store
        .save_schema_draft(project.id, &schema, "", None)
        .await
        .unwrap();
    let s5 = || {
        fixtures::annotation(
            ItemId((items[0]).get()),
            fixtures::answer("VIOLATING", "S5"),
        )
    };
    let err = store
        .add_annotation(project.id, ana.id, s5())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("severity")),
        "{err}"
    );

    let v2 = store
        .publish_schema(project.id, Some("S5"), None)
        .await
        .unwrap();
    let stored = store
        .add_annotation(project.id, ana.id, s5())
        .await
        .unwrap();
    assert_eq!(stored.schema_version_id, Some(v2.id));
}

async fn an_annotation_on_an_item_outside_the_project_is_not_found(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let other = fixtures::project(&store, "other").await;
    let ana = fixtures::user(&store, "ana").await;
    for (project_id, item_id) in [
        (other.id, items[0]),
        (project.id, ItemId(items[2].get() + 1_000)),
    ] {
        let err = store
            .add_annotation(
                project_id,
                ana.id,
                fixtures::annotation(item_id, fixtures::answer("VIOLATING", "S3")),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
    assert_eq!(store.count_annotations(other.id).await.unwrap(), 0);
}

async fn a_retry_with_the_same_idempotency_key_returns_the_first_annotation(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let keyed = |key: &str| NewAnnotation {
        idempotency_key: Some(key.into()),
        ..fixtures::annotation(
            ItemId((items[0]).get()),
            fixtures::answer("VIOLATING", "S3"),
        )
    };
    let first = store
        .add_annotation(project.id, ana.id, keyed("req-1"))
        .await
        .unwrap();
    let retry = store
        .add_annotation(project.id, ana.id, keyed("req-1"))
        .await
        .unwrap();
    assert_eq!(retry.id, first.id);
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 1);
    assert_eq!(
        store
            .item_annotations(ItemId((items[0]).get()))
            .await
            .unwrap()
            .len(),
        1
    );

    let bobs = store
        .add_annotation(project.id, bob.id, keyed("req-1"))
        .await
        .unwrap();
    assert_ne!(bobs.id, first.id, "keys belong to one annotator");
    let next = store
        .add_annotation(
            project.id,
            ana.id,
            NewAnnotation {
                supersedes: Some(first.id),
                ..keyed("req-2")
            },
        )
        .await
        .unwrap();
    assert_ne!(next.id, first.id);
    let unkeyed = fixtures::annotation(
        ItemId((items[1]).get()),
        fixtures::answer("VIOLATING", "S3"),
    );
    let once = store
        .add_annotation(project.id, ana.id, unkeyed.clone())
        .await
        .unwrap();
    store
        .add_annotation(
            project.id,
            ana.id,
            NewAnnotation {
                supersedes: Some(once.id),
                ..unkeyed.clone()
            },
        )
        .await
        .unwrap();
    // A second label of one's own outside the queue is a correction, never a second vote.
    let err = store
        .add_annotation(project.id, ana.id, unkeyed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 5);
}

async fn concurrent_retries_with_one_idempotency_key_store_one_annotation(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.store.clone();
        let new = NewAnnotation {
            idempotency_key: Some("double-click".into()),
            ..fixtures::annotation(
                ItemId((items[1]).get()),
                fixtures::answer("BORDERLINE", "S2"),
            )
        };
        tasks.push(tokio::spawn(async move {
            store.add_annotation(project.id, ana.id, new).await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry gets the one annotation");
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 1);
}

async fn a_correction_supersedes_the_earlier_annotation_and_both_are_kept(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let first = store
        .add_annotation(
            project.id,
            ana.id,
            fixtures::annotation(
                ItemId((items[0]).get()),
                fixtures::answer("VIOLATING", "S3"),
            ),
        )
        .await
        .unwrap();
    let correction = store
        .add_annotation(
            project.id,
            ana.id,
            NewAnnotation {
                supersedes: Some(first.id),
                ..fixtures::annotation(
                    ItemId((items[0]).get()),
                    fixtures::answer("NOT_VIOLATING", "S0"),
                )
            },
        )
        .await
        .unwrap();
    assert_eq!(correction.supersedes, Some(first.id));
    let history = store
        .item_annotations(ItemId((items[0]).get()))
        .await
        .unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|a| (a.id, a.answer["decision"].as_str().unwrap(), a.supersedes))
        .collect();
    assert_eq!(
        summary,
        [
            (first.id, "VIOLATING", None),
            (correction.id, "NOT_VIOLATING", Some(first.id))
        ]
    );
    assert_eq!(
        store.annotation(first.id).await.unwrap().answer,
        first.answer
    );
}

async fn nobody_can_supersede_someone_elses_annotation(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let anas = store
        .add_annotation(
            project.id,
            ana.id,
            fixtures::annotation(
                ItemId((items[0]).get()),
                fixtures::answer("VIOLATING", "S3"),
            ),
        )
        .await
        .unwrap();
    let err = store
        .add_annotation(
            project.id,
            bob.id,
            NewAnnotation {
                supersedes: Some(anas.id),
                ..fixtures::annotation(
                    ItemId((items[0]).get()),
                    fixtures::answer("NOT_VIOLATING", "S0"),
                )
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let err = store
        .add_annotation(
            project.id,
            ana.id,
            NewAnnotation {
                supersedes: Some(anas.id),
                ..fixtures::annotation(
                    ItemId((items[1]).get()),
                    fixtures::answer("NOT_VIOLATING", "S0"),
                )
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "a correction stays on its item: {err}"
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 1);
}

const MIGRATED: &str = "\
item,annotator,decision,severity,category
item-00001,ana,VIOLATING,S3,DG.HATE;DC.SCAM
item-00001,legacy_7,BORDERLINE,S2,
item-00002,legacy_7,NOT_VIOLATING,S0,
";

async fn imported_annotations_create_missing_annotators_and_label_their_items(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let ana = fixtures::user(&store, "ana").await;
    store
        .set_member(project.id, "ana", Role::QaExpert, None)
        .await
        .unwrap();
    let schema = store.current_schema(project.id).await.unwrap();

    let done = fixtures::import_annotations(&store, project.id, "legacy.csv", MIGRATED)
        .await
        .unwrap();
    assert_eq!(
        done,
        ImportOutcome {
            read: 3,
            inserted: 3,
            updated: 0,
            skipped: 0
        }
    );

    let legacy = store.user_by_name("legacy_7").await.unwrap();
    assert_eq!(legacy.kind, AccountKind::Human);
    assert!(!legacy.is_admin);
    assert_eq!(
        store.role_in(&legacy, project.id).await.unwrap(),
        Some(Role::Annotator)
    );
    assert_eq!(
        store.role_in(&ana, project.id).await.unwrap(),
        Some(Role::QaExpert),
        "an existing member keeps their role"
    );
    assert!(matches!(
        store.login("legacy_7", "", "10.0.0.1").await.unwrap(),
        LoginCheck::BadCredentials
    ));

    let first = store
        .item_annotations(ItemId((items[0]).get()))
        .await
        .unwrap();
    let summary: Vec<_> = first
        .iter()
        .map(|a| (a.annotator.as_str(), a.answer.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "ana",
                json!({"decision": "VIOLATING", "severity": "S3", "category": ["DG.HATE", "DC.SCAM"]})
            ),
            (
                "legacy_7",
                json!({"decision": "BORDERLINE", "severity": "S2"})
            ),
        ]
    );
    assert!(first.iter().all(|a| a.source == AnnotationSource::Import));
    assert!(first.iter().all(|a| a.schema_version_id == Some(schema.id)));

    let states: Vec<ItemState> = {
        let mut states = Vec::new();
        for id in &items {
            states.push(store.item(project.id, *id).await.unwrap().state);
        }
        states
    };
    assert_eq!(
        states,
        [ItemState::Labelled, ItemState::Labelled, ItemState::Queued]
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 3);

    // The queue counts imported labels: only the unlabelled item is served, then nothing.
    let newcomer = fixtures::user(&store, "newcomer").await;
    match store.next_item(&project, &newcomer).await.unwrap() {
        concord_store::NextItem::Leased(lease) => {
            assert_eq!(lease.item.id, ItemId((items[2]).get()))
        }
        other => panic!("expected the unlabelled item, got {other:?}"),
    }
}

async fn an_imported_annotation_for_an_unknown_item_rejects_the_file_naming_line_and_field(
    store: TestStore,
) {
    let (project, items) = project_with_items(&store).await;
    let csv = "\
item,annotator,decision,severity,category
item-00001,legacy_1,VIOLATING,S3,DG.HATE
item-99999,legacy_2,VIOLATING,S3,
";
    let err = fixtures::import_annotations(&store, project.id, "legacy.csv", csv)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m)
            if m.starts_with("legacy.csv:3: field item:") && m.contains("item-99999")),
        "{err}"
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
    assert!(matches!(
        store.user_by_name("legacy_1").await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert_eq!(
        store
            .item(project.id, ItemId((items[0]).get()))
            .await
            .unwrap()
            .state,
        concord_store::ItemState::Queued
    );
}

async fn an_imported_annotator_name_that_is_not_a_user_name_rejects_the_file(store: TestStore) {
    let (project, _) = project_with_items(&store).await;
    let csv = "\
item,annotator,decision,severity,category
item-00001,legacy_1,VIOLATING,S3,DG.HATE
item-00002,Ana Ruiz,VIOLATING,S3,
";
    let err = fixtures::import_annotations(&store, project.id, "legacy.csv", csv)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m)
            if m.starts_with("legacy.csv:3: field annotator:") && m.contains("Ana Ruiz")),
        "{err}"
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
}

async fn an_imported_answer_that_breaks_the_schema_rejects_the_file(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    let csv = "\
item,annotator,decision,severity,category
item-00001,legacy_1,VIOLATING,S3,DG.HATE
item-00002,legacy_1,VIOLATING,S9,
";
    let err = fixtures::import_annotations_in_batches(&store, project.id, "legacy.csv", csv, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m)
            if m.starts_with("legacy.csv:3: field answer:") && m.contains("S9")),
        "{err}"
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
    assert_eq!(
        store
            .item(project.id, ItemId((items[0]).get()))
            .await
            .unwrap()
            .state,
        concord_store::ItemState::Queued
    );
    assert!(store.user_by_name("legacy_1").await.is_err());
}

async fn imported_annotations_keep_their_guideline_version_and_time(store: TestStore) {
    let (project, items) = project_with_items(&store).await;
    store
        .save_guideline_draft(project.id, "# Rules\n", &[], "", None)
        .await
        .unwrap();
    let v1 = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    let bad = "\
item,annotator,decision,severity,guideline_version,created_at
item-00001,legacy_1,VIOLATING,S3,1,2026-10-05
item-00002,legacy_1,VIOLATING,S3,7,2026-10-05
";
    let err = fixtures::import_annotations(&store, project.id, "history.csv", bad)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("history.csv:3: field guideline_version: the project has no published guideline version 7"),
        "{err}"
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
    let good = "\
item,annotator,decision,severity,guideline_version,created_at
item-00001,legacy_1,VIOLATING,S3,v1,2026-10-05T08:30:00Z
item-00002,legacy_1,VIOLATING,S3,,
";
    fixtures::import_annotations(&store, project.id, "history.csv", good)
        .await
        .unwrap();
    let first = store
        .item_annotations(ItemId((items[0]).get()))
        .await
        .unwrap();
    assert_eq!(first[0].guideline_version_id, Some(v1.id));
    assert_eq!(first[0].created_at, 1_791_189_000_000);
    let second = store
        .item_annotations(ItemId((items[1]).get()))
        .await
        .unwrap();
    assert_eq!(second[0].guideline_version_id, None);
    assert!(
        second[0].created_at > 1_791_189_000_000,
        "no time given: the time of the import"
    );
}

const GOLD_ITEMS: &str = concat!(
    r#"{"id":"g1","item_type":"track","title":"Gold One","gold":{"decision":"VIOLATING","severity":"S3"}}"#,
    "\n",
    r#"{"id":"g2","item_type":"track","title":"Gold Two","gold":{"decision":"NOT_VIOLATING","severity":"S0"}}"#,
    "\n",
    r#"{"id":"t1","item_type":"track","title":"Plain"}"#,
    "\n",
);

const LABELS_ON_GOLD: &str = "\
item,annotator,decision,severity,category
g1,crowd_1,VIOLATING,S3,DG.HATE
g2,crowd_1,VIOLATING,S3,DG.HATE
g1,crowd_2,NOT_VIOLATING,S0,
t1,crowd_2,NOT_VIOLATING,S0,
";

/// Gold accuracy is not a by-product of the queue: imported labels on gold items count, and
/// a correction replaces the label it corrects.
async fn gold_accuracy_counts_every_label_on_a_gold_item_whatever_its_way_in(store: TestStore) {
    let project = fixtures::project(&store, "gold").await;
    fixtures::import_items(
        &store,
        project.id,
        "items.jsonl",
        GOLD_ITEMS,
        OnConflict::Error,
    )
    .await
    .unwrap();
    fixtures::import_annotations(&store, project.id, "crowd.csv", LABELS_ON_GOLD)
        .await
        .unwrap();
    let gold = |team: &[concord_store::AnnotatorProgress], name: &str| {
        let a = team.iter().find(|a| a.username == name).unwrap();
        (a.gold.correct, a.gold.answered)
    };
    let team = store.team_progress(project.id).await.unwrap();
    assert_eq!(
        gold(&team, "crowd_1"),
        (1, 2),
        "one of two gold items right"
    );
    assert_eq!(
        gold(&team, "crowd_2"),
        (0, 1),
        "the plain item is not scored"
    );

    let crowd_1 = store.user_by_name("crowd_1").await.unwrap();
    let g2 = store.item_by_external_id(project.id, "g2").await.unwrap();
    let wrong = store.item_annotations(g2.id).await.unwrap()[0].id;
    store
        .add_annotation(
            project.id,
            crowd_1.id,
            NewAnnotation {
                supersedes: Some(wrong),
                ..fixtures::annotation(g2.id, fixtures::answer("NOT_VIOLATING", "S0"))
            },
        )
        .await
        .unwrap();
    let mine = store
        .annotator_progress(project.id, crowd_1.id)
        .await
        .unwrap();
    assert_eq!(
        (mine.gold.correct, mine.gold.answered),
        (2, 2),
        "the correction counts"
    );
}

on_every_backend!(
    imported_annotations_keep_their_guideline_version_and_time,
    an_annotation_is_stored_with_what_the_annotator_said,
    an_answer_that_breaks_the_schema_is_rejected_naming_the_question,
    answers_are_checked_against_the_published_schema_not_a_draft,
    an_annotation_on_an_item_outside_the_project_is_not_found,
    a_retry_with_the_same_idempotency_key_returns_the_first_annotation,
    concurrent_retries_with_one_idempotency_key_store_one_annotation,
    a_correction_supersedes_the_earlier_annotation_and_both_are_kept,
    nobody_can_supersede_someone_elses_annotation,
    imported_annotations_create_missing_annotators_and_label_their_items,
    gold_accuracy_counts_every_label_on_a_gold_item_whatever_its_way_in,
    an_imported_annotation_for_an_unknown_item_rejects_the_file_naming_line_and_field,
    an_imported_annotator_name_that_is_not_a_user_name_rejects_the_file,
    an_imported_answer_that_breaks_the_schema_rejects_the_file,
);
