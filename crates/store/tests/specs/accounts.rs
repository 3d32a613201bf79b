use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::{LabelSchema, LoginCheck, NewProject, NewUser, Role, StoreError};
use std::time::Duration;

fn person(name: &str, password: &str) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: None,
        password: Some(password.into()),
        is_admin: false,
        kind: concord_store::AccountKind::Human,
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
    assert!(log.iter().any(|e| e.action.as_str() == "set_role"));
}

async fn usernames_are_one_to_sixty_four_letters_digits_or_underscore_hyphen_dot_at(
    store: TestStore,
) {
    for bad in [
        "",
        "has space",
        "ünïcode",
        "semi;colon",
        "slash/name",
        &"x".repeat(65),
    ] {
        let err = store
            .create_user(person(bad, "long enough"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err}");
    }
    for good in ["a", "ana.lopez-2_x@example.org", &"y".repeat(64)] {
        let user = store
            .create_user(person(good, "long enough"), None)
            .await
            .unwrap();
        assert_eq!(user.username, good);
    }
    assert_eq!(store.count_users().await.unwrap(), 3);
}

async fn a_user_kind_is_human_or_model(store: TestStore) {
    let mut model = person("classifier", "long enough");
    model.kind = concord_store::AccountKind::Model;
    let created = store.create_user(model, None).await.unwrap();
    assert_eq!(created.kind, concord_store::AccountKind::Model);
    let read_back = store.user_by_name("classifier").await.unwrap();
    assert_eq!(read_back.kind, concord_store::AccountKind::Model);
    let person = store
        .create_user(person("ana", "long enough"), None)
        .await
        .unwrap();
    assert_eq!(person.kind, concord_store::AccountKind::Human);
}

async fn passwords_shorter_than_eight_characters_are_rejected(store: TestStore) {
    let err = store
        .create_user(person("ana", "seven77"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(matches!(
        store.user_by_name("ana").await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    // Eight characters, but more bytes: characters are what count.
    let err = store
        .create_user(person("ana", "ééééééé"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    store
        .create_user(person("ana", "éééééééé"), None)
        .await
        .unwrap();
    let err = store
        .set_password("ana", "short".into(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(matches!(
        store.login("ana", "éééééééé", "10.0.0.1").await.unwrap(),
        LoginCheck::Ok(_)
    ));
}

async fn a_user_without_a_password_cannot_log_in(store: TestStore) {
    let mut imported = person("imported", "unused");
    imported.password = None;
    store.create_user(imported, None).await.unwrap();
    for attempt in ["", "unused", "correct horse battery"] {
        assert!(matches!(
            store.login("imported", attempt, "10.0.0.1").await.unwrap(),
            LoginCheck::BadCredentials
        ));
    }
}

async fn a_disabled_user_cannot_log_in_nor_use_sessions_or_tokens(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let (cookie, _) = store.create_session(ana.id, HOUR).await.unwrap();
    let (secret, _) = store.create_api_token(ana.id, "ci").await.unwrap();
    assert!(store.user_by_api_token(&secret).await.unwrap().is_some());
    fixtures::execute(
        &store,
        format!("UPDATE users SET disabled = 1 WHERE id = {}", ana.id),
    )
    .await;
    assert!(store.user_by_name("ana").await.unwrap().disabled);
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::BadCredentials
    ));
    assert!(store.session(&cookie).await.unwrap().is_none());
    assert!(store.user_by_api_token(&secret).await.unwrap().is_none());
}

const HOUR: i64 = 60 * 60 * 1000;

async fn an_administrator_disables_and_enables_an_account_and_the_audit_log_says_who(
    store: TestStore,
) {
    let root = fixtures::user(&store, "root").await;
    let ana = fixtures::user(&store, "ana").await;
    let (cookie, _) = store.create_session(ana.id, HOUR).await.unwrap();
    let (secret, _) = store.create_api_token(ana.id, "ci").await.unwrap();

    let disabled = store
        .set_user_disabled("ana", true, Some(root.id))
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert!(store.session(&cookie).await.unwrap().is_none());
    assert!(store.user_by_api_token(&secret).await.unwrap().is_none());
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::BadCredentials
    ));

    let enabled = store
        .set_user_disabled("ana", false, Some(root.id))
        .await
        .unwrap();
    assert!(!enabled.disabled);
    assert!(store.user_by_api_token(&secret).await.unwrap().is_some());
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::Ok(_)
    ));

    let log = store.audit_log(None, 10).await.unwrap();
    let of_ana: Vec<(&str, Option<&str>)> = log
        .iter()
        .filter(|e| e.entity == "user" && e.entity_id == Some(ana.id.get()))
        .map(|e| (e.action.as_str(), e.actor.as_deref()))
        .collect();
    assert_eq!(
        &of_ana[..2],
        &[("enable", Some("root")), ("disable", Some("root"))]
    );

    let own = store.set_user_disabled("root", true, Some(root.id)).await;
    assert!(matches!(own, Err(StoreError::Invalid(_))), "{own:?}");
    let nobody = store.set_user_disabled("nobody", true, Some(root.id)).await;
    assert!(matches!(nobody, Err(StoreError::NotFound(_))), "{nobody:?}");
}

async fn a_session_is_found_by_its_token_until_it_is_deleted(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let (token, created) = store.create_session(ana.id, HOUR).await.unwrap();
    let (other, _) = store.create_session(bob.id, HOUR).await.unwrap();
    assert_ne!(token, other);
    assert_eq!(created.user.id, ana.id);
    assert!(!created.csrf_token.is_empty());
    assert_ne!(created.csrf_token, token);

    let found = store
        .session(&token)
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!(found.user, ana);
    assert_eq!(found.csrf_token, created.csrf_token);
    assert_eq!(found.expires_at, created.expires_at);
    assert_eq!(
        store.session(&other).await.unwrap().unwrap().user.id,
        bob.id
    );
    assert!(store.session("not-a-token").await.unwrap().is_none());

    store.delete_session(&token).await.unwrap();
    assert!(store.session(&token).await.unwrap().is_none());
    assert!(store.session(&other).await.unwrap().is_some());
}

async fn a_session_expires_after_its_time_to_live(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let (token, session) = store.create_session(ana.id, HOUR).await.unwrap();
    assert!(session.expires_at > ana.created_at + HOUR - 60_000);
    fixtures::execute(
        &store,
        format!(
            "UPDATE sessions SET expires_at = expires_at - {} WHERE user_id = {}",
            HOUR + 1,
            ana.id
        ),
    )
    .await;
    assert!(store.session(&token).await.unwrap().is_none());

    let (short, _) = store.create_session(ana.id, 1_000).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert!(store.session(&short).await.unwrap().is_none());
}

async fn a_new_password_ends_every_session_of_that_user_only(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let (laptop, _) = store.create_session(ana.id, HOUR).await.unwrap();
    let (phone, _) = store.create_session(ana.id, HOUR).await.unwrap();
    let (bobs, _) = store.create_session(bob.id, HOUR).await.unwrap();
    store
        .set_password("ana", "a brand new password".into(), None)
        .await
        .unwrap();
    assert!(store.session(&laptop).await.unwrap().is_none());
    assert!(store.session(&phone).await.unwrap().is_none());
    assert!(store.session(&bobs).await.unwrap().is_some());
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::BadCredentials
    ));
    assert!(matches!(
        store
            .login("ana", "a brand new password", "10.0.0.1")
            .await
            .unwrap(),
        LoginCheck::Ok(_)
    ));
}

async fn session_secrets_are_stored_only_as_hashes(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let (token, _) = store.create_session(ana.id, HOUR).await.unwrap();
    let cells = fixtures::text_cells(&store, "sessions", &["token_hash", "csrf_token"]).await;
    assert!(!cells.is_empty());
    assert!(cells.iter().all(|cell| !cell.contains(&token)), "{cells:?}");
    assert!(cells.contains(&sha256_hex(&token)));
    assert!(store.session(&sha256_hex(&token)).await.unwrap().is_none());
}

async fn an_api_token_authenticates_its_owner_until_revoked(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let bob = fixtures::user(&store, "bob").await;
    let (secret, info) = store
        .create_api_token(ana.id, "  ci runner ")
        .await
        .unwrap();
    assert_eq!(info.name, "ci runner");
    assert!(info.revoked_at.is_none());
    let (bobs_secret, bobs) = store.create_api_token(bob.id, "laptop").await.unwrap();
    assert_ne!(secret, bobs_secret);

    assert_eq!(
        store.user_by_api_token(&secret).await.unwrap(),
        Some(ana.clone())
    );
    assert!(
        store
            .user_by_api_token("cnc_wrong")
            .await
            .unwrap()
            .is_none()
    );

    let err = store.revoke_api_token(bob.id, info.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store.user_by_api_token(&secret).await.unwrap().is_some());

    store.revoke_api_token(ana.id, info.id).await.unwrap();
    assert!(store.user_by_api_token(&secret).await.unwrap().is_none());
    let listed = store.list_api_tokens(ana.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, info.id);
    assert!(listed[0].revoked_at.is_some());
    let err = store.revoke_api_token(ana.id, info.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    assert_eq!(
        store.user_by_api_token(&bobs_secret).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.list_api_tokens(bob.id).await.unwrap()[0].id, bobs.id);
}

/// Every API request looks up its token and the caller's role in the project; the answers
/// are remembered briefly, and any write through the same store forgets them.
async fn a_role_change_a_removal_or_a_project_edit_counts_from_the_next_lookup(store: TestStore) {
    let pm = fixtures::user(&store, "pm").await;
    let ana = fixtures::user(&store, "ana").await;
    let project = fixtures::project(&store, "catalog").await;
    store
        .set_member(project.id, "ana", Role::Annotator, None)
        .await
        .unwrap();
    let role = |user: concord_store::User| {
        let store = store.store.clone();
        async move { store.project_and_role("catalog", &user).await.unwrap() }
    };
    assert_eq!(role(ana.clone()).await.1, Some(Role::Annotator));

    store
        .set_member(project.id, "ana", Role::QaAnalyst, Some(pm.id))
        .await
        .unwrap();
    assert_eq!(role(ana.clone()).await.1, Some(Role::QaAnalyst));

    store
        .update_project(
            project.id,
            "Catalog, renamed",
            &project.description,
            project.settings.as_json().clone(),
            Some(pm.id),
        )
        .await
        .unwrap();
    assert_eq!(role(ana.clone()).await.0.name, "Catalog, renamed");

    store
        .remove_member(project.id, "ana", Some(pm.id))
        .await
        .unwrap();
    assert_eq!(role(ana.clone()).await.1, None);
    // A non-member is never remembered: added back, the role counts at once.
    store
        .set_member(project.id, "ana", Role::Annotator, Some(pm.id))
        .await
        .unwrap();
    assert_eq!(role(ana).await.1, Some(Role::Annotator));
}

/// Another process on the same database (the CLI, a second server on PostgreSQL) cannot tell
/// this store to forget; its changes count here once the remembered answers expire.
async fn a_revocation_or_removal_by_another_process_counts_within_the_lookup_time_to_live(
    store: TestStore,
) {
    let ttl = Duration::from_millis(300);
    let server = store.another_process(ttl).await;
    let ana = fixtures::user(&store, "ana").await;
    let project = fixtures::project(&store, "catalog").await;
    store
        .set_member(project.id, "ana", Role::Annotator, None)
        .await
        .unwrap();
    let (secret, info) = store.create_api_token(ana.id, "ci").await.unwrap();
    assert_eq!(
        server.user_by_api_token(&secret).await.unwrap(),
        Some(ana.clone())
    );
    assert_eq!(
        server.project_and_role("catalog", &ana).await.unwrap().1,
        Some(Role::Annotator)
    );

    store.revoke_api_token(ana.id, info.id).await.unwrap();
    store.remove_member(project.id, "ana", None).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;

    assert!(server.user_by_api_token(&secret).await.unwrap().is_none());
    assert_eq!(
        server.project_and_role("catalog", &ana).await.unwrap().1,
        None
    );
    // A token created elsewhere works on its first use: unknown tokens are not remembered.
    let (fresh, _) = store.create_api_token(ana.id, "laptop").await.unwrap();
    assert!(
        server
            .user_by_api_token("cnc_not_yet")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.user_by_api_token(&fresh).await.unwrap(), Some(ana));
}

async fn an_api_token_needs_a_name(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let err = store.create_api_token(ana.id, "   ").await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.list_api_tokens(ana.id).await.unwrap().is_empty());
}

async fn api_token_secrets_are_stored_only_as_hashes(store: TestStore) {
    let ana = fixtures::user(&store, "ana").await;
    let (secret, _) = store.create_api_token(ana.id, "ci").await.unwrap();
    assert!(
        store
            .user_by_api_token(&sha256_hex(&secret))
            .await
            .unwrap()
            .is_none()
    );
    let cells = fixtures::text_cells(&store, "api_tokens", &["name", "token_hash"]).await;
    assert!(
        cells.iter().all(|cell| !cell.contains(&secret)),
        "{cells:?}"
    );
    assert!(cells.contains(&sha256_hex(&secret)));
}

async fn ten_failed_logins_for_a_name_lock_it_even_against_the_right_password(store: TestStore) {
    fixtures::user(&store, "ana").await;
    fixtures::user(&store, "bob").await;
    for n in 0..LOGIN_FAILURES {
        let address = format!("10.0.1.{n}");
        assert!(
            matches!(
                store
                    .login("ana", "wrong password", &address)
                    .await
                    .unwrap(),
                LoginCheck::BadCredentials
            ),
            "attempt {n}"
        );
    }
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "10.0.2.1")
            .await
            .unwrap(),
        LoginCheck::RateLimited
    ));
    assert!(matches!(
        store
            .login("bob", fixtures::PASSWORD, "10.0.2.1")
            .await
            .unwrap(),
        LoginCheck::Ok(_)
    ));
}

async fn nine_failures_still_let_the_right_password_in_and_it_clears_them(store: TestStore) {
    fixtures::user(&store, "ana").await;
    for round in 0..2 {
        for n in 0..LOGIN_FAILURES - 1 {
            let address = format!("10.{round}.0.{n}");
            store
                .login("ana", "wrong password", &address)
                .await
                .unwrap();
        }
        assert!(
            matches!(
                store
                    .login("ana", fixtures::PASSWORD, &format!("10.{round}.1.1"))
                    .await
                    .unwrap(),
                LoginCheck::Ok(_)
            ),
            "round {round}"
        );
    }
}

async fn ten_failed_logins_from_one_address_lock_that_address(store: TestStore) {
    fixtures::user(&store, "ana").await;
    for n in 0..LOGIN_FAILURES {
        store
            .login(&format!("guess{n}"), "wrong password", "192.0.2.7")
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "192.0.2.7")
            .await
            .unwrap(),
        LoginCheck::RateLimited
    ));
    assert!(matches!(
        store
            .login("ana", fixtures::PASSWORD, "192.0.2.8")
            .await
            .unwrap(),
        LoginCheck::Ok(_)
    ));
}

const LOGIN_FAILURES: usize = 10;

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

on_every_backend!(
    users_log_in_with_their_password_only,
    projects_start_with_a_published_schema_and_members_have_roles,
    usernames_are_one_to_sixty_four_letters_digits_or_underscore_hyphen_dot_at,
    a_user_kind_is_human_or_model,
    passwords_shorter_than_eight_characters_are_rejected,
    a_user_without_a_password_cannot_log_in,
    a_disabled_user_cannot_log_in_nor_use_sessions_or_tokens,
    an_administrator_disables_and_enables_an_account_and_the_audit_log_says_who,
    a_session_is_found_by_its_token_until_it_is_deleted,
    a_session_expires_after_its_time_to_live,
    a_new_password_ends_every_session_of_that_user_only,
    session_secrets_are_stored_only_as_hashes,
    an_api_token_authenticates_its_owner_until_revoked,
    a_role_change_a_removal_or_a_project_edit_counts_from_the_next_lookup,
    a_revocation_or_removal_by_another_process_counts_within_the_lookup_time_to_live,
    an_api_token_needs_a_name,
    api_token_secrets_are_stored_only_as_hashes,
    ten_failed_logins_for_a_name_lock_it_even_against_the_right_password,
    nine_failures_still_let_the_right_password_in_and_it_clears_them,
    ten_failed_logins_from_one_address_lock_that_address,
);
