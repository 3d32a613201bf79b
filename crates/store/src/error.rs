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
        stored_kind: crate::vocabulary::AnswerKind,
    },
    #[error("{0}")]
    Invalid(String),
    /// Data the store wrote earlier cannot be read back (a stored JSON value or setting):
    /// ours, never the caller's, so it is never answered as a 4xx.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// From either driver (sqlx, or the SQLite writer's own connection); opaque so that no
    /// driver's types are part of the store's API.
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    #[error("migration {name}: {reason}")]
    Migration { name: String, reason: String },
    #[error("the write was not applied: the database writer could not run it")]
    WriterGone,
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// An analyst's SQL query failed or was refused: the database's message (or ours, for
    /// a refusal or the time limit) and, when known, the 0-based character position in the
    /// query text. The caller's problem, never a 500.
    #[error("{message}")]
    Query {
        message: String,
        position: Option<usize>,
    },
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
            StoreError::Database(e) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// True when PostgreSQL undid the transaction after a deadlock or a serialization race,
    /// so running it again is safe.
    pub(crate) fn is_retryable_race(&self) -> bool {
        match self {
            StoreError::Database(e) => e.is_retryable_race(),
            _ => false,
        }
    }

    /// A column missing from a row the store read: a bug of ours, reported like sqlx does.
    pub(crate) fn column_not_found(column: &str) -> Self {
        sqlx::Error::ColumnNotFound(column.to_owned()).into()
    }
}

/// A driver's error, kept whole (message and source chain) but not part of the API: callers
/// see its text and [`std::error::Error::source`], never the driver's type.
#[derive(Debug)]
pub struct DatabaseError(Driver);

#[derive(Debug)]
enum Driver {
    Sqlx(sqlx::Error),
    /// The SQLite writer's own connection (the work queue's hot path).
    Sqlite(rusqlite::Error),
}

impl DatabaseError {
    fn is_unique_violation(&self) -> bool {
        match &self.0 {
            Driver::Sqlx(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || e.message().contains("UNIQUE constraint failed")
                    || e.code().as_deref() == Some("23505")
            }
            Driver::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            _ => false,
        }
    }

    fn is_retryable_race(&self) -> bool {
        match &self.0 {
            Driver::Sqlx(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01") | Some("40001"))
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Driver::Sqlx(e) => e.fmt(f),
            Driver::Sqlite(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The driver error's own source, so the chain reads as it did with the driver's type.
        match &self.0 {
            Driver::Sqlx(e) => e.source(),
            Driver::Sqlite(e) => e.source(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(DatabaseError(Driver::Sqlx(e)))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(DatabaseError(Driver::Sqlite(e)))
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
