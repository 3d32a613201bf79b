//! concord's HTTP side: the JSON API under `/api/v1` and the server-rendered pages. The only
//! crate that knows HTTP or HTML.

mod access;
mod accounts;
mod auth;
mod calibration;
mod charts;
mod error;
mod exposure;
mod guidelines;
mod items;
mod markdown;
mod middleware;
mod models;
mod openapi;
mod predictions;
mod projects;
mod qa;
mod queue;
mod releases;
mod retest;
mod sql;
mod streaming;
mod templates;
mod views;

pub use error::{AppError, AppResult};
pub use openapi::API_ROUTES;

use axum::Router;
use axum::routing::get;
use concord_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Server settings (from flags and environment in the CLI).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Send cookies with `Secure` (set when served over HTTPS, directly or behind a proxy).
    pub secure_cookies: bool,
    pub session_ttl_ms: i64,
    /// Largest accepted import upload.
    pub max_upload_bytes: u64,
    /// Where uploads wait while their import job runs.
    pub upload_dir: PathBuf,
    /// Analysts' SQL: time limit, row cap, queries at once.
    pub sql: concord_store::SqlLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            secure_cookies: false,
            session_ttl_ms: 12 * 60 * 60 * 1000,
            max_upload_bytes: 4 << 30,
            upload_dir: std::env::temp_dir(),
            sql: concord_store::SqlLimits::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    templates: Arc<minijinja::Environment<'static>>,
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> Self {
        AppState {
            store,
            config: Arc::new(config),
            templates: Arc::new(templates::environment()),
        }
    }
}

/// The whole application: pages, API, static files, health checks and the middleware.
pub fn app(state: AppState) -> Router {
    let pages = page_routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::render_page_errors,
    ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(middleware::readyz))
        .nest("/api/v1", api_routes())
        .merge(pages)
        .merge(templates::static_routes())
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::csrf_and_session,
        ))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(axum::middleware::from_fn(middleware::trace_requests))
        .with_state(state)
}

/// The JSON API: each feature's routes, and the OpenAPI document generated from the route
/// table. Nothing here depends on a page module.
fn api_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .merge(accounts::api::routes())
        .merge(projects::api::routes())
        .merge(guidelines::api::routes())
        .merge(items::api::routes())
        .merge(queue::api::routes())
        .merge(qa::api::routes())
        .merge(releases::api::routes())
        .merge(sql::api::routes())
        .merge(models::api::routes())
        .merge(predictions::api::routes())
        .merge(retest::api::routes())
        .merge(calibration::api::routes())
        .merge(exposure::api::routes())
}

/// The server-rendered pages, each feature's own.
fn page_routes() -> Router<AppState> {
    Router::new()
        .merge(accounts::pages::routes())
        .merge(projects::pages::routes())
        .merge(guidelines::pages::routes())
        .merge(items::pages::routes())
        .merge(queue::pages::routes())
        .merge(qa::pages::routes())
        .merge(releases::pages::routes())
        .merge(sql::pages::routes())
        .merge(models::pages::routes())
        .merge(retest::pages::routes())
        .merge(calibration::pages::routes())
        .merge(exposure::pages::routes())
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(e) = state.store.fail_stale_jobs().await {
        tracing::warn!(error = %e, "could not check for stale jobs");
    }
    let app = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
