//! The work queue: overlap under concurrency, leases, idempotent submits, unsure, skips,
//! priority, caps, gold (rate, feedback, pause, resume), dynamic overlap, model accounts.

use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::{
    AnswerKind, AssignmentPurpose, Id, ItemState, NewUser, NextItem, OnConflict, Project, Role,
    Store, StoreError, Submission, User,
};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

async fn project_with(store: &Store, slug: &str, queue: Value, items_jsonl: &str) -> Project {
    let project = fixtures::project(store, slug).await;
    let project = store
        .update_project(
            project.id,
            &project.name,
            "",
            json!({ "queue": queue }),
            None,
        )
        .await
        .unwrap();
    fixtures::import_items(
        store,
        project.id,
        "items.jsonl",
        items_jsonl,
        OnConflict::Error,
    )
    .await
    .unwrap();
    project
}

fn tracks(count: usize) -> String {
    (1..=count)
        .map(|n| {
            format!("{{\"id\":\"t{n:04}\",\"item_type\":\"track\",\"title\":\"Track {n}\"}}\n")
        })
        .collect()
}

async fn annotators(store: &Store, prefix: &str, count: usize) -> Vec<User> {
    let mut out = Vec::new();
    for n in 0..count {
        out.push(fixtures::user(store, &format!("{prefix}{n}")).await);
    }
    out
}

fn leased(next: NextItem) -> concord_store::Lease {
    match next {
        NextItem::Leased(lease) => *lease,
        other => panic!("expected an item, got {other:?}"),
    }
}

fn submission(item_id: ItemId, decision: &str, severity: &str, key: &str) -> Submission {
    Submission {
        item_id,
        kind: AnswerKind::Label,
        answer: fixtures::answer(decision, severity),
        rationale: String::new(),
        flags: Vec::new(),
        guideline_version_id: None,
        time_spent_ms: Some(1_000),
        idempotency_key: key.into(),
    }
}

/// Submits a label for a leased item and expects it to be acknowledged.
async fn label(
    store: &Store,
    project: &Project,
    person: &User,
    item_id: ItemId,
    decision: &str,
    severity: &str,
    key: &str,
) -> concord_store::SubmitOutcome {
    store
        .submit(
            project,
            person,
            submission(item_id, decision, severity, key),
        )
        .await
        .unwrap()
}

/// A lease and a submission change no token, user, project or role, so the server that
/// serves them keeps its remembered lookups (on PostgreSQL every queue request once paid two
/// more round trips for forgetting them). What another process changes counts there after
/// the time to live, as it always does.
async fn queue_requests_keep_the_remembered_token_and_role_lookups(store: TestStore) {
    let server = store.another_process(Duration::from_secs(600)).await;
    let project = project_with(&store, "remembered", json!({"overlap": 1}), &tracks(2)).await;
    let ana = fixtures::user(&store, "ana").await;
    store
        .set_member(project.id, "ana", Role::Annotator, None)
        .await
        .unwrap();
    let (secret, token) = store.create_api_token(ana.id, "ci").await.unwrap();
    assert_eq!(
        server.user_by_api_token(&secret).await.unwrap(),
        Some(ana.clone())
    );
    assert_eq!(
        server.project_and_role("remembered", &ana).await.unwrap().1,
        Some(Role::Annotator)
    );

    let lease = leased(server.next_item(&project, &ana).await.unwrap());
    label(
        &server,
        &project,
        &ana,
        lease.item.id,
        "NOT_VIOLATING",
        "S0",
        "key-remembered",
    )
    .await;
    store.revoke_api_token(ana.id, token.id).await.unwrap();
    store.remove_member(project.id, "ana", None).await.unwrap();

    assert_eq!(
        server.user_by_api_token(&secret).await.unwrap(),
        Some(ana.clone()),
        "a queue request made the server forget the token's owner"
    );
    assert_eq!(
        server.project_and_role("remembered", &ana).await.unwrap().1,
        Some(Role::Annotator),
        "a queue request made the server forget the role"
    );
    assert_eq!(store.user_by_api_token(&secret).await.unwrap(), None);
}

/// An automated annotator's account (kind "model").
async fn model_account(store: &Store, username: &str) -> User {
    store
        .create_user(
            NewUser {
                username: username.into(),
                display_name: None,
                password: None,
                is_admin: false,
                kind: concord_store::AccountKind::Model,
            },
            None,
        )
        .await
        .unwrap()
}

async fn item_state(store: &Store, project: &Project, item_id: ItemId) -> ItemState {
    store.item(project.id, item_id).await.unwrap().state
}

async fn sixty_four_annotators_asking_at_once_never_exceed_the_overlap(store: TestStore) {
    let project = project_with(&store, "overlap", json!({"overlap": 2}), &tracks(20)).await;
    let people = annotators(&store, "a", 64).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(people.len()));
    let mut tasks = Vec::new();
    for person in people {
        let (store, project, barrier) = (store.store.clone(), project.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.next_item(&project, &person).await
        }));
    }
    let mut per_item: HashMap<Id, usize> = HashMap::new();
    let mut empty = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            NextItem::Leased(lease) => *per_item.entry(lease.item.id.get()).or_default() += 1,
            NextItem::Empty => empty += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(per_item.values().all(|&n| n <= 2), "{per_item:?}");
    assert_eq!(per_item.values().sum::<usize>(), 40, "20 items × overlap 2");
    assert_eq!(empty, 24);
    let integrity = store.queue_integrity(project.id).await.unwrap();
    assert_eq!(integrity.items_over_overlap, 0, "the database agrees");
}

async fn annotators_leasing_and_submitting_at_once_keep_every_item_within_its_overlap(
    store: TestStore,
) {
    // Leases and submissions of the same item race each other: the counts on the item must
    // never lose an update, or the item reopens and is served past its overlap.
    let project = project_with(&store, "race", json!({"overlap": 2}), &tracks(40)).await;
    let people = annotators(&store, "r", 16).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(people.len()));
    let mut tasks = Vec::new();
    for person in people {
        let (store, project, barrier) = (store.store.clone(), project.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut done = 0;
            while let NextItem::Leased(lease) = store.next_item(&project, &person).await.unwrap() {
                let key = format!("race-key-{}-{}", person.username, lease.item.id);
                label(
                    &store,
                    &project,
                    &person,
                    lease.item.id,
                    "NOT_VIOLATING",
                    "S0",
                    &key,
                )
                .await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let integrity = store.queue_integrity(project.id).await.unwrap();
    assert_eq!(integrity.items_over_overlap, 0, "{integrity:?}");
    assert_eq!(integrity.repeated_item_annotator_pairs, 0);
    assert_eq!(
        total, 80,
        "40 items × overlap 2, each labelled exactly twice"
    );
    assert_eq!(integrity.annotations, 80);
}

async fn an_annotator_never_gets_the_same_item_twice_and_a_reload_resumes_the_lease(
    store: TestStore,
) {
    let project = project_with(&store, "twice", json!({"overlap": 3}), &tracks(3)).await;
    let ann = fixtures::user(&store, "ann").await;
    let first = leased(store.next_item(&project, &ann).await.unwrap());
    let again = leased(store.next_item(&project, &ann).await.unwrap());
    assert_eq!(again.item.id, first.item.id);
    assert!(again.resumed && !first.resumed);
    let mut seen = HashSet::new();
    for n in 0..3 {
        let lease = leased(store.next_item(&project, &ann).await.unwrap());
        assert!(seen.insert(lease.item.id), "served twice");
        label(
            &store,
            &project,
            &ann,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("key-ann-{n}"),
        )
        .await;
    }
    assert!(matches!(
        store.next_item(&project, &ann).await.unwrap(),
        NextItem::Empty
    ));
}

/// An answer and the next lease in one transaction, as the label page asks: the same
/// items in the same order as a submit and a next-item request, within the overlap when
/// several annotators do it at once, and nothing leased when the answer is refused.
async fn an_answer_and_the_next_lease_in_one_transaction_serve_as_two_requests_would(
    store: TestStore,
) {
    let project = project_with(&store, "one-trip", json!({"overlap": 2}), &tracks(40)).await;
    let people = annotators(&store, "trip", 6).await;
    let mut tasks = Vec::new();
    for (n, person) in people.iter().cloned().enumerate() {
        let (store, project) = (store.store.clone(), project.clone());
        tasks.push(tokio::spawn(async move {
            let mut served = Vec::new();
            let mut next = store.next_item(&project, &person).await.unwrap();
            while let NextItem::Leased(lease) = next {
                served.push(lease.item.id);
                let key = format!("trip-{n}-{}", served.len());
                let answer = submission(lease.item.id, "NOT_VIOLATING", "S0", &key);
                let (outcome, then) = store
                    .submit_and_next(&project, &person, answer)
                    .await
                    .unwrap();
                assert!(!outcome.replayed);
                next = then;
            }
            assert!(matches!(next, NextItem::Empty), "{next:?}");
            served
        }));
    }
    let mut labels_per_item: HashMap<ItemId, usize> = HashMap::new();
    for task in tasks {
        let served = task.await.unwrap();
        let distinct: HashSet<_> = served.iter().collect();
        assert_eq!(
            distinct.len(),
            served.len(),
            "an item served twice to one person"
        );
        for item in served {
            *labels_per_item.entry(item).or_default() += 1;
        }
    }
    assert_eq!(labels_per_item.len(), 40);
    assert!(
        labels_per_item.values().all(|&n| n == 2),
        "{labels_per_item:?}"
    );
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 80);
    let integrity = store.queue_integrity(project.id).await.unwrap();
    assert_eq!(integrity.items_over_overlap, 0, "the database agrees");

    // A retried answer gets its first outcome and the lease already held.
    let project = project_with(&store, "one-trip-retry", json!({"overlap": 1}), &tracks(3)).await;
    let ann = fixtures::user(&store, "ann").await;
    let first = leased(store.next_item(&project, &ann).await.unwrap());
    let answer = submission(first.item.id, "VIOLATING", "S3", "one-trip-retry-1");
    let (stored, next) = store
        .submit_and_next(&project, &ann, answer.clone())
        .await
        .unwrap();
    let second = leased(next);
    let (again, next_again) = store.submit_and_next(&project, &ann, answer).await.unwrap();
    assert!(again.replayed && again.annotation_id == stored.annotation_id);
    let resumed = leased(next_again);
    assert!(resumed.resumed && resumed.item.id == second.item.id);

    // A refused answer rolls the lease back with it: nothing new is held.
    let refused = submission(
        ItemId(first.item.id.get() + 100),
        "VIOLATING",
        "S3",
        "one-trip-x",
    );
    assert!(matches!(
        store.submit_and_next(&project, &ann, refused).await,
        Err(StoreError::Conflict(_))
    ));
    let held = leased(store.next_item(&project, &ann).await.unwrap());
    assert!(held.resumed && held.item.id == second.item.id);
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 1);
}

/// The lease that comes with an answer starts from what the answer just counted, as a
/// request of its own would: a slot another annotator's lapsed lease gave back comes first,
/// and the daily cap the answer reached stops the queue.
async fn the_lease_with_an_answer_sees_slots_given_back_and_the_cap_the_answer_reached(
    store: TestStore,
) {
    let settings = json!({"overlap": 1, "daily_cap": 2});
    let project = project_with(&store, "with-answer", settings, &tracks(4)).await;
    let ann = fixtures::user(&store, "ann").await;
    let bea = fixtures::user(&store, "bea").await;
    let lapsing = leased(store.next_item(&project, &bea).await.unwrap());
    let first = leased(store.next_item(&project, &ann).await.unwrap());
    assert_ne!(first.item.id, lapsing.item.id);
    fixtures::execute(
        &store,
        format!(
            "UPDATE assignments SET expires_at = 0 WHERE item_id = {}",
            lapsing.item.id
        ),
    )
    .await;

    let answer = submission(first.item.id, "NOT_VIOLATING", "S0", "with-answer-1");
    let (_, next) = store.submit_and_next(&project, &ann, answer).await.unwrap();
    let second = leased(next);
    assert_eq!(second.item.id, lapsing.item.id, "the slot given back first");

    let answer = submission(second.item.id, "NOT_VIOLATING", "S0", "with-answer-2");
    let (_, next) = store.submit_and_next(&project, &ann, answer).await.unwrap();
    assert!(matches!(next, NextItem::CapReached { cap: 2 }), "{next:?}");
}

async fn items_are_served_by_priority_then_age(store: TestStore) {
    let items = "{\"id\":\"low\",\"item_type\":\"track\",\"title\":\"Low\",\"priority\":1}\n\
                 {\"id\":\"high\",\"item_type\":\"track\",\"title\":\"High\",\"priority\":9}\n\
                 {\"id\":\"old-mid\",\"item_type\":\"track\",\"title\":\"Mid 1\",\"priority\":5}\n\
                 {\"id\":\"new-mid\",\"item_type\":\"track\",\"title\":\"Mid 2\",\"priority\":5}\n";
    let project = project_with(&store, "priority", json!({"overlap": 1}), items).await;
    let ann = fixtures::user(&store, "ann").await;
    let mut order = Vec::new();
    for n in 0..4 {
        let lease = leased(store.next_item(&project, &ann).await.unwrap());
        order.push(lease.item.external_id.clone());
        label(
            &store,
            &project,
            &ann,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("priority-key-{n}"),
        )
        .await;
    }
    assert_eq!(order, ["high", "old-mid", "new-mid", "low"]);
}

async fn an_expired_lease_returns_the_slot_and_a_late_submission_is_kept_and_flagged(
    store: TestStore,
) {
    let project = project_with(&store, "leases", json!({"overlap": 1}), &tracks(1)).await;
    let (first, second) = (
        fixtures::user(&store, "first").await,
        fixtures::user(&store, "second").await,
    );
    let lease = leased(store.next_item(&project, &first).await.unwrap());
    assert!(matches!(
        store.next_item(&project, &second).await.unwrap(),
        NextItem::Empty
    ));
    fixtures::execute(&store, "UPDATE assignments SET expires_at = 0".into()).await;
    let taken_over = leased(store.next_item(&project, &second).await.unwrap());
    assert_eq!(taken_over.item.id, lease.item.id);

    let late = label(
        &store,
        &project,
        &first,
        lease.item.id,
        "VIOLATING",
        "S3",
        "late-key-1",
    )
    .await;
    assert!(late.late, "stored and flagged late");
    let on_time = label(
        &store,
        &project,
        &second,
        lease.item.id,
        "VIOLATING",
        "S3",
        "ontime-key-1",
    )
    .await;
    assert!(!on_time.late);
    let stored = store.item_annotations(lease.item.id).await.unwrap();
    assert_eq!(stored.len(), 2, "no acknowledged work is lost");
    assert_eq!(stored.iter().filter(|a| a.is_late).count(), 1);
}

async fn a_retried_submit_never_creates_a_second_annotation(store: TestStore) {
    let project = project_with(&store, "retry", json!({"overlap": 1}), &tracks(2)).await;
    let ann = fixtures::user(&store, "ann").await;
    let lease = leased(store.next_item(&project, &ann).await.unwrap());
    let s = submission(lease.item.id, "BORDERLINE", "S2", "retry-key-123");
    let (a, b) = tokio::join!(
        store.submit(&project, &ann, s.clone()),
        store.submit(&project, &ann, s.clone())
    );
    let ids: Vec<Id> = [a, b]
        .into_iter()
        .filter_map(|r| match r {
            Ok(outcome) => Some(outcome.annotation_id),
            Err(StoreError::Conflict(_)) => None, // the racing twin; a retry gets the result
            Err(e) => panic!("{e}"),
        })
        .collect();
    let again = store.submit(&project, &ann, s).await.unwrap();
    assert!(again.replayed);
    assert!(ids.iter().all(|id| *id == again.annotation_id));
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 1);
    let other = submission(
        ItemId(lease.item.id.get() + 1),
        "BORDERLINE",
        "S2",
        "retry-key-123",
    );
    let err = store.submit(&project, &ann, other).await.unwrap_err();
    assert!(err.to_string().contains("another item"), "{err}");
}

async fn a_submission_for_an_item_not_served_is_refused_and_bad_answers_name_the_field(
    store: TestStore,
) {
    let project = project_with(&store, "refuse", json!({}), &tracks(2)).await;
    let ann = fixtures::user(&store, "ann").await;
    let item = store
        .item_by_external_id(project.id, "t0002")
        .await
        .unwrap();
    let err = store
        .submit(
            &project,
            &ann,
            submission(item.id, "VIOLATING", "S3", "not-served-1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let lease = leased(store.next_item(&project, &ann).await.unwrap());
    let mut bad = submission(lease.item.id, "MAYBE", "S3", "bad-answer-1");
    let err = store.submit(&project, &ann, bad.clone()).await.unwrap_err();
    assert!(err.to_string().contains("decision"), "{err}");
    bad.answer = fixtures::answer("VIOLATING", "S3");
    bad.flags = vec!["vibes".into()];
    let err = store.submit(&project, &ann, bad.clone()).await.unwrap_err();
    assert!(err.to_string().contains("vibes"), "{err}");
    bad.flags.clear();
    bad.idempotency_key = "short".into();
    let err = store.submit(&project, &ann, bad).await.unwrap_err();
    assert!(err.to_string().contains("idempotency_key"), "{err}");
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 0);
}

async fn unsure_uses_the_slot_and_escalates_while_a_skip_frees_it(store: TestStore) {
    let project = project_with(&store, "unsure", json!({"overlap": 2}), &tracks(2)).await;
    let people = annotators(&store, "u", 3).await;
    let lease = leased(store.next_item(&project, &people[0]).await.unwrap());
    let mut unsure = submission(lease.item.id, "VIOLATING", "S3", "unsure-key-1");
    unsure.kind = AnswerKind::Unsure;
    unsure.answer = json!({"severity": "S2"}); // a best guess, the rest left out
    store.submit(&project, &people[0], unsure).await.unwrap();
    assert_eq!(
        item_state(&store, &project, lease.item.id).await,
        ItemState::Escalated
    );
    let escalated = lease.item.id;

    let other = leased(store.next_item(&project, &people[1]).await.unwrap());
    assert_ne!(
        other.item.id, escalated,
        "an escalated item is not served again"
    );
    store
        .skip(&project, &people[1], other.item.id, "audio will not load")
        .await
        .unwrap();
    // The skipper is not served it again; someone else gets the freed slot.
    assert!(matches!(
        store.next_item(&project, &people[1]).await.unwrap(),
        NextItem::Empty
    ));
    let third = leased(store.next_item(&project, &people[2]).await.unwrap());
    assert_eq!(third.item.id, other.item.id);
    let err = store
        .skip(&project, &people[1], other.item.id, "again")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let err = store
        .skip(&project, &people[2], other.item.id, "  ")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reason"));
    let overview = store.queue_overview(project.id).await.unwrap();
    assert_eq!(
        (
            overview.escalated_unsure,
            overview.skips,
            overview.labels,
            overview.live_leases
        ),
        (1, 1, 1, 1),
        "one unsure item, one skip, one label, the third annotator's live lease"
    );
}

async fn dynamic_overlap_adds_annotators_on_disagreement_and_escalates_at_the_maximum(
    store: TestStore,
) {
    let settings =
        json!({"dynamic": true, "min_overlap": 2, "overlap": 3, "target_agreement": 0.7});
    let project = project_with(&store, "dynamic", settings, &tracks(2)).await;
    let people = annotators(&store, "d", 4).await;
    let answer = |n: usize, item: ItemId, decision: &str| {
        submission(
            item,
            decision,
            if decision == "VIOLATING" { "S3" } else { "S0" },
            &format!("dyn-key-{n}-{item}"),
        )
    };
    // Item 1: two agree → labelled after two.
    // Item 2: split → a third annotator → still split → escalated.
    let mut by_item: HashMap<Id, usize> = HashMap::new();
    for (n, person) in people.iter().enumerate() {
        loop {
            let next = store.next_item(&project, person).await.unwrap();
            let NextItem::Leased(lease) = next else { break };
            let id = lease.item.id;
            let seen = by_item.entry(id.get()).or_default();
            *seen += 1;
            let decision = if lease.item.external_id == "t0001" || *seen % 2 == 1 {
                "VIOLATING"
            } else {
                "NOT_VIOLATING"
            };
            let decision = if lease.item.external_id == "t0002" && *seen == 3 {
                "BORDERLINE"
            } else {
                decision
            };
            store
                .submit(&project, person, answer(n, id, decision))
                .await
                .unwrap();
        }
    }
    let one = store
        .item_by_external_id(project.id, "t0001")
        .await
        .unwrap();
    let two = store
        .item_by_external_id(project.id, "t0002")
        .await
        .unwrap();
    assert_eq!(by_item[&one.id.get()], 2);
    assert_eq!(one.state, concord_store::ItemState::Labelled);
    assert_eq!(
        by_item[&two.id.get()],
        3,
        "one more annotator, up to the maximum"
    );
    assert_eq!(two.state, concord_store::ItemState::Escalated);
}

async fn coverage_gives_the_rest_of_the_items_one_label(store: TestStore) {
    let project = project_with(
        &store,
        "coverage",
        json!({"overlap": 2, "coverage_percent": 0}),
        &tracks(3),
    )
    .await;
    let people = annotators(&store, "c", 2).await;
    let mut served = 0;
    for (n, person) in people.iter().enumerate() {
        while let NextItem::Leased(lease) = store.next_item(&project, person).await.unwrap() {
            served += 1;
            label(
                &store,
                &project,
                person,
                lease.item.id,
                "NOT_VIOLATING",
                "S0",
                &format!("coverage-key-{n}-{}", lease.item.id),
            )
            .await;
        }
    }
    assert_eq!(served, 3, "coverage 0 %: every item gets one label");
}

async fn a_daily_cap_stops_serving_until_the_next_day(store: TestStore) {
    let project = project_with(
        &store,
        "cap",
        json!({"overlap": 1, "daily_cap": 2}),
        &tracks(5),
    )
    .await;
    let ann = fixtures::user(&store, "ann").await;
    for n in 0..2 {
        let lease = leased(store.next_item(&project, &ann).await.unwrap());
        label(
            &store,
            &project,
            &ann,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("cap-key-{n}"),
        )
        .await;
    }
    assert!(matches!(
        store.next_item(&project, &ann).await.unwrap(),
        NextItem::CapReached { cap: 2 }
    ));
    // A personal cap overrides the project's.
    store
        .set_annotator_limits(project.id, ann.id, Some(3), vec![], ann.id)
        .await
        .unwrap();
    leased(store.next_item(&project, &ann).await.unwrap());
    // Yesterday's count does not count today.
    fixtures::execute(
        &store,
        "UPDATE annotator_progress SET day = day - 1, daily_cap = 1".into(),
    )
    .await;
    let progress = store.annotator_progress(project.id, ann.id).await.unwrap();
    assert_eq!(progress.done_today, 0);
    assert_eq!(progress.done_total, 2);
}

fn gold_items(count: usize, plain: usize) -> String {
    let mut out = String::new();
    for n in 1..=count {
        out += &format!(
            "{{\"id\":\"g{n:03}\",\"item_type\":\"track\",\"title\":\"Gold {n}\",\"gold\":{{\"decision\":\"VIOLATING\",\"severity\":\"S3\"}}}}\n"
        );
    }
    out + &tracks(plain)
}

async fn gold_is_mixed_in_at_its_rate_scored_with_a_wilson_interval_and_pauses_the_inaccurate(
    store: TestStore,
) {
    let settings = json!({"overlap": 1, "gold_rate": 0.5, "pause_below": 0.6, "pause_min_gold": 4});
    let project = project_with(&store, "gold", settings, &gold_items(10, 20)).await;
    let ann = fixtures::user(&store, "ann").await;
    let analyst = fixtures::user(&store, "analyst").await;
    let mut gold_seen = 0;
    let mut feedback = Vec::new();
    let mut n = 0;
    loop {
        let next = store.next_item(&project, &ann).await.unwrap();
        let lease = match next {
            NextItem::Leased(lease) => *lease,
            NextItem::Paused { reason } => {
                assert!(reason.contains("gold accuracy"), "{reason}");
                break;
            }
            other => panic!("{other:?}"),
        };
        n += 1;
        // Always answers NOT_VIOLATING: wrong on every gold item.
        let outcome = label(
            &store,
            &project,
            &ann,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("gold-key-{n}"),
        )
        .await;
        if let Some(gold) = outcome.gold {
            gold_seen += 1;
            feedback.push(gold.correct);
            assert_eq!(
                gold.expected,
                json!({"decision": "VIOLATING", "severity": "S3"})
            );
        }
    }
    assert_eq!(
        gold_seen, 4,
        "paused after the minimum number of gold answers"
    );
    assert!(feedback.iter().all(|c| !c));
    assert!(
        (6..=10).contains(&n),
        "gold at about half the items: {n} served"
    );
    let progress = store.annotator_progress(project.id, ann.id).await.unwrap();
    assert!(progress.paused);
    // The store counts; the interval on the tally is the callers' (concord_stats::sampling).
    assert_eq!((progress.gold.correct, progress.gold.answered), (0, 4));

    store
        .resume_annotator(project.id, ann.id, analyst.id)
        .await
        .unwrap();
    leased(store.next_item(&project, &ann).await.unwrap());
    let err = store
        .resume_annotator(project.id, ann.id, analyst.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
}

/// The pause rule reads the 95 % interval, not the point estimate: two wrong answers out of
/// two may be a bad start (the bound is 66 %), a third makes the record clearly below 60 %
/// (56 %); an annotator who gets half right is never paused on that evidence.
async fn two_wrong_gold_answers_do_not_pause_but_a_clearly_bad_record_does(store: TestStore) {
    let settings = json!({"overlap": 2, "gold_rate": 1.0, "pause_below": 0.6, "pause_min_gold": 2});
    let project = project_with(&store, "pause-bound", settings, &gold_items(8, 12)).await;
    // Labels until `gold` gold answers are in, right on gold when `right(k)` for the k-th;
    // returns whether the annotator was paused after each gold answer.
    async fn answer_gold(
        store: &Store,
        project: &Project,
        person: &User,
        gold: usize,
        right: impl Fn(usize) -> bool,
    ) -> Vec<bool> {
        let mut paused_after = Vec::new();
        let mut n = 0;
        while paused_after.len() < gold {
            n += 1;
            let lease = leased(store.next_item(project, person).await.unwrap());
            let (decision, severity) = if right(paused_after.len()) {
                ("VIOLATING", "S3")
            } else {
                ("NOT_VIOLATING", "S0")
            };
            let key = format!("{}-key-{n}", person.username);
            let outcome = label(
                store,
                project,
                person,
                lease.item.id,
                decision,
                severity,
                &key,
            )
            .await;
            if outcome.gold.is_some() {
                paused_after.push(outcome.paused);
            }
        }
        paused_after
    }
    let bad = fixtures::user(&store, "bad").await;
    assert_eq!(
        answer_gold(&store, &project, &bad, 3, |_| false).await,
        [false, false, true],
        "0/2 is not enough evidence; 0/3 is"
    );
    match store.next_item(&project, &bad).await.unwrap() {
        NextItem::Paused { reason } => {
            assert!(reason.contains("0/3") && reason.contains("60%"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    let mixed = fixtures::user(&store, "mixed").await;
    assert_eq!(
        answer_gold(&store, &project, &mixed, 6, |k| k % 2 == 1).await,
        [false; 6],
        "half right is not clearly below 60 %"
    );
    let progress = store
        .annotator_progress(project.id, mixed.id)
        .await
        .unwrap();
    assert_eq!(
        (
            progress.gold.correct,
            progress.gold.answered,
            progress.gold.answered_recently
        ),
        (3, 6, 6)
    );
}

/// Dynamic overlap's savings against the fixed overlap: the items whose first two labels
/// agreed stopped at two of three (one label saved each); the split item took all three
/// and is not among them. An expert who later decides an early item otherwise counts as a
/// check that did not confirm it.
async fn overlap_savings_count_the_labels_not_asked_for_and_later_checks(store: TestStore) {
    let settings =
        json!({"dynamic": true, "min_overlap": 2, "overlap": 3, "target_agreement": 0.7});
    let project = project_with(&store, "savings", settings, &tracks(3)).await;
    let people = annotators(&store, "sv", 3).await;
    let expert = fixtures::user(&store, "sv-expert").await;
    for (n, person) in people.iter().enumerate() {
        loop {
            let NextItem::Leased(lease) = store.next_item(&project, person).await.unwrap() else {
                break;
            };
            // t0001 and t0002: everyone agrees; t0003: the first says VIOLATING, the rest not.
            let decision = match (lease.item.external_id.as_str(), n) {
                ("t0001", _) | ("t0003", 0) => "VIOLATING",
                _ => "NOT_VIOLATING",
            };
            let severity = if decision == "VIOLATING" { "S3" } else { "S0" };
            let key = format!("savings-key-{n}-{}", lease.item.id);
            store
                .submit(
                    &project,
                    person,
                    submission(lease.item.id, decision, severity, &key),
                )
                .await
                .unwrap();
        }
    }
    let savings = store.overlap_savings(&project).await.unwrap();
    assert_eq!(
        (
            savings.fixed_overlap,
            savings.early_items,
            savings.labels_used,
            savings.labels_saved
        ),
        (3, 2, 4, 2),
        "{savings:?}"
    );
    assert_eq!((savings.checked, savings.checked_agreeing), (0, 0));

    let t1 = store
        .item_by_external_id(project.id, "t0001")
        .await
        .unwrap();
    store
        .adjudicate(
            project.id,
            t1.id,
            expert.id,
            concord_store::NewAdjudication {
                answer: fixtures::answer("NOT_VIOLATING", "S0"),
                rationale: "a figure of speech".into(),
                ..concord_store::NewAdjudication::default()
            },
        )
        .await
        .unwrap();
    let savings = store.overlap_savings(&project).await.unwrap();
    assert_eq!(savings.early_items, 2, "a decided item still stopped early");
    assert_eq!((savings.checked, savings.checked_agreeing), (1, 0));
}

async fn deferred_gold_feedback_is_not_shown_after_submission_but_later_in_my_work(
    store: TestStore,
) {
    let settings = json!({"overlap": 1, "gold_rate": 1.0, "gold_feedback": "deferred"});
    let project = project_with(&store, "deferred", settings, &gold_items(1, 1)).await;
    let ann = fixtures::user(&store, "ann").await;
    let lease = leased(store.next_item(&project, &ann).await.unwrap());
    let outcome = label(
        &store,
        &project,
        &ann,
        lease.item.id,
        "VIOLATING",
        "S3",
        "deferred-key-1",
    )
    .await;
    assert!(outcome.gold.is_none());
    let work = store.my_work(&project, ann.id, 50).await.unwrap();
    assert!(work[0].gold.is_none(), "not on the same day");
    fixtures::execute(
        &store,
        "UPDATE annotations SET created_at = created_at - 86400000".into(),
    )
    .await;
    let work = store.my_work(&project, ann.id, 50).await.unwrap();
    assert_eq!(work[0].gold.as_ref().map(|g| g.correct), Some(true));
}

async fn model_accounts_label_in_parallel_and_set_the_pre_label_that_orders_the_queue(
    store: TestStore,
) {
    let project = project_with(&store, "models", json!({"overlap": 2}), &tracks(3)).await;
    let model = model_account(&store, "rules-model").await;
    let human = fixtures::user(&store, "human").await;
    // The model labels every item (it takes no human slot); it calls t0003 severe.
    for n in 0..3 {
        let lease = leased(store.next_item(&project, &model).await.unwrap());
        let (decision, severity) = if lease.item.external_id == "t0003" {
            ("VIOLATING", "S4")
        } else {
            ("NOT_VIOLATING", "S0")
        };
        let mut s = submission(lease.item.id, decision, severity, &format!("model-key-{n}"));
        if lease.item.external_id == "t0003" {
            s.answer["category"] = json!(["DG.SELF"]);
        }
        store.submit(&project, &model, s).await.unwrap();
    }
    let first = leased(store.next_item(&project, &human).await.unwrap());
    assert_eq!(
        first.item.external_id, "t0003",
        "the severe pre-label comes first"
    );

    // An annotator excluded from DG.SELF is not served items pre-labelled with it.
    let other = fixtures::user(&store, "excluded").await;
    store
        .set_annotator_limits(project.id, other.id, None, vec!["DG.SELF".into()], human.id)
        .await
        .unwrap();
    let served = leased(store.next_item(&project, &other).await.unwrap());
    assert_eq!(
        served.item.external_id, "t0001",
        "t0003 is skipped for them"
    );
    let err = store
        .set_annotator_limits(project.id, other.id, None, vec!["NOPE".into()], human.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NOPE"));
}

/// A model account labels the whole catalog in the queue's order, and each lease costs the
/// same however much it has labelled: it resumes after the last item it was served. Items
/// imported later, or excluded for a while, still come in their place in the order.
async fn a_model_account_goes_through_the_catalog_in_order_and_new_items_take_their_place(
    store: TestStore,
) {
    let item = |id: &str, priority: i64| {
        format!(
            "{{\"id\":\"{id}\",\"item_type\":\"track\",\"title\":\"{id}\",\"priority\":{priority}}}\n"
        )
    };
    let catalog: String = [
        ("a1", 5),
        ("a2", 5),
        ("b1", 3),
        ("b2", 3),
        ("c1", 1),
        ("c2", 1),
    ]
    .iter()
    .map(|(id, priority)| item(id, *priority))
    .collect();
    let project = project_with(&store, "model-order", json!({"overlap": 1}), &catalog).await;
    let model = model_account(&store, "catalog-model").await;
    let manager = fixtures::user(&store, "manager").await;
    let mut served = Vec::new();
    let mut key = 0;
    let mut next = async |served: &mut Vec<String>| {
        key += 1;
        let lease = leased(store.next_item(&project, &model).await.unwrap());
        served.push(lease.item.external_id.clone());
        label(
            &store,
            &project,
            &model,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("model-order-{key}"),
        )
        .await;
    };
    for _ in 0..3 {
        next(&mut served).await;
    }
    assert_eq!(served, ["a1", "a2", "b1"]);

    // Imported after the model passed their place: served next, in the order's place.
    fixtures::import_items(
        &store,
        project.id,
        "later.jsonl",
        &(item("urgent", 9) + &item("a3", 5) + &item("b0", 3)),
        OnConflict::Error,
    )
    .await
    .unwrap();
    for _ in 0..3 {
        next(&mut served).await;
    }
    assert_eq!(served[3..], ["urgent", "a3", "b2"]);

    // b0 came after b1 by id (a newer item), so it is still ahead: served in its turn. An
    // update that raises c2 above the cursor brings it forward too.
    fixtures::import_items(
        &store,
        project.id,
        "raise.jsonl",
        &item("c2", 4),
        OnConflict::Update,
    )
    .await
    .unwrap();
    // While an exclusion hides categories from the model it is served without its cursor.
    store
        .set_annotator_limits(
            project.id,
            model.id,
            None,
            vec!["DG.SELF".into()],
            manager.id,
        )
        .await
        .unwrap();
    next(&mut served).await;
    store
        .set_annotator_limits(project.id, model.id, None, Vec::new(), manager.id)
        .await
        .unwrap();
    for _ in 0..2 {
        next(&mut served).await;
    }
    assert_eq!(served[6..], ["c2", "b0", "c1"]);
    assert!(matches!(
        store.next_item(&project, &model).await.unwrap(),
        NextItem::Empty
    ));
}

async fn a_rereview_is_the_only_way_to_see_an_item_again_and_it_comes_first(store: TestStore) {
    let project = project_with(&store, "rereview", json!({"overlap": 1}), &tracks(3)).await;
    let ann = fixtures::user(&store, "ann").await;
    let pm = fixtures::user(&store, "pm").await;
    let lease = leased(store.next_item(&project, &ann).await.unwrap());
    label(
        &store,
        &project,
        &ann,
        lease.item.id,
        "NOT_VIOLATING",
        "S0",
        "rr-key-1",
    )
    .await;
    store
        .assign_again(
            project.id,
            lease.item.id,
            ann.id,
            AssignmentPurpose::Rereview,
            Some(pm.id),
        )
        .await
        .unwrap();
    let again = leased(store.next_item(&project, &ann).await.unwrap());
    assert_eq!(again.item.id, lease.item.id);
    assert_eq!(again.purpose, AssignmentPurpose::Rereview);
    label(
        &store,
        &project,
        &ann,
        lease.item.id,
        "BORDERLINE",
        "S2",
        "rr-key-2",
    )
    .await;
    assert_eq!(
        store.item_annotations(lease.item.id).await.unwrap().len(),
        2
    );
    let err = store
        .assign_again(
            project.id,
            lease.item.id,
            ann.id,
            AssignmentPurpose::Gold,
            Some(pm.id),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rereview"));
}

async fn an_item_first_seen_in_a_retest_is_never_served_again_by_the_ordinary_queue(
    store: TestStore,
) {
    let project = project_with(&store, "retest", json!({"overlap": 1}), &tracks(2)).await;
    let ann = fixtures::user(&store, "ann").await;
    let pm = fixtures::user(&store, "pm").await;
    let first = store
        .item_by_external_id(project.id, "t0001")
        .await
        .unwrap();
    // Two retests of the same item may be made; each is served once.
    for key in ["retest-key-1", "retest-key-2"] {
        store
            .assign_again(
                project.id,
                first.id,
                ann.id,
                AssignmentPurpose::Retest,
                Some(pm.id),
            )
            .await
            .unwrap();
        let lease = leased(store.next_item(&project, &ann).await.unwrap());
        assert_eq!(
            (lease.item.id, lease.purpose.as_str()),
            (first.id, "retest")
        );
        label(&store, &project, &ann, first.id, "NOT_VIOLATING", "S0", key).await;
    }
    let ordinary = leased(store.next_item(&project, &ann).await.unwrap());
    assert_eq!(
        ordinary.item.external_id, "t0002",
        "t0001 was seen in the retests, so the queue does not serve it again"
    );
    label(
        &store,
        &project,
        &ann,
        ordinary.item.id,
        "NOT_VIOLATING",
        "S0",
        "label-key-1",
    )
    .await;
    assert!(matches!(
        store.next_item(&project, &ann).await.unwrap(),
        NextItem::Empty
    ));
}

async fn time_on_high_severity_content_is_counted_for_the_project_manager(store: TestStore) {
    let project = project_with(&store, "wellbeing", json!({"overlap": 1}), &tracks(2)).await;
    let ann = fixtures::user(&store, "ann").await;
    for (n, (decision, severity)) in [("VIOLATING", "S4"), ("NOT_VIOLATING", "S0")]
        .iter()
        .enumerate()
    {
        let lease = leased(store.next_item(&project, &ann).await.unwrap());
        label(
            &store,
            &project,
            &ann,
            lease.item.id,
            decision,
            severity,
            &format!("hs-key-{n}"),
        )
        .await;
    }
    let team = store.team_progress(project.id).await.unwrap();
    let me = team.iter().find(|p| p.user_id == ann.id).unwrap();
    assert_eq!(me.time_total_ms, 2_000);
    assert_eq!(me.high_severity_ms, 1_000);
}

/// Published schemas are kept in memory; a newly published version still takes effect for
/// the very next submission, and the annotation records the version it was checked against.
async fn submissions_follow_a_newly_published_schema_version(store: TestStore) {
    let project = project_with(&store, "schema-v2", json!({}), &tracks(3)).await;
    let ann = fixtures::user(&store, "ann").await;
    let first = leased(store.next_item(&project, &ann).await.unwrap());
    let v1 = label(
        &store,
        &project,
        &ann,
        first.item.id,
        "VIOLATING",
        "S3",
        "v1-answer-1",
    )
    .await;
    let v1_id = store
        .annotation(v1.annotation_id)
        .await
        .unwrap()
        .schema_version_id;
    assert_eq!(v1_id, project.current_schema_version_id);
    let second = leased(store.next_item(&project, &ann).await.unwrap());
    let s5 = || submission(second.item.id, "VIOLATING", "S5", "v2-answer-1");
    let err = store.submit(&project, &ann, s5()).await.unwrap_err();
    assert!(err.to_string().contains("severity"), "{err}");

    let schema = fixtures::schema_with_s5();
    store
        .save_schema_draft(project.id, &schema, "", None)
        .await
        .unwrap();
    let v2 = store
        .publish_schema(project.id, Some("S5"), None)
        .await
        .unwrap();
    assert_eq!(store.current_schema(project.id).await.unwrap().id, v2.id);

    let project = store.project(&project.slug).await.unwrap();
    let stored = store.submit(&project, &ann, s5()).await.unwrap();
    assert!(!stored.replayed);
    let annotation = store.annotation(stored.annotation_id).await.unwrap();
    assert_eq!(annotation.schema_version_id, Some(v2.id));
}

async fn a_drawn_share_of_labels_comes_back_as_a_retest_after_its_delay_and_pairs_with_the_first_answer(
    store: TestStore,
) {
    let queue = json!({"overlap": 1, "retest": {"rate": 0.5, "delay_hours": 1}});
    let project = project_with(&store, "retests", queue, &tracks(40)).await;
    let ann = fixtures::user(&store, "ann").await;
    let plan = project.settings.queue.retest.clone();
    let mut drawn = Vec::new();
    let mut labelled = HashSet::new();
    while let NextItem::Leased(lease) = store.next_item(&project, &ann).await.unwrap() {
        let id = lease.item.id;
        assert!(labelled.insert(id), "no retest is served before its delay");
        label(
            &store,
            &project,
            &ann,
            id,
            "NOT_VIOLATING",
            "S0",
            &format!("first-key-{id}"),
        )
        .await;
        if plan.drawn(ann.id, id) {
            drawn.push(id);
        }
    }
    assert_eq!(labelled.len(), 40);
    assert!(
        (8..=32).contains(&drawn.len()),
        "about half of 40 labels are drawn: {}",
        drawn.len()
    );
    let counts = store.retest_counts(project.id).await.unwrap();
    assert_eq!(
        (counts.scheduled, counts.waiting, counts.answered),
        (drawn.len() as i64, drawn.len() as i64, 0)
    );

    // The delay passes (the database clock cannot be moved: the retests' time is).
    fixtures::execute(
        &store,
        format!(
            "UPDATE assignments SET available_at = 0 WHERE project_id = {} AND purpose = 'retest'",
            project.id
        ),
    )
    .await;
    let mut served = Vec::new();
    while let NextItem::Leased(lease) = store.next_item(&project, &ann).await.unwrap() {
        assert!(!lease.resumed);
        let id = lease.item.id;
        served.push(id);
        // A different answer on the first retest, the same on the rest.
        let decision = if served.len() == 1 {
            "VIOLATING"
        } else {
            "NOT_VIOLATING"
        };
        label(
            &store,
            &project,
            &ann,
            id,
            decision,
            "S0",
            &format!("retest-key-{id}"),
        )
        .await;
    }
    served.sort();
    drawn.sort();
    assert_eq!(served, drawn, "each drawn label is served again, once");
    let pairs = store.retest_pairs(project.id).await.unwrap();
    assert_eq!(pairs.len(), drawn.len());
    assert!(
        pairs
            .iter()
            .all(|p| p.annotator == "ann" && p.first["decision"] == "NOT_VIOLATING")
    );
    assert_eq!(
        pairs
            .iter()
            .filter(|p| p.retest["decision"] == "VIOLATING")
            .count(),
        1
    );
    let counts = store.retest_counts(project.id).await.unwrap();
    assert_eq!((counts.waiting, counts.answered), (0, drawn.len() as i64));
    // A retest answer is not itself retested, and the items stay labelled once for overlap.
    assert_eq!(counts.scheduled, drawn.len() as i64);
}

async fn retests_are_off_by_default_and_never_drawn_for_a_model(store: TestStore) {
    let project = project_with(&store, "no-retests", json!({"overlap": 2}), &tracks(10)).await;
    let ann = fixtures::user(&store, "ann").await;
    let model = model_account(&store, "podcasts.rules").await;
    for person in [&ann, &model] {
        while let NextItem::Leased(lease) = store.next_item(&project, person).await.unwrap() {
            let key = format!("key-{}-{}", person.username, lease.item.id);
            label(
                &store,
                &project,
                person,
                lease.item.id,
                "NOT_VIOLATING",
                "S0",
                &key,
            )
            .await;
        }
    }
    assert_eq!(store.retest_counts(project.id).await.unwrap().scheduled, 0);
    let other = project_with(
        &store,
        "model-only",
        json!({"overlap": 1, "retest": {"rate": 0.5, "delay_hours": 0}}),
        &tracks(10),
    )
    .await;
    while let NextItem::Leased(lease) = store.next_item(&other, &model).await.unwrap() {
        let key = format!("model-key-{}", lease.item.id);
        label(
            &store,
            &other,
            &model,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &key,
        )
        .await;
    }
    assert_eq!(
        store.retest_counts(other.id).await.unwrap().scheduled,
        0,
        "a model is never retested"
    );
}

async fn a_retest_rate_out_of_range_is_refused_naming_the_field(store: TestStore) {
    let project = fixtures::project(&store, "bad-retest").await;
    for (retest, says) in [
        (json!({"rate": 0.9}), "retest.rate"),
        (
            json!({"rate": 0.1, "delay_hours": -1}),
            "retest.delay_hours",
        ),
        (json!({"rate": 0.1, "every": 3}), "every"),
    ] {
        let err = store
            .update_project(
                project.id,
                &project.name,
                "",
                json!({"queue": {"retest": retest}}),
                None,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains(says), "{err} should name {says}");
    }
    let unchanged = store.project("bad-retest").await.unwrap();
    assert_eq!(unchanged.settings.queue.retest.rate, 0.0);
}

/// The first six tracks are flagged DG.HATE at S4 by a model; the rest are clean.
async fn flagged_by_a_model(store: &Store, project: &Project) {
    let model = model_account(store, "flagging-model").await;
    while let NextItem::Leased(lease) = store.next_item(project, &model).await.unwrap() {
        let n: u32 = lease.item.external_id[1..].parse().unwrap();
        let mut s = submission(
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("model-key-{n}"),
        );
        if n <= 6 {
            s.answer = json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S4"});
        }
        store.submit(project, &model, s).await.unwrap();
    }
}

async fn an_annotator_at_their_exposure_limit_is_served_no_more_flagged_items_that_day(
    store: TestStore,
) {
    let queue = json!({"overlap": 2, "exposure": {"daily": {"items": 2}, "categories": {"DG.SELF": {"minutes": 5}}}});
    let project = project_with(&store, "exposure", queue, &tracks(10)).await;
    flagged_by_a_model(&store, &project).await;
    let ann = fixtures::user(&store, "ann").await;
    let mut served = Vec::new();
    while let NextItem::Leased(lease) = store.next_item(&project, &ann).await.unwrap() {
        let flagged = served.len() < 6 && lease.item.external_id.as_str() <= "t0006";
        let mut s = submission(
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("ann-key-{}", lease.item.id),
        );
        if flagged {
            s.answer = json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S4"});
            s.time_spent_ms = Some(90_000);
        }
        store.submit(&project, &ann, s).await.unwrap();
        served.push(lease.item.external_id.clone());
    }
    // Flagged items come first (severe pre-labels); after two high-severity DG.HATE labels
    // the rest of the flagged items are held back, the clean ones still served.
    assert_eq!(served.len(), 6, "{served:?}");
    assert!(
        served[..2].iter().all(|id| id.as_str() <= "t0006"),
        "{served:?}"
    );
    assert!(
        served[2..].iter().all(|id| id.as_str() > "t0006"),
        "{served:?}"
    );

    let standings = store.exposure_standings(&project, None).await.unwrap();
    assert_eq!(standings.len(), 1, "{standings:?}");
    let ann_hate = &standings[0];
    assert_eq!(
        (ann_hate.annotator.as_str(), ann_hate.category.as_str()),
        ("ann", "DG.HATE")
    );
    assert_eq!((ann_hate.items, ann_hate.minutes), (2, 3.0));
    assert_eq!(ann_hate.limit_items, Some(2));
    assert_eq!(ann_hate.used, Some(1.0));
    assert_eq!(ann_hate.status, concord_store::ExposureStatus::Reached);

    // Another annotator's budget is their own.
    let bob = fixtures::user(&store, "bob").await;
    let first = leased(store.next_item(&project, &bob).await.unwrap());
    assert!(first.item.external_id.as_str() <= "t0006");
    // Another day has its own counts.
    let yesterday = store.database_now().await.unwrap() / 86_400_000 - 1;
    assert!(
        store
            .exposure_standings(&project, Some(yesterday))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn without_a_budget_exposure_is_counted_but_never_holds_work_back(store: TestStore) {
    let project = project_with(&store, "no-budget", json!({"overlap": 1}), &tracks(10)).await;
    flagged_by_a_model(&store, &project).await;
    let ann = fixtures::user(&store, "ann").await;
    let mut served = 0;
    while let NextItem::Leased(lease) = store.next_item(&project, &ann).await.unwrap() {
        let s = Submission {
            answer: json!({"decision": "VIOLATING", "category": ["DG.HATE", "DG.SELF"], "severity": "S3"}),
            ..submission(
                lease.item.id,
                "VIOLATING",
                "S3",
                &format!("ann-key-{}", lease.item.id),
            )
        };
        store.submit(&project, &ann, s).await.unwrap();
        served += 1;
    }
    assert_eq!(served, 10);
    let standings = store.exposure_standings(&project, None).await.unwrap();
    assert_eq!(standings.len(), 2, "one row per category named");
    assert!(standings.iter().all(|s| s.items == 10
        && s.status == concord_store::ExposureStatus::NoLimit
        && s.used.is_none()));
}

async fn an_exposure_limit_out_of_range_is_refused_naming_the_field(store: TestStore) {
    let project = fixtures::project(&store, "bad-exposure").await;
    for (exposure, says) in [
        (json!({"daily": {"items": 0}}), "exposure.daily.items"),
        (
            json!({"categories": {"DG.SELF": {"minutes": -5}}}),
            "exposure.categories.DG.SELF.minutes",
        ),
        (json!({"daily": {"hours": 2}}), "hours"),
    ] {
        let err = store
            .update_project(
                project.id,
                &project.name,
                "",
                json!({"queue": {"exposure": exposure}}),
                None,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains(says), "{err} should name {says}");
    }
}

/// The label page's undo: the author replaces their latest answer by a correction. Both stay
/// in the history, the correction takes no slot and counts no second time, and it is refused
/// for someone else's answer, an earlier answer, or an item settled by adjudication.
async fn the_author_undoes_their_latest_answer_by_a_correction_that_counts_once(store: TestStore) {
    let project = project_with(&store, "undo", json!({"overlap": 2}), &tracks(3)).await;
    let people = annotators(&store, "undo-", 3).await;
    let (ana, bob, expert) = (&people[0], &people[1], &people[2]);
    let first = leased(store.next_item(&project, ana).await.unwrap())
        .item
        .id;
    let said = label(
        &store,
        &project,
        ana,
        first,
        "VIOLATING",
        "S3",
        "undo-key-1",
    )
    .await;
    let correction =
        |supersedes: Id, decision: &str, severity: &str| concord_store::NewAnnotation {
            supersedes: Some(supersedes),
            ..fixtures::annotation(first, fixtures::answer(decision, severity))
        };

    let err = store
        .correct_last_answer(
            project.id,
            bob.id,
            correction(said.annotation_id, "NOT_VIOLATING", "S0"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)) && err.to_string().contains("not your latest"),
        "only the author: {err}"
    );

    assert_eq!(
        store
            .undoable_answer(project.id, ana.id, said.annotation_id)
            .await
            .unwrap()
            .answer,
        fixtures::answer("VIOLATING", "S3"),
        "the undo shows the answer given"
    );
    let corrected = store
        .correct_last_answer(
            project.id,
            ana.id,
            correction(said.annotation_id, "NOT_VIOLATING", "S0"),
        )
        .await
        .unwrap();
    assert_eq!(corrected.supersedes, Some(said.annotation_id));
    assert_eq!(
        corrected.source,
        concord_store::AnnotationSource::Correction
    );
    let history: Vec<(Id, Option<Id>)> = store
        .item_annotations(first)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.id, a.supersedes))
        .collect();
    assert_eq!(
        history,
        [
            (said.annotation_id, None),
            (corrected.id, Some(said.annotation_id))
        ],
        "the undone answer stays in the history"
    );
    let progress = store.annotator_progress(project.id, ana.id).await.unwrap();
    assert_eq!(
        (progress.done_today, progress.done_total),
        (1, 1),
        "counted once"
    );
    assert_eq!(
        store
            .queue_integrity(project.id)
            .await
            .unwrap()
            .items_over_overlap,
        0
    );
    assert_eq!(
        leased(store.next_item(&project, bob).await.unwrap())
            .item
            .id,
        first,
        "the correction took no second slot: the item still waits for its second label"
    );

    // Ana's next answer is now her latest: the corrected one can no longer be undone.
    let second = leased(store.next_item(&project, ana).await.unwrap())
        .item
        .id;
    let later = label(
        &store,
        &project,
        ana,
        second,
        "VIOLATING",
        "S1",
        "undo-key-2",
    )
    .await;
    let err = store
        .correct_last_answer(
            project.id,
            ana.id,
            correction(corrected.id, "VIOLATING", "S2"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("latest"), "{err}");

    // Once an expert has decided the item, the answer is settled.
    store
        .adjudicate(
            project.id,
            second,
            expert.id,
            concord_store::NewAdjudication {
                answer: fixtures::answer("VIOLATING", "S2"),
                rationale: "Threat against a named person".into(),
                ..concord_store::NewAdjudication::default()
            },
        )
        .await
        .unwrap();
    let err = store
        .undoable_answer(project.id, ana.id, later.annotation_id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)) && err.to_string().contains("adjudicated"),
        "{err}"
    );
    assert_eq!(
        store.item_annotations(second).await.unwrap().len(),
        1,
        "nothing written"
    );
}

/// A person's place in the queue's order: the first item their last lease found.
async fn place_of(store: &Store, project: &Project, person: &User) -> Option<i64> {
    fixtures::integer_cell(
        store,
        format!(
            "SELECT walk_item_id FROM annotator_progress WHERE project_id = {} AND user_id = {}",
            project.id.get(),
            person.id.get()
        ),
    )
    .await
}

/// A person's lease walks the queue from the place their last lease found, not from the
/// top (where it passed every item they had labelled that still waited for others), and
/// still serves the queue in its order: an item that reopens before that place, one whose
/// priority is raised and one a model's pre-label makes more severe each come next.
async fn a_person_walks_on_from_their_place_and_items_moving_before_it_come_first(
    store: TestStore,
) {
    let project = project_with(&store, "walk", json!({"overlap": 1}), &tracks(8)).await;
    let people = annotators(&store, "walker", 2).await;
    let (ann, bea) = (&people[0], &people[1]);
    let id_of = async |external: &str| {
        store
            .item_by_external_id(project.id, external)
            .await
            .unwrap()
            .id
    };
    let mut key = 0;
    let mut serve = async |person: &User| {
        key += 1;
        let lease = leased(store.next_item(&project, person).await.unwrap());
        label(
            &store,
            &project,
            person,
            lease.item.id,
            "NOT_VIOLATING",
            "S0",
            &format!("walk-key-{key}"),
        )
        .await;
        lease.item.external_id
    };

    // Ann holds t0001 without answering; Bea takes the next two.
    let held = leased(store.next_item(&project, ann).await.unwrap());
    assert_eq!(held.item.external_id, "t0001");
    assert_eq!(serve(bea).await, "t0002");
    assert_eq!(serve(bea).await, "t0003");
    assert_eq!(
        place_of(&store, &project, bea).await,
        Some(id_of("t0003").await.get()),
        "her place is the item her last lease found"
    );
    assert_eq!(serve(bea).await, "t0004");

    // Ann's lease expires: t0001, before Bea's place, is open again and comes first.
    fixtures::execute(
        &store,
        "UPDATE assignments SET expires_at = 0 WHERE status = 'leased'".into(),
    )
    .await;
    assert_eq!(serve(bea).await, "t0001");
    assert_eq!(serve(bea).await, "t0005");

    // A raised priority moves t0008 before her place.
    fixtures::import_items(
        &store,
        project.id,
        "raise.jsonl",
        "{\"id\":\"t0008\",\"item_type\":\"track\",\"title\":\"Track 8\",\"priority\":5}\n",
        OnConflict::Update,
    )
    .await
    .unwrap();
    assert_eq!(serve(bea).await, "t0008");

    // A model calls t0007 severe: its pre-label moves it before t0006.
    let model = model_account(&store, "walk-model").await;
    loop {
        let lease = leased(store.next_item(&project, &model).await.unwrap());
        let severe = lease.item.external_id == "t0007";
        let (decision, severity) = if severe {
            ("VIOLATING", "S4")
        } else {
            ("NOT_VIOLATING", "S0")
        };
        let s = submission(
            lease.item.id,
            decision,
            severity,
            &format!("walk-model-{}", lease.item.external_id),
        );
        store.submit(&project, &model, s).await.unwrap();
        if severe {
            break;
        }
    }
    assert_eq!(serve(bea).await, "t0007");
    assert_eq!(serve(bea).await, "t0006");
    assert!(matches!(
        store.next_item(&project, bea).await.unwrap(),
        NextItem::Empty
    ));
}

on_every_backend!(
    an_answer_and_the_next_lease_in_one_transaction_serve_as_two_requests_would,
    the_lease_with_an_answer_sees_slots_given_back_and_the_cap_the_answer_reached,
    queue_requests_keep_the_remembered_token_and_role_lookups,
    the_author_undoes_their_latest_answer_by_a_correction_that_counts_once,
    sixty_four_annotators_asking_at_once_never_exceed_the_overlap,
    annotators_leasing_and_submitting_at_once_keep_every_item_within_its_overlap,
    an_annotator_never_gets_the_same_item_twice_and_a_reload_resumes_the_lease,
    items_are_served_by_priority_then_age,
    an_expired_lease_returns_the_slot_and_a_late_submission_is_kept_and_flagged,
    a_retried_submit_never_creates_a_second_annotation,
    a_submission_for_an_item_not_served_is_refused_and_bad_answers_name_the_field,
    unsure_uses_the_slot_and_escalates_while_a_skip_frees_it,
    dynamic_overlap_adds_annotators_on_disagreement_and_escalates_at_the_maximum,
    coverage_gives_the_rest_of_the_items_one_label,
    a_daily_cap_stops_serving_until_the_next_day,
    gold_is_mixed_in_at_its_rate_scored_with_a_wilson_interval_and_pauses_the_inaccurate,
    two_wrong_gold_answers_do_not_pause_but_a_clearly_bad_record_does,
    overlap_savings_count_the_labels_not_asked_for_and_later_checks,
    deferred_gold_feedback_is_not_shown_after_submission_but_later_in_my_work,
    model_accounts_label_in_parallel_and_set_the_pre_label_that_orders_the_queue,
    a_model_account_goes_through_the_catalog_in_order_and_new_items_take_their_place,
    a_person_walks_on_from_their_place_and_items_moving_before_it_come_first,
    a_rereview_is_the_only_way_to_see_an_item_again_and_it_comes_first,
    an_item_first_seen_in_a_retest_is_never_served_again_by_the_ordinary_queue,
    a_drawn_share_of_labels_comes_back_as_a_retest_after_its_delay_and_pairs_with_the_first_answer,
    retests_are_off_by_default_and_never_drawn_for_a_model,
    a_retest_rate_out_of_range_is_refused_naming_the_field,
    an_annotator_at_their_exposure_limit_is_served_no_more_flagged_items_that_day,
    without_a_budget_exposure_is_counted_but_never_holds_work_back,
    an_exposure_limit_out_of_range_is_refused_naming_the_field,
    time_on_high_severity_content_is_counted_for_the_project_manager,
    submissions_follow_a_newly_published_schema_version,
);
