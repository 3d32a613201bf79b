use thiserror::Error;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in the store. `NotFound`, `Conflict` and `Invalid` are the caller's
/// problem and carry a message fit to show a user; `Database` is ours.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key came back with a different answer than the one stored under it:
    /// the new answer was not taken, and the stored one is given so the client can tell.
    #[error(
        "this idempotency key was already used for annotation {annotation_id} with a different answer; the new answer was not stored"
    )]
    KeyReused {
        annotation_id: i64,
        stored_answer: serde_json::Value,
        stored_kind: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// Data the store wrote earlier cannot be read back (a stored JSON value or setting):
    /// ours, never the caller's, so it is never answered as a 4xx.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite writer's own connection (the work queue's hot path).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {name}: {reason}")]
    Migration { name: String, reason: String },
    #[error("the write was not applied: the database writer could not run it")]
    WriterGone,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound(what.into())
    }
    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict(what.into())
    }
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        StoreError::Invalid(what.into())
    }
    /// True for unique-constraint violations, which callers turn into `Conflict`.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || e.message().contains("UNIQUE constraint failed")
                    || e.code().as_deref() == Some("23505")
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            _ => false,
        }
    }
}

pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain data types cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("stored {what} is not valid JSON: {e}")))
}
