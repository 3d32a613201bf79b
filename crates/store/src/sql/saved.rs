//! Saved queries: a name and a text per project, with their author. Anyone who may query
//! the project can list and run them; saving under an existing name replaces the text.

use crate::Store;
use crate::conn::{Columns, Row, stmt};
use crate::error::{Result, StoreError};
use crate::ids::ProjectId;
use crate::ids::UserId;
use crate::model::Id;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SavedQuery {
    pub id: Id,
    pub project_id: ProjectId,
    pub name: String,
    pub query: String,
    /// The author's username (NULL once the account is gone).
    pub author: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewSavedQuery {
    pub name: String,
    pub query: String,
}

/// Longest name and text a saved query may have.
const MAX_NAME: usize = 200;
const MAX_QUERY: usize = 100_000;

const COLUMNS: &str = "s.id, s.project_id, s.name, s.query, u.username AS author, s.created_at \
                       FROM saved_queries s LEFT JOIN users u ON u.id = s.author_id";

fn from_row(row: &Row) -> Result<SavedQuery> {
    Ok(SavedQuery {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        name: row.col("name")?,
        query: row.col("query")?,
        author: row.col("author")?,
        created_at: row.col("created_at")?,
    })
}

impl Store {
    /// Saves (or replaces, by name) a query of the project.
    pub async fn save_query(
        &self,
        project_id: ProjectId,
        new: NewSavedQuery,
        author: UserId,
    ) -> Result<SavedQuery> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(StoreError::invalid(format!(
                "a saved query needs a name of 1 to {MAX_NAME} characters"
            )));
        }
        if new.query.trim().is_empty() || new.query.len() > MAX_QUERY {
            return Err(StoreError::invalid(format!(
                "a saved query needs a text of 1 to {MAX_QUERY} bytes"
            )));
        }
        let query = new.query;
        let stored_name = name.clone();
        self.write_conn(move |mut c| {
            let stored_name = stored_name.clone();
            let query = query.clone();
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt(
                        "INSERT INTO saved_queries (project_id, name, query, author_id) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, name) \
                     DO UPDATE SET query = excluded.query, author_id = excluded.author_id",
                    )
                    .bind(project_id)
                    .bind(stored_name.as_str())
                    .bind(query.as_str())
                    .bind(author),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.saved_query(project_id, &name).await
    }

    pub async fn saved_queries(&self, project_id: ProjectId) -> Result<Vec<SavedQuery>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "SELECT {COLUMNS} WHERE s.project_id = $1 ORDER BY s.name"
                ))
                .bind(project_id),
            )
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn saved_query(&self, project_id: ProjectId, name: &str) -> Result<SavedQuery> {
        let row = self
            .read_optional(
                stmt(format!(
                    "SELECT {COLUMNS} WHERE s.project_id = $1 AND s.name = $2"
                ))
                .bind(project_id)
                .bind(name),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("saved query {name:?}")))?;
        from_row(&row)
    }

    pub async fn delete_saved_query(&self, project_id: ProjectId, name: &str) -> Result<()> {
        let key = name.to_owned();
        let deleted = self
            .write_conn(move |mut c| {
                let key = key.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let done = c
                        .execute(
                            stmt("DELETE FROM saved_queries WHERE project_id = $1 AND name = $2")
                                .bind(project_id)
                                .bind(key.as_str()),
                        )
                        .await?;
                    Ok(done)
                })
            })
            .await?;
        if deleted == 0 {
            return Err(StoreError::not_found(format!("saved query {name:?}")));
        }
        Ok(())
    }
}
