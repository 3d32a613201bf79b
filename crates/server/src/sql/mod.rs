//! Analysts' read-only SQL: `POST /api/v1/sql`, saved queries per project, and the SQL
//! page. The store decides what a query may see and runs it ([`concord_store::sql`]);
//! here is who may ask and how the answer travels.

pub(crate) mod api;
pub(crate) mod pages;

use crate::AppState;
use crate::error::{AppError, AppResult};
use concord_store::{SqlAnswer, User};

/// Runs `query` for `user` over the projects they may query (only `project` when named).
pub(crate) async fn run(
    state: &AppState,
    user: &User,
    project: Option<&str>,
    query: &str,
    limit: Option<usize>,
) -> AppResult<SqlAnswer> {
    let scope = state.store.sql_scope(user, project).await?;
    if scope.projects.is_empty() {
        return Err(AppError::forbidden(
            "none of your roles allows SQL (QA analyst, project manager or admin in a project)",
        ));
    }
    Ok(state
        .store
        .run_sql(&scope, query, limit, state.config.sql)
        .await?)
}
