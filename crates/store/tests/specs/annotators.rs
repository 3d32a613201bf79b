use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::ModelAnnotatorId;
use concord_store::UserId;
use concord_store::{
    AccountKind, AnswerKind, Id, ModelAnswer, ModelCall, ModelCallKey, ModelKind, ModelLabel,
    ModelProvenance, ModelRunCounts, NewModelAnnotator, NextItem, OnConflict, Project, StoreError,
    Submission,
};

async fn project_with_tracks(store: &TestStore, slug: &str, count: usize) -> Project {
    let project = fixtures::project(store, slug).await;
    fixtures::import_items(
        store,
        project.id,
        "items.csv",
        &fixtures::tracks_csv(count),
        OnConflict::Error,
    )
    .await
    .unwrap();
    store.project(slug).await.unwrap()
}

fn rules_model(name: &str) -> NewModelAnnotator {
    let mut new = NewModelAnnotator::new(name, ModelKind::Rules);
    new.rules = "[[rule]]\ncategory = \"DG.HATE\"\nkeywords = [\"slur\"]\n".into();
    new
}

fn openai_model(name: &str) -> NewModelAnnotator {
    let mut new = NewModelAnnotator::new(name, ModelKind::OpenAi);
    new.base_url = "http://127.0.0.1:9/v1".into();
    new.model = "small-model".into();
    new.api_key_env = "CONCORD_TEST_KEY".into();
    new.price_in_per_1k = 0.5;
    new
}

async fn a_model_is_configured_with_an_account_of_its_own(store: TestStore) {
    let pm = fixtures::user(&store, "pm").await;
    let project = fixtures::project(&store, "podcasts").await;
    let created = store
        .create_model_annotator(&project, openai_model("gpt"), Some(pm.id))
        .await
        .unwrap();
    assert_eq!(created.username, "podcasts.gpt");
    assert_eq!(created.kind, ModelKind::OpenAi);
    assert_eq!(created.api_key_env, "CONCORD_TEST_KEY");
    assert_eq!(created.price_in_per_1k, 0.5);
    assert!(created.enabled);
    let account = store.user_by_id(created.user_id).await.unwrap();
    assert_eq!(account.kind, AccountKind::Model);
    store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    let names: Vec<String> = store
        .model_annotators(project.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["baseline", "gpt"]);
    let audit = store.audit_log(Some(project.id), 10).await.unwrap();
    assert!(audit.iter().any(|e| e.entity == "model_annotator"));
}

async fn a_bad_model_configuration_is_refused_and_changes_nothing(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let mut no_url = openai_model("gpt");
    no_url.base_url = "ftp://example".into();
    let mut no_rules = rules_model("baseline");
    no_rules.rules = " ".into();
    let mut key_in_place_of_its_name = openai_model("gpt");
    key_in_place_of_its_name.api_key_env = "sk-live-123".into();
    let mut bad_name = rules_model("has space");
    bad_name.name = "has space".into();
    let mut no_concurrency = openai_model("gpt");
    no_concurrency.max_concurrency = 0;
    for (new, says) in [
        (no_url, "base_url"),
        (no_rules, "rules"),
        (key_in_place_of_its_name, "api_key_env"),
        (bad_name, "model name"),
        (no_concurrency, "max_concurrency"),
    ] {
        let err = store
            .create_model_annotator(&project, new, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(says)),
            "{err:?} should name {says}"
        );
    }
    store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    let err = store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.model_annotators(project.id).await.unwrap().len(), 1);
}

async fn a_disabled_model_is_not_among_those_to_run(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    store
        .create_model_annotator(&project, openai_model("gpt"), None)
        .await
        .unwrap();
    let off = store
        .set_model_enabled(project.id, "gpt", false, None)
        .await
        .unwrap();
    assert!(!off.enabled);
    let running: Vec<String> = store
        .enabled_model_annotators()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(running, ["baseline"]);
    store
        .set_model_enabled(project.id, "gpt", true, None)
        .await
        .unwrap();
    assert_eq!(store.enabled_model_annotators().await.unwrap().len(), 2);
    let missing = store
        .set_model_enabled(project.id, "nobody", true, None)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)));
}

async fn a_cached_call_answers_only_for_the_same_inputs(store: TestStore) {
    let project = project_with_tracks(&store, "podcasts", 2).await;
    let item = store
        .model_backlog(project.id, UserId(0), None, 1)
        .await
        .unwrap()[0]
        .clone();
    let key = ModelCallKey {
        item_id: item.id,
        guideline_version_id: None,
        schema_version_id: project.current_schema_version_id.unwrap(),
        prompt_digest: "abc123".into(),
        model: "small-model".into(),
    };
    assert_eq!(store.cached_model_call(&key).await.unwrap(), None);
    let call = ModelCall {
        raw_answer: "{\"decision\":\"NOT_VIOLATING\"}".into(),
        model_version: "small-model-2025".into(),
        prompt_tokens: 120,
        completion_tokens: 8,
    };
    store
        .save_model_call(key.clone(), call.clone())
        .await
        .unwrap();
    let mut later = call.clone();
    later.raw_answer = "something else".into();
    store.save_model_call(key.clone(), later).await.unwrap();
    assert_eq!(
        store.cached_model_call(&key).await.unwrap(),
        Some(call),
        "the first answer stays"
    );
    let other_prompt = ModelCallKey {
        prompt_digest: "def456".into(),
        ..key.clone()
    };
    let other_guideline = ModelCallKey {
        guideline_version_id: Some(1),
        ..key.clone()
    };
    let other_model = ModelCallKey {
        model: "large-model".into(),
        ..key.clone()
    };
    for other in [other_prompt, other_guideline, other_model] {
        assert_eq!(store.cached_model_call(&other).await.unwrap(), None);
    }
}

async fn a_run_counts_tokens_cost_and_failures(store: TestStore) {
    let project = project_with_tracks(&store, "podcasts", 2).await;
    let model = store
        .create_model_annotator(&project, openai_model("gpt"), None)
        .await
        .unwrap();
    let run = store.start_model_run(model.id, None).await.unwrap();
    assert_eq!(run.counts, ModelRunCounts::default());
    let step = ModelRunCounts {
        labelled: 1,
        prompt_tokens: 100,
        completion_tokens: 10,
        cost: 0.05,
        ..ModelRunCounts::default()
    };
    store.count_model_run(run.id, step).await.unwrap();
    store.count_model_run(run.id, step).await.unwrap();
    let item = store
        .model_backlog(project.id, model.user_id, None, 1)
        .await
        .unwrap()[0]
        .id;
    store
        .record_model_failure(run.id, item, "not json", "the answer is not JSON")
        .await
        .unwrap();
    store
        .count_model_run(
            run.id,
            ModelRunCounts {
                failures: 1,
                ..ModelRunCounts::default()
            },
        )
        .await
        .unwrap();
    let done = store.finish_model_run(run.id).await.unwrap();
    assert_eq!(done.counts.labelled, 2);
    assert_eq!(done.counts.failures, 1);
    assert_eq!(done.counts.prompt_tokens, 200);
    assert_eq!(done.counts.completion_tokens, 20);
    assert!((done.counts.cost - 0.1).abs() < 1e-9);
    assert!(done.finished_at.is_some());
    let failures = store.model_failures(run.id).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].raw_answer, "not json");
    assert_eq!(failures[0].item_id, item);
    assert_eq!(store.model_runs(model.id, 10).await.unwrap()[0].id, run.id);
}

async fn a_machine_label_records_what_it_was_made_with(store: TestStore) {
    let project = project_with_tracks(&store, "podcasts", 3).await;
    let model = store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    let account = store.user_by_id(model.user_id).await.unwrap();
    let backlog = store
        .model_backlog(project.id, account.id, None, 10)
        .await
        .unwrap();
    assert_eq!(backlog.len(), 3);
    let NextItem::Leased(lease) = store.next_item(&project, &account).await.unwrap() else {
        panic!("the model gets an item");
    };
    assert_eq!(
        lease.item.id, backlog[0].id,
        "the backlog reads ahead in the queue's order"
    );
    let outcome = store
        .submit(
            &project,
            &account,
            Submission {
                item_id: lease.item.id,
                kind: AnswerKind::Label,
                answer: fixtures::answer("NOT_VIOLATING", "S0"),
                rationale: "no rule matched".into(),
                flags: Vec::new(),
                guideline_version_id: None,
                time_spent_ms: None,
                idempotency_key: "model-1-item-1".into(),
            },
        )
        .await
        .unwrap();
    let label = ModelLabel {
        annotation_id: outcome.annotation_id,
        provenance: ModelProvenance {
            annotator_id: model.id,
            model: "rules".into(),
            model_version: "rules:0123abcd".into(),
            prompt_digest: "0123abcd".into(),
            guideline_version_id: None,
            confidence: Some(0.9),
        },
    };
    store.record_model_label(label.clone()).await.unwrap();
    store.record_model_label(label.clone()).await.unwrap();
    assert_eq!(
        store.model_label(outcome.annotation_id).await.unwrap(),
        Some(label)
    );
    let left: Vec<ItemId> = store
        .model_backlog(project.id, account.id, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        left,
        [backlog[1].id, backlog[2].id],
        "a labelled item is not read ahead again"
    );
    let after_first: Vec<ItemId> = store
        .model_backlog(
            project.id,
            account.id,
            Some((backlog[1].priority, (backlog[1].id).get())),
            10,
        )
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(after_first, [backlog[2].id]);
}

fn model_answer(
    item_id: ItemId,
    model_id: ModelAnnotatorId,
    run_id: Id,
    then_lease: bool,
) -> ModelAnswer {
    ModelAnswer {
        submission: Submission {
            item_id,
            kind: AnswerKind::Label,
            answer: fixtures::answer("NOT_VIOLATING", "S0"),
            rationale: "no rule matched".into(),
            flags: Vec::new(),
            guideline_version_id: None,
            time_spent_ms: None,
            idempotency_key: format!("model-{model_id}-{item_id}-digest"),
        },
        provenance: ModelProvenance {
            annotator_id: model_id,
            model: "rules".into(),
            model_version: "rules:0123abcd".into(),
            prompt_digest: "0123abcd".into(),
            guideline_version_id: None,
            confidence: Some(0.75),
        },
        run_id,
        counts: ModelRunCounts {
            prompt_tokens: 10,
            ..ModelRunCounts::default()
        },
        then_lease,
    }
}

async fn a_models_turn_stores_its_answer_provenance_and_counts_and_leases_the_next_item(
    store: TestStore,
) {
    let project = project_with_tracks(&store, "podcasts", 2).await;
    let model = store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    let account = store.user_by_id(model.user_id).await.unwrap();
    let run = store.start_model_run(model.id, None).await.unwrap();
    let NextItem::Leased(first) = store.next_item(&project, &account).await.unwrap() else {
        panic!("the model gets an item");
    };

    let turn = store
        .submit_model_answer(
            &project,
            &account,
            model_answer(first.item.id, model.id, run.id, true),
        )
        .await
        .unwrap();
    assert!(!turn.submitted.replayed);
    let Some(NextItem::Leased(second)) = turn.next else {
        panic!(
            "the same turn leases the model's next item: {:?}",
            turn.next
        );
    };
    assert_ne!(second.item.id, first.item.id);
    assert!(!second.resumed, "a new lease, not the one just answered");
    let label = store
        .model_label(turn.submitted.annotation_id)
        .await
        .unwrap()
        .expect("the provenance is stored with the answer");
    assert_eq!(label.provenance.model_version, "rules:0123abcd");
    assert_eq!(label.provenance.confidence, Some(0.75));
    let counts = store.model_run(run.id).await.unwrap().counts;
    assert_eq!((counts.labelled, counts.prompt_tokens), (1, 10));

    // A restarted run answers the same item under the same key: nothing new, no label counted.
    let replay = store
        .submit_model_answer(
            &project,
            &account,
            model_answer(first.item.id, model.id, run.id, false),
        )
        .await
        .unwrap();
    assert!(replay.submitted.replayed);
    assert_eq!(replay.submitted.annotation_id, turn.submitted.annotation_id);
    assert!(replay.next.is_none(), "a last answer leases nothing");
    let counts = store.model_run(run.id).await.unwrap().counts;
    assert_eq!((counts.labelled, counts.prompt_tokens), (1, 20));

    let last = store
        .submit_model_answer(
            &project,
            &account,
            model_answer(second.item.id, model.id, run.id, true),
        )
        .await
        .unwrap();
    assert!(
        matches!(last.next, Some(NextItem::Empty)),
        "nothing is left for the model: {:?}",
        last.next
    );
}

async fn only_a_model_account_submits_a_model_answer(store: TestStore) {
    let project = project_with_tracks(&store, "podcasts", 1).await;
    let model = store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    let run = store.start_model_run(model.id, None).await.unwrap();
    let person = fixtures::user(&store, "ann").await;
    let NextItem::Leased(lease) = store.next_item(&project, &person).await.unwrap() else {
        panic!("the person gets an item");
    };
    let refused = store
        .submit_model_answer(
            &project,
            &person,
            model_answer(lease.item.id, model.id, run.id, true),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused:?}");
    assert!(refused.to_string().contains("not a model account"));
    let counts = store.model_run(run.id).await.unwrap().counts;
    assert_eq!(counts, ModelRunCounts::default(), "nothing was counted");
}

async fn a_models_lanes_each_hold_a_lease_and_a_stopped_runs_leases_are_listed(store: TestStore) {
    let project = project_with_tracks(&store, "podcasts", 4).await;
    let model = store
        .create_model_annotator(&project, rules_model("baseline"), None)
        .await
        .unwrap();
    let account = store.user_by_id(model.user_id).await.unwrap();
    let mut leased = Vec::new();
    for _ in 0..3 {
        let NextItem::Leased(lease) = store.lease_model_item(&project, &account).await.unwrap()
        else {
            panic!("each lane gets an item");
        };
        assert!(!lease.resumed);
        leased.push(lease.item.id);
    }
    let distinct: std::collections::HashSet<ItemId> = leased.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "three lanes, three different items: {leased:?}"
    );
    let held: Vec<ItemId> = store
        .held_leases(&project, &account)
        .await
        .unwrap()
        .iter()
        .map(|l| l.item.id)
        .collect();
    assert_eq!(held, leased, "a stopped run's leases, oldest first");
    // The ordinary queue still resumes the lease an account holds (the oldest).
    let NextItem::Leased(again) = store.next_item(&project, &account).await.unwrap() else {
        panic!("the held lease is served again");
    };
    assert!(again.resumed);
    assert_eq!(again.item.id, leased[0]);
    let NextItem::Leased(last) = store.lease_model_item(&project, &account).await.unwrap() else {
        panic!("the fourth item");
    };
    assert!(!leased.contains(&last.item.id));
    assert!(matches!(
        store.lease_model_item(&project, &account).await.unwrap(),
        NextItem::Empty
    ));
}

on_every_backend!(
    a_model_is_configured_with_an_account_of_its_own,
    a_bad_model_configuration_is_refused_and_changes_nothing,
    a_disabled_model_is_not_among_those_to_run,
    a_cached_call_answers_only_for_the_same_inputs,
    a_run_counts_tokens_cost_and_failures,
    a_machine_label_records_what_it_was_made_with,
    a_models_turn_stores_its_answer_provenance_and_counts_and_leases_the_next_item,
    only_a_model_account_submits_a_model_answer,
    a_models_lanes_each_hold_a_lease_and_a_stopped_runs_leases_are_listed,
);
