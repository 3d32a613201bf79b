//! Dataset releases for ML: freezing, listing, downloading and comparing them.

pub(crate) mod api;
pub(crate) mod pages;
