//! concord's statistics engine.
//!
//! No I/O, no async, no SQL, no HTTP: tables in, numbers out. Readers live in
//! `concord-formats`; the CLI and the server call in here.

// Matrix formulas read better with explicit indices.
#![allow(clippy::needless_range_loop)]

pub mod aggregate;
pub mod agreement;
pub mod buffers;
pub mod costs;
pub mod dist;
pub mod intern;
pub mod logistic;
pub mod predictions;
pub mod sampling;
pub mod table;
pub mod units;
pub mod weights;

pub use agreement::report::{
    AgreementOptions, Metric, MetricResult, Prepared, Variance, WeightChoice, compute,
};
pub use agreement::{Estimate, Inference};
pub use intern::Interner;
pub use table::{AnnotationTable, LabelKind, LabelSpec, LabelTypeRequest, TableBuilder};
pub use units::Units;
pub use weights::{Level, WeightScheme, Weights};
