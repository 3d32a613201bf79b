//! The one HTTP error type. 4xx carry a message meant for the user; 5xx are logged with
//! their cause and answered with a generic message (internals never leak).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use concord_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
}

/// Attached to error responses so that page routes can render them as HTML.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub status: StatusCode,
    pub message: String,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "sign in, or send an API token as `Authorization: Bearer …`",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the details are in the server log",
        )
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => AppError::new(StatusCode::CONFLICT, message),
            StoreError::Invalid(message) => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            other => AppError::internal(other),
        }
    }
}

impl From<minijinja::Error> for AppError {
    fn from(e: minijinja::Error) -> Self {
        AppError::internal(format!("template: {e:#}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"status": self.status.as_u16(), "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorInfo {
            status: self.status,
            message: self.message,
        });
        response
    }
}
