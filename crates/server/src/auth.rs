//! Who is asking: a session cookie (pages, and the pages' own API calls) or an API token
//! (`Authorization: Bearer …`). Role checks per project are in `access.rs`.

use crate::AppState;
use crate::error::{AppError, AppResult};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use concord_store::{Session, User};

pub const SESSION_COOKIE: &str = "concord_session";

/// The session found by the session middleware, if any.
#[derive(Clone)]
pub struct MaybeSession(pub Option<Session>);

#[derive(Clone)]
pub struct Auth {
    pub user: User,
    /// Present for cookie sessions (pages need it for forms).
    pub csrf: Option<String>,
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// API authentication: a bearer token, else the session cookie.
impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        if let Some(token) = bearer_token(&parts.headers) {
            return match state.store.user_by_api_token(token).await? {
                Some(user) => Ok(Auth { user, csrf: None }),
                None => Err(AppError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "the API token is unknown or revoked",
                )),
            };
        }
        match parts.extensions.get::<MaybeSession>() {
            Some(MaybeSession(Some(session))) => Ok(Auth {
                user: session.user.clone(),
                csrf: Some(session.csrf_token.clone()),
            }),
            _ => Err(AppError::unauthorized()),
        }
    }
}

/// Page authentication: the session cookie, else a redirect to the login page.
pub struct PageAuth(pub Auth);

impl FromRequestParts<AppState> for PageAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Response> {
        match parts.extensions.get::<MaybeSession>() {
            Some(MaybeSession(Some(session))) => Ok(PageAuth(Auth {
                user: session.user.clone(),
                csrf: Some(session.csrf_token.clone()),
            })),
            _ => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!("/login?next={}", urlencode(next));
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Only same-site relative paths are followed after login (no open redirects). Control
/// characters are refused too: browsers drop tabs and line breaks from a `Location`, which
/// turns `/\t/evil.example` into `//evil.example` (and a line break is no header value).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub fn require_admin(user: &User) -> AppResult<()> {
    if user.is_admin {
        Ok(())
    } else {
        Err(AppError::forbidden("only an administrator can do this"))
    }
}

pub fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}
