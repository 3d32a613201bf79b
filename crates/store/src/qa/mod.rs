//! The QA loop's records, a subject a file: what a consensus run reads and writes back
//! ([`consensus`]), the QA-expert queue ([`escalations`]), adjudications and their precedent
//! search ([`adjudications`]), re-review after a guideline change ([`revisions`]),
//! test–retest pairs ([`retests`]), calibration rounds ([`calibration`]) and throughput ([`activity`]); [`bulk`] holds the paged reads and multi-row writes they share.
//! No statistics here: `concord-qa` computes.

mod activity;
mod adjudications;
mod bulk;
mod calibration;
mod consensus;
mod dsa;
mod escalations;
mod retests;
mod revisions;

pub use adjudications::{Adjudication, NewAdjudication, PrecedentFilter};
pub(crate) use bulk::{PAGE_ROWS, for_each_question_page};
pub use calibration::{
    CalibrationAnswer, CalibrationItem, CalibrationParticipant, CalibrationRound,
    MAX_CALIBRATION_ITEMS, NewCalibrationRound, RoundVerdict,
};
pub use consensus::{
    AnnotatorFact, AnnotatorQuality, ConsensusInput, ConsensusRun, ConsensusWrite, ItemConsensus,
    ItemFact, LabelFact, LabelFacts, NewItemConsensus,
};
pub use dsa::DecisionFacts;
pub use escalations::{Escalation, NewEscalation};
pub use retests::{RetestCounts, RetestPair};
pub use revisions::RevisionCandidate;
