//! Projects and their configuration: settings, members, the label schema, jobs and the audit log.

pub(crate) mod api;
pub(crate) mod pages;
