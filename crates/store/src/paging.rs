//! Lists that grow with the team (a project's members, its annotators' progress), read one
//! page at a time: the search and the page are applied in SQL (`LIMIT` / `OFFSET` over the
//! list's order, and a `COUNT(*)` of every matching row), so a page costs the same whether
//! the project has ten people or a thousand.

use serde::Serialize;

/// Which page of a list to read, and the search that narrows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Case-insensitive substring of the user name or the display name; empty: everyone.
    pub search: String,
    /// 1-based; a page past the last reads the last.
    pub page: u64,
    pub per_page: u64,
}

impl PageRequest {
    /// The most rows one page may hold.
    pub const MAX_PER_PAGE: u64 = 500;

    pub fn new(search: &str, page: u64, per_page: u64) -> PageRequest {
        PageRequest {
            search: search.trim().to_owned(),
            page: page.max(1),
            per_page: per_page.clamp(1, Self::MAX_PER_PAGE),
        }
    }

    /// Every row at once (for callers that need the whole list).
    pub fn all() -> PageRequest {
        PageRequest::new("", 1, Self::MAX_PER_PAGE)
    }

    /// The page that exists for `total` matching rows: the asked one, or the last.
    pub(crate) fn clamped(&self, total: u64) -> Paging {
        let pages = total.div_ceil(self.per_page).max(1);
        let page = self.page.min(pages);
        Paging {
            page,
            pages,
            total,
            offset: (page - 1) * self.per_page,
            limit: self.per_page,
        }
    }

    /// The search as a `LIKE` pattern, when there is one.
    pub(crate) fn pattern(&self) -> Option<String> {
        (!self.search.is_empty()).then(|| crate::items::like_pattern(&self.search))
    }
}

/// Where a page falls in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub page: u64,
    pub pages: u64,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

/// One page of a list, and where it falls.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    pub rows: Vec<T>,
    /// Every row that matches the search, on all pages.
    pub total: u64,
    /// The page read (1-based) and how many there are (at least 1).
    pub page: u64,
    pub pages: u64,
}

impl<T> Paged<T> {
    pub(crate) fn of(rows: Vec<T>, at: Paging) -> Paged<T> {
        Paged {
            rows,
            total: at.total,
            page: at.page,
            pages: at.pages,
        }
    }
}

/// `AND (u.username LIKE $at OR u.display_name LIKE $at+1)`, case-insensitive on both back
/// ends (`like` is [`crate::Dialect::ilike`]); bind [`PageRequest::pattern`] twice.
pub(crate) fn name_search(like: &str, at: usize) -> String {
    format!(
        " AND (u.username {like} ${at} ESCAPE '\\' OR u.display_name {like} ${} ESCAPE '\\')",
        at + 1
    )
}
