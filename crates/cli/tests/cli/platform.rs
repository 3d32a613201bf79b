//! The platform commands on a database: how a database URL is read.

use std::process::Command;

use crate::support::{concord, stderr, stdout};

/// Every SQLite URL spelling opens (and creates) the same file as the bare path, and a
/// failure's cause is said once.
#[test]
fn sqlite_urls_in_every_spelling_open_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spelled.db");
    let absolute = format!("sqlite://{}", db.display());
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["user", "add", "ana", "--database-url", &absolute])
        .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.exists());
    for url in [format!("sqlite:{}", db.display()), db.display().to_string()] {
        let out = concord(&["user", "list", "--database-url", &url]);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert!(stdout(&out).contains("ana"), "{url}: {}", stdout(&out));
    }
    let relative = Command::new(env!("CARGO_BIN_EXE_concord"))
        .current_dir(dir.path())
        .args(["user", "list", "--database-url", "sqlite://spelled.db"])
        .output()
        .unwrap();
    assert!(relative.status.success(), "{}", stderr(&relative));
    assert!(stdout(&relative).contains("ana"));
    let missing = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let out = concord(&["user", "list", "--database-url", &missing]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert_eq!(
        message.matches("unable to open database file").count(),
        1,
        "{message}"
    );
}
