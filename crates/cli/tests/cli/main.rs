//! End-to-end specification of the `concord` binary: every test runs the real
//! executable on real files, the way a user would.
//!
//! One test binary (linking it once is what costs), its tests grouped by what they
//! specify; the helpers they share are in `support`.

mod support;

mod aggregate;
mod agreement;
mod browser;
mod conformance;
mod crowd_datasets;
mod demo;
mod parquet;
mod platform;
mod predictions;
mod sql;
mod team;
mod costs;
mod two_servers;
