//! The documented views analysts query: the one table from which the views are created on
//! both back ends, the SQL page's schema panel is drawn and `docs/sql.md` is generated.
//!
//! A view body is written once for both back ends. Three tokens stand for what differs:
//! `src.` qualifies an internal table (the attached database under its per-connection
//! alias on SQLite, the instance's own tables on PostgreSQL), `IN_SCOPE` is the condition
//! "this project is visible to the asking user", and `NAMES_VISIBLE` is "this user may see
//! the names of this project's members" (otherwise only the pseudonym `a<account number>`,
//! the one releases use). Every column an analyst sees is listed here; a spec checks the
//! views' real columns against this table on both back ends.

/// One column of a view.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ColumnDoc {
    pub name: &'static str,
    /// The kind of value, in words an analyst reads (`integer`, `text`, `JSON text`, …).
    pub kind: &'static str,
    pub description: &'static str,
}

/// One view: its name, what a row is, its columns, and its body.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ViewDoc {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: &'static [ColumnDoc],
    #[serde(skip)]
    pub(crate) body: &'static str,
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> ColumnDoc {
    ColumnDoc {
        name,
        kind,
        description,
    }
}

const PROJECT_ID: ColumnDoc = col("project_id", "integer", "The project (see `projects`).");
const ITEM_ID: ColumnDoc = col("item_id", "integer", "The item (see `items`).");
const TIME: &str = "time (ms since 1970, UTC)";
const FLAG: &str = "flag (0 or 1)";

const ANNOTATION_COLUMNS: &[ColumnDoc] = &[
    col(
        "annotation_id",
        "integer",
        "The annotation's number; later annotations have larger numbers.",
    ),
    PROJECT_ID,
    ITEM_ID,
    col(
        "annotator",
        "text",
        "Who labelled: a pseudonym `a<account number>` (see `annotators`).",
    ),
    col(
        "kind",
        "text",
        "`label`, or `unsure` (counts as missing in agreement).",
    ),
    col(
        "source",
        "text",
        "How the label came in: `workflow`, `import`, `correction` or `override`.",
    ),
    col(
        "answer",
        "JSON text",
        "The answer: `{question key: value}`.",
    ),
    col(
        "rationale",
        "text",
        "The annotator's free-text reason (may be empty).",
    ),
    col(
        "guideline_version",
        "integer",
        "The guideline version the label was given under, when known.",
    ),
    col(
        "time_spent_ms",
        "integer",
        "Time spent on the item, when the client reported it.",
    ),
    col("is_late", FLAG, "Submitted after the lease had expired."),
    col(
        "gold_correct",
        FLAG,
        "On gold items: 1 when the answer matched the gold answer; NULL otherwise.",
    ),
    col(
        "supersedes",
        "integer",
        "The annotation this one corrects, if any.",
    ),
    col("created_at", TIME, "When it was stored."),
];

const ANNOTATION_SELECT: &str = "SELECT a.id AS annotation_id, a.project_id, a.item_id, \
     'a' || a.annotator_id AS annotator, a.kind, a.source, a.answer, a.rationale, \
     g.version AS guideline_version, a.time_spent_ms, a.is_late, a.gold_correct, \
     a.supersedes, a.created_at \
     FROM src.annotations a LEFT JOIN src.guideline_versions g ON g.id = a.guideline_version_id \
     WHERE a.project_id IN_SCOPE";

/// The views, in the order the reference lists them.
pub const VIEWS: &[ViewDoc] = &[
    ViewDoc {
        name: "projects",
        description: "One row per project you can query.",
        columns: &[
            PROJECT_ID,
            col(
                "slug",
                "text",
                "The project's short name, as in URLs and the CLI.",
            ),
            col("name", "text", "The project's display name."),
            col("description", "text", "The project's description."),
            col("created_at", TIME, "When the project was created."),
        ],
        body: "SELECT p.id AS project_id, p.slug, p.name, p.description, p.created_at \
               FROM src.projects p WHERE p.id IN_SCOPE",
    },
    ViewDoc {
        name: "items",
        description: "One row per item (track, episode, audiobook or chapter).",
        columns: &[
            ITEM_ID,
            PROJECT_ID,
            col(
                "external_id",
                "text",
                "The item's id in the catalog it was imported from.",
            ),
            col(
                "item_type",
                "text",
                "`track`, `episode`, `audiobook` or `chapter`.",
            ),
            col("title", "text", "The item's title."),
            col(
                "state",
                "text",
                "`queued`, `in_progress`, `labelled`, `escalated` or `adjudicated`.",
            ),
            col(
                "priority",
                "integer",
                "Queue priority from the import (higher is served first).",
            ),
            col("is_gold", FLAG, "A gold item (its answer is known)."),
            col(
                "labels_count",
                "integer",
                "Labels counted toward the item's overlap.",
            ),
            col("created_at", TIME, "When the item was imported."),
            col("updated_at", TIME, "When the item last changed."),
        ],
        body: "SELECT i.id AS item_id, i.project_id, i.external_id, i.item_type, i.title, \
               i.state, i.priority, i.is_gold, i.labels_count, i.created_at, i.updated_at \
               FROM src.items i WHERE i.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "annotations",
        description: "Every label ever given, corrections included (annotations are append-only).",
        columns: ANNOTATION_COLUMNS,
        body: ANNOTATION_SELECT,
    },
    ViewDoc {
        name: "latest_annotations",
        description: "Each annotator's latest label on each item: the labels consensus counts.",
        columns: ANNOTATION_COLUMNS,
        body: "SELECT * FROM (SELECT a.id AS annotation_id, a.project_id, a.item_id, \
               'a' || a.annotator_id AS annotator, a.kind, a.source, a.answer, a.rationale, \
               g.version AS guideline_version, a.time_spent_ms, a.is_late, a.gold_correct, \
               a.supersedes, a.created_at \
               FROM src.annotations a LEFT JOIN src.guideline_versions g \
               ON g.id = a.guideline_version_id \
               WHERE a.project_id IN_SCOPE AND NOT EXISTS (SELECT 1 FROM src.annotations b \
               WHERE b.item_id = a.item_id AND b.annotator_id = a.annotator_id \
               AND b.id > a.id)) latest",
    },
    ViewDoc {
        name: "annotators",
        description: "The members of each project. Names are shown to project managers and \
                      admins, and to QA analysts where the project shows annotator names \
                      (`settings.qa.show_annotator_names`, as on the adjudication page); \
                      elsewhere they are NULL and the pseudonym is all there is.",
        columns: &[
            PROJECT_ID,
            col(
                "annotator",
                "text",
                "The pseudonym `a<account number>` used by every other view.",
            ),
            col(
                "kind",
                "text",
                "`human`, or `model` for an automated annotator.",
            ),
            col("role", "text", "The member's role in the project."),
            col(
                "username",
                "text",
                "The login name, or NULL where names are hidden from you.",
            ),
            col(
                "display_name",
                "text",
                "The display name, or NULL where names are hidden from you.",
            ),
        ],
        body: "SELECT m.project_id, 'a' || u.id AS annotator, u.kind, m.role, \
               CASE WHEN m.project_id NAMES_VISIBLE THEN u.username END AS username, \
               CASE WHEN m.project_id NAMES_VISIBLE THEN u.display_name END AS display_name \
               FROM src.memberships m JOIN src.users u ON u.id = m.user_id \
               WHERE m.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "consensus",
        description: "The latest consensus run's result per item and question.",
        columns: &[
            PROJECT_ID,
            ITEM_ID,
            col("question", "text", "The label schema's question key."),
            col(
                "label",
                "JSON text",
                "The consensus label: a code, a list of codes, or NULL when undecided.",
            ),
            col(
                "posterior",
                "JSON text",
                "The model's probability per code: `{code: probability}`.",
            ),
            col(
                "confidence",
                "real",
                "The posterior probability of the label.",
            ),
            col(
                "agreement",
                "real",
                "The share of agreeing pairs among the item's labels.",
            ),
            col(
                "n_labels",
                "integer",
                "Labels the consensus was computed from.",
            ),
            col("tied", FLAG, "The vote was tied."),
            col(
                "run_id",
                "integer",
                "The consensus run that last changed this row.",
            ),
        ],
        body: "SELECT c.project_id, c.item_id, c.question, c.label, c.posterior, c.confidence, \
               c.agreement, c.n_labels, c.tied, c.run_id \
               FROM src.item_consensus c WHERE c.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "annotator_scores",
        description: "Per annotator and question, their agreement with the latest consensus.",
        columns: &[
            PROJECT_ID,
            col(
                "annotator",
                "text",
                "The pseudonym `a<account number>` (see `annotators`).",
            ),
            col("question", "text", "The label schema's question key."),
            col(
                "labels",
                "integer",
                "Labels of this annotator the score is computed from.",
            ),
            col(
                "agreement",
                "real",
                "The share of their labels equal to the consensus.",
            ),
            col(
                "skill",
                "real",
                "The consensus model's skill estimate, where it has one.",
            ),
            col(
                "confusion",
                "JSON text",
                "`{classes, counts[true][given]}` against the consensus.",
            ),
            col(
                "run_id",
                "integer",
                "The consensus run the score comes from.",
            ),
        ],
        body: "SELECT q.project_id, 'a' || q.user_id AS annotator, q.question, q.labels, \
               q.agreement, q.skill, q.confusion, q.run_id \
               FROM src.annotator_quality q WHERE q.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "escalations",
        description: "Items sent to QA experts, open and resolved.",
        columns: &[
            col("escalation_id", "integer", "The escalation's number."),
            PROJECT_ID,
            ITEM_ID,
            col("status", "text", "`open` or `resolved`."),
            col("priority", "integer", "2 urgent, 1 high, 0 normal."),
            col("priority_reason", "text", "Why it got its priority."),
            col(
                "reasons",
                "JSON text",
                "The rules that escalated it: `[{rule, question, detail}]`.",
            ),
            col("opened_at", TIME, "When it was opened."),
            col("due_at", TIME, "When it is due under the project's SLA."),
            col("resolved_at", TIME, "When it was resolved, if it was."),
            col(
                "resolved_by",
                "text",
                "The pseudonym of the expert who resolved it.",
            ),
            col(
                "adjudication_id",
                "integer",
                "The decision that resolved it (see `adjudications`).",
            ),
            col("run_id", "integer", "The consensus run that escalated it."),
        ],
        body: "SELECT e.id AS escalation_id, e.project_id, e.item_id, e.status, e.priority, \
               e.priority_reason, e.reasons, e.opened_at, e.due_at, e.resolved_at, \
               'a' || e.resolved_by AS resolved_by, e.adjudication_id, e.run_id \
               FROM src.escalations e WHERE e.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "adjudications",
        description: "QA experts' decisions (append-only; a new decision supersedes an old one).",
        columns: &[
            col("adjudication_id", "integer", "The decision's number."),
            PROJECT_ID,
            ITEM_ID,
            col("expert", "text", "The pseudonym of the deciding expert."),
            col(
                "answer",
                "JSON text",
                "The decided answer: `{question key: value}`.",
            ),
            col("rationale", "text", "The expert's reason."),
            col(
                "guideline_clause",
                "text",
                "The guideline clause the decision rests on.",
            ),
            col(
                "guideline_version",
                "integer",
                "The guideline version it was decided under.",
            ),
            col(
                "consensus_before",
                "JSON text",
                "`{question: label}` of the consensus it decided on.",
            ),
            col(
                "overturned",
                FLAG,
                "The decision differs from the consensus.",
            ),
            col("promoted_to_gold", FLAG, "The item became a gold item."),
            col(
                "supersedes",
                "integer",
                "The decision this one replaces, if any.",
            ),
            col("created_at", TIME, "When it was decided."),
        ],
        body: "SELECT d.id AS adjudication_id, d.project_id, d.item_id, \
               'a' || d.expert_id AS expert, d.answer, d.rationale, d.guideline_clause, \
               g.version AS guideline_version, d.consensus_before, d.overturned, \
               d.promoted_to_gold, d.supersedes, d.created_at \
               FROM src.adjudications d LEFT JOIN src.guideline_versions g \
               ON g.id = d.guideline_version_id WHERE d.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "guideline_versions",
        description: "Every version of each project's guidelines, drafts included.",
        columns: &[
            PROJECT_ID,
            col("version", "integer", "The version number."),
            col("status", "text", "`draft` or `published`."),
            col("change_note", "text", "What changed in this version."),
            col("body", "text", "The guideline text (Markdown)."),
            col("created_at", TIME, "When the version was created."),
            col("published_at", TIME, "When it was published, if it was."),
        ],
        body: "SELECT g.project_id, g.version, g.status, g.change_note, g.body, g.created_at, \
               g.published_at FROM src.guideline_versions g WHERE g.project_id IN_SCOPE",
    },
    ViewDoc {
        name: "releases",
        description: "Frozen dataset releases.",
        columns: &[
            col("release_id", "integer", "The release's number."),
            PROJECT_ID,
            col(
                "name",
                "text",
                "The release's name (unique in its project).",
            ),
            col("description", "text", "Its description."),
            col(
                "method",
                "text",
                "The consensus model its labels come from.",
            ),
            col("items", "integer", "Items in the release."),
            col(
                "annotation_watermark",
                "integer",
                "The last annotation the release includes.",
            ),
            col("summary", "JSON text", "The QA summary frozen with it."),
            col("created_at", TIME, "When it was made."),
        ],
        body: "SELECT r.id AS release_id, r.project_id, r.name, r.description, r.method, \
               r.items, r.annotation_watermark, r.summary, r.created_at \
               FROM src.releases r WHERE r.project_id IN_SCOPE",
    },
];

/// The internal tables the view bodies read, and nothing else: on SQLite the authorizer
/// allows reads of these alone.
pub(crate) const SOURCE_TABLES: &[&str] = &[
    "projects",
    "items",
    "annotations",
    "guideline_versions",
    "memberships",
    "users",
    "item_consensus",
    "annotator_quality",
    "escalations",
    "adjudications",
    "releases",
];

/// Columns no query may read, even through a view (none of the views needs them): belt
/// and braces on top of the views and the per-connection names.
pub(crate) const SECRET_COLUMNS: &[(&str, &str)] =
    &[("users", "password_hash"), ("projects", "settings")];

/// A view body with its tokens resolved.
pub(crate) fn resolve(body: &str, source_prefix: &str, in_scope: &str, names: &str) -> String {
    body.replace("src.", source_prefix)
        .replace("IN_SCOPE", in_scope)
        .replace("NAMES_VISIBLE", names)
}

/// The reference for `docs/sql.md`, generated from [`VIEWS`].
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# SQL reference\n\n\
         <!-- Generated from crates/store/src/sql/catalog.rs; a test fails when this file is \
         stale. Regenerate with `concord sql --reference > docs/sql.md`. -->\n\n\
         `concord sql`, `POST /api/v1/sql` and the *SQL* page run one read-only `SELECT` over \
         the views below (never the internal tables). You see the projects where your role \
         may query (QA analyst, project manager; admins see every project). Annotators are \
         pseudonymised as `a<account number>`, the pseudonym releases use; `annotators` maps \
         it to a name only where you may see names (see below). Times are milliseconds since \
         1970-01-01 UTC; JSON columns are text (use `json_extract(answer, '$.key')` or \
         `answer ->> 'key'` on SQLite, `answer::jsonb ->> 'key'` on PostgreSQL; a list unnests \
         with `json_each(answer)` on SQLite, `json_array_elements_text(answer::json)` on \
         PostgreSQL). Every query \
         has a time limit and a row cap.\n\n",
    );
    for view in VIEWS {
        out.push_str(&format!("## `{}`\n\n{}\n\n", view.name, view.description));
        out.push_str("| column | type | meaning |\n|---|---|---|\n");
        for column in view.columns {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                column.name,
                column.kind,
                column.description.replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/sql.md` is this table rendered; regenerate it with
    /// `concord sql --reference > docs/sql.md` (or `CONCORD_BLESS=1 cargo test`).
    #[test]
    fn docs_sql_md_is_the_generated_reference() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/sql.md");
        let generated = reference_markdown();
        if std::env::var("CONCORD_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).expect("docs/sql.md is writable");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/sql.md is stale: run `concord sql --reference > docs/sql.md`"
        );
    }

    #[test]
    fn every_view_reads_only_source_tables_and_no_secret_column() {
        for view in VIEWS {
            for word in view
                .body
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            {
                if let Some(table) = word.strip_prefix("src.") {
                    assert!(SOURCE_TABLES.contains(&table), "{}: {table}", view.name);
                }
            }
            for (_, column) in SECRET_COLUMNS {
                assert!(!view.body.contains(column), "{} reads {column}", view.name);
            }
            let mut names: Vec<&str> = view.columns.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                view.columns.len(),
                "{}: a column twice",
                view.name
            );
        }
    }
}
