use crate::harness::TestStore;
use crate::on_every_backend;
use concord_store::{LabelSchema, LoginCheck, NewProject, NewUser, Role, StoreError};

fn person(name: &str, password: &str) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: None,
        password: Some(password.into()),
        is_admin: false,
        kind: "human".into(),
    }
}

async fn users_log_in_with_their_password_only(store: TestStore) {
    let ana = store
        .create_user(person("ana", "correct horse"), None)
        .await
        .unwrap();
    assert!(
        matches!(store.login("ana", "correct horse", "10.0.0.1").await.unwrap(), LoginCheck::Ok(u) if u.id == ana.id)
    );
    assert!(matches!(
        store
            .login("ana", "wrong password", "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::BadCredentials
    ));
    assert!(matches!(
        store
            .login("nobody", "correct horse", "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::BadCredentials
    ));
    let again = store
        .create_user(person("ana", "another one"), None)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
}

async fn projects_start_with_a_published_schema_and_members_have_roles(store: TestStore) {
    let pm = store
        .create_user(person("pm", "long enough"), None)
        .await
        .unwrap();
    let project = store
        .create_project(
            NewProject {
                slug: "podcasts".into(),
                name: "Podcasts".into(),
                description: String::new(),
                schema: LabelSchema::catalog_safety(),
            },
            Some(pm.id),
        )
        .await
        .unwrap();
    let schema = store.current_schema(project.id).await.unwrap();
    assert_eq!(schema.version, 1);
    store
        .set_member(project.id, "pm", Role::ProjectManager, Some(pm.id))
        .await
        .unwrap();
    assert_eq!(
        store.role_in(&pm, project.id).await.unwrap(),
        Some(Role::ProjectManager)
    );
    let listed = store.projects_for(&pm).await.unwrap();
    assert_eq!(listed.len(), 1);
    let log = store.audit_log(Some(project.id), 10).await.unwrap();
    assert!(log.iter().any(|e| e.action == "set_role"));
}

on_every_backend!(
    users_log_in_with_their_password_only,
    projects_start_with_a_published_schema_and_members_have_roles,
);
