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
    /// Extra fields of the error object a client needs to act (e.g. the stored answer of a
    /// reused idempotency key).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
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
            details: None,
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
        let text = e.to_string();
        match e {
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => AppError::new(StatusCode::CONFLICT, message),
            StoreError::KeyReused {
                annotation_id,
                stored_answer,
                stored_kind,
            } => {
                let mut details = serde_json::Map::new();
                details.insert(
                    "stored".into(),
                    json!({"annotation_id": annotation_id, "kind": stored_kind, "answer": stored_answer}),
                );
                AppError {
                    details: Some(details),
                    ..AppError::new(StatusCode::CONFLICT, text)
                }
            }
            StoreError::Invalid(message) => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            // An analyst's query: the database's own words and where in the text.
            StoreError::Query { message, position } => {
                let mut details = serde_json::Map::new();
                details.insert("position".into(), json!(position));
                AppError {
                    details: Some(details),
                    ..AppError::bad_request(message)
                }
            }
            other => AppError::internal(other),
        }
    }
}

/// What a QA error means for the caller.
impl From<concord_qa::QaError> for AppError {
    fn from(error: concord_qa::QaError) -> Self {
        match error {
            concord_qa::QaError::Store(e) => e.into(),
            concord_qa::QaError::Compute(e) => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            // Settings are checked when they are saved: unreadable ones are our fault.
            concord_qa::QaError::Settings(e) => AppError::internal(e),
            concord_qa::QaError::Panicked(e) => AppError::internal(e),
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
        let mut error = serde_json::Map::new();
        error.insert("status".into(), json!(self.status.as_u16()));
        error.insert("message".into(), json!(self.message));
        error.extend(self.details.unwrap_or_default());
        let body = json!({ "error": error });
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorInfo {
            status: self.status,
            message: self.message,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_callers_problems_are_4xx() {
        let status = |e: StoreError| AppError::from(e).status;
        assert_eq!(
            status(StoreError::Corrupt(
                "stored answer is not valid JSON".into()
            )),
            StatusCode::INTERNAL_SERVER_ERROR,
            "data the store wrote and cannot read is ours"
        );
        assert_eq!(
            status(StoreError::WriterGone),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(StoreError::Invalid("bad answer".into())),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(StoreError::NotFound("item 9".into())),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn a_reused_key_answers_409_with_what_was_stored() {
        let error = AppError::from(StoreError::KeyReused {
            annotation_id: 7,
            stored_answer: json!({"decision": "VIOLATING"}),
            stored_kind: concord_store::AnswerKind::Label,
        });
        assert_eq!(error.status, StatusCode::CONFLICT);
        let stored = &error.details.as_ref().unwrap()["stored"];
        assert_eq!(stored["annotation_id"], 7);
        assert_eq!(stored["answer"]["decision"], "VIOLATING");
    }
}
