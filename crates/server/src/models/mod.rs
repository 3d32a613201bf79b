//! Automated annotators: configure, enable / disable and start runs of a project's models.
//! Running a model is `concord-annotators`' (the only crate that calls a model server).

pub(crate) mod api;
