//! Cross-cutting layers: sessions and CSRF, security headers, request logs, HTML errors.

use crate::AppState;
use crate::auth::{MaybeSession, SESSION_COOKIE, bearer_token, cookie_value};
use crate::error::{AppError, ErrorInfo};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Sent on every response. No inline script or style is allowed; media and images from other
/// hosts may load, but pages only point at them after the user asks (see the item page).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' https:; media-src https: http:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Nothing leaves for other hosts (previews, links); but not `no-referrer`, under which
    // browsers send `Origin: null` with the pages' own form posts and the same-origin check
    // in `csrf_and_session` would refuse every one of them, sign-in included.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Logs each request and tells the client the server's time on it in a `Server-Timing`
/// header (`app;dur=` milliseconds until the response's head: for a page, all its work;
/// for a streamed download, until the first bytes), which browsers' developer tools and
/// `concord-platform-bench --pages` read.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(timing) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        response.headers_mut().insert("server-timing", timing);
    }
    if status >= 500 {
        tracing::warn!(%method, %path, status, ms, "request");
    } else {
        tracing::info!(%method, %path, status, ms, "request");
    }
    response
}

/// Largest form body read for the CSRF check (guideline markdown included).
const MAX_FORM_BYTES: usize = 4 << 20;

/// Resolves the session cookie once per request and, for state-changing requests that rely
/// on it, demands the session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
/// Requests with an API token are not cookie-based and need no CSRF token. Any unsafe request
/// whose `Origin` names another site is refused outright.
pub async fn csrf_and_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method && !same_origin(&request) {
        return AppError::forbidden("cross-site request refused").into_response();
    }
    // A request with an API token is authenticated by the token alone. Its session cookie,
    // if any, is ignored: otherwise any `Authorization: Bearer …` header would excuse a
    // request that rides on the cookie (a page's form post) from the CSRF check below.
    let cookie = match bearer_token(request.headers()) {
        Some(_) => None,
        None => cookie_value(request.headers(), SESSION_COOKIE),
    };
    let session = match cookie {
        Some(token) => match state.store.session(token).await {
            Ok(session) => session,
            Err(e) => return AppError::from(e).into_response(),
        },
        None => None,
    };
    let mut request = request;
    if unsafe_method
        && bearer_token(request.headers()).is_none()
        && let Some(session) = &session
    {
        request = match require_csrf_token(request, session).await {
            Ok(request) => request,
            Err(refused) => return refused,
        };
    }
    request.extensions_mut().insert(MaybeSession(session));
    next.run(request).await
}

/// Demands the session's CSRF token, from the `X-CSRF-Token` header or, for a form, its
/// `csrf` field. Returns the request (the form's body put back) when the token matches.
async fn require_csrf_token(
    request: Request,
    session: &concord_store::Session,
) -> Result<Request, Response> {
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (matches, request) = match header_token {
        Some(token) => (token == session.csrf_token, request),
        None if is_form => {
            let (parts, body) = request.into_parts();
            let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
                return Err(
                    AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large")
                        .into_response(),
                );
            };
            let token = form_field(&bytes, "csrf");
            let matches = token.as_deref() == Some(session.csrf_token.as_str());
            (matches, Request::from_parts(parts, Body::from(bytes)))
        }
        None => (false, request),
    };
    if matches {
        Ok(request)
    } else {
        Err(AppError::forbidden(
            "the form's security token is missing or stale; reload the page and try again",
        )
        .into_response())
    }
}

fn same_origin(request: &Request) -> bool {
    let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true; // non-browser clients and same-origin navigations without Origin
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    origin_host == host
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// Page routes answer errors with an HTML page instead of JSON.
pub async fn render_page_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let Some(info) = response.extensions().get::<ErrorInfo>().cloned() else {
        return response;
    };
    crate::views::error_page(&state, info.status, &info.message)
}

/// Unknown addresses: JSON under `/api`, an HTML page elsewhere.
pub async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    let message = format!("there is nothing at {}", request.uri().path());
    if request.uri().path().starts_with("/api/") {
        AppError::not_found(message).into_response()
    } else {
        crate::views::error_page(&state, StatusCode::NOT_FOUND, &message)
    }
}
