//! What every page shares: rendering a template, the signed-in context, what the
//! visitor's role may do (which links and forms a page shows), and the error page.

use crate::AppState;
use crate::auth::Auth;
use crate::error::AppResult;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use concord_store::{PageRequest, Paged, Permission, Role};
use minijinja::{Value, context};

pub(crate) fn render(state: &AppState, name: &str, ctx: Value) -> AppResult<Html<String>> {
    Ok(Html(state.templates.get_template(name)?.render(ctx)?))
}

/// The context every signed-in page has.
pub(crate) fn base(auth: &Auth) -> Value {
    context! { user => auth.user, csrf => auth.csrf }
}

pub(crate) fn capabilities(role: Role) -> Value {
    context! {
        role => role.as_str(),
        role_label => role.label(),
        browse => role.allows(Permission::BrowseItems),
        read_annotations => role.allows(Permission::ReadAnnotations),
        edit_guidelines => role.allows(Permission::EditGuidelines),
        edit_schema => role.allows(Permission::EditSchema),
        manage_members => role.allows(Permission::ManageMembers),
        import => role.allows(Permission::ImportItems),
        settings => role.allows(Permission::EditSettings),
        annotate => role.allows(Permission::Annotate),
        manage_annotators => role.allows(Permission::ManageAnnotators),
        adjudicate => role.allows(Permission::Adjudicate),
        create_releases => role.allows(Permission::CreateReleases),
        query_sql => role.allows(Permission::QuerySql),
    }
}

/// Rows a list page shows at once.
pub(crate) const PAGE_SIZE: usize = 50;

/// A list page's other filters (status, dates…) for `pager.html`: hidden fields of its search
/// form and the query string of its page links, so searching and paging keep them. Empty
/// values are left out.
pub(crate) fn kept_filters(pairs: &[(&str, &str)]) -> Value {
    let fields: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    let qs = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::auth::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    context! { fields, qs }
}

/// A list page's search and page number, kept in the URL (`?q=…&page=…`).
#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub q: String,
    pub page: Option<usize>,
}

impl ListQuery {
    /// The page to ask the store for (lists that grow with the team are paged in SQL).
    pub(crate) fn request(&self) -> PageRequest {
        PageRequest::new(&self.q, self.page.unwrap_or(1) as u64, PAGE_SIZE as u64)
    }

    /// The pager's context (page, pages, total, search) of a page the store read.
    pub(crate) fn pager<T>(&self, paged: &Paged<T>) -> Value {
        self.pager_at(paged.page, paged.pages, paged.total)
    }

    fn pager_at(&self, page: u64, pages: u64, total: u64) -> Value {
        context! {
            page, pages, total, q => self.q.trim(),
            prev => (page > 1).then(|| page - 1),
            next => (page < pages).then(|| page + 1),
        }
    }

    /// Whether a row of a short list (read whole) matches the search, case-insensitively.
    pub(crate) fn matches(&self, fields: &[&str]) -> bool {
        let q = self.q.trim().to_lowercase();
        q.is_empty() || fields.iter().any(|f| f.to_lowercase().contains(&q))
    }

    /// The asked page of a short list read whole (lists that grow with the team are paged
    /// in SQL instead: [`ListQuery::request`]), and the pager's context.
    pub(crate) fn page<T>(&self, all: Vec<T>) -> (Vec<T>, Value) {
        let total = all.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = self.page.unwrap_or(1).clamp(1, pages);
        let shown = all
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        (
            shown,
            self.pager_at(page as u64, pages as u64, total as u64),
        )
    }
}

pub fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    let ctx = context! { status => status.as_u16(), reason => status.canonical_reason(), message };
    match state
        .templates
        .get_template("error.html")
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            (status, message.to_owned()).into_response()
        }
    }
}
