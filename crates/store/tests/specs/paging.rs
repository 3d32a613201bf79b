//! Lists that grow with the team are paged and searched in SQL: a page of members (the
//! settings page) and a page of annotators' progress (the team page), each with the count of
//! every matching row.

use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::{NewUser, OnConflict, PageRequest, Role};

/// Seven people, by user name and display name: `cy` is found by "ann" only through the
/// capitals of a display name, and `pct_50` has LIKE's two wildcards in her names.
const PEOPLE: [(&str, &str); 7] = [
    ("ana", "Ana Annotator"),
    ("bo", "Bo Berg"),
    ("cy", "Cy ANNA"),
    ("dee", "Dee Dee"),
    ("eli", "Eli Expert"),
    ("fay", "Fay Fox"),
    ("pct_50", "Fifty % Flat"),
];

async fn people(store: &TestStore) {
    for (name, display) in PEOPLE {
        let mut new = fixtures::person(name);
        new.display_name = Some(display.into());
        store.create_user(new, None).await.unwrap();
    }
}

fn names<T>(rows: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    rows.iter().map(|r| name(r).to_owned()).collect()
}

async fn members_come_a_page_at_a_time_in_name_order_with_the_count_of_all(store: TestStore) {
    people(&store).await;
    let project = fixtures::project(&store, "paged").await;
    for (name, _) in PEOPLE.iter().rev() {
        store
            .set_member(project.id, name, Role::Annotator, None)
            .await
            .unwrap();
    }
    let first = store
        .members_page(project.id, &PageRequest::new("", 1, 3))
        .await
        .unwrap();
    assert_eq!(names(&first.rows, |m| &m.username), ["ana", "bo", "cy"]);
    assert_eq!((first.total, first.page, first.pages), (7, 1, 3));
    let second = store
        .members_page(project.id, &PageRequest::new("", 2, 3))
        .await
        .unwrap();
    assert_eq!(names(&second.rows, |m| &m.username), ["dee", "eli", "fay"]);
    let past_the_end = store
        .members_page(project.id, &PageRequest::new("", 9, 3))
        .await
        .unwrap();
    assert_eq!(
        (
            past_the_end.page,
            names(&past_the_end.rows, |m| &m.username)
        ),
        (3, vec!["pct_50".to_owned()]),
        "a page past the last reads the last"
    );

    // The search is a case-insensitive substring of the user name or the display name.
    let anna = store
        .members_page(project.id, &PageRequest::new("  ann ", 1, 3))
        .await
        .unwrap();
    assert_eq!(names(&anna.rows, |m| &m.username), ["ana", "cy"]);
    assert_eq!((anna.total, anna.pages), (2, 1));
    // LIKE's wildcards are searched for as themselves.
    let percent = store
        .members_page(project.id, &PageRequest::new("%", 1, 3))
        .await
        .unwrap();
    assert_eq!(names(&percent.rows, |m| &m.username), ["pct_50"]);
    let underscore = store
        .members_page(project.id, &PageRequest::new("_", 1, 3))
        .await
        .unwrap();
    assert_eq!(names(&underscore.rows, |m| &m.username), ["pct_50"]);
    let nobody = store
        .members_page(project.id, &PageRequest::new("zz", 4, 3))
        .await
        .unwrap();
    assert!(nobody.rows.is_empty());
    assert_eq!((nobody.total, nobody.page, nobody.pages), (0, 1, 1));
}

const GOLD_ITEMS: &str = concat!(
    r#"{"id":"g1","item_type":"track","title":"Gold One","gold":{"decision":"VIOLATING","severity":"S3"}}"#,
    "\n",
    r#"{"id":"g2","item_type":"track","title":"Gold Two","gold":{"decision":"NOT_VIOLATING","severity":"S0"}}"#,
    "\n",
);

/// `ana` and `fay` label the gold items; the others are members with no labels yet.
const LABELS: &str = "\
item,annotator,decision,severity,category
g1,ana,VIOLATING,S3,DG.HATE
g2,ana,VIOLATING,S3,DG.HATE
g1,fay,VIOLATING,S3,DG.HATE
g2,fay,NOT_VIOLATING,S0,
";

async fn a_page_of_the_team_carries_the_same_progress_and_gold_as_the_whole_team(store: TestStore) {
    people(&store).await;
    let project = fixtures::project(&store, "team").await;
    for (name, _) in PEOPLE {
        store
            .set_member(project.id, name, Role::Annotator, None)
            .await
            .unwrap();
    }
    // A manager is a member but not on the team.
    store
        .create_user(
            NewUser {
                display_name: Some("Ann Manager".into()),
                ..fixtures::person("anne")
            },
            None,
        )
        .await
        .unwrap();
    store
        .set_member(project.id, "anne", Role::ProjectManager, None)
        .await
        .unwrap();
    fixtures::import_items(
        &store,
        project.id,
        "gold.jsonl",
        GOLD_ITEMS,
        OnConflict::Error,
    )
    .await
    .unwrap();
    fixtures::import_annotations(&store, project.id, "labels.csv", LABELS)
        .await
        .unwrap();

    let whole = store.team_progress(project.id).await.unwrap();
    assert_eq!(whole.len(), 7);
    let mut paged = Vec::new();
    for page in 1..=3 {
        let got = store
            .team_progress_page(project.id, &PageRequest::new("", page, 3))
            .await
            .unwrap();
        assert_eq!((got.total, got.pages), (7, 3));
        paged.extend(got.rows);
    }
    let summary = |team: &[concord_store::AnnotatorProgress]| -> Vec<(String, i64, u64, u64)> {
        team.iter()
            .map(|a| {
                (
                    a.username.clone(),
                    a.done_total,
                    a.gold.correct,
                    a.gold.answered,
                )
            })
            .collect()
    };
    assert_eq!(summary(&paged), summary(&whole));
    let fay = paged.iter().find(|a| a.username == "fay").unwrap();
    assert_eq!((fay.gold.correct, fay.gold.answered), (2, 2));
    let ana = paged.iter().find(|a| a.username == "ana").unwrap();
    assert_eq!((ana.gold.correct, ana.gold.answered), (1, 2));

    let found = store
        .team_progress_page(project.id, &PageRequest::new("ANN", 1, 50))
        .await
        .unwrap();
    assert_eq!(
        names(&found.rows, |a| &a.username),
        ["ana", "cy"],
        "the manager is a member but not on the team"
    );
    assert_eq!(found.total, 2);
}

on_every_backend!(
    members_come_a_page_at_a_time_in_name_order_with_the_count_of_all,
    a_page_of_the_team_carries_the_same_progress_and_gold_as_the_whole_team,
);
