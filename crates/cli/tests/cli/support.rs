//! What every test shares: running the real `concord` binary, reading what it printed,
//! the repository's data and conformance directories, and the rule for suites that need
//! a machine this one may not be (PostgreSQL, a browser).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn concord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .output()
        .expect("the concord binary runs")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/cases")
}

pub(crate) fn write(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

pub(crate) fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// `concord case check` on a conformance family: exit 0 and "N passed, 0 failed".
pub(crate) fn assert_family_passes(family: &str) {
    let out = concord(&[
        "case",
        "check",
        conformance_dir().join(family).to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{family}:\n{text}{}", stderr(&out));
    assert!(text.trim_end().ends_with(" 0 failed"), "{family}: {text}");
}

/// A suite that needs what this machine lacks is skipped with a `skipped: …` line, unless
/// `CONCORD_REQUIRE_ALL_SUITES` is set (CI sets it): then skipping would hide a missing
/// suite, so the test fails instead.
pub(crate) fn skip_unless_required(suite: &str, reason: &str) {
    if std::env::var_os("CONCORD_REQUIRE_ALL_SUITES").is_some() {
        panic!("the {suite} must run when CONCORD_REQUIRE_ALL_SUITES is set: {reason}");
    }
    eprintln!("skipped: {suite} ({reason})");
}
