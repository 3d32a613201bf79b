//! Calibration rounds: a batch served first to every annotator and QA expert, answers kept
//! out of the production labels, verdicts that hold annotators from production work until
//! they pass or are released, one open round at a time.

use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::{
    AnswerKind, AssignmentPurpose, CalibrationPart, CalibrationVerdict, Id, NewCalibrationRound,
    NextItem, OnConflict, Project, Role, RoundStatus, RoundVerdict, Store, StoreError, Submission,
    User,
};

/// A project of six tracks with two annotators, one QA expert and one QA analyst.
struct Team {
    project: Project,
    annotators: Vec<User>,
    expert: User,
}

async fn team(store: &Store, slug: &str) -> Team {
    let project = fixtures::project(store, slug).await;
    let tracks: String = (1..=6)
        .map(|n| format!("{{\"id\":\"t{n}\",\"item_type\":\"track\",\"title\":\"Track {n}\"}}\n"))
        .collect();
    fixtures::import_items(store, project.id, "items.jsonl", &tracks, OnConflict::Error)
        .await
        .unwrap();
    let mut annotators = Vec::new();
    for name in ["ann0", "ann1"] {
        annotators.push(member(store, &project, &format!("{slug}-{name}"), Role::Annotator).await);
    }
    let expert = member(store, &project, &format!("{slug}-exp"), Role::QaExpert).await;
    member(store, &project, &format!("{slug}-analyst"), Role::QaAnalyst).await;
    Team {
        project,
        annotators,
        expert,
    }
}

async fn member(store: &Store, project: &Project, name: &str, role: Role) -> User {
    let user = fixtures::user(store, name).await;
    store
        .set_member(project.id, name, role, None)
        .await
        .unwrap();
    user
}

async fn round_of(store: &Store, team: &Team, externals: &[&str], hold: bool) -> Id {
    let ids: Vec<String> = externals.iter().map(|s| s.to_string()).collect();
    let item_ids = store
        .item_ids_by_external(team.project.id, &ids)
        .await
        .unwrap();
    let round = store
        .open_calibration_round(
            &team.project,
            NewCalibrationRound {
                name: "Onboarding".into(),
                item_ids,
                threshold: 0.8,
                hold_until_verdict: hold,
                repeats: None,
            },
            None,
        )
        .await
        .unwrap();
    round.id
}

fn answer(item_id: ItemId, decision: &str, key: &str) -> Submission {
    Submission {
        item_id,
        kind: AnswerKind::Label,
        answer: fixtures::answer(decision, "S1"),
        rationale: String::new(),
        flags: Vec::new(),
        guideline_version_id: None,
        time_spent_ms: Some(2_000),
        idempotency_key: key.into(),
    }
}

/// Takes the next item, which must be a calibration item, and answers it.
async fn answer_next(store: &Store, project: &Project, who: &User, decision: &str) -> ItemId {
    let lease = match store.next_item(project, who).await.unwrap() {
        NextItem::Leased(lease) => lease,
        other => panic!(
            "{} expected a calibration item, got {other:?}",
            who.username
        ),
    };
    assert_eq!(lease.purpose, AssignmentPurpose::Calibration);
    let key = format!("cal-{}-{}", who.username, lease.item.id);
    let outcome = store
        .submit(project, who, answer(lease.item.id, decision, &key))
        .await
        .unwrap();
    assert!(outcome.calibration && !outcome.replayed);
    lease.item.id
}

async fn next_purpose(
    store: &Store,
    project: &Project,
    who: &User,
) -> Result<AssignmentPurpose, String> {
    match store.next_item(project, who).await.unwrap() {
        NextItem::Leased(lease) => Ok(lease.purpose),
        NextItem::Paused { reason } => Err(reason),
        other => Err(format!("{other:?}")),
    }
}

async fn a_round_is_served_first_to_every_annotator_and_expert_and_stays_out_of_the_labels(
    store: TestStore,
) {
    let team = team(&store, "cal-serve").await;
    let round = round_of(&store, &team, &["t2", "t5"], true).await;
    let opened = store
        .calibration_round(team.project.id, round)
        .await
        .unwrap();
    assert_eq!(
        (
            opened.items,
            opened.annotators,
            opened.experts,
            opened.status
        ),
        (2, 2, 1, RoundStatus::Open),
        "annotators and QA experts take part; the analyst does not"
    );

    let ann = &team.annotators[0];
    let first = answer_next(&store, &team.project, ann, "VIOLATING").await;
    // A retried request is answered from what was stored.
    let key = format!("cal-{}-{first}", ann.username);
    let again = store
        .submit(&team.project, ann, answer(first, "VIOLATING", &key))
        .await
        .unwrap();
    assert!(again.replayed && again.calibration);
    // A calibration item cannot be skipped.
    let lease = match store.next_item(&team.project, ann).await.unwrap() {
        NextItem::Leased(lease) => lease,
        other => panic!("{other:?}"),
    };
    let refused = store
        .skip(&team.project, ann, lease.item.id, "not sure")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Invalid(ref m) if m.contains("cannot be skipped")),
        "{refused:?}"
    );
    // A lapsed lease gives the item back to the same person, not to the queue.
    fixtures::execute(
        &store,
        format!(
            "UPDATE assignments SET expires_at = 0 WHERE calibration_round_id = {round} \
             AND status = 'leased'"
        ),
    )
    .await;
    assert_eq!(
        answer_next(&store, &team.project, ann, "NOT_VIOLATING").await,
        lease.item.id
    );

    // Held until the verdict: nothing more for this annotator.
    let held = next_purpose(&store, &team.project, ann).await.unwrap_err();
    assert!(held.contains("calibration"), "{held}");
    // The expert is not held: after the round's items, production work.
    answer_next(&store, &team.project, &team.expert, "VIOLATING").await;
    answer_next(&store, &team.project, &team.expert, "NOT_VIOLATING").await;
    assert_eq!(
        next_purpose(&store, &team.project, &team.expert).await,
        Ok(AssignmentPurpose::Label)
    );

    let answers = store.calibration_answers(round).await.unwrap();
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().any(|a| a.part == CalibrationPart::Expert));
    let labels = fixtures::text_cells(&store, "annotations", &["answer"]).await;
    assert!(
        labels.is_empty(),
        "no calibration answer is a production label: {labels:?}"
    );
    let people = store
        .calibration_participants(team.project.id, round)
        .await
        .unwrap();
    let me = people.iter().find(|p| p.user_id == ann.id).unwrap();
    assert_eq!((me.answered, me.held), (2, true));
}

async fn closing_holds_those_who_did_not_pass_until_a_qa_analyst_releases_them(store: TestStore) {
    let team = team(&store, "cal-close").await;
    let round = round_of(&store, &team, &["t1"], false).await;
    let (passed, failed) = (&team.annotators[0], &team.annotators[1]);
    // Without a hold while open, an annotator done with the round gets production work.
    answer_next(&store, &team.project, passed, "VIOLATING").await;
    assert_eq!(
        next_purpose(&store, &team.project, passed).await,
        Ok(AssignmentPurpose::Label)
    );

    let second = store
        .open_calibration_round(
            &team.project,
            NewCalibrationRound {
                name: "Another".into(),
                item_ids: vec![],
                threshold: 0.8,
                hold_until_verdict: false,
                repeats: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(second, StoreError::Invalid(ref m) if m.contains("at least one item")),
        "{second:?}"
    );

    let verdict = |user: &User, verdict, score| RoundVerdict {
        user_id: user.id,
        verdict,
        score,
    };
    let partial = store
        .close_calibration_round(
            team.project.id,
            round,
            vec![verdict(passed, CalibrationVerdict::Pass, Some(1.0))],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(partial, StoreError::Invalid(_)), "{partial:?}");

    let closed = store
        .close_calibration_round(
            team.project.id,
            round,
            vec![
                verdict(passed, CalibrationVerdict::Pass, Some(1.0)),
                verdict(failed, CalibrationVerdict::Incomplete, None),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(closed.status, RoundStatus::Closed);
    // The unanswered calibration item was withdrawn: the held annotator is told why.
    let held = next_purpose(&store, &team.project, failed)
        .await
        .unwrap_err();
    assert!(held.contains("calibration"), "{held}");
    let again = store
        .close_calibration_round(team.project.id, round, vec![], None)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");

    let wrong_round = store
        .release_from_calibration(team.project.id, round + 1000, failed.id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(wrong_round, StoreError::Conflict(_)),
        "{wrong_round:?}"
    );
    let not_held = store
        .release_from_calibration(team.project.id, round, passed.id, None)
        .await
        .unwrap_err();
    assert!(matches!(not_held, StoreError::Conflict(_)), "{not_held:?}");
    let analyst = store.user_by_name("cal-close-analyst").await.unwrap();
    store
        .release_from_calibration(team.project.id, round, failed.id, Some(analyst.id))
        .await
        .unwrap();
    assert_eq!(
        next_purpose(&store, &team.project, failed).await,
        Ok(AssignmentPurpose::Label)
    );
    let people = store
        .calibration_participants(team.project.id, round)
        .await
        .unwrap();
    let released = people.iter().find(|p| p.user_id == failed.id).unwrap();
    assert_eq!(released.verdict, Some(CalibrationVerdict::Incomplete));
    assert_eq!(released.released_by.as_deref(), Some("cal-close-analyst"));
    assert!(!released.held);
    let winner = people.iter().find(|p| p.user_id == passed.id).unwrap();
    assert_eq!(
        (winner.verdict, winner.score),
        (Some(CalibrationVerdict::Pass), Some(1.0))
    );

    // A repeat after the first closed: allowed, and it names the round it repeats.
    let repeat = store
        .open_calibration_round(
            &team.project,
            NewCalibrationRound {
                name: "Onboarding (repeat)".into(),
                item_ids: store.calibration_sample(team.project.id, 3).await.unwrap(),
                threshold: 0.9,
                hold_until_verdict: true,
                repeats: Some(round),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!((repeat.items, repeat.repeats), (3, Some(round)));
    let one_open = store
        .open_calibration_round(
            &team.project,
            NewCalibrationRound {
                name: "Third".into(),
                item_ids: store.calibration_sample(team.project.id, 1).await.unwrap(),
                threshold: 0.8,
                hold_until_verdict: false,
                repeats: None,
            },
            None,
        )
        .await;
    assert!(
        matches!(one_open, Err(StoreError::Conflict(ref m)) if m.contains("still open")),
        "{one_open:?}"
    );
    let rounds = store.calibration_rounds(team.project.id).await.unwrap();
    assert_eq!(
        rounds.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![repeat.id, round],
        "newest first"
    );
}

async fn a_round_needs_an_expert_for_its_key_and_items_of_its_project(store: TestStore) {
    let project = fixtures::project(&store, "cal-nokey").await;
    fixtures::import_items(
        &store,
        project.id,
        "items.jsonl",
        "{\"id\":\"x\",\"item_type\":\"track\",\"title\":\"X\"}\n",
        OnConflict::Error,
    )
    .await
    .unwrap();
    member(&store, &project, "cal-nokey-ann", Role::Annotator).await;
    let ids = store
        .item_ids_by_external(project.id, &["x".to_string()])
        .await
        .unwrap();
    let unknown = store
        .item_ids_by_external(project.id, &["nope".to_string()])
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("\"nope\""), "{unknown}");
    let new = |item_ids: Vec<ItemId>| NewCalibrationRound {
        name: "R".into(),
        item_ids,
        threshold: 0.8,
        hold_until_verdict: true,
        repeats: None,
    };
    let no_expert = store
        .open_calibration_round(&project, new(ids.clone()), None)
        .await
        .unwrap_err();
    assert!(no_expert.to_string().contains("QA expert"), "{no_expert}");
    member(&store, &project, "cal-nokey-exp", Role::QaExpert).await;
    let foreign = store
        .open_calibration_round(&project, new(vec![ItemId(ids[0].get() + 10_000)]), None)
        .await
        .unwrap_err();
    assert!(
        foreign.to_string().contains("not an item of this project"),
        "{foreign}"
    );
    let bad_threshold = store
        .open_calibration_round(
            &project,
            NewCalibrationRound {
                threshold: 1.5,
                ..new(ids.clone())
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        bad_threshold.to_string().contains("threshold"),
        "{bad_threshold}"
    );
    assert!(
        store
            .calibration_rounds(project.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing was written"
    );
    let twice = store
        .open_calibration_round(
            &project,
            new(vec![ItemId((ids[0]).get()), ItemId((ids[0]).get())]),
            None,
        )
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("twice"), "{twice}");
}

on_every_backend!(
    a_round_is_served_first_to_every_annotator_and_expert_and_stays_out_of_the_labels,
    closing_holds_those_who_did_not_pass_until_a_qa_analyst_releases_them,
    a_round_needs_an_expert_for_its_key_and_items_of_its_project,
);
