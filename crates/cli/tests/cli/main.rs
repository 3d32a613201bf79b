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
mod costs;
mod crowd_datasets;
mod demo;
mod dsa;
mod foreign;
mod parquet;
mod platform;
mod predictions;
mod qa_programme;
mod sql;
mod team;
mod two_servers;
