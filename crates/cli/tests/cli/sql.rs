//! `concord sql`: one read-only query over the documented views, as a table, CSV or JSON;
//! a failed query says the database's message with a caret under the place, exit 1.

use std::process::Command;

use crate::support::{stderr, stdout, write};

fn run(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .args(["--database-url", db])
        .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1")
        .output()
        .unwrap()
}

#[test]
fn sql_prints_the_views_as_table_csv_or_json_and_points_at_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sql.db").display().to_string();
    let items = write(
        &dir,
        "items.csv",
        b"id,item_type,title\nt1,track,Harbour Lights\ne1,episode,\"Night, Shift\"\n",
    );
    for args in [
        vec!["project", "create", "catalog", "--name", "Catalog"],
        vec!["project", "create", "other", "--name", "Other"],
        vec!["import", "catalog", items.to_str().unwrap()],
        vec!["import", "other", items.to_str().unwrap()],
        vec!["user", "add", "ana"],
        vec![
            "project",
            "member",
            "catalog",
            "ana",
            "--role",
            "qa_analyst",
        ],
    ] {
        let out = run(&db, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }

    let query = "SELECT item_type, title FROM items ORDER BY item_id";
    let out = run(&db, &["sql", "catalog", query, "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "item_type,title\ntrack,Harbour Lights\nepisode,\"Night, Shift\"\n"
    );

    let out = run(
        &db,
        &["sql", "SELECT count(*) AS n FROM items", "--format", "json"],
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        answer["rows"],
        serde_json::json!([[4]]),
        "every project without one named"
    );

    let out = run(
        &db,
        &[
            "sql",
            "SELECT count(*) AS n FROM items",
            "--as",
            "ana",
            "--format",
            "json",
        ],
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        answer["rows"],
        serde_json::json!([[2]]),
        "only what ana may query"
    );

    let out = run(&db, &["sql", "catalog", query, "--limit", "1"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "item_type  title\n---------  --------------\ntrack      Harbour Lights\n"
    );
    assert!(
        stderr(&out).contains("more rows matched"),
        "{}",
        stderr(&out)
    );

    let out = run(
        &db,
        &["sql", "catalog", "SELECT title,\n  nonsense FROM items"],
    );
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("no such column: nonsense"), "{message}");
    assert!(
        message.contains("  nonsense FROM items\n    ^"),
        "{message}"
    );

    let out = run(&db, &["sql", "catalog", "DELETE FROM items"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(
        &db,
        &[
            "sql",
            "catalog",
            "SELECT count(*) FROM items",
            "--format",
            "csv",
        ],
    );
    assert_eq!(stdout(&out), "count(*)\n2\n", "nothing was deleted");

    let out = run(&db, &["sql", "--reference"]);
    assert_eq!(
        stdout(&out),
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/sql.md")
        )
        .unwrap()
    );
}
