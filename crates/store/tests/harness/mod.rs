//! Opens a fresh store per test on each back end.

use concord_store::{PasswordCost, Store, StoreOptions};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestStore {
    pub store: Store,
    // Keeps the SQLite file's directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    let mut options = StoreOptions::new(path.to_string_lossy().to_string());
    options.password_cost = PasswordCost::Fast;
    let store = Store::open(options).await.expect("open sqlite store");
    TestStore {
        store,
        _dir: Some(dir),
    }
}

/// `None` (and a note on stderr) when PostgreSQL is not configured; a failure instead when
/// `CONCORD_REQUIRE_ALL_SUITES` says every suite must run.
pub async fn postgres(test: &str) -> Option<TestStore> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("CONCORD_TEST_POSTGRES_URL") else {
        if std::env::var("CONCORD_REQUIRE_ALL_SUITES").is_ok() {
            panic!("CONCORD_TEST_POSTGRES_URL is required when CONCORD_REQUIRE_ALL_SUITES is set");
        }
        eprintln!("skipped: {test} on PostgreSQL (set CONCORD_TEST_POSTGRES_URL to run it)");
        return None;
    };
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(30)
            .collect::<String>()
            .to_lowercase()
    );
    let mut options = StoreOptions::new(url);
    options.pg_schema = Some(schema);
    options.password_cost = PasswordCost::Fast;
    options.max_connections = 8;
    let store = Store::open(options).await.expect("open postgres store");
    Some(TestStore { store, _dir: None })
}

/// Declares one test per back end for each `async fn name(store: TestStore)` spec.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(store) = $crate::harness::postgres(stringify!($name)).await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}
