//! Migrations per back end, embedded in the binary and applied at start.
//!
//! Policy: a migration, once applied anywhere, is never edited. Each applied migration's
//! SHA-256 is recorded; a stored checksum that no longer matches the file stops the server
//! with an error naming the migration. Changes go in a new, higher-numbered file for both
//! back ends.

use crate::db::Backend;
use crate::error::{Result, StoreError};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::{Executor, Row};

struct Migration {
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_platform",
        sqlite: include_str!("../migrations/sqlite/0001_platform.sql"),
        postgres: include_str!("../migrations/postgres/0001_platform.sql"),
    },
    Migration {
        name: "0002_queue",
        sqlite: include_str!("../migrations/sqlite/0002_queue.sql"),
        postgres: include_str!("../migrations/postgres/0002_queue.sql"),
    },
    Migration {
        name: "0003_qa",
        sqlite: include_str!("../migrations/sqlite/0003_qa.sql"),
        postgres: include_str!("../migrations/postgres/0003_qa.sql"),
    },
    Migration {
        name: "0004_bulk_reads",
        sqlite: include_str!("../migrations/sqlite/0004_bulk_reads.sql"),
        postgres: include_str!("../migrations/postgres/0004_bulk_reads.sql"),
    },
    Migration {
        name: "0005_queue_indexes",
        sqlite: include_str!("../migrations/sqlite/0005_queue_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0005_queue_indexes.sql"),
    },
    Migration {
        name: "0006_check_lists",
        sqlite: include_str!("../migrations/sqlite/0006_check_lists.sql"),
        postgres: include_str!("../migrations/postgres/0006_check_lists.sql"),
    },
    Migration {
        name: "0007_model_cursor",
        sqlite: include_str!("../migrations/sqlite/0007_model_cursor.sql"),
        postgres: include_str!("../migrations/postgres/0007_model_cursor.sql"),
    },
    Migration {
        name: "0008_saved_queries",
        sqlite: include_str!("../migrations/sqlite/0008_saved_queries.sql"),
        postgres: include_str!("../migrations/postgres/0008_saved_queries.sql"),
    },
    Migration {
        name: "0009_automated_annotators",
        sqlite: include_str!("../migrations/sqlite/0009_automated_annotators.sql"),
        postgres: include_str!("../migrations/postgres/0009_automated_annotators.sql"),
    },
    Migration {
        name: "0011_predictions",
        sqlite: include_str!("../migrations/sqlite/0011_predictions.sql"),
        postgres: include_str!("../migrations/postgres/0011_predictions.sql"),
    },
    Migration {
        name: "0012_retests",
        sqlite: include_str!("../migrations/sqlite/0012_retests.sql"),
        postgres: include_str!("../migrations/postgres/0012_retests.sql"),
    },
    Migration {
        name: "0013_exposure",
        sqlite: include_str!("../migrations/sqlite/0013_exposure.sql"),
        postgres: include_str!("../migrations/postgres/0013_exposure.sql"),
    },
    Migration {
        name: "0014_escalation_cost",
        sqlite: include_str!("../migrations/sqlite/0014_escalation_cost.sql"),
        postgres: include_str!("../migrations/postgres/0014_escalation_cost.sql"),
    },
    Migration {
        name: "0015_calibration",
        sqlite: include_str!("../migrations/sqlite/0015_calibration.sql"),
        postgres: include_str!("../migrations/postgres/0015_calibration.sql"),
    },
    Migration {
        name: "0016_import_staging_order",
        sqlite: include_str!("../migrations/sqlite/0016_import_staging_order.sql"),
        postgres: include_str!("../migrations/postgres/0016_import_staging_order.sql"),
    },
    Migration {
        name: "0017_person_walk",
        sqlite: include_str!("../migrations/sqlite/0017_person_walk.sql"),
        postgres: include_str!("../migrations/postgres/0017_person_walk.sql"),
    },
];

/// Advisory-lock key so that servers starting together on PostgreSQL migrate one at a time.
const PG_MIGRATION_LOCK: i64 = 0x63_6f6e_636f_7264;

fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

// Migrations run on sqlx directly, not `Conn`: they come before the store's connections
// (writer, readers) exist, on a connection of their own with its own transactions.
pub(crate) async fn apply(conn: &mut AnyConnection, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_locked(conn, backend).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_locked(conn: &mut AnyConnection, backend: Backend) -> Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
           name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .await?;
    for migration in MIGRATIONS {
        let sql = match backend {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        let expected = checksum(sql);
        let applied = sqlx::query("SELECT checksum FROM schema_migrations WHERE name = $1")
            .bind(migration.name)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = applied {
            let stored: String = row.try_get("checksum")?;
            if stored != expected {
                return Err(StoreError::Migration {
                    name: migration.name.to_owned(),
                    reason: "the file changed after it was applied; applied migrations must \
                             never be edited — add a new migration instead"
                        .to_owned(),
                });
            }
            continue;
        }
        tracing::info!(migration = migration.name, "applying migration");
        conn.execute("BEGIN").await?;
        let outcome = async {
            conn.execute(sql).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (name, checksum, applied_at) \
                 VALUES ($1, $2, CURRENT_TIMESTAMP)",
            )
            .bind(migration.name)
            .bind(&expected)
            .execute(&mut *conn)
            .await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                conn.execute("COMMIT").await?;
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(StoreError::Migration {
                    name: migration.name.to_owned(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreOptions};

    /// Migration 0006 rewrites the SQLite CHECK lists with OR: the constraints still refuse
    /// a bad value, and an insert no longer builds a temporary B-tree per row.
    #[tokio::test]
    async fn sqlite_check_constraints_hold_without_a_temporary_btree_per_row() {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("checks.db");
        let store = Store::open(StoreOptions::new(
            path.to_string_lossy().to_string(),
            crate::queue_rules::never_pauses,
        ))
        .await
        .expect("a store");
        drop(store);
        let db = rusqlite::Connection::open(&path).expect("the database file");
        for table in ["items", "assignments", "memberships", "jobs"] {
            let sql: String = db
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |row| row.get(0),
                )
                .expect("the table's definition");
            assert!(sql.contains("CHECK ("), "{table} lost its CHECK: {sql}");
            assert!(
                !sql.contains(" IN ("),
                "{table} still has an IN list: {sql}"
            );
        }
        let plan: Vec<String> = db
            .prepare(
                "EXPLAIN INSERT INTO assignments (project_id, item_id, user_id, purpose, \
                 status, counts_toward_overlap) VALUES (1, 1, 1, 'label', 'leased', 1)",
            )
            .expect("a plan")
            .query_map([], |row| row.get::<_, String>(1))
            .expect("the plan's steps")
            .collect::<Result<_, _>>()
            .expect("readable steps");
        assert!(!plan.iter().any(|op| op == "OpenEphemeral"), "{plan:?}");

        db.execute_batch(
            "INSERT INTO projects (slug, name) VALUES ('p', 'P'); \
             INSERT INTO items (project_id, external_id, item_type, title) \
               VALUES (1, 'x1', 'track', 'A track');",
        )
        .expect("a valid item");
        for (sql, column) in [
            (
                "INSERT INTO items (project_id, external_id, item_type, title) \
                 VALUES (1, 'x2', 'podcast', 'Not a type')",
                "item_type",
            ),
            ("UPDATE items SET state = 'done'", "state"),
        ] {
            let refused = db.execute(sql, []).expect_err("a CHECK refuses it");
            assert!(refused.to_string().contains(column), "{refused}");
        }
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("an integrity check");
        assert_eq!(integrity, "ok");
    }
}
