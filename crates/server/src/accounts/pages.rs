//! Accounts: page routes.

use crate::AppState;
use crate::auth::{Auth, PageAuth, require_admin, safe_next, session_cookie};
use crate::error::{AppError, AppResult};
use crate::views::{ListQuery, base, render};
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_store::{AccountKind, LoginCheck, NewUser};
use minijinja::context;
use serde::Deserialize;
use std::net::SocketAddr;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/account", get(account_page))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/account/password", post(change_password))
        .route("/admin/users", get(users_page).post(create_user))
        .route("/admin/users/{username}/disabled", post(set_disabled))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> AppResult<Html<String>> {
    render(
        &state,
        "login.html",
        context! { next => safe_next(q.next.as_deref()) },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let next = safe_next(form.next.as_deref());
    let outcome = state
        .store
        .login(form.username.trim(), &form.password, &peer.ip().to_string())
        .await?;
    let retry = |status: StatusCode, error: &str| -> AppResult<Response> {
        let html = render(
            &state,
            "login.html",
            context! { next, error, username => form.username.trim() },
        )?;
        Ok((status, html).into_response())
    };
    match outcome {
        LoginCheck::Ok(user) => {
            let (token, _) = state
                .store
                .create_session(user.id, state.config.session_ttl_ms)
                .await?;
            let cookie = session_cookie(
                &token,
                state.config.session_ttl_ms / 1000,
                state.config.secure_cookies,
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
        }
        LoginCheck::BadCredentials => {
            retry(StatusCode::UNAUTHORIZED, "Wrong user name or password.")
        }
        LoginCheck::RateLimited => retry(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Wait 15 minutes and try again.",
        ),
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> AppResult<Response> {
    if let Some(token) = crate::auth::cookie_value(&headers, crate::auth::SESSION_COOKIE) {
        state.store.delete_session(token).await?;
    }
    let cookie = session_cookie("", 0, state.config.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

async fn account_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
) -> AppResult<Html<String>> {
    account_view(&state, &auth, None, None, None).await
}

async fn account_view(
    state: &AppState,
    auth: &Auth,
    new_token: Option<String>,
    error: Option<String>,
    notice: Option<&str>,
) -> AppResult<Html<String>> {
    let tokens = state.store.list_api_tokens(auth.user.id).await?;
    render(
        state,
        "account.html",
        context! { tokens, new_token, error, notice, ..base(auth) },
    )
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Form(form): Form<TokenForm>,
) -> AppResult<Html<String>> {
    match state.store.create_api_token(auth.user.id, &form.name).await {
        Ok((secret, _)) => account_view(&state, &auth, Some(secret), None, None).await,
        Err(e) => account_view(&state, &auth, None, Some(AppError::from(e).message), None).await,
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(id): Path<i64>,
) -> AppResult<Redirect> {
    state.store.revoke_api_token(auth.user.id, id).await?;
    Ok(Redirect::to("/account"))
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
}

async fn change_password(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    match state
        .store
        .login(&auth.user.username, &form.current, &peer.ip().to_string())
        .await?
    {
        LoginCheck::Ok(_) => {}
        _ => {
            let view = account_view(
                &state,
                &auth,
                None,
                Some("The current password is wrong.".into()),
                None,
            );
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response());
        }
    }
    if let Err(e) = state
        .store
        .set_password(&auth.user.username, form.new, Some(auth.user.id))
        .await
    {
        let view = account_view(&state, &auth, None, Some(AppError::from(e).message), None);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response());
    }
    // Changing the password ended every session, this one included.
    Ok(Redirect::to("/login").into_response())
}

async fn users_page(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Query(list): Query<ListQuery>,
) -> AppResult<Html<String>> {
    require_admin(&auth.user)?;
    users_view(&state, &auth, list, None, None).await
}

async fn users_view(
    state: &AppState,
    auth: &Auth,
    list: ListQuery,
    error: Option<String>,
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let found: Vec<_> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| list.matches(&[&u.username, &u.display_name, u.kind.as_str()]))
        .collect();
    let (users, pager) = list.page(found);
    render(
        state,
        "users.html",
        context! { users, pager, error, notice, ..base(auth) },
    )
}

#[derive(Deserialize)]
struct NewUserForm {
    username: String,
    #[serde(default)]
    display_name: String,
    password: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    kind: Option<AccountKind>,
}

async fn create_user(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Form(form): Form<NewUserForm>,
) -> AppResult<Response> {
    require_admin(&auth.user)?;
    let new = NewUser {
        username: form.username.trim().to_owned(),
        display_name: Some(form.display_name),
        password: Some(form.password),
        is_admin: form.admin.is_some(),
        kind: form.kind.unwrap_or(AccountKind::Human),
    };
    match state.store.create_user(new, Some(auth.user.id)).await {
        Ok(user) => Ok(users_view(
            &state,
            &auth,
            ListQuery::default(),
            None,
            Some(format!("Created {}.", user.username)),
        )
        .await?
        .into_response()),
        Err(e) => {
            let view = users_view(
                &state,
                &auth,
                ListQuery::default(),
                Some(AppError::from(e).message),
                None,
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response())
        }
    }
}

#[derive(Deserialize)]
struct DisabledForm {
    /// `1` disables the account, anything else enables it.
    disabled: String,
    /// The list's search and page the change was made from, shown again after it.
    #[serde(default)]
    q: String,
    page: Option<usize>,
}

/// Disables or enables an account from the users page (administrators only).
async fn set_disabled(
    State(state): State<AppState>,
    PageAuth(auth): PageAuth,
    Path(username): Path<String>,
    Form(form): Form<DisabledForm>,
) -> AppResult<Response> {
    require_admin(&auth.user)?;
    let disabled = form.disabled == "1";
    match state
        .store
        .set_user_disabled(&username, disabled, Some(auth.user.id))
        .await
    {
        Ok(user) => {
            let done = if user.disabled { "Disabled" } else { "Enabled" };
            let notice = format!("{done} {}.", user.username);
            let list = ListQuery {
                q: form.q,
                page: form.page,
            };
            Ok(users_view(&state, &auth, list, None, Some(notice))
                .await?
                .into_response())
        }
        Err(e) => {
            let view = users_view(
                &state,
                &auth,
                ListQuery::default(),
                Some(AppError::from(e).message),
                None,
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, view.await?).into_response())
        }
    }
}
