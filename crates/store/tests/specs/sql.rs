//! Analysts' read-only SQL: only the documented views, only the user's projects, never a
//! write or a secret, whatever the query tries; errors are the database's, with a position.

use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::sql::catalog::VIEWS;
use concord_store::{
    Backend, NewSavedQuery, OnConflict, Role, SqlAnswer, SqlLimits, SqlScope, Store, StoreError,
    User,
};
use std::time::{Duration, Instant};

struct World {
    analyst: User,
    admin: User,
    alpha: concord_store::Project,
    beta: concord_store::Project,
}

/// Two projects of two and three items; the analyst queries alpha and only annotates beta.
/// Every account has a password hash, a session and an API token to be stolen.
async fn world(store: &Store) -> World {
    let alpha = fixtures::project(store, "alpha").await;
    let beta = fixtures::project(store, "beta").await;
    for (project, count) in [(&alpha, 2), (&beta, 3)] {
        fixtures::import_items(
            store,
            project.id,
            "items.csv",
            &fixtures::tracks_csv(count),
            OnConflict::Error,
        )
        .await
        .unwrap();
    }
    let analyst = fixtures::user(store, "ana").await;
    let admin = fixtures::admin(store, "root").await;
    store
        .set_member(alpha.id, "ana", Role::QaAnalyst, None)
        .await
        .unwrap();
    store
        .set_member(beta.id, "ana", Role::Annotator, None)
        .await
        .unwrap();
    let item = store
        .item_by_external_id(alpha.id, "item-00001")
        .await
        .unwrap();
    store
        .add_annotation(
            alpha.id,
            analyst.id,
            fixtures::annotation(item.id, fixtures::answer("VIOLATING", "S1")),
        )
        .await
        .unwrap();
    for user in [&analyst, &admin] {
        store.create_session(user.id, 60_000).await.unwrap();
        store.create_api_token(user.id, "laptop").await.unwrap();
    }
    World {
        analyst,
        admin,
        alpha,
        beta,
    }
}

fn limits() -> SqlLimits {
    SqlLimits {
        time_limit: Duration::from_millis(1500),
        row_cap: 100,
        concurrent: 2,
    }
}

async fn sql(store: &Store, scope: &SqlScope, query: &str) -> Result<SqlAnswer, StoreError> {
    store.run_sql(scope, query, None, limits()).await
}

async fn refused(store: &Store, scope: &SqlScope, query: &str) -> String {
    match sql(store, scope, query).await {
        Err(StoreError::Query { message, .. }) => {
            for secret in ["$argon2", "password_hash", "token_hash"] {
                assert!(
                    !message.contains(secret) || query.contains(secret),
                    "{query}: the refusal leaks {secret}: {message}"
                );
            }
            message
        }
        Ok(answer) => panic!("{query} ran and answered {answer:?}"),
        Err(other) => panic!("{query} failed with a non-query error: {other:?}"),
    }
}

async fn item_count(store: &Store, scope: &SqlScope) -> i64 {
    let answer = sql(store, scope, "SELECT count(*) AS n FROM items")
        .await
        .unwrap();
    answer.rows[0][0].as_i64().unwrap()
}

async fn every_view_has_exactly_its_documented_columns(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.admin, None).await.unwrap();
    for view in VIEWS {
        let answer = sql(&store, &scope, &format!("SELECT * FROM {}", view.name))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", view.name));
        let documented: Vec<&str> = view.columns.iter().map(|c| c.name).collect();
        assert_eq!(answer.columns, documented, "{}", view.name);
    }
    let latest = sql(
        &store,
        &scope,
        "SELECT annotator, answer, source FROM latest_annotations",
    )
    .await
    .unwrap();
    assert_eq!(latest.rows.len(), 1);
    assert_eq!(latest.rows[0][0], format!("a{}", w.analyst.id));
}

async fn a_user_sees_only_the_projects_they_may_query(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.analyst, None).await.unwrap();
    assert_eq!(
        scope.projects,
        vec![w.alpha.id],
        "annotating beta gives no SQL on it"
    );
    assert_eq!(item_count(&store, &scope).await, 2);
    let projects = sql(&store, &scope, "SELECT slug FROM projects")
        .await
        .unwrap();
    assert_eq!(projects.rows, vec![vec![serde_json::json!("alpha")]]);
    assert!(matches!(
        store.sql_scope(&w.analyst, Some("beta")).await,
        Err(StoreError::NotFound(_))
    ));

    let everything = store.sql_scope(&w.admin, None).await.unwrap();
    assert_eq!(item_count(&store, &everything).await, 5);
    let only_beta = store.sql_scope(&w.admin, Some("beta")).await.unwrap();
    assert_eq!(only_beta.projects, vec![w.beta.id]);
    assert_eq!(item_count(&store, &only_beta).await, 3);
}

/// As on the adjudication page: an analyst sees pseudonyms unless the project shows
/// annotator names; administrators and project managers see names.
async fn names_show_only_where_the_role_or_project_allows_them(store: TestStore) {
    let w = world(&store).await;
    let query = "SELECT annotator, username, display_name FROM annotators";
    let analyst = store.sql_scope(&w.analyst, None).await.unwrap();
    assert!(analyst.names_visible.is_empty());
    let hidden = sql(&store, &analyst, query).await.unwrap();
    assert_eq!(hidden.rows[0][0], format!("a{}", w.analyst.id));
    assert!(hidden.rows[0][1].is_null() && hidden.rows[0][2].is_null());

    let admin = store.sql_scope(&w.admin, Some("alpha")).await.unwrap();
    let seen = sql(&store, &admin, query).await.unwrap();
    assert_eq!(seen.rows[0][1], "ana");

    store
        .update_project(
            w.alpha.id,
            &w.alpha.name,
            "",
            serde_json::json!({"qa": {"show_annotator_names": true}}),
            None,
        )
        .await
        .unwrap();
    let shown = store.sql_scope(&w.analyst, None).await.unwrap();
    assert_eq!(shown.names_visible, vec![w.alpha.id]);
    let seen = sql(&store, &shown, query).await.unwrap();
    assert_eq!(seen.rows[0][1], "ana");
}

/// Every route to the internal tables, a write or a side effect is refused with the
/// database's message, and changes nothing.
async fn no_query_writes_or_reaches_a_secret(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.admin, None).await.unwrap();
    let before = item_count(&store, &scope).await;
    let mut routes = vec![
        "SELECT password_hash FROM users".to_owned(),
        "SELECT * FROM sessions".to_owned(),
        "SELECT token_hash FROM api_tokens".to_owned(),
        "SELECT settings FROM projects".to_owned(),
        "WITH items AS (SELECT * FROM users) SELECT * FROM items".to_owned(),
        "SELECT * FROM (SELECT * FROM api_tokens) AS items".to_owned(),
        "SELECT * FROM saved_queries".to_owned(),
        "DELETE FROM items".to_owned(),
        "INSERT INTO projects (slug, name) VALUES ('x', 'x')".to_owned(),
        "CREATE TABLE loot (x INTEGER)".to_owned(),
        "DROP VIEW items".to_owned(),
        "WITH gone AS (DELETE FROM items RETURNING item_id) SELECT * FROM gone".to_owned(),
        "SELECT 1; DELETE FROM items".to_owned(),
        "SELECT 1; SELECT 2".to_owned(),
        "COPY (SELECT 1) TO STDOUT".to_owned(),
    ];
    match store.backend() {
        Backend::Sqlite => routes.extend(
            [
                "SELECT * FROM sqlite_master",
                "SELECT sql FROM sqlite_schema",
                "SELECT sql FROM sqlite_temp_master",
                "SELECT * FROM main.users",
                "SELECT * FROM temp.sqlite_temp_schema",
                "ATTACH DATABASE 'loot.db' AS loot",
                "SELECT load_extension('/tmp/evil')",
                "PRAGMA database_list",
                "SELECT * FROM pragma_database_list",
                "SELECT * FROM pragma_table_list",
                "EXPLAIN SELECT * FROM items",
                "SELECT zeroblob(1000)",
                "SELECT sqlite_version()",
                "BEGIN IMMEDIATE",
            ]
            .map(str::to_owned),
        ),
        Backend::Postgres => {
            routes.extend(
                [
                    "SELECT rolpassword FROM pg_authid",
                    "SELECT passwd FROM pg_shadow",
                    "SELECT * FROM pg_catalog.pg_authid",
                    "SELECT set_config('role', 'postgres', true)",
                    "SELECT set_config('statement_timeout', '0', true)",
                    "SELECT set_config('concord.sql_projects', '1,2,3,4,5', true)",
                    "SELECT query_to_xml('SELECT password_hash FROM users', true, false, '')",
                    "SELECT pg_advisory_lock(7)",
                    "SELECT pg_read_file('/etc/passwd')",
                    "SELECT lo_import('/etc/passwd')",
                    "SET ROLE postgres",
                    "RESET ROLE",
                    "COPY items TO STDOUT",
                    "LOAD 'plpgsql'",
                    "CREATE EXTENSION dblink",
                ]
                .map(str::to_owned),
            );
        }
    }
    if store.backend() == Backend::Postgres {
        // The instance's own schema, named outright.
        let schema = sql(&store, &scope, "SELECT current_schema() AS s")
            .await
            .unwrap();
        let views = schema.rows[0][0].as_str().unwrap().to_owned();
        let tables = views.trim_end_matches("_sql").to_owned();
        routes.push(format!("SELECT password_hash FROM {tables}.users"));
        routes.push(format!(
            "SELECT token_hash FROM public.api_tokens, {tables}.sessions"
        ));
    }
    for route in &routes {
        refused(&store, &scope, route).await;
    }
    assert_eq!(
        item_count(&store, &scope).await,
        before,
        "nothing was written"
    );
    let unchanged = store.sql_scope(&w.analyst, None).await.unwrap();
    assert_eq!(
        item_count(&store, &unchanged).await,
        2,
        "the scope is still the analyst's"
    );
}

async fn a_runaway_query_stops_at_the_time_limit(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.admin, None).await.unwrap();
    let bomb = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                SELECT count(*) FROM r";
    let started = Instant::now();
    let message = refused(&store, &scope, bomb).await;
    assert!(message.contains("time limit"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // The store still answers at once afterwards.
    assert_eq!(item_count(&store, &scope).await, 5);
}

async fn errors_are_the_databases_with_their_position(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.admin, None).await.unwrap();
    match sql(&store, &scope, "SELECT title, nonsense FROM items").await {
        Err(StoreError::Query { message, position }) => {
            assert!(message.contains("nonsense"), "{message}");
            assert_eq!(position, Some(14), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match sql(&store, &scope, "SELECT title FROM items WHERE").await {
        Err(StoreError::Query { message, position }) => {
            assert!(
                message.contains("syntax") || message.contains("incomplete"),
                "{message}"
            );
            let _ = position;
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sql(&store, &scope, "   ").await,
        Err(StoreError::Query { .. })
    ));
}

async fn answers_stop_at_the_limit_and_say_so(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.admin, None).await.unwrap();
    let query = "SELECT external_id, priority, is_gold FROM items ORDER BY item_id";
    let two = store
        .run_sql(&scope, query, Some(2), limits())
        .await
        .unwrap();
    assert_eq!(two.rows.len(), 2);
    assert!(two.truncated);
    assert_eq!(
        two.rows[0],
        vec![serde_json::json!("item-00001"), 0.into(), 0.into()]
    );
    let capped = SqlLimits {
        row_cap: 3,
        ..limits()
    };
    let all = store
        .run_sql(&scope, query, Some(50), capped)
        .await
        .unwrap();
    assert_eq!((all.rows.len(), all.truncated), (3, true));
    let exact = store
        .run_sql(&scope, query, Some(5), limits())
        .await
        .unwrap();
    assert_eq!((exact.rows.len(), exact.truncated), (5, false));
    let json = sql(
        &store,
        &scope,
        "SELECT count(*) AS n, avg(priority) AS mean, 'x' AS t, NULL AS empty FROM items",
    )
    .await
    .unwrap();
    assert_eq!(json.columns, ["n", "mean", "t", "empty"]);
    assert_eq!(json.rows[0][0], 5);
    assert_eq!(json.rows[0][1].as_f64(), Some(0.0));
    assert!(json.rows[0][3].is_null());
}

/// A JSON list (a multi-label answer) unnests into rows with each back end's own function.
async fn json_lists_unnest_into_rows(store: TestStore) {
    let w = world(&store).await;
    let scope = store.sql_scope(&w.analyst, None).await.unwrap();
    let query = match store.backend() {
        Backend::Sqlite => "SELECT value FROM json_each('[\"R\", \"X\"]') ORDER BY value",
        Backend::Postgres => {
            "SELECT value FROM json_array_elements_text('[\"R\", \"X\"]') ORDER BY value"
        }
    };
    let answer = sql(&store, &scope, query).await.unwrap();
    assert_eq!(
        answer.rows,
        vec![vec![serde_json::json!("R")], vec![serde_json::json!("X")]]
    );
}

async fn saved_queries_belong_to_their_project(store: TestStore) {
    let w = world(&store).await;
    let saved = store
        .save_query(
            w.alpha.id,
            NewSavedQuery {
                name: "open items".into(),
                query: "SELECT * FROM items WHERE state = 'queued'".into(),
            },
            w.analyst.id,
        )
        .await
        .unwrap();
    assert_eq!(saved.author.as_deref(), Some("ana"));
    let replaced = store
        .save_query(
            w.alpha.id,
            NewSavedQuery {
                name: "open items".into(),
                query: "SELECT count(*) FROM items".into(),
            },
            w.admin.id,
        )
        .await
        .unwrap();
    assert_eq!(replaced.id, saved.id);
    assert_eq!(replaced.query, "SELECT count(*) FROM items");
    assert_eq!(
        store.saved_queries(w.alpha.id).await.unwrap(),
        vec![replaced.clone()]
    );
    assert!(store.saved_queries(w.beta.id).await.unwrap().is_empty());
    assert!(matches!(
        store.saved_query(w.beta.id, "open items").await,
        Err(StoreError::NotFound(_))
    ));
    for (name, query) in [("", "SELECT 1"), ("blank", "  ")] {
        let refused = store
            .save_query(
                w.alpha.id,
                NewSavedQuery {
                    name: name.into(),
                    query: query.into(),
                },
                w.analyst.id,
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
    assert!(matches!(
        store.delete_saved_query(w.beta.id, "open items").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_saved_query(w.alpha.id, "open items")
        .await
        .unwrap();
    assert!(store.saved_queries(w.alpha.id).await.unwrap().is_empty());
}

on_every_backend!(
    every_view_has_exactly_its_documented_columns,
    a_user_sees_only_the_projects_they_may_query,
    names_show_only_where_the_role_or_project_allows_them,
    no_query_writes_or_reaches_a_secret,
    a_runaway_query_stops_at_the_time_limit,
    errors_are_the_databases_with_their_position,
    answers_stop_at_the_limit_and_say_so,
    json_lists_unnest_into_rows,
    saved_queries_belong_to_their_project,
);
