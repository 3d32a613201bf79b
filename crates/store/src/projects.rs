//! Projects and memberships (a role per user per project).

use crate::accounts::{USER_COLUMNS, user_from_row};
use crate::audit::AuditEvent;
use crate::conn::{Columns, Conn, stmt};
use crate::error::{Result, StoreError, json_text, parse_json};
use crate::ids::{ProjectId, UserId};
use crate::model::AuditAction;
use crate::model::{Id, Member, Project, Role, User};
use crate::paging::{PageRequest, Paged, name_search};
use crate::project_settings::ProjectSettings;
use crate::schema::LabelSchema;
use crate::{Store, audit};
use serde_json::Value;

const PROJECT_COLUMNS: &str = "p.id, p.slug, p.name, p.description, p.settings, \
     p.current_schema_version_id, p.current_guideline_version_id, p.created_at";

fn project_from_row(row: &impl Columns) -> Result<Project> {
    Ok(Project {
        id: row.col("id")?,
        slug: row.col("slug")?,
        name: row.col("name")?,
        description: row.col("description")?,
        settings: ProjectSettings::parse(parse_json(
            &row.col::<String>("settings")?,
            "project settings",
        )?)
        .map_err(StoreError::Corrupt)?,
        current_schema_version_id: row.col("current_schema_version_id")?,
        current_guideline_version_id: row.col("current_guideline_version_id")?,
        created_at: row.col("created_at")?,
    })
}

fn valid_slug(slug: &str) -> bool {
    (2..=64).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
}

/// A new project's label schema becomes its published version 1.
async fn publish_first_schema(
    c: &mut Conn<'_>,
    now: &str,
    project_id: ProjectId,
    schema: &LabelSchema,
    actor: Option<UserId>,
) -> Result<()> {
    let row = c
        .fetch_one(
            stmt(format!(
                "INSERT INTO schema_versions \
           (project_id, version, definition, change_note, status, created_by, published_at) \
         VALUES ($1, 1, $2, 'First version', 'published', $3, {now}) RETURNING id"
            ))
            .bind(project_id)
            .bind(json_text(schema))
            .bind(actor),
        )
        .await?;
    let schema_id: Id = row.col("id")?;
    c.execute(
        stmt("UPDATE projects SET current_schema_version_id = $1 WHERE id = $2")
            .bind(schema_id)
            .bind(project_id),
    )
    .await?;
    Ok(())
}

/// A project to create. Its label schema becomes published version 1.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub schema: LabelSchema,
}

impl Store {
    pub async fn create_project(&self, new: NewProject, actor: Option<UserId>) -> Result<Project> {
        if !valid_slug(&new.slug) {
            return Err(StoreError::invalid(format!(
                "project slug {:?} must be 2–64 lower-case letters, digits or hyphens",
                new.slug
            )));
        }
        if new.name.trim().is_empty() {
            return Err(StoreError::invalid("a project needs a name"));
        }
        new.schema.validate().map_err(StoreError::Invalid)?;
        let slug = new.slug.clone();
        let now = self.dialect().now_ms();
        let result = self
            .write_conn(move |mut c| {
                let new = new.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let row = c
                        .fetch_one(
                            stmt(
                                "INSERT INTO projects (slug, name, description, created_by) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                            )
                            .bind(&new.slug)
                            .bind(new.name.trim())
                            .bind(&new.description)
                            .bind(actor),
                        )
                        .await?;
                    let project_id: ProjectId = row.col("id")?;
                    publish_first_schema(c, now, project_id, &new.schema, actor).await?;
                    let project = fetch_project(c, project_id).await?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: Some(project_id),
                            action: AuditAction::Create,
                            entity: "project",
                            entity_id: Some(project_id.get()),
                            before: None,
                            after: audit::snapshot(&project),
                        },
                    )
                    .await?;
                    Ok(project)
                })
            })
            .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(StoreError::conflict(format!(
                "a project with slug {slug:?} already exists"
            ))),
            other => other,
        }
    }

    pub async fn project(&self, slug: &str) -> Result<Project> {
        let row = self
            .read_optional(
                stmt(format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.slug = $1"
                ))
                .bind(slug),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("project {slug:?}")))?;
        project_from_row(&row)
    }

    /// A project and the user's role in it, in one query (every project request asks both).
    pub async fn project_and_role(
        &self,
        slug: &str,
        user: &User,
    ) -> Result<(Project, Option<Role>)> {
        // On every request inside a project: a hot read.
        let access = &self.inner.access;
        let key = (slug.to_owned(), user.id, user.is_admin);
        if let Some((project, role)) = access.project(&key) {
            return Ok((project, Some(role)));
        }
        let ticket = access.ticket();
        let (user_id, is_admin, slug) = (user.id, user.is_admin, slug.to_owned());
        let found = self
            .read_native(move |mut c| {
                Box::pin(async move {
                    let row = c
                        .fetch_optional(
                            stmt(format!(
                                "SELECT {PROJECT_COLUMNS}, m.role FROM projects p \
                             LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = $1 \
                             WHERE p.slug = $2"
                            ))
                            .bind(user_id)
                            .bind(slug.as_str()),
                        )
                        .await?
                        .ok_or_else(|| StoreError::not_found(format!("project {slug:?}")))?;
                    let project = project_from_row(&row)?;
                    let role = if is_admin {
                        Some(Role::Admin)
                    } else {
                        row.col::<Option<String>>("role")?
                            .as_deref()
                            .and_then(Role::parse)
                    };
                    Ok((project, role))
                })
            })
            .await?;
        // Non-members are not remembered: a membership added elsewhere works at once.
        if let (project, Some(role)) = &found {
            access.keep_project(key, (project.clone(), *role), ticket);
        }
        Ok(found)
    }

    /// Projects the user can see: all of them for a global admin, else their memberships.
    pub async fn projects_for(&self, user: &User) -> Result<Vec<(Project, Option<Role>)>> {
        let rows = self
            .read_rows(
                stmt(format!(
                    "SELECT {PROJECT_COLUMNS}, m.role FROM projects p \
             LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = $1 \
             WHERE $2 = 1 OR m.role IS NOT NULL ORDER BY p.name"
                ))
                .bind(user.id)
                .bind(user.is_admin as i64),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let role: Option<String> = row.col("role")?;
                Ok((
                    project_from_row(row)?,
                    role.as_deref().and_then(Role::parse),
                ))
            })
            .collect()
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = self
            .read_rows(stmt(format!(
                "SELECT {PROJECT_COLUMNS} FROM projects p ORDER BY p.slug"
            )))
            .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// The user's role in a project; a global admin counts as `Admin` everywhere.
    pub async fn role_in(&self, user: &User, project_id: ProjectId) -> Result<Option<Role>> {
        if user.is_admin {
            return Ok(Some(Role::Admin));
        }
        let row = self
            .read_optional(
                stmt("SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2")
                    .bind(project_id)
                    .bind(user.id),
            )
            .await?;
        Ok(match row {
            Some(row) => Role::parse(&row.col::<String>("role")?),
            None => None,
        })
    }

    pub async fn update_project(
        &self,
        project_id: ProjectId,
        name: &str,
        description: &str,
        settings: Value,
        actor: Option<UserId>,
    ) -> Result<Project> {
        if name.trim().is_empty() {
            return Err(StoreError::invalid("a project needs a name"));
        }
        let settings = ProjectSettings::parse(settings).map_err(StoreError::Invalid)?;
        let name = name.trim().to_owned();
        let description = description.to_owned();
        self.write_conn(move |mut c| {
            let settings = settings.clone();
            let name = name.clone();
            let description = description.clone();
            Box::pin(async move {
                let c = &mut c;
                let before = fetch_project(c, project_id).await?;
                let statement = stmt(
                    "UPDATE projects SET name = $1, description = $2, settings = $3 WHERE id = $4",
                )
                .bind(name)
                .bind(description)
                .bind(json_text(settings.as_json()))
                .bind(project_id);
                c.execute(statement).await?;
                let after = fetch_project(c, project_id).await?;
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::Update,
                        entity: "project",
                        entity_id: Some(project_id.get()),
                        before: audit::snapshot(&before),
                        after: audit::snapshot(&after),
                    },
                )
                .await?;
                Ok(after)
            })
        })
        .await
    }

    pub async fn members(&self, project_id: ProjectId) -> Result<Vec<Member>> {
        let statement = stmt(format!(
            "SELECT {USER_COLUMNS}, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 ORDER BY u.username"
        ))
        .bind(project_id);
        let rows = self.read_rows(statement).await?;
        rows.iter().map(member_from_row).collect()
    }

    /// One page of the project's members in user-name order, searched by user or display
    /// name (the settings page's list).
    pub async fn members_page(
        &self,
        project_id: ProjectId,
        request: &PageRequest,
    ) -> Result<Paged<Member>> {
        let search = request.pattern();
        let filter = match search {
            Some(_) => name_search(self.dialect().ilike(), 2),
            None => String::new(),
        };
        let from = format!(
            "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = $1{filter}"
        );
        let count = format!("SELECT COUNT(*) AS n {from}");
        let mut query = stmt(&count).bind(project_id);
        if let Some(pattern) = &search {
            query = query.bind(pattern.clone()).bind(pattern.clone());
        }
        let total: i64 = self.read_one(query).await?.col("n")?;
        let at = request.clamped(total.max(0) as u64);
        let next = if search.is_some() { 4 } else { 2 };
        let sql = format!(
            "SELECT {USER_COLUMNS}, m.role {from} ORDER BY u.username LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let mut query = stmt(&sql).bind(project_id);
        if let Some(pattern) = &search {
            query = query.bind(pattern.clone()).bind(pattern.clone());
        }
        let rows = self
            .read_rows(query.bind(at.limit as i64).bind(at.offset as i64))
            .await?;
        let members = rows.iter().map(member_from_row).collect::<Result<_>>()?;
        Ok(Paged::of(members, at))
    }

    /// Adds a member or changes their role.
    pub async fn set_member(
        &self,
        project_id: ProjectId,
        username: &str,
        role: Role,
        actor: Option<UserId>,
    ) -> Result<()> {
        let user = self.user_by_name(username).await?;
        self.write_conn(move |mut c| {
            let user = user.clone();
            Box::pin(async move {
                let c = &mut c;
                let before = c
                    .fetch_optional(
                        stmt("SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2")
                            .bind(project_id)
                            .bind(user.id),
                    )
                    .await?
                    .map(|r| r.col::<String>("role"))
                    .transpose()?;
                c.execute(
                    stmt(
                        "INSERT INTO memberships (project_id, user_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                    )
                    .bind(project_id)
                    .bind(user.id)
                    .bind(role.as_str()),
                )
                .await?;
                let after = serde_json::json!({"user": user.username, "role": role.as_str()});
                let before = before.map(|r| serde_json::json!({"user": user.username, "role": r}));
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::SetRole,
                        entity: "membership",
                        entity_id: Some(user.id.get()),
                        before: before.as_ref().and_then(audit::snapshot),
                        after: audit::snapshot(&after),
                    },
                )
                .await
            })
        })
        .await
    }

    pub async fn remove_member(
        &self,
        project_id: ProjectId,
        username: &str,
        actor: Option<UserId>,
    ) -> Result<()> {
        let user = self.user_by_name(username).await?;
        self.write_conn(move |mut c| {
            let user = user.clone();
            Box::pin(async move {
                let c = &mut c;
                let done = c
                    .execute(
                        stmt("DELETE FROM memberships WHERE project_id = $1 AND user_id = $2")
                            .bind(project_id)
                            .bind(user.id),
                    )
                    .await?;
                if done == 0 {
                    return Err(StoreError::not_found(format!(
                        "{} in this project",
                        user.username
                    )));
                }
                let before = serde_json::json!({"user": user.username});
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: Some(project_id),
                        action: AuditAction::Remove,
                        entity: "membership",
                        entity_id: Some(user.id.get()),
                        before: audit::snapshot(&before),
                        after: None,
                    },
                )
                .await
            })
        })
        .await
    }
}

pub(crate) async fn fetch_project(c: &mut Conn<'_>, id: ProjectId) -> Result<Project> {
    let row = c
        .fetch_optional(
            stmt(format!(
                "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.id = $1"
            ))
            .bind(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found(format!("project {id}")))?;
    project_from_row(&row)
}

fn member_from_row(row: &impl Columns) -> Result<Member> {
    let user = user_from_row(row)?;
    let role: String = row.col("role")?;
    Ok(Member {
        user_id: user.id,
        username: user.username,
        display_name: user.display_name,
        kind: user.kind,
        role: Role::parse(&role).unwrap_or(Role::Annotator),
    })
}
