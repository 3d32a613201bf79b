//! Accounts: JSON API routes (under `/api/v1`).

use crate::AppState;
use crate::auth::{Auth, require_admin};
use crate::error::AppResult;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use concord_store::{AccountKind, NewUser};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{username}/disabled", put(set_disabled))
}

async fn me(auth: Auth) -> Json<Value> {
    Json(json!({"user": auth.user}))
}

async fn list_users(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    require_admin(&auth.user)?;
    Ok(Json(json!({"users": state.store.list_users().await?})))
}

#[derive(Deserialize)]
struct NewUserBody {
    username: String,
    display_name: Option<String>,
    password: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default = "human")]
    kind: AccountKind,
}

fn human() -> AccountKind {
    AccountKind::Human
}

async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewUserBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    require_admin(&auth.user)?;
    let user = state
        .store
        .create_user(
            NewUser {
                username: body.username,
                display_name: body.display_name,
                password: body.password,
                is_admin: body.admin,
                kind: body.kind,
            },
            Some(auth.user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"user": user}))))
}

#[derive(Deserialize)]
struct DisabledBody {
    disabled: bool,
}

/// Disables (or enables again) an account: a disabled user cannot sign in, and their
/// sessions and tokens stop working.
async fn set_disabled(
    State(state): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
    Json(body): Json<DisabledBody>,
) -> AppResult<Json<Value>> {
    require_admin(&auth.user)?;
    let user = state
        .store
        .set_user_disabled(&username, body.disabled, Some(auth.user.id))
        .await?;
    Ok(Json(json!({"user": user})))
}
