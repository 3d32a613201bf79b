//! concord's HTTP side: the JSON API under `/api/v1` and the server-rendered pages. The only
//! crate that knows HTTP or HTML.

mod api;
mod auth;
mod charts;
mod error;
mod imports;
mod markdown;
mod middleware;
mod openapi;
mod pages;
mod progress_view;
mod qa_pages;
mod streaming;
mod templates;
mod work_pages;

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            secure_cookies: false,
            session_ttl_ms: 12 * 60 * 60 * 1000,
            max_upload_bytes: 4 << 30,
            upload_dir: std::env::temp_dir(),
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
    let pages = pages::routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::render_page_errors,
    ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(middleware::readyz))
        .nest("/api/v1", api::routes())
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
