use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ProjectId;
use concord_store::{LabelSchema, NewProject, Role, StoreError};
use serde_json::json;

async fn a_slug_is_two_to_sixty_four_lower_case_letters_digits_or_hyphens(store: TestStore) {
    let too_long = "p".repeat(65);
    for bad in [
        "",
        "p",
        "Podcasts",
        "-podcasts",
        "pod_casts",
        "pod casts",
        "pödcasts",
        &too_long,
    ] {
        let err = store
            .create_project(fixtures::new_project(bad), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err}");
    }
    assert!(store.list_projects().await.unwrap().is_empty());
    let longest = "q".repeat(64);
    for good in ["ab", "podcasts-2024", &longest] {
        let project = store
            .create_project(fixtures::new_project(good), None)
            .await
            .unwrap();
        assert_eq!(project.slug, good);
        assert_eq!(store.project(good).await.unwrap().id, project.id);
    }
}

async fn a_project_needs_a_name_and_a_valid_schema(store: TestStore) {
    let mut unnamed = fixtures::new_project("unnamed");
    unnamed.name = "   ".into();
    let err = store.create_project(unnamed, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut empty_schema = fixtures::new_project("empty-schema");
    empty_schema.schema = LabelSchema {
        questions: vec![],
        rationale: "optional".into(),
        context_flags: vec![],
    };
    let err = store.create_project(empty_schema, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.list_projects().await.unwrap().is_empty());
}

async fn a_second_project_with_the_same_slug_is_a_conflict(store: TestStore) {
    let first = fixtures::project(&store, "podcasts").await;
    let err = store
        .create_project(
            NewProject {
                name: "Other podcasts".into(),
                ..fixtures::new_project("podcasts")
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("podcasts")),
        "{err}"
    );
    let projects = store.list_projects().await.unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].id, first.id);
    assert_eq!(projects[0].name, first.name);
}

async fn an_unknown_slug_is_not_found(store: TestStore) {
    let err = store.project("nowhere").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn updating_a_project_records_before_and_after_in_the_audit_log(store: TestStore) {
    let pm = fixtures::user(&store, "pm").await;
    let project = fixtures::project(&store, "podcasts").await;
    let updated = store
        .update_project(
            project.id,
            " Podcast safety ",
            "Episodes in review",
            json!({"overlap": 3}),
            Some(pm.id),
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Podcast safety");
    assert_eq!(updated.description, "Episodes in review");
    assert_eq!(updated.settings.as_json(), &json!({"overlap": 3}));
    let reread = store.project("podcasts").await.unwrap();
    assert_eq!(reread.name, "Podcast safety");
    assert_eq!(reread.settings.as_json(), &json!({"overlap": 3}));

    let log = store.audit_log(Some(project.id), 10).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.action.as_str() == "update" && e.entity == "project")
        .expect("an audit entry for the update");
    assert_eq!(entry.actor.as_deref(), Some("pm"));
    assert_eq!(entry.entity_id, Some(i64::from(project.id)));
    let before = entry.before.as_ref().expect("the project before");
    let after = entry.after.as_ref().expect("the project after");
    assert_eq!(before["name"], json!(project.name));
    assert_eq!(before["settings"], json!({}));
    assert_eq!(after["name"], json!("Podcast safety"));
    assert_eq!(after["description"], json!("Episodes in review"));
    assert_eq!(after["settings"], json!({"overlap": 3}));
    assert_eq!(log[0].id, entry.id, "the newest entry comes first");
}

async fn project_updates_need_a_name_and_object_settings(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    for (name, settings) in [
        ("", json!({})),
        ("Fine", json!([1, 2])),
        ("Fine", json!("x")),
    ] {
        let err = store
            .update_project(project.id, name, "", settings.clone(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(_)),
            "{name:?} {settings}: {err}"
        );
    }
    assert_eq!(store.project("podcasts").await.unwrap().name, project.name);
    let err = store
        .update_project(
            ProjectId(project.id.get() + 1000),
            "Fine",
            "",
            json!({}),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn members_are_added_given_a_new_role_and_removed(store: TestStore) {
    let pm = fixtures::user(&store, "pm").await;
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let project = fixtures::project(&store, "podcasts").await;
    assert!(store.members(project.id).await.unwrap().is_empty());

    store
        .set_member(project.id, "bob", Role::Annotator, Some(pm.id))
        .await
        .unwrap();
    store
        .set_member(project.id, "ana", Role::Annotator, Some(pm.id))
        .await
        .unwrap();
    let members = store.members(project.id).await.unwrap();
    let listed: Vec<_> = members
        .iter()
        .map(|m| (m.username.as_str(), m.role))
        .collect();
    assert_eq!(listed, [("ana", Role::Annotator), ("bob", Role::Annotator)]);
    assert_eq!(members[0].user_id, ana.id);

    store
        .set_member(project.id, "ana", Role::QaExpert, Some(pm.id))
        .await
        .unwrap();
    assert_eq!(
        store.role_in(&ana, project.id).await.unwrap(),
        Some(Role::QaExpert)
    );
    assert_eq!(store.members(project.id).await.unwrap().len(), 2);
    let change = &store.audit_log(Some(project.id), 1).await.unwrap()[0];
    assert_eq!(change.action.as_str(), "set_role");
    assert_eq!(
        change.before,
        Some(json!({"user": "ana", "role": "annotator"}))
    );
    assert_eq!(
        change.after,
        Some(json!({"user": "ana", "role": "qa_expert"}))
    );

    store
        .remove_member(project.id, "bob", Some(pm.id))
        .await
        .unwrap();
    assert_eq!(store.role_in(&bob, project.id).await.unwrap(), None);
    let listed: Vec<_> = store
        .members(project.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.username)
        .collect();
    assert_eq!(listed, ["ana"]);
    assert_eq!(
        store.audit_log(Some(project.id), 1).await.unwrap()[0]
            .action
            .as_str(),
        "remove"
    );

    let err = store
        .remove_member(project.id, "bob", None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store
        .set_member(project.id, "nobody", Role::Annotator, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn a_membership_is_per_project(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let podcasts = fixtures::project(&store, "podcasts").await;
    let music = fixtures::project(&store, "music").await;
    store
        .set_member(podcasts.id, "ana", Role::ProjectManager, None)
        .await
        .unwrap();
    store
        .set_member(music.id, "ana", Role::Annotator, None)
        .await
        .unwrap();
    assert_eq!(
        store.role_in(&ana, podcasts.id).await.unwrap(),
        Some(Role::ProjectManager)
    );
    assert_eq!(
        store.role_in(&ana, music.id).await.unwrap(),
        Some(Role::Annotator)
    );
    store.remove_member(music.id, "ana", None).await.unwrap();
    assert_eq!(store.role_in(&ana, music.id).await.unwrap(), None);
    assert_eq!(
        store.role_in(&ana, podcasts.id).await.unwrap(),
        Some(Role::ProjectManager)
    );
}

async fn people_see_the_projects_they_belong_to_and_admins_see_all(store: TestStore) {
    let root = fixtures::admin(&store, "root").await;
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let zebra = store
        .create_project(
            NewProject {
                name: "Zebra".into(),
                ..fixtures::new_project("zebra")
            },
            None,
        )
        .await
        .unwrap();
    let apple = store
        .create_project(
            NewProject {
                name: "Apple".into(),
                ..fixtures::new_project("apple")
            },
            None,
        )
        .await
        .unwrap();
    let mango = store
        .create_project(
            NewProject {
                name: "Mango".into(),
                ..fixtures::new_project("mango")
            },
            None,
        )
        .await
        .unwrap();
    store
        .set_member(zebra.id, "ana", Role::Annotator, None)
        .await
        .unwrap();
    store
        .set_member(apple.id, "ana", Role::QaAnalyst, None)
        .await
        .unwrap();
    store
        .set_member(mango.id, "root", Role::ProjectManager, None)
        .await
        .unwrap();

    let anas: Vec<_> = store
        .projects_for(&ana)
        .await
        .unwrap()
        .into_iter()
        .map(|(p, role)| (p.slug, role))
        .collect();
    assert_eq!(
        anas,
        [
            ("apple".to_owned(), Some(Role::QaAnalyst)),
            ("zebra".to_owned(), Some(Role::Annotator))
        ]
    );
    assert!(store.projects_for(&bob).await.unwrap().is_empty());

    let roots: Vec<_> = store
        .projects_for(&root)
        .await
        .unwrap()
        .into_iter()
        .map(|(p, role)| (p.slug, role))
        .collect();
    assert_eq!(
        roots,
        [
            ("apple".to_owned(), None),
            ("mango".to_owned(), Some(Role::ProjectManager)),
            ("zebra".to_owned(), None)
        ]
    );
    assert_eq!(
        store.role_in(&root, apple.id).await.unwrap(),
        Some(Role::Admin)
    );
}

on_every_backend!(
    a_slug_is_two_to_sixty_four_lower_case_letters_digits_or_hyphens,
    a_project_needs_a_name_and_a_valid_schema,
    a_second_project_with_the_same_slug_is_a_conflict,
    an_unknown_slug_is_not_found,
    updating_a_project_records_before_and_after_in_the_audit_log,
    project_updates_need_a_name_and_object_settings,
    members_are_added_given_a_new_role_and_removed,
    a_membership_is_per_project,
    people_see_the_projects_they_belong_to_and_admins_see_all,
);
