//! The workspace's layering, held as absences (ARCHITECTURE.md states them): read from the
//! sources and manifests, so that a change that breaks one fails here, not in review.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `[dependencies]` section of a crate's manifest (dev-dependencies may differ).
fn dependencies(krate: &str) -> String {
    let manifest = read(&workspace().join("crates").join(krate).join("Cargo.toml"));
    let start = manifest.find("[dependencies]").unwrap_or(manifest.len());
    let rest = &manifest[start..];
    let end = rest[1..].find("\n[").map(|i| i + 1).unwrap_or(rest.len());
    rest[..end].to_owned()
}

fn offenders(krate: &str, needles: &[&str]) -> Vec<String> {
    rust_files(&workspace().join("crates").join(krate).join("src"))
        .into_iter()
        .flat_map(|path| {
            let text = read(&path);
            needles
                .iter()
                .filter(|needle| text.contains(*needle))
                .map(|needle| format!("{} uses {needle}", path.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_engine_does_no_io_no_async_no_sql_no_http() {
    let deps = dependencies("stats");
    for forbidden in [
        "tokio",
        "sqlx",
        "rusqlite",
        "axum",
        "reqwest",
        "concord-store",
    ] {
        assert!(!deps.contains(forbidden), "stats depends on {forbidden}");
    }
    let found = offenders(
        "stats",
        &["std::fs", "std::net", "async fn", "tokio::", "std::process"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_store_knows_no_engine_and_no_http() {
    let deps = dependencies("store");
    for forbidden in [
        "concord-stats",
        "concord-qa",
        "axum",
        "minijinja",
        "reqwest",
    ] {
        assert!(!deps.contains(forbidden), "store depends on {forbidden}");
    }
    let found = offenders("store", &["concord_stats", "axum::", "minijinja"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_server_writes_no_sql() {
    let deps = dependencies("server");
    for forbidden in ["sqlx", "rusqlite"] {
        assert!(!deps.contains(forbidden), "server depends on {forbidden}");
    }
    let found = offenders(
        "server",
        &[
            "sqlx::",
            "rusqlite::",
            "SELECT ",
            "INSERT INTO",
            "UPDATE items",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_json_api_does_not_depend_on_the_pages() {
    let src = workspace().join("crates/server/src");
    let api_files: Vec<PathBuf> = rust_files(&src)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "api.rs"))
        .collect();
    assert!(api_files.len() >= 6, "every feature has its API module");
    for path in api_files {
        let text = read(&path);
        for forbidden in ["pages::", "crate::views", "minijinja", "Html<"] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}",
                path.display()
            );
        }
    }
}

#[test]
fn the_annotators_write_no_sql_and_serve_nothing() {
    let deps = dependencies("annotators");
    for forbidden in ["sqlx", "rusqlite", "axum", "minijinja", "concord-server"] {
        assert!(
            !deps.contains(forbidden),
            "annotators depends on {forbidden}"
        );
    }
    let found = offenders(
        "annotators",
        &["sqlx::", "SELECT ", "INSERT INTO", "axum::"],
    );
    assert!(found.is_empty(), "{found:#?}");
}
