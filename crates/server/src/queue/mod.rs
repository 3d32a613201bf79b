//! The work queue: leases, submissions and skips; the label page, My work and the team page.

pub(crate) mod api;
pub(crate) mod pages;
pub(crate) mod progress;
