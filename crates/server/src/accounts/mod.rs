//! Accounts: signing in and out, one's own account and API tokens, and the administrator's user list.

pub(crate) mod api;
pub(crate) mod pages;
