//! concord's persistence: the only crate that writes SQL.
//!
//! One [`Store`] over either back end, chosen by the database URL: SQLite (a file, the
//! embedded default) or PostgreSQL (`postgres://…`, for several stateless servers on one
//! database). Queries go through sqlx's runtime API (`Any` driver) with `$n` placeholders,
//! which both back ends accept; where the dialects differ, [`Dialect`] supplies the fragment.
//!
//! Writes take one path, [`Store::write`]: on SQLite a single writer thread commits whatever
//! requests are waiting together (group commit) and acknowledges each only after its commit;
//! on PostgreSQL each request is an ordinary transaction. The work queue's lease and submit
//! (and the reads every queue request makes) run on SQLite through native connections
//! without sqlx's per-statement thread hand-off; see `conn.rs`.

mod access;
mod accounts;
mod annotators;
pub mod answer;
mod audit;
mod conn;
mod db;
mod error;
mod foreign_import;
mod guidelines;
mod ids;
mod imports;
mod items;
mod items_bulk;
mod jobs;
mod migrate;
mod model;
mod paging;
mod predictions;
mod project_settings;
mod projects;
mod qa;
pub mod qa_settings;
mod queue;
pub mod queue_rules;
mod releases;
mod schema;
pub mod sql;
mod vocabulary;

pub use access::DEFAULT_ACCESS_TTL;
pub use accounts::{LoginCheck, MIN_PASSWORD_LEN, NewUser, PasswordCost};
pub use annotators::{
    ModelAnnotator, ModelCall, ModelCallKey, ModelFailure, ModelLabel, ModelProvenance, ModelRun,
    ModelRunCounts, ModelTotals, NewModelAnnotator,
};
pub use db::{Backend, Dialect, StoreOptions, system_now_ms};
pub use error::{DatabaseError, Result, StoreError};
pub use foreign_import::{
    AnnotatorMap, FieldMap, ForeignReport, Ignored, ItemCounts, NotMapped, Plan, Skipped, Target,
    ValueMap, plan as plan_foreign_import,
};
pub use imports::{
    AnnotationImport, FileProgress, IMPORT_BATCH, ImportKind, ImportOutcome, ItemImport,
    OnConflict, StagedItem, import_file,
};
pub use items::{ExportRow, ItemFilter, ItemPage};
pub use items_bulk::{BulkAction, BulkItem, BulkOutcome, MAX_BULK_ITEMS};
pub use model::*;
pub use paging::{PageRequest, Paged};
pub use predictions::{
    AssistSavings, NewPredictionSample, Prediction, PredictionRow, PredictionSample,
    REVIEW_PRIORITY, SampleUnitRow, SampledItem, class_question,
};
pub use project_settings::ProjectSettings;
pub use projects::NewProject;
pub use qa::{
    Adjudication, AnnotatorFact, AnnotatorQuality, CalibrationAnswer, CalibrationItem,
    CalibrationParticipant, CalibrationRound, ConsensusInput, ConsensusRun, ConsensusWrite,
    DecisionFacts, Escalation, ItemConsensus, ItemFact, LabelFact, LabelFacts,
    MAX_CALIBRATION_ITEMS, NewAdjudication, NewCalibrationRound, NewEscalation, NewItemConsensus,
    PrecedentFilter, RetestCounts, RetestPair, RevisionCandidate, RoundVerdict,
};
pub use qa_settings::{
    CONSENSUS_METHODS, CalibrationSettings, CostSetting, CostSource, DEFAULT_REPORT_METRICS,
    EscalationRules, QaSettings, REPORT_METRICS, check_calibration_threshold,
};
pub use queue::{
    AnnotatorProgress, BlindItem, EXPOSURE_NEAR, ExposureStanding, ExposureStatus,
    GOLD_RATE_WINDOW_DAYS, GoldFeedback, GoldTally, Lease, ModelAnswer, ModelTurn, MyWorkEntry,
    NextItem, OverlapSavings, QueueIntegrity, QueueOverview, Submission, SubmitOutcome,
};
pub use queue_rules::{ExposureBudget, ExposureLimit, QueueSettings, RetestPlan};
pub use releases::{
    AnswerColumn, AnswerShape, LabelChange, Release, ReleaseDiff, ReleaseItem, ReleaseLabel,
};
pub use schema::{LabelSchema, Question, QuestionKind, SchemaOption};
pub use sql::{NewSavedQuery, SavedQuery, SqlAnswer, SqlLimits, SqlScope};
pub use vocabulary::{CalibrationPart, CalibrationVerdict, ModelKind, RoundStatus};

use db::Inner;
use std::sync::Arc;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}
