//! Opens a fresh store per test on each back end.

use concord_store::{PasswordCost, Store, StoreOptions};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestStore {
    pub store: Store,
    options: StoreOptions,
    // Keeps the SQLite file's directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// A second store on the same database, as another process (the CLI, a second server)
    /// would open it, remembering its access lookups for `access_ttl`.
    pub async fn another_process(&self, access_ttl: std::time::Duration) -> Store {
        let mut options = self.options.clone();
        options.access_ttl = access_ttl;
        Store::open(options)
            .await
            .expect("open the same database again")
    }
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
    let mut options = StoreOptions::new(path.to_string_lossy().to_string(), |correct, answered| {
        concord_stats::sampling::wilson(correct, answered, 0.95).high
    });
    options.password_cost = PasswordCost::Fast;
    let store = Store::open(options.clone())
        .await
        .expect("open sqlite store");
    TestStore {
        store,
        options,
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
    let mut options = StoreOptions::new(url, |correct, answered| {
        concord_stats::sampling::wilson(correct, answered, 0.95).high
    });
    options.pg_schema = Some(schema);
    options.password_cost = PasswordCost::Fast;
    options.max_connections = 8;
    let store = Store::open(options.clone())
        .await
        .expect("open postgres store");
    // Once per run: the schemas earlier runs left behind.
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::Relaxed) {
        let _ = store.drop_scratch_schemas_of_ended_processes("t").await;
    }
    Some(TestStore {
        store,
        options,
        _dir: None,
    })
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

/// Fixtures the specs share: people, projects, files read through the real readers, and a
/// way to reach the tables directly for the few facts the public API does not show.
pub mod fixtures {
    use concord_formats::items::{AnnotationReader, ItemReader, RecordFormat};
    use concord_store::{
        ImportOutcome, LabelSchema, NewAnnotation, NewProject, NewUser, OnConflict, Project,
        Result, Store, User,
    };
    use concord_store::{ItemId, ProjectId};
    use serde_json::{Value, json};
    use sqlx::Row;

    pub const PASSWORD: &str = "correct horse battery";

    pub fn person(name: &str) -> NewUser {
        NewUser {
            username: name.into(),
            display_name: None,
            password: Some(PASSWORD.into()),
            is_admin: false,
            kind: concord_store::AccountKind::Human,
        }
    }

    pub async fn user(store: &Store, name: &str) -> User {
        store.create_user(person(name), None).await.unwrap()
    }

    pub async fn admin(store: &Store, name: &str) -> User {
        let mut new = person(name);
        new.is_admin = true;
        store.create_user(new, None).await.unwrap()
    }

    pub fn new_project(slug: &str) -> NewProject {
        NewProject {
            slug: slug.into(),
            name: format!("Project {slug}"),
            description: String::new(),
            schema: LabelSchema::catalog_safety(),
        }
    }

    /// The catalog-safety schema with one more severity, S5: a second schema version.
    pub fn schema_with_s5() -> LabelSchema {
        let mut schema = LabelSchema::catalog_safety();
        if let Some(severity) = schema.questions.iter_mut().find(|q| q.key == "severity") {
            severity.options.push(concord_store::SchemaOption {
                value: "S5".into(),
                label: "S5 catastrophic".into(),
                family: None,
                description: String::new(),
            });
        }
        schema
    }

    pub async fn project(store: &Store, slug: &str) -> Project {
        store.create_project(new_project(slug), None).await.unwrap()
    }

    /// A valid answer under the catalog-safety schema.
    pub fn answer(decision: &str, severity: &str) -> Value {
        json!({"decision": decision, "severity": severity})
    }

    pub fn annotation(item_id: ItemId, answer: Value) -> NewAnnotation {
        NewAnnotation {
            item_id,
            answer,
            ..NewAnnotation::default()
        }
    }

    /// A CSV of `count` tracks `item-00001`, `item-00002`, … titled `Title 1`, `Title 2`, …
    pub fn tracks_csv(count: usize) -> String {
        let mut csv = String::from("id,item_type,title\n");
        for n in 1..=count {
            csv += &format!("item-{n:05},track,Title {n}\n");
        }
        csv
    }

    /// Reads `text` with [`ItemReader`] (format from the file name) and imports it, staging
    /// `batch` records at a time; a failed stage aborts the import.
    pub async fn import_items_in_batches(
        store: &Store,
        project_id: ProjectId,
        file: &str,
        text: &str,
        batch: usize,
        on_conflict: OnConflict,
    ) -> Result<ImportOutcome> {
        let reader = ItemReader::new(file, text.as_bytes(), RecordFormat::guess(file))
            .expect("the test file has a valid header");
        let records: Vec<_> = reader
            .collect::<std::result::Result<_, _>>()
            .expect("the test file is readable");
        let mut import = store.begin_item_import(project_id, file).await?;
        for chunk in records.chunks(batch) {
            if let Err(e) = import.stage(chunk.to_vec()).await {
                import.abort().await;
                return Err(e);
            }
        }
        import.publish(on_conflict, None).await
    }

    pub async fn import_items(
        store: &Store,
        project_id: ProjectId,
        file: &str,
        text: &str,
        on_conflict: OnConflict,
    ) -> Result<ImportOutcome> {
        import_items_in_batches(store, project_id, file, text, 500, on_conflict).await
    }

    /// Reads `text` with [`AnnotationReader`] and imports it, staging `batch` records at a time.
    pub async fn import_annotations_in_batches(
        store: &Store,
        project_id: ProjectId,
        file: &str,
        text: &str,
        batch: usize,
    ) -> Result<ImportOutcome> {
        let reader = AnnotationReader::new(file, text.as_bytes(), RecordFormat::guess(file))
            .expect("the test file has a valid header");
        let records: Vec<_> = reader
            .collect::<std::result::Result<_, _>>()
            .expect("the test file is readable");
        let mut import = store.begin_annotation_import(project_id, file).await?;
        for chunk in records.chunks(batch) {
            if let Err(e) = import.stage(chunk.to_vec()).await {
                import.abort().await;
                return Err(e);
            }
        }
        import.publish(None).await
    }

    pub async fn import_annotations(
        store: &Store,
        project_id: ProjectId,
        file: &str,
        text: &str,
    ) -> Result<ImportOutcome> {
        import_annotations_in_batches(store, project_id, file, text, 500).await
    }

    /// Runs one statement through the store's write path (to arrange states the API only
    /// reaches through workflows that live elsewhere).
    pub async fn execute(store: &Store, sql: String) {
        store
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(&sql).execute(&mut *c).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
    }

    /// One integer cell (`None` when NULL or no row), read inside the write path.
    pub async fn integer_cell(store: &Store, sql: String) -> Option<i64> {
        store
            .write(move |c| {
                Box::pin(async move {
                    let row = sqlx::query(&sql).fetch_optional(&mut *c).await?;
                    Ok(match row {
                        Some(row) => row.try_get::<Option<i64>, _>(0)?,
                        None => None,
                    })
                })
            })
            .await
            .unwrap()
    }

    /// Every value of every text column of `table`, read inside the write path.
    pub async fn text_cells(
        store: &Store,
        table: &'static str,
        columns: &'static [&str],
    ) -> Vec<String> {
        store
            .write(move |c| {
                Box::pin(async move {
                    let rows = sqlx::query(&format!("SELECT {} FROM {table}", columns.join(", ")))
                        .fetch_all(&mut *c)
                        .await?;
                    let mut cells = Vec::new();
                    for row in rows {
                        for column in columns {
                            if let Some(text) = row.try_get::<Option<String>, _>(*column)? {
                                cells.push(text);
                            }
                        }
                    }
                    Ok(cells)
                })
            })
            .await
            .unwrap()
    }
}
