//! What differs between the back ends in the SQL the store writes: the clock, parameters,
//! packed JSON rows, case-insensitive matching.

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The few SQL fragments that differ between the back ends.
#[derive(Debug, Clone, Copy)]
pub struct Dialect(pub Backend);

/// PostgreSQL's clock in milliseconds since the epoch, as text that `concat!` can splice
/// into a statement written at compile time.
macro_rules! pg_clock_ms {
    () => {
        "(floor(extract(epoch from clock_timestamp()) * 1000))::bigint"
    };
}
pub(crate) use pg_clock_ms;

/// Milliseconds since the epoch from the operating system: what SQLite's `unixepoch` reads.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Dialect {
    /// The database clock in milliseconds since the epoch. Leases, sessions and rate
    /// limits use it so that several servers agree on time.
    pub fn now_ms(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            Backend::Postgres => pg_clock_ms!(),
        }
    }

    /// The `n`-th (1-based) bind parameter of a statement whose parameters appear in order.
    /// SQLite gets anonymous `?`: sqlx looks up every named parameter by a linear scan, which
    /// makes statements with thousands of `$n` quadratic.
    pub fn param(self, n: usize) -> String {
        match self.0 {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// An aggregate packing a subquery's rows into one JSON text, an array of `[column, …]`
    /// arrays in `order`: bulk reads take one driver row per page instead of one per row
    /// (the driver's per-row cost, not the database, dominates reads of a million rows).
    /// On SQLite the order is the subquery's, which must have an `ORDER BY`.
    pub fn json_rows(self, columns: &str, order: &str) -> String {
        match self.0 {
            Backend::Sqlite => format!("json_group_array(json_array({columns}))"),
            Backend::Postgres => format!(
                "COALESCE(json_agg(json_build_array({columns}) ORDER BY {order}), '[]'::json)::text"
            ),
        }
    }

    pub fn is_postgres(self) -> bool {
        self.0 == Backend::Postgres
    }

    /// Case-insensitive substring match operator.
    pub fn ilike(self) -> &'static str {
        match self.0 {
            Backend::Sqlite => "LIKE",
            Backend::Postgres => "ILIKE",
        }
    }
}
