//! A consensus run end to end on a real store: labels in the database, consensus and the
//! quality report out, escalations opened by the project's rules, adjudicated items left
//! alone by the next run. SQLite always; PostgreSQL too with `CONCORD_TEST_POSTGRES_URL`.

use concord_stats::{AgreementOptions, Level, Metric, Prepared, TableBuilder};
use concord_store::ItemId;
use concord_store::UserId;
use concord_store::{
    AnswerKind, NewAdjudication, NewAnnotation, NewProject, NewUser, OnConflict, PasswordCost,
    Project, Store, StoreOptions, Submission, User,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A SQLite store, and a PostgreSQL one in a schema named after the test when configured.
async fn stores(test: &str) -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(
        dir.path().join("qa.db").to_string_lossy().to_string(),
        concord_qa::gold_accuracy_upper_bound,
    );
    options.password_cost = PasswordCost::Fast;
    let mut out = vec![(Store::open(options).await.unwrap(), Some(dir))];
    match std::env::var("CONCORD_TEST_POSTGRES_URL") {
        Ok(url) => {
            let mut options = StoreOptions::new(url, concord_qa::gold_accuracy_upper_bound);
            options.pg_schema = Some(schema_name(test));
            options.password_cost = PasswordCost::Fast;
            let store = Store::open(options).await.unwrap();
            out.push((store, None));
        }
        Err(_) if std::env::var("CONCORD_REQUIRE_ALL_SUITES").is_ok() => {
            panic!("CONCORD_TEST_POSTGRES_URL is required when CONCORD_REQUIRE_ALL_SUITES is set")
        }
        Err(_) => {
            eprintln!("skipped: the consensus run on PostgreSQL (set CONCORD_TEST_POSTGRES_URL)")
        }
    }
    out
}

fn schema_name(test: &str) -> String {
    format!("t_qa_{test}_{}", std::process::id())
}

async fn user(store: &Store, name: &str, kind: &str) -> User {
    let kind = concord_store::AccountKind::parse(kind).expect("a test names a known account kind");
    store
        .create_user(
            NewUser {
                username: name.into(),
                display_name: None,
                password: None,
                is_admin: false,
                kind,
            },
            None,
        )
        .await
        .unwrap()
}

async fn project(store: &Store, slug: &str, items: usize) -> (Project, Vec<ItemId>) {
    let project = store
        .create_project(
            NewProject {
                slug: slug.into(),
                name: slug.into(),
                description: String::new(),
                schema: concord_store::LabelSchema::catalog_safety(),
            },
            None,
        )
        .await
        .unwrap();
    let project = store
        .update_project(
            project.id,
            &project.name,
            "",
            json!({"qa": {"method": "mv", "escalation": {"severity_at_or_above": "S3"}}}),
            None,
        )
        .await
        .unwrap();
    let jsonl: String = (1..=items)
        .map(|n| format!("{{\"id\":\"i{n}\",\"item_type\":\"track\",\"title\":\"Track {n}\"}}\n"))
        .collect();
    concord_store::import_file(
        store,
        project.id,
        concord_store::ImportKind::Items,
        "items.jsonl",
        std::io::Cursor::new(jsonl.into_bytes()),
        concord_formats::items::RecordFormat::Jsonl,
        OnConflict::Error,
        None,
        |_| {},
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for n in 1..=items {
        ids.push(
            store
                .item_by_external_id(project.id, &format!("i{n}"))
                .await
                .unwrap()
                .id,
        );
    }
    (project, ids)
}

async fn label(store: &Store, project: &Project, who: &User, item: ItemId, answer: Value) {
    store
        .add_annotation(
            project.id,
            who.id,
            NewAnnotation {
                item_id: item,
                answer,
                ..NewAnnotation::default()
            },
        )
        .await
        .unwrap();
}

fn answer(decision: &str, severity: &str, categories: &[&str]) -> Value {
    json!({"decision": decision, "severity": severity, "category": categories})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_computes_consensus_and_escalates_exactly_what_the_rules_say() {
    for (store, _dir) in stores("run").await {
        let (project, items) = project(&store, "run", 6).await;
        let people = [
            user(&store, "ann", "human").await,
            user(&store, "ben", "human").await,
            user(&store, "cleo", "human").await,
        ];
        let model = user(&store, "robot", "model").await;
        let plan: [[(&str, &str, &[&str]); 3]; 5] = [
            // 1: unanimous; the model agrees.
            [("VIOLATING", "S3", &["DG.HATE"]); 3],
            // 2: 2 against 1, and one says S3: low agreement and severity dissent.
            [
                ("NOT_VIOLATING", "S0", &[]),
                ("NOT_VIOLATING", "S0", &[]),
                ("VIOLATING", "S3", &["DG.HATE"]),
            ],
            // 3: unanimous; the model disagrees.
            [("NOT_VIOLATING", "S0", &[]); 3],
            // 4: unanimous S2.
            [("BORDERLINE", "S2", &[]); 3],
            // 5: a split on a category about minors: urgent.
            [
                ("VIOLATING", "S3", &["DG.CHILD"]),
                ("BORDERLINE", "S2", &[]),
                ("BORDERLINE", "S2", &[]),
            ],
        ];
        for (item, labels) in items.iter().zip(plan.iter()) {
            for (person, (decision, severity, categories)) in people.iter().zip(labels.iter()) {
                label(
                    &store,
                    &project,
                    person,
                    *item,
                    answer(decision, severity, categories),
                )
                .await;
            }
        }
        label(
            &store,
            &project,
            &model,
            ItemId((items[0]).get()),
            answer("VIOLATING", "S3", &["DG.HATE"]),
        )
        .await;
        label(
            &store,
            &project,
            &model,
            ItemId((items[2]).get()),
            answer("VIOLATING", "S3", &["DG.SELF"]),
        )
        .await;

        let run = concord_qa::run_consensus(&store, &project, None, None, &|_: &str| {})
            .await
            .unwrap();
        assert_eq!(run.items, 5, "item 6 has no labels");
        assert_eq!(run.escalated, 3);
        let queue = store
            .escalations(
                project.id,
                concord_store::EscalationStatus::Open,
                UserId((people[0].id).get()),
                10,
            )
            .await
            .unwrap();
        let by_item: HashMap<ItemId, &concord_store::Escalation> =
            queue.iter().map(|e| (e.item_id, e)).collect();
        let rules = |item: ItemId| -> Vec<String> {
            by_item[&item]
                .reasons
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["rule"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(!by_item.contains_key(&items[0]));
        assert!(!by_item.contains_key(&items[3]));
        assert!(
            rules(items[1]).contains(&"low_agreement".to_string()),
            "{:?}",
            rules(items[1])
        );
        assert!(rules(items[1]).contains(&"severity_dissent".to_string()));
        assert_eq!(
            rules(items[2]),
            [
                "model_disagreement",
                "model_disagreement",
                "model_disagreement"
            ]
        );
        assert_eq!(by_item[&items[4]].priority, 2, "minors first");
        assert_eq!(
            queue[0].item_id,
            ItemId((items[4]).get()),
            "the urgent item leads the queue"
        );
        assert_eq!(
            store
                .item(project.id, ItemId((items[1]).get()))
                .await
                .unwrap()
                .state,
            concord_store::ItemState::Escalated
        );

        // The per-item consensus and the report.
        let consensus = store
            .item_consensus(ItemId((items[1]).get()))
            .await
            .unwrap();
        let decision = consensus.iter().find(|c| c.question == "decision").unwrap();
        assert_eq!(decision.label, Some(json!("NOT_VIOLATING")));
        assert_eq!(decision.n_labels, 3);
        assert!((decision.agreement.unwrap() - 1.0 / 3.0).abs() < 1e-3);
        assert!((decision.confidence.unwrap() - 2.0 / 3.0).abs() < 1e-3);
        let categories = store
            .item_consensus(ItemId((items[0]).get()))
            .await
            .unwrap();
        let category = categories
            .iter()
            .find(|c| c.question == "category")
            .unwrap();
        assert_eq!(category.label, Some(json!(["DG.HATE"])));

        let report = concord_qa::report_of(&run).unwrap();
        let severity = report
            .questions
            .iter()
            .find(|q| q.key == "severity")
            .unwrap();
        assert_eq!(severity.kind, "ordinal");
        let alpha = severity.alpha().unwrap().value.unwrap();
        // The same α straight from the engine on the same labels.
        let mut builder = TableBuilder::new();
        for (i, labels) in plan.iter().enumerate() {
            for (p, (_, s, _)) in labels.iter().enumerate() {
                builder.push(&format!("i{i}"), &format!("p{p}"), s);
            }
        }
        let table = builder
            .build(&concord_stats::LabelSpec {
                kind: concord_stats::LabelTypeRequest::Exactly(concord_stats::LabelKind::Category),
                categories: Some(["S0", "S1", "S2", "S3", "S4"].map(String::from).to_vec()),
            })
            .unwrap();
        let direct = concord_stats::compute(
            &Prepared::new(&table),
            Metric::KrippendorffAlpha,
            &AgreementOptions {
                level: Some(Level::Ordinal),
                ..AgreementOptions::default()
            },
            &|_| {},
        )
        .unwrap();
        assert!((alpha - direct.estimate.value.unwrap()).abs() < 1e-12);
        assert!(
            severity.alpha().unwrap().ci.is_some(),
            "every α has its interval"
        );
        // The default report offers the engine's coefficients; on the ordinal question the
        // chance-corrected ones are weighted (Gwet's AC2), on the nominal one they are not.
        let shown = |q: &str| -> Vec<(String, String)> {
            report
                .questions
                .iter()
                .find(|x| x.key == q)
                .unwrap()
                .metrics
                .iter()
                .map(|m| (m.metric.clone(), m.weighting.clone()))
                .collect()
        };
        let severity_metrics = shown("severity");
        for key in ["brennan_prediger", "conger_kappa", "scott_pi", "gwet_ac"] {
            assert!(
                severity_metrics.iter().any(|(m, _)| m == key),
                "{key} in {severity_metrics:?}"
            );
        }
        let gwet = severity_metrics
            .iter()
            .find(|(m, _)| m == "gwet_ac")
            .unwrap();
        assert_eq!(gwet.1, "ordinal", "AC2 on the ordinal question");
        let decision_gwet = shown("decision")
            .into_iter()
            .find(|(m, _)| m == "gwet_ac")
            .unwrap();
        assert_eq!(decision_gwet.1, "identity", "AC1 on the nominal question");
        assert_eq!(report.models.len(), 1);
        assert_eq!(report.models[0].agreement["decision"], Some(0.5));
        let quality = store.annotator_quality(project.id).await.unwrap();
        let ben_decision = quality
            .iter()
            .find(|(name, q)| name == "ben" && q.question == "decision")
            .unwrap();
        assert_eq!(
            ben_decision.1.agreement,
            Some(1.0),
            "ben sided with the majority every time"
        );
        assert_eq!(ben_decision.1.labels, 5);

        // An expert decides item 2; the next run leaves it alone and queues nothing twice.
        let expert = user(&store, "eli", "human").await;
        store
            .adjudicate(
                project.id,
                ItemId((items[1]).get()),
                expert.id,
                NewAdjudication {
                    answer: json!({"decision": "VIOLATING", "severity": "S3"}),
                    rationale: "Names a target".into(),
                    ..NewAdjudication::default()
                },
            )
            .await
            .unwrap();
        let again = concord_qa::run_consensus(&store, &project, None, None, &|_: &str| {})
            .await
            .unwrap();
        assert_eq!(again.escalated, 0);
        assert_eq!(
            store
                .item(project.id, ItemId((items[1]).get()))
                .await
                .unwrap()
                .state,
            concord_store::ItemState::Adjudicated
        );
        assert_eq!(
            store
                .escalations(
                    project.id,
                    concord_store::EscalationStatus::Open,
                    expert.id,
                    10
                )
                .await
                .unwrap()
                .len(),
            2
        );
        if store.backend() == concord_store::Backend::Postgres {
            let _ = store.drop_schema(&schema_name("run")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsure_answer_from_the_queue_reaches_the_expert_queue() {
    for (store, _dir) in stores("unsure").await {
        let (project, items) = project(&store, "unsure", 1).await;
        let annotator = user(&store, "uma", "human").await;
        let next = store.next_item(&project, &annotator).await.unwrap();
        assert!(matches!(next, concord_store::NextItem::Leased(_)));
        store
            .submit(
                &project,
                &annotator,
                Submission {
                    item_id: ItemId((items[0]).get()),
                    kind: AnswerKind::Unsure,
                    answer: json!({"severity": "S2"}),
                    rationale: "Cannot tell if this is satire".into(),
                    flags: Vec::new(),
                    guideline_version_id: None,
                    time_spent_ms: Some(5_000),
                    idempotency_key: "unsure-1".into(),
                },
            )
            .await
            .unwrap();
        let run = concord_qa::run_consensus(&store, &project, None, None, &|_: &str| {})
            .await
            .unwrap();
        assert_eq!(run.escalated, 1);
        let queue = store
            .escalations(
                project.id,
                concord_store::EscalationStatus::Open,
                annotator.id,
                10,
            )
            .await
            .unwrap();
        assert_eq!(queue[0].reasons[0]["rule"], "unsure");
        assert!(queue[0].viewer_labelled);
        if store.backend() == concord_store::Backend::Postgres {
            let _ = store.drop_schema(&schema_name("unsure")).await;
        }
    }
}

/// Costs of disagreement: calling violating content "not violating" costs 10, two adjacent
/// decisions 1; severity has no matrix, so it costs the levels apart (ordinal default).
/// Both items split 2–1 and escalate; the one whose consensus risks the costly confusion
/// leads the queue although it came second, and the report weighs agreement by the costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_of_disagreement_weigh_agreement_and_rank_the_expert_queue() {
    for (store, _dir) in stores("costs").await {
        let (project, items) = project(&store, "costs", 2).await;
        let project = store
            .update_project(
                project.id,
                &project.name,
                "",
                json!({"qa": {"method": "mv", "costs": {"decision": {
                    "classes": ["NOT_VIOLATING", "BORDERLINE", "VIOLATING"],
                    "matrix": [[0, 1, 4], [1, 0, 1], [10, 1, 0]]}}}}),
                None,
            )
            .await
            .unwrap();
        let people = [
            user(&store, "ann", "human").await,
            user(&store, "ben", "human").await,
            user(&store, "cleo", "human").await,
        ];
        // Item 1: BORDERLINE, BORDERLINE, VIOLATING; item 2: NOT_VIOLATING ×2, VIOLATING.
        // Severity S0, S0, S2 on both.
        for (item, majority) in items.iter().zip(["BORDERLINE", "NOT_VIOLATING"]) {
            for (n, person) in people.iter().enumerate() {
                let (decision, severity) = if n < 2 {
                    (majority, "S0")
                } else {
                    ("VIOLATING", "S2")
                };
                label(
                    &store,
                    &project,
                    person,
                    *item,
                    answer(decision, severity, &[]),
                )
                .await;
            }
        }
        let run = concord_qa::run_consensus(&store, &project, None, None, &|_: &str| {})
            .await
            .unwrap();
        assert_eq!(run.escalated, 2);
        let queue = store
            .escalations(
                project.id,
                concord_store::EscalationStatus::Open,
                UserId((people[0].id).get()),
                10,
            )
            .await
            .unwrap();
        // Expected costs (majority vote posteriors 2/3 and 1/3): item 2 decision 10/3,
        // item 1 decision 1/3; severity S0 with S2 at 1/3 costs 2/3 on both.
        let ranked: Vec<(ItemId, f64)> = queue
            .iter()
            .map(|e| (e.item_id, e.expected_cost.unwrap()))
            .collect();
        assert_eq!(ranked[0].0, items[1], "{ranked:?}");
        assert!(
            (ranked[0].1 - (10.0 / 3.0 + 2.0 / 3.0)).abs() < 1e-3,
            "{ranked:?}"
        );
        assert_eq!(ranked[1].0, items[0], "{ranked:?}");
        assert!(
            (ranked[1].1 - (1.0 / 3.0 + 2.0 / 3.0)).abs() < 1e-3,
            "{ranked:?}"
        );

        let report = concord_qa::report_of(&run).unwrap();
        let costs = |key: &str| {
            report
                .questions
                .iter()
                .find(|q| q.key == key)
                .and_then(|q| q.costs.clone())
                .unwrap_or_else(|| panic!("{key} has costs"))
        };
        let decision = costs("decision");
        assert_eq!(decision.source, concord_store::CostSource::Settings);
        assert_eq!(decision.matrix[2][0], 10.0);
        assert!(decision.alpha.value.is_some() && decision.gwet.value.is_some());
        let mean = decision.mean_expected_cost.unwrap();
        assert!(
            (mean - (10.0 / 3.0 + 1.0 / 3.0) / 2.0).abs() < 1e-3,
            "{mean}"
        );
        assert_eq!(
            costs("severity").source,
            concord_store::CostSource::OrdinalDefault
        );
        assert!(
            report
                .questions
                .iter()
                .all(|q| q.key != "category" || q.costs.is_none())
        );
    }
}
