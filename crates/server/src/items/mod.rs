//! Catalog items: browsing, one item with its labels, imports and exports.

pub(crate) mod api;
pub(crate) mod foreign;
pub(crate) mod imports;
pub(crate) mod pages;

use crate::error::{AppError, AppResult};
use concord_store::{ItemFilter, ItemState, item_types};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ItemQuery {
    #[serde(rename = "type")]
    pub item_type: Option<String>,
    pub state: Option<String>,
    pub q: Option<String>,
    pub gold: Option<String>,
    pub min_priority: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

impl ItemQuery {
    pub fn filter(&self) -> AppResult<ItemFilter> {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let item_type = nonempty(&self.item_type);
        if let Some(t) = &item_type
            && !item_types().contains(&t.as_str())
        {
            return Err(AppError::bad_request(format!("unknown item type {t:?}")));
        }
        let state = match nonempty(&self.state) {
            None => None,
            Some(s) => Some(
                ItemState::parse(&s)
                    .ok_or_else(|| AppError::bad_request(format!("unknown item state {s:?}")))?,
            ),
        };
        let gold = match nonempty(&self.gold).as_deref() {
            None => None,
            Some("yes" | "true" | "1") => Some(true),
            Some("no" | "false" | "0") => Some(false),
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "gold must be yes or no, not {other:?}"
                )));
            }
        };
        let min_priority = match nonempty(&self.min_priority) {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| {
                AppError::bad_request(format!("min_priority {p:?} is not a number"))
            })?),
        };
        Ok(ItemFilter {
            item_type,
            state,
            min_priority,
            gold,
            text: nonempty(&self.q),
            after: self.after,
            limit: self.limit.unwrap_or(50),
        })
    }
}
