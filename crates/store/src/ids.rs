//! Ids of the records a function most often takes two of: a project, a person, an item, and
//! an automated annotator (whose id is easily taken for its account's).
//! Each is its own type, so that `store.item(project.id, item_id)` cannot be written the
//! other way round. They are plain integers in SQL and in JSON (`#[serde(transparent)]`).

use crate::conn::{Column, Param};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The integer the database keeps.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl From<$name> for Param {
            fn from(id: $name) -> Param {
                Param::Int(Some(id.0))
            }
        }

        impl From<Option<$name>> for Param {
            fn from(id: Option<$name>) -> Param {
                Param::Int(id.map(|id| id.0))
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl Column for $name {
            fn from_sqlx(row: &sqlx::any::AnyRow, column: &str) -> Result<Self> {
                i64::from_sqlx(row, column).map($name)
            }
            fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
                i64::from_sqlite(value, column).map($name)
            }
        }

        impl Column for Option<$name> {
            fn from_sqlx(row: &sqlx::any::AnyRow, column: &str) -> Result<Self> {
                Option::<i64>::from_sqlx(row, column).map(|id| id.map($name))
            }
            fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
                Option::<i64>::from_sqlite(value, column).map(|id| id.map($name))
            }
        }

        impl sqlx::Type<Any> for $name {
            fn type_info() -> AnyTypeInfo {
                <i64 as sqlx::Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <i64 as sqlx::Type<Any>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> std::result::Result<IsNull, BoxDynError> {
                <i64 as sqlx::Encode<'q, Any>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> sqlx::Decode<'r, Any> for $name {
            fn decode(
                value: <Any as sqlx::Database>::ValueRef<'r>,
            ) -> std::result::Result<Self, BoxDynError> {
                <i64 as sqlx::Decode<'r, Any>>::decode(value).map($name)
            }
        }
    };
}

id_type!(
    /// A project.
    ProjectId
);
id_type!(
    /// An account: a person or an automated annotator (annotator, expert, actor of an audit
    /// entry).
    UserId
);
id_type!(
    /// A catalog item of a project.
    ItemId
);
id_type!(
    /// An automated annotator's configuration (`model_annotators`); the account it labels
    /// as is a [`UserId`].
    ModelAnnotatorId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_plain_integer_in_json_text_and_urls() {
        let id = ItemId(42);
        assert_eq!(serde_json::to_string(&id).expect("json"), "42");
        assert_eq!(serde_json::from_str::<ItemId>("42").expect("parsed"), id);
        assert_eq!(id.to_string(), "42");
        assert_eq!("42".parse::<ItemId>(), Ok(id));
        assert!("forty-two".parse::<ItemId>().is_err());
        assert_eq!(i64::from(id), 42);
    }
}
