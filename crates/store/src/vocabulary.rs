//! The store's closed vocabularies: every column whose value is one of a fixed list of words
//! (the lists the migrations' CHECK constraints spell) is an enum here, parsed once when a row
//! is read. A word the enum does not know is stored data we cannot read: `StoreError::Corrupt`.
//!
//! Each enum serializes as its stored word, so the JSON API and the templates see the same
//! text as before; code compares variants, never strings.

use crate::conn::Column;
use crate::error::{Result, StoreError};
use sqlx::Row as _;
use sqlx::any::AnyRow;

/// Declares an enum whose variants are stored as the given words, with `as_str`, `parse`,
/// `ALL`, `Display`, serde and column decoding on both back ends.
macro_rules! stored_words {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Reads a stored word; an unknown one is corrupt data, not the caller's mistake.
            pub(crate) fn from_stored(word: &str, column: &str) -> Result<$name> {
                $name::parse(word).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "{column}: {word:?} is not a known {}",
                        stringify!($name)
                    ))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Column for $name {
            fn from_sqlx(row: &AnyRow, column: &str) -> Result<Self> {
                let word: String = row.try_get(column)?;
                $name::from_stored(&word, column)
            }
            fn from_sqlite(value: &rusqlite::types::Value, column: &str) -> Result<Self> {
                let word = String::from_sqlite(value, column)?;
                $name::from_stored(&word, column)
            }
        }
    };
}

stored_words! {
    /// Who an account is: a person, or an automated annotator (never counted in the human
    /// consensus). `users.kind`.
    pub enum AccountKind {
        Human = "human",
        Model = "model",
    }
}

stored_words! {
    /// Where an item is in its life. `items.state`.
    pub enum ItemState {
        Queued = "queued",
        InProgress = "in_progress",
        Labelled = "labelled",
        Escalated = "escalated",
        Adjudicated = "adjudicated",
    }
}

stored_words! {
    /// What an answer is: a label, or "unsure — escalate" (uses the slot, counts as missing in
    /// agreement, escalates the item). `annotations.kind`.
    #[derive(Default)]
    pub enum AnswerKind {
        #[default]
        Label = "label",
        Unsure = "unsure",
    }
}

stored_words! {
    /// How an annotation came in: the work queue, a file import, a correction of one's own
    /// label, or an override by a QA expert or project manager. `annotations.source`.
    pub enum AnnotationSource {
        Workflow = "workflow",
        Import = "import",
        Correction = "correction",
        Override = "override",
    }
}

stored_words! {
    /// Why an assignment exists. `assignments.purpose`.
    pub enum AssignmentPurpose {
        /// Ordinary queue work, counted toward the item's overlap.
        Label = "label",
        /// A gold item mixed into the queue to measure the annotator.
        Gold = "gold",
        /// Asked again after a guideline revision.
        Rereview = "rereview",
        /// Asked again, unannounced, to measure consistency.
        Retest = "retest",
        /// An item of a calibration round: its answer goes to the round, never to the
        /// production labels.
        Calibration = "calibration",
    }
}

stored_words! {
    /// Where an assignment is. `assignments.status`.
    pub enum AssignmentStatus {
        /// Created for someone (a re-review) but not yet served.
        Assigned = "assigned",
        Leased = "leased",
        Submitted = "submitted",
        Skipped = "skipped",
        Expired = "expired",
    }
}

stored_words! {
    /// What a background job does. `jobs.kind`.
    pub enum JobKind {
        ImportItems = "import_items",
        ImportAnnotations = "import_annotations",
        Consensus = "consensus",
        ModelRun = "model_run",
    }
}

stored_words! {
    /// How an automated annotator answers: an OpenAI-compatible chat-completions server, or
    /// keyword / regular-expression rules (offline). `model_annotators.kind`.
    pub enum ModelKind {
        OpenAi = "openai",
        Rules = "rules",
    }
}

stored_words! {
    /// Where a background job is. `jobs.status`.
    pub enum JobStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

stored_words! {
    /// An escalation waits for a QA expert until it is resolved. `escalations.status`.
    pub enum EscalationStatus {
        Open = "open",
        Resolved = "resolved",
    }
}

stored_words! {
    /// A calibration round takes answers until a QA analyst closes it.
    /// `calibration_rounds.status`.
    pub enum RoundStatus {
        Open = "open",
        Closed = "closed",
    }
}

stored_words! {
    /// What a person does in a calibration round. `calibration_participants.part`.
    pub enum CalibrationPart {
        /// Measured against the key.
        Annotator = "annotator",
        /// A QA expert: their answers form the key.
        Expert = "expert",
    }
}

stored_words! {
    /// An annotator's outcome of a closed calibration round.
    /// `calibration_participants.verdict`.
    pub enum CalibrationVerdict {
        /// Agreement with the key reached the round's threshold on every question.
        Pass = "pass",
        /// Answered every keyed item, below the threshold on some question.
        Retrain = "retrain",
        /// Left keyed items unanswered when the round closed.
        Incomplete = "incomplete",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_parses_back_to_its_variant() {
        for state in ItemState::ALL {
            assert_eq!(ItemState::parse(state.as_str()), Some(*state));
        }
        for purpose in AssignmentPurpose::ALL {
            assert_eq!(AssignmentPurpose::parse(purpose.as_str()), Some(*purpose));
        }
        assert_eq!(AccountKind::parse("robot"), None);
    }

    #[test]
    fn an_unknown_stored_word_is_corrupt_data() {
        let err = ItemState::from_stored("archived", "state").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("\"archived\" is not a known ItemState")
        );
    }

    #[test]
    fn variants_serialize_as_their_stored_words() {
        let json = serde_json::to_string(&[ItemState::InProgress]).unwrap();
        assert_eq!(json, r#"["in_progress"]"#);
        let kind: AccountKind = serde_json::from_str(r#""model""#).unwrap();
        assert_eq!(kind, AccountKind::Model);
    }
}
