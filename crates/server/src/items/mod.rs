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

/// Bulk actions on items, as the API and the item browser both name them.
pub(crate) mod bulk {
    use crate::AppState;
    use crate::error::{AppError, AppResult};
    use concord_store::{BulkAction, Permission, Project, Role};

    /// What an action needs: the queue's people manage priorities and re-reviews, and gold is
    /// an expert's call (as when an adjudication promotes an item).
    pub(crate) fn permission(action: &BulkAction) -> Permission {
        match action {
            BulkAction::SetPriority(_) | BulkAction::Rereview { .. } => {
                Permission::ManageAnnotators
            }
            BulkAction::MarkGold => Permission::Adjudicate,
        }
    }

    /// The re-reviewer: a member of the project who may annotate.
    pub(crate) async fn rereviewer(
        state: &AppState,
        project: &Project,
        username: &str,
    ) -> AppResult<BulkAction> {
        let username = username.trim();
        let member = state
            .store
            .members(project.id)
            .await?
            .into_iter()
            .find(|m| m.username == username)
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "username: {username:?} is not a member of this project"
                ))
            })?;
        if !member.role.allows(Permission::Annotate) {
            return Err(AppError::bad_request(format!(
                "username: {username} cannot annotate here"
            )));
        }
        Ok(BulkAction::Rereview {
            annotator_id: member.user_id,
        })
    }

    /// The action for a role, or 403 naming the role.
    pub(crate) fn allowed(role: Role, action: BulkAction) -> AppResult<BulkAction> {
        crate::access::require(role, permission(&action))?;
        Ok(action)
    }
}
