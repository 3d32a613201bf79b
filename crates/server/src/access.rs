//! Who may act on which project, as extractors: a handler names the permission it needs in
//! its signature (`ProjectAccess<need::EditSettings>`), and the request is refused before
//! the handler runs. Non-members get 404 (a project's existence is not revealed); members
//! without the permission get 403 naming their role.

use crate::AppState;
use crate::auth::{Auth, PageAuth};
use crate::error::{AppError, AppResult};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use concord_store::{Permission, Project, Role, User};
use std::marker::PhantomData;

/// A permission named as a type, so that it can be a handler's extractor parameter.
pub trait Need: Send + Sync {
    const PERMISSION: Permission;
}

/// A marker type per [`Permission`] that some route needs outright, named as the permission.
/// (`OverrideLabels` has none: the label route needs it only for an override, and checks it
/// with [`require`] once it knows.)
pub mod need {
    use super::Need;
    use concord_store::Permission;

    macro_rules! needs {
        ($($name:ident),* $(,)?) => {$(
            pub struct $name;
            impl Need for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    needs!(
        ViewProject,
        BrowseItems,
        ReadAnnotations,
        EditGuidelines,
        EditSchema,
        ManageMembers,
        ImportItems,
        EditSettings,
        Annotate,
        ManageAnnotators,
        Adjudicate,
        CreateReleases,
        QuerySql,
    );
}

/// An API caller (token or session) who may act on the project `{slug}` with `N`.
pub struct ProjectAccess<N> {
    pub auth: Auth,
    pub project: Project,
    pub role: Role,
    need: PhantomData<N>,
}

/// A signed-in page visitor who may act on the project `{slug}` with `N`; without a session
/// the visitor is sent to the login page first.
pub struct ProjectPage<N> {
    pub auth: Auth,
    pub project: Project,
    pub role: Role,
    need: PhantomData<N>,
}

impl<N: Need> FromRequestParts<AppState> for ProjectAccess<N> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let auth = Auth::from_request_parts(parts, state).await?;
        let slug = project_slug(parts, state).await?;
        let (project, role) = project_access(state, &auth.user, &slug, N::PERMISSION).await?;
        Ok(ProjectAccess {
            auth,
            project,
            role,
            need: PhantomData,
        })
    }
}

impl<N: Need> FromRequestParts<AppState> for ProjectPage<N> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let PageAuth(auth) = PageAuth::from_request_parts(parts, state).await?;
        let found = async {
            let slug = project_slug(parts, state).await?;
            project_access(state, &auth.user, &slug, N::PERMISSION).await
        };
        match found.await {
            Ok((project, role)) => Ok(ProjectPage {
                auth,
                project,
                role,
                need: PhantomData,
            }),
            Err(error) => Err(error.into_response()),
        }
    }
}

/// The `{slug}` segment of the matched route.
async fn project_slug(parts: &mut Parts, state: &AppState) -> AppResult<String> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| AppError::bad_request(e.body_text()))?;
    params
        .iter()
        .find(|(name, _)| *name == "slug")
        .map(|(_, value)| value.to_owned())
        .ok_or_else(|| AppError::internal("a project route without {slug}"))
}

/// Loads a project the user may act on with `permission` (for the few handlers whose
/// permission depends on the request, e.g. a correction versus an override).
pub async fn project_access(
    state: &AppState,
    user: &User,
    slug: &str,
    permission: Permission,
) -> AppResult<(Project, Role)> {
    let (project, role) = state.store.project_and_role(slug, user).await?;
    let role = role.ok_or_else(|| AppError::not_found(format!("project {slug:?} not found")))?;
    require(role, permission)?;
    Ok((project, role))
}

/// 403 naming the caller's role unless it allows `permission`.
pub fn require(role: Role, permission: Permission) -> AppResult<()> {
    if role.allows(permission) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "your role in this project ({}) does not allow this",
            role.label()
        )))
    }
}
