//! The QA records: consensus runs replace the project's results, open escalations once per
//! item, and adjudications resolve them, stay in history, refuse an expert who labelled the
//! item, and become searchable precedent (optionally gold and a guideline example).

use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::UserId;
use concord_store::{
    ConsensusWrite, EscalationStatus, ExampleScope, NewAdjudication, NewAnnotation, NewEscalation,
    NewItemConsensus, OnConflict, PrecedentFilter, Project, Store, StoreError, User,
};
use serde_json::json;

struct Setup {
    project: Project,
    items: Vec<ItemId>,
    annotators: Vec<User>,
    expert: User,
}

async fn setup(store: &Store, slug: &str) -> Setup {
    let project = fixtures::project(store, slug).await;
    fixtures::import_items(
        store,
        project.id,
        "items.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let mut items = Vec::new();
    for n in 1..=3 {
        items.push(
            store
                .item_by_external_id(project.id, &format!("item-{n:05}"))
                .await
                .unwrap()
                .id,
        );
    }
    let mut annotators = Vec::new();
    for name in ["ann-a", "ann-b"] {
        annotators.push(fixtures::user(store, &format!("{slug}-{name}")).await);
    }
    let expert = fixtures::user(store, &format!("{slug}-expert")).await;
    // Item 1 split (S1 / S3), item 2 unanimous, item 3 unlabelled.
    for (annotator, severity) in annotators.iter().zip(["S1", "S3"]) {
        store
            .add_annotation(
                project.id,
                annotator.id,
                fixtures::annotation(items[0], fixtures::answer("VIOLATING", severity)),
            )
            .await
            .unwrap();
        store
            .add_annotation(
                project.id,
                annotator.id,
                fixtures::annotation(items[1], fixtures::answer("NOT_VIOLATING", "S0")),
            )
            .await
            .unwrap();
    }
    Setup {
        project,
        items,
        annotators,
        expert,
    }
}

fn run_with(setup: &Setup, escalate: &[ItemId]) -> ConsensusWrite {
    let consensus = |item_id: ItemId, severity: &str| NewItemConsensus {
        item_id,
        question: "severity".into(),
        label: Some(json!(severity).to_string()),
        posterior: json!({severity: 0.5}).to_string(),
        confidence: Some(0.5),
        agreement: Some(0.0),
        n_labels: 2,
        tied: true,
    };
    ConsensusWrite {
        method: "mv".into(),
        annotations: 4,
        summary: json!({"method": "mv"}),
        items: vec![
            consensus(setup.items[0], "S1"),
            consensus(setup.items[1], "S0"),
        ],
        annotators: Vec::new(),
        escalations: escalate
            .iter()
            .map(|&item_id| NewEscalation {
                item_id,
                reasons: json!([{"rule": "tie", "question": "severity", "detail": "tied"}]),
                priority: 1,
                priority_reason: "labelled S3".into(),
                sla_ms: 3_600_000,
                expected_cost: None,
            })
            .collect(),
        job_id: None,
    }
}

fn decision(severity: &str, rationale: &str) -> NewAdjudication {
    NewAdjudication {
        answer: fixtures::answer("VIOLATING", severity),
        rationale: rationale.into(),
        guideline_clause: "§3.2 threats".into(),
        ..NewAdjudication::default()
    }
}

async fn a_run_replaces_results_and_never_queues_an_item_twice(store: TestStore) {
    let setup = setup(&store, "qa-rerun").await;
    let first = store
        .save_consensus(
            setup.project.id,
            run_with(&setup, &[ItemId((setup.items[0]).get())]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(first.escalated, 1);
    assert_eq!(first.items, 2);
    let second = store
        .save_consensus(
            setup.project.id,
            run_with(&setup, &[ItemId((setup.items[0]).get())]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        second.escalated, 0,
        "an item already waiting is not queued again"
    );
    let queue = store
        .escalations(
            setup.project.id,
            EscalationStatus::Open,
            setup.expert.id,
            10,
        )
        .await
        .unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].item_id, ItemId((setup.items[0]).get()));
    assert_eq!(queue[0].reasons[0]["rule"], "tie");
    assert!(queue[0].due_at - queue[0].opened_at == 3_600_000);
    assert!(!queue[0].viewer_labelled);
    let as_annotator = store
        .escalations(
            setup.project.id,
            EscalationStatus::Open,
            UserId((setup.annotators[0].id).get()),
            10,
        )
        .await
        .unwrap();
    assert!(as_annotator[0].viewer_labelled);
    let item = store
        .item(setup.project.id, ItemId((setup.items[0]).get()))
        .await
        .unwrap();
    assert_eq!(item.state, concord_store::ItemState::Escalated);
    // Results are replaced, not accumulated.
    assert_eq!(
        store
            .item_consensus(ItemId((setup.items[0]).get()))
            .await
            .unwrap()
            .len(),
        1
    );
    let latest = store
        .latest_consensus_run(setup.project.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, second.id);
    assert_eq!(latest.summary["method"], "mv");
}

/// Within a priority the expert queue puts first what costs most to leave as it is: the
/// consensus's expected cost under the project's cost matrices; items without costs last.
async fn the_expert_queue_ranks_a_priority_by_expected_cost(store: TestStore) {
    let setup = setup(&store, "qa-cost").await;
    let mut run = run_with(&setup, &setup.items);
    for (escalation, cost) in run.escalations.iter_mut().zip([Some(0.5), Some(3.0), None]) {
        escalation.expected_cost = cost;
    }
    store
        .save_consensus(setup.project.id, run, None)
        .await
        .unwrap();
    let queue = store
        .escalations(
            setup.project.id,
            EscalationStatus::Open,
            setup.expert.id,
            10,
        )
        .await
        .unwrap();
    let order: Vec<(ItemId, Option<f64>)> =
        queue.iter().map(|e| (e.item_id, e.expected_cost)).collect();
    assert_eq!(
        order,
        [
            (setup.items[1], Some(3.0)),
            (setup.items[0], Some(0.5)),
            (setup.items[2], None)
        ]
    );
}

async fn a_rerun_rewrites_changed_results_and_drops_those_it_no_longer_has(store: TestStore) {
    let setup = setup(&store, "qa-diff").await;
    store
        .save_consensus(setup.project.id, run_with(&setup, &[]), None)
        .await
        .unwrap();
    let mut next = run_with(&setup, &[]);
    // Item 1 has no result any more; item 2's label changed.
    next.items.remove(0);
    next.items[0].label = Some(json!("S2").to_string());
    next.items[0].posterior = json!({"S2": 1.0}).to_string();
    store
        .save_consensus(setup.project.id, next, None)
        .await
        .unwrap();
    assert!(
        store
            .item_consensus(ItemId((setup.items[0]).get()))
            .await
            .unwrap()
            .is_empty()
    );
    let changed = store
        .item_consensus(ItemId((setup.items[1]).get()))
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].label, Some(json!("S2")));
    assert_eq!(changed[0].posterior, json!({"S2": 1.0}));
    assert_eq!(
        store
            .project_consensus(setup.project.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn the_run_reads_each_annotators_latest_answer_once(store: TestStore) {
    let setup = setup(&store, "qa-latest").await;
    // A correction: annotator a changes item 2 from S0 to S1 (as they said of item 1).
    let earlier = store
        .item_annotations(ItemId((setup.items[1]).get()))
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.annotator_id == setup.annotators[0].id)
        .unwrap();
    store
        .add_annotation(
            setup.project.id,
            setup.annotators[0].id,
            NewAnnotation {
                supersedes: Some(earlier.id),
                ..fixtures::annotation(
                    ItemId((setup.items[1]).get()),
                    fixtures::answer("VIOLATING", "S1"),
                )
            },
        )
        .await
        .unwrap();
    let input = store.consensus_input(setup.project.id).await.unwrap();
    assert_eq!(input.labels.len(), 4, "two annotators on two items");
    let corrected: Vec<_> = input
        .labels
        .iter()
        .filter(|f| {
            f.item_id == ItemId((setup.items[1]).get()) && f.annotator_id == setup.annotators[0].id
        })
        .collect();
    assert_eq!(corrected.len(), 1);
    assert_eq!(corrected[0].answer["severity"], "S1");
    assert_eq!(
        corrected[0].annotator.username,
        setup.annotators[0].username
    );
    assert_eq!(corrected[0].kind, concord_store::AnswerKind::Label);
    assert_eq!(
        input.labels.answers.len(),
        3,
        "equal answers are stored once"
    );
    assert_eq!(input.items.len(), 3);
}

async fn the_run_reads_each_items_state_gold_and_escalation(store: TestStore) {
    let setup = setup(&store, "qa-item-facts").await;
    let (first, second, third) = (setup.items[0], setup.items[1], setup.items[2]);
    store
        .save_consensus(setup.project.id, run_with(&setup, &[first, second]), None)
        .await
        .unwrap();
    let mut promoted = decision("S3", "Threat with a date");
    promoted.promote_to_gold = true;
    store
        .adjudicate(setup.project.id, second, setup.expert.id, promoted)
        .await
        .unwrap();

    let input = store.consensus_input(setup.project.id).await.unwrap();
    let ids: Vec<_> = input.items.iter().map(|item| item.id).collect();
    assert_eq!(ids, [first.get(), second.get(), third.get()], "in id order");
    let [waiting, decided, untouched] = &input.items[..] else {
        panic!("three items");
    };
    assert_eq!(waiting.external_id, "item-00001");
    assert!(waiting.open_escalation && !waiting.adjudicated);
    assert!(!waiting.is_gold && waiting.gold_answer.is_none());
    assert_eq!(waiting.state, concord_store::ItemState::Escalated);
    assert!(decided.adjudicated && !decided.open_escalation);
    assert!(decided.is_gold);
    assert_eq!(
        decided.gold_answer,
        Some(fixtures::answer("VIOLATING", "S3"))
    );
    assert_eq!(decided.state, concord_store::ItemState::Adjudicated);
    assert_eq!(untouched.external_id, "item-00003");
    assert!(!untouched.title.is_empty());
    assert!(!untouched.open_escalation && !untouched.adjudicated && !untouched.is_gold);
}

async fn an_adjudication_resolves_the_escalation_and_becomes_precedent(store: TestStore) {
    let setup = setup(&store, "qa-adjudicate").await;
    store
        .save_consensus(
            setup.project.id,
            run_with(&setup, &[ItemId((setup.items[0]).get())]),
            None,
        )
        .await
        .unwrap();
    let decided = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[0]).get()),
            setup.expert.id,
            decision("S3", "A credible threat against a named person"),
        )
        .await
        .unwrap();
    assert!(decided.overturned, "S3 overturns the S1 consensus");
    assert_eq!(decided.consensus_before.as_ref().unwrap()["severity"], "S1");
    let item = store
        .item(setup.project.id, ItemId((setup.items[0]).get()))
        .await
        .unwrap();
    assert_eq!(item.state, concord_store::ItemState::Adjudicated);
    assert!(
        store
            .escalations(
                setup.project.id,
                EscalationStatus::Open,
                setup.expert.id,
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let resolved = store
        .escalations(
            setup.project.id,
            EscalationStatus::Resolved,
            setup.expert.id,
            10,
        )
        .await
        .unwrap();
    assert_eq!(resolved[0].adjudication_id, Some(decided.id));
    assert_eq!(
        resolved[0].resolved_by.as_deref(),
        Some(setup.expert.username.as_str())
    );

    // A second decision supersedes the first; history keeps both, the library the latest.
    let other_expert = fixtures::user(&store, "qa-adjudicate-expert2").await;
    let revised = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[0]).get()),
            other_expert.id,
            decision("S4", "Names a place and a time: egregious"),
        )
        .await
        .unwrap();
    assert_eq!(revised.supersedes, Some(decided.id));
    let history = store
        .item_adjudications(ItemId((setup.items[0]).get()))
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[1].superseded && !history[0].superseded);

    let search = |filter: PrecedentFilter| {
        let store = store.clone();
        let project = setup.project.id;
        async move { store.precedents(project, &filter).await.unwrap() }
    };
    let all = search(PrecedentFilter::default()).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, revised.id);
    let by_code = search(PrecedentFilter {
        code: Some("S4".into()),
        ..PrecedentFilter::default()
    })
    .await;
    assert_eq!(by_code.len(), 1);
    assert!(
        search(PrecedentFilter {
            code: Some("S3".into()),
            ..PrecedentFilter::default()
        })
        .await
        .is_empty(),
        "the superseded decision is not precedent"
    );
    let by_text = search(PrecedentFilter {
        text: Some("PLACE AND".into()),
        ..PrecedentFilter::default()
    })
    .await;
    assert_eq!(by_text.len(), 1, "text search ignores case");
    let by_clause = search(PrecedentFilter {
        clause: Some("3.2".into()),
        overturned: Some(true),
        ..PrecedentFilter::default()
    })
    .await;
    assert_eq!(by_clause.len(), 1);
    assert_eq!(
        store.adjudication_counts(setup.project.id).await.unwrap(),
        (1, 1)
    );
}

async fn an_expert_who_labelled_the_item_or_a_bad_decision_changes_nothing(store: TestStore) {
    let setup = setup(&store, "qa-refuse").await;
    store
        .save_consensus(
            setup.project.id,
            run_with(&setup, &[ItemId((setup.items[0]).get())]),
            None,
        )
        .await
        .unwrap();
    let err = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[0]).get()),
            setup.annotators[1].id,
            decision("S3", "I still think so"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("you labelled this item"), "{err}");

    let err = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[0]).get()),
            setup.expert.id,
            decision("S9", "why"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"S9\" is not an option"), "{err}");
    let err = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[0]).get()),
            setup.expert.id,
            decision("S3", "  "),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("rationale"), "{err}");
    let mut unknown_category = decision("S3", "because");
    unknown_category.example_scope = Some(ExampleScope::InScope);
    unknown_category.example_category = Some("DG.NOPE".into());
    let err = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[0]).get()),
            setup.expert.id,
            unknown_category,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("example_category"), "{err}");

    assert!(
        store
            .item_adjudications(ItemId((setup.items[0]).get()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .escalations(
                setup.project.id,
                EscalationStatus::Open,
                setup.expert.id,
                10
            )
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .item(setup.project.id, ItemId((setup.items[0]).get()))
            .await
            .unwrap()
            .state,
        concord_store::ItemState::Escalated
    );
}

async fn a_decision_can_become_gold_and_a_guideline_example(store: TestStore) {
    let setup = setup(&store, "qa-promote").await;
    store
        .save_guideline_draft(setup.project.id, "# Threats\n", &[], "", None)
        .await
        .unwrap();
    store
        .publish_guideline(setup.project.id, None, None)
        .await
        .unwrap();
    let mut promoted = decision("S3", "Threat with a date");
    promoted.promote_to_gold = true;
    promoted.example_scope = Some(ExampleScope::InScope);
    promoted.example_category = Some("DG.VIOL".into());
    let decided = store
        .adjudicate(
            setup.project.id,
            ItemId((setup.items[2]).get()),
            setup.expert.id,
            promoted,
        )
        .await
        .unwrap();
    assert!(!decided.overturned, "no consensus: nothing to overturn");
    assert_eq!(decided.guideline_version, Some(1));
    let item = store
        .item(setup.project.id, ItemId((setup.items[2]).get()))
        .await
        .unwrap();
    assert!(item.is_gold);
    assert_eq!(item.gold_answer, Some(fixtures::answer("VIOLATING", "S3")));
    let versions = store.guideline_versions(setup.project.id).await.unwrap();
    let draft = versions
        .iter()
        .find(|v| v.version == 2)
        .expect("a draft started from version 1");
    assert_eq!(draft.body, "# Threats\n");
    assert_eq!(draft.examples.len(), 1);
    assert_eq!(draft.examples[0].category, "DG.VIOL");
    assert!(draft.examples[0].text.contains("Threat with a date"));
    assert!(draft.change_note.contains("DG.VIOL"));
}

async fn a_release_freezes_final_labels_and_individual_labels_and_diffs_against_another(
    store: TestStore,
) {
    let setup = setup(&store, "qa-release").await;
    let project = setup.project.id;
    let err = store
        .create_release(project, "v1", "", json!({}), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("compute the consensus"), "{err}");
    store
        .save_consensus(
            project,
            run_with(&setup, &[ItemId((setup.items[0]).get())]),
            None,
        )
        .await
        .unwrap();
    let err = store
        .create_release(project, "v 1/x", "", json!({}), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("release name"), "{err}");
    let v1 = store
        .create_release(project, "v1", "first", json!({"note": "qa summary"}), None)
        .await
        .unwrap();
    assert_eq!(v1.items, 2);
    assert_eq!(v1.summary["note"], "qa summary");
    let err = store
        .create_release(project, "v1", "", json!({}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    // After the release: an expert decides item 1, a new label arrives on item 2.
    store
        .adjudicate(
            project,
            ItemId((setup.items[0]).get()),
            setup.expert.id,
            decision("S3", "A threat"),
        )
        .await
        .unwrap();
    let late = fixtures::user(&store, "qa-release-late").await;
    store
        .add_annotation(
            project,
            late.id,
            fixtures::annotation(
                ItemId((setup.items[1]).get()),
                fixtures::answer("VIOLATING", "S2"),
            ),
        )
        .await
        .unwrap();
    let v2 = store
        .create_release(project, "v2", "", json!({}), None)
        .await
        .unwrap();

    let items = |release: concord_store::Release| {
        let store = store.clone();
        async move {
            let mut rx = store.release_items(&release);
            let mut out = Vec::new();
            while let Some(item) = rx.recv().await {
                out.push(item.unwrap());
            }
            out
        }
    };
    let labels = |release: concord_store::Release| {
        let store = store.clone();
        async move {
            let mut rx = store.release_labels(&release);
            let mut out = Vec::new();
            while let Some(label) = rx.recv().await {
                out.push(label.unwrap());
            }
            out
        }
    };
    let first = items(v1.clone()).await;
    assert_eq!(first[0].item, "item-00001");
    assert_eq!(
        first[0].label["severity"], "S1",
        "v1 keeps the consensus it froze"
    );
    assert!(!first[0].adjudicated);
    assert_eq!(first[0].source, "mv");
    assert_eq!(first[0].soft_label["severity"]["S1"], 0.5);
    let second = items(v2.clone()).await;
    assert_eq!(
        second[0].label["severity"], "S3",
        "the decision overrides the consensus"
    );
    assert_eq!(second[0].label["decision"], "VIOLATING");
    assert_eq!(second[0].source, "adjudicated");
    assert_eq!(
        labels(v1.clone()).await.len(),
        4,
        "the late label is after v1's watermark"
    );
    let in_v2 = labels(v2.clone()).await;
    assert_eq!(in_v2.len(), 5);
    assert!(
        in_v2
            .iter()
            .all(|l| l.annotator.starts_with('a') && !l.annotator.contains("qa-"))
    );

    let diff = store.diff_releases(&v1, &v2).await.unwrap();
    assert_eq!(diff.newly_adjudicated, 1);
    assert_eq!(diff.unchanged, 1);
    let changed: Vec<(&str, &str)> = diff
        .changed
        .iter()
        .map(|c| (c.item.as_str(), c.question.as_str()))
        .collect();
    assert_eq!(
        changed,
        [("item-00001", "decision"), ("item-00001", "severity")]
    );
    let listed = store.releases(project).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["v2", "v1"]
    );
}

on_every_backend!(
    a_release_freezes_final_labels_and_individual_labels_and_diffs_against_another,
    a_run_replaces_results_and_never_queues_an_item_twice,
    the_expert_queue_ranks_a_priority_by_expected_cost,
    a_rerun_rewrites_changed_results_and_drops_those_it_no_longer_has,
    the_run_reads_each_annotators_latest_answer_once,
    the_run_reads_each_items_state_gold_and_escalation,
    an_adjudication_resolves_the_escalation_and_becomes_precedent,
    an_expert_who_labelled_the_item_or_a_bad_decision_changes_nothing,
    a_decision_can_become_gold_and_a_guideline_example,
);
