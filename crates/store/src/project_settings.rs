//! A project's settings: the queue's and the QA loop's, parsed and checked once — when the
//! project is read from the database, and before a change is written. Code that needs a
//! setting reads a field; nothing re-parses the JSON or falls back to defaults on its own.

use crate::qa_settings::QaSettings;
use crate::queue_rules::QueueSettings;
use serde::{Serialize, Serializer};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSettings {
    /// `settings.queue`: overlap, leases, caps, gold.
    pub queue: QueueSettings,
    /// `settings.qa`: the consensus model, escalation rules, report metrics.
    pub qa: QaSettings,
    /// The object as stored, so that an edit round-trips what the user wrote (absent
    /// sections stay absent instead of being filled with today's defaults).
    stored: Value,
}

impl ProjectSettings {
    /// Parses and checks a settings object; the message names the field at fault.
    pub fn parse(stored: Value) -> Result<ProjectSettings, String> {
        if !stored.is_object() {
            return Err("project settings must be a JSON object".into());
        }
        Ok(ProjectSettings {
            queue: QueueSettings::from_project_settings(&stored)?,
            qa: QaSettings::from_project_settings(&stored)?,
            stored,
        })
    }

    /// The settings object as stored.
    pub fn as_json(&self) -> &Value {
        &self.stored
    }

    pub fn into_json(self) -> Value {
        self.stored
    }
}

impl Default for ProjectSettings {
    fn default() -> Self {
        ProjectSettings {
            queue: QueueSettings::default(),
            qa: QaSettings::default(),
            stored: Value::Object(Default::default()),
        }
    }
}

/// Serialized as stored: the API shows what the project manager wrote.
impl Serialize for ProjectSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.stored.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_sections_take_defaults_and_stay_absent_when_stored() {
        let settings = ProjectSettings::parse(json!({})).unwrap();
        assert_eq!(settings.queue, QueueSettings::default());
        assert_eq!(settings.qa, QaSettings::default());
        assert_eq!(serde_json::to_value(&settings).unwrap(), json!({}));
    }

    #[test]
    fn sections_are_parsed_once_into_their_types() {
        let settings =
            ProjectSettings::parse(json!({"queue": {"overlap": 5}, "qa": {"method": "mv"}}))
                .unwrap();
        assert_eq!(settings.queue.overlap, 5);
        assert_eq!(settings.qa.method, "mv");
    }

    #[test]
    fn a_bad_field_is_named_and_a_non_object_refused() {
        let err = ProjectSettings::parse(json!({"queue": {"overlap": 0}})).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
        let err = ProjectSettings::parse(json!([1, 2])).unwrap_err();
        assert!(err.contains("JSON object"), "{err}");
    }
}
