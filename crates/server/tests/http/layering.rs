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

/// Lines a function may take before it must say why it is not split: what fits on a screen.
const SCREEN: usize = 60;

/// What a long function writes, inside it or just above it, to say why it stays whole.
const KEPT_WHOLE: &str = "// long:";

/// A line with its string and character literals blanked and its comment cut, so that braces
/// inside them are not counted.
fn code_of(line: &str) -> String {
    let mut code = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(inner) = chars.next() {
                    match inner {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                code.push_str("\"\"");
            }
            '\'' if matches!(chars.clone().nth(1), Some('\'')) || chars.peek() == Some(&'\\') => {
                // A character literal ('{', '\n'); a lifetime has no closing quote.
                for inner in chars.by_ref() {
                    if inner == '\'' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => code.push(c),
        }
    }
    code
}

/// Functions of `krate`'s sources (test modules left out) longer than a screen that do not
/// say why: `path:line name (lines)`.
fn long_functions(krate: &str) -> Vec<String> {
    let is_fn = |line: &str| {
        let t = line.trim_start();
        let t = match t.strip_prefix("pub") {
            // `pub`, `pub(crate)`, `pub(super)`, …
            Some(rest) if rest.starts_with('(') => rest.split_once(") ").map_or(t, |(_, r)| r),
            Some(rest) => rest.trim_start(),
            None => t,
        };
        let t = t.strip_prefix("async ").unwrap_or(t);
        t.strip_prefix("fn ")
            .map(|rest| rest.split(['(', '<']).next().unwrap_or("").to_owned())
    };
    let mut found = Vec::new();
    for path in rust_files(&workspace().join("crates").join(krate).join("src")) {
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i].trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let Some(name) = is_fn(lines[i]) else {
                i += 1;
                continue;
            };
            let (mut depth, mut opened, mut end) = (0i64, false, i);
            for (j, line) in lines.iter().enumerate().skip(i) {
                let code = code_of(line);
                if !opened && code.trim_end().ends_with(';') {
                    break;
                }
                for c in code.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                end = j;
                if opened && depth == 0 {
                    break;
                }
            }
            let length = end - i + 1;
            let said_why = lines[i.saturating_sub(8)..=end]
                .iter()
                .any(|l| l.trim_start().starts_with(KEPT_WHOLE));
            if opened && length > SCREEN && !said_why {
                found.push(format!(
                    "{}:{} {name} ({length} lines)",
                    path.display(),
                    i + 1
                ));
            }
            i = if opened { end + 1 } else { i + 1 };
        }
    }
    found
}

#[test]
fn no_function_in_the_store_or_the_server_is_longer_than_a_screen_without_saying_why() {
    for krate in ["store", "server"] {
        let found = long_functions(krate);
        assert!(
            found.is_empty(),
            "split these, or say why they stay whole ({KEPT_WHOLE} …): {found:#?}"
        );
    }
}

#[test]
fn the_length_rule_counts_braces_in_code_only() {
    assert_eq!(code_of(r#"let s = "{"; // }"#), r#"let s = ""; "#);
    assert_eq!(code_of("let c = '{';"), "let c = ;");
    assert_eq!(code_of("fn f<'a>(x: &'a str) {"), "fn f<'a>(x: &'a str) {");
}
