//! The records the store hands out. Times are milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::vocabulary::{
    AccountKind, AnnotationSource, AnswerKind, AssignmentPurpose, AssignmentStatus,
    EscalationStatus, ItemState, JobKind, JobStatus,
};

pub type Id = i64;

pub use crate::ids::{ItemId, ModelAnnotatorId, ProjectId, UserId};

/// A project role. Roles are per project; the global admin flag sits on the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Annotator,
    QaAnalyst,
    QaExpert,
    ProjectManager,
    Admin,
}

/// What a role may do in a project. Kept next to the roles so that the server and the
/// tests read the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the project, its guidelines and schema.
    ViewProject,
    /// Browse items with their states (not for annotators: the queue is blind).
    BrowseItems,
    /// Read annotations of others and export them.
    ReadAnnotations,
    EditGuidelines,
    EditSchema,
    ManageMembers,
    ImportItems,
    EditSettings,
    /// Take work from the queue and submit labels.
    Annotate,
    /// Label an item outside the queue (an override, recorded as such).
    OverrideLabels,
    /// See annotators' progress and gold accuracy; resume paused annotators; set caps and
    /// exclusions; create re-review assignments.
    ManageAnnotators,
    /// Decide escalated items (never one the expert labelled).
    Adjudicate,
    /// Freeze a dataset release for ML.
    CreateReleases,
    /// Run read-only SQL over the documented views, and save queries for the project.
    QuerySql,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Annotator,
        Role::QaAnalyst,
        Role::QaExpert,
        Role::ProjectManager,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::QaAnalyst => "qa_analyst",
            Role::QaExpert => "qa_expert",
            Role::ProjectManager => "project_manager",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Parses user input, with a message listing the roles when it is not one.
    pub fn from_input(text: &str) -> Result<Role, String> {
        Role::parse(text).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {text:?}; roles are {}", names.join(", "))
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Annotator => "Annotator",
            Role::QaAnalyst => "QA analyst",
            Role::QaExpert => "QA expert",
            Role::ProjectManager => "Project manager",
            Role::Admin => "Admin",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin | Role::ProjectManager => true,
            Role::QaAnalyst => matches!(
                permission,
                ViewProject
                    | BrowseItems
                    | ReadAnnotations
                    | Annotate
                    | ManageAnnotators
                    | CreateReleases
                    | QuerySql
            ),
            Role::QaExpert => matches!(
                permission,
                ViewProject
                    | BrowseItems
                    | ReadAnnotations
                    | Annotate
                    | Adjudicate
                    | OverrideLabels
            ),
            Role::Annotator => matches!(permission, ViewProject | Annotate),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    pub kind: AccountKind,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    pub id: Id,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub settings: crate::project_settings::ProjectSettings,
    pub current_schema_version_id: Option<Id>,
    pub current_guideline_version_id: Option<Id>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    Draft,
    Published,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Published => "published",
        }
    }
    pub(crate) fn parse(text: &str) -> VersionStatus {
        if text == "published" {
            VersionStatus::Published
        } else {
            VersionStatus::Draft
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExampleScope {
    InScope,
    OutOfScope,
}

/// A worked example attached to a category in a guideline version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidelineExample {
    pub category: String,
    pub scope: ExampleScope,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuidelineVersion {
    pub id: Id,
    pub project_id: ProjectId,
    pub version: i64,
    pub body: String,
    pub examples: Vec<GuidelineExample>,
    pub change_note: String,
    pub status: VersionStatus,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub published_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaVersion {
    pub id: Id,
    pub project_id: ProjectId,
    pub version: i64,
    pub definition: crate::LabelSchema,
    pub change_note: String,
    pub status: VersionStatus,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub published_at: Option<i64>,
}

pub use concord_formats::items::{ItemType, item_types};

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: ItemId,
    pub project_id: ProjectId,
    pub external_id: String,
    pub item_type: String,
    pub title: String,
    pub creators: Value,
    pub metadata: Value,
    pub text: Value,
    pub media_url: Option<String>,
    pub priority: i64,
    pub state: ItemState,
    pub is_gold: bool,
    pub gold_answer: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new annotation. Append-only: `supersedes` names the row it corrects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewAnnotation {
    /// The API takes it from the path, so a request body need not carry it.
    #[serde(default)]
    pub item_id: ItemId,
    pub answer: Value,
    #[serde(default)]
    pub rationale: String,
    #[serde(default)]
    pub flags: Vec<String>,
    pub guideline_version_id: Option<Id>,
    pub schema_version_id: Option<Id>,
    pub time_spent_ms: Option<i64>,
    pub supersedes: Option<Id>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Annotation {
    pub id: Id,
    pub project_id: ProjectId,
    pub item_id: ItemId,
    pub annotator_id: UserId,
    pub annotator: String,
    pub answer: Value,
    pub rationale: String,
    pub flags: Vec<String>,
    pub guideline_version_id: Option<Id>,
    pub schema_version_id: Option<Id>,
    pub time_spent_ms: Option<i64>,
    pub supersedes: Option<Id>,
    pub is_late: bool,
    pub source: AnnotationSource,
    pub created_at: i64,
    pub kind: AnswerKind,
    /// A person, or the automated annotator.
    pub annotator_kind: AccountKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: Id,
    pub kind: JobKind,
    pub project_id: Option<ProjectId>,
    pub status: JobStatus,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub message: String,
    pub result: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// What an audit-log entry records being done; stored and serialized as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Create,
    Update,
    Remove,
    Import,
    Run,
    Adjudicate,
    Pause,
    Resume,
    Revoke,
    Publish,
    SaveDraft,
    SetPassword,
    SetRole,
    QueueRereviews,
    Disable,
    Enable,
}

impl AuditAction {
    const ALL: [AuditAction; 16] = [
        AuditAction::Create,
        AuditAction::Update,
        AuditAction::Remove,
        AuditAction::Import,
        AuditAction::Run,
        AuditAction::Adjudicate,
        AuditAction::Pause,
        AuditAction::Resume,
        AuditAction::Revoke,
        AuditAction::Publish,
        AuditAction::SaveDraft,
        AuditAction::SetPassword,
        AuditAction::SetRole,
        AuditAction::QueueRereviews,
        AuditAction::Disable,
        AuditAction::Enable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Remove => "remove",
            AuditAction::Import => "import",
            AuditAction::Run => "run",
            AuditAction::Adjudicate => "adjudicate",
            AuditAction::Pause => "pause",
            AuditAction::Resume => "resume",
            AuditAction::Revoke => "revoke",
            AuditAction::Publish => "publish",
            AuditAction::SaveDraft => "save_draft",
            AuditAction::SetPassword => "set_password",
            AuditAction::SetRole => "set_role",
            AuditAction::QueueRereviews => "queue_rereviews",
            AuditAction::Disable => "disable",
            AuditAction::Enable => "enable",
        }
    }

    /// Reads a stored action; an unknown one means the log was written by something else.
    pub(crate) fn parse(text: &str) -> crate::Result<AuditAction> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("unknown audit action {text:?}")))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: Id,
    pub at: i64,
    pub actor: Option<String>,
    pub project_id: Option<ProjectId>,
    pub action: AuditAction,
    pub entity: String,
    pub entity_id: Option<Id>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn an_unknown_role_is_refused_with_the_list_of_roles() {
        assert_eq!(Role::from_input("qa_expert"), Ok(Role::QaExpert));
        assert_eq!(
            Role::from_input("boss").unwrap_err(),
            "unknown role \"boss\"; roles are annotator, qa_analyst, qa_expert, project_manager, admin"
        );
    }
}
