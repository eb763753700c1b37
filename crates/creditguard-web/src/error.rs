//! Every error of a handler becomes one response here: the caller's mistakes as 4xx pages with
//! the reason, anything else as a 500 that says nothing about the inside (logged instead).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Outside the viewer's scope, or not there at all: the same 404 either way, so a reviewer
    /// cannot probe which cases of another branch exist.
    #[error("not found")]
    NotFound,
    /// The role may not do this (e.g. a reviewer reopening a case on appeal).
    #[error("{0}")]
    Forbidden(String),
    /// A form or filter value the caller can fix.
    #[error("{0}")]
    BadRequest(String),
    /// A form without the session's CSRF token.
    #[error("the form is stale or was not sent by this site: reload the page and try again")]
    Csrf,
    #[error(transparent)]
    Review(#[from] creditguard_review::Error),
    #[error(transparent)]
    Score(#[from] creditguard_score::Error),
    #[error(transparent)]
    Lake(#[from] creditguard_lake::Error),
    #[error("{0}")]
    Internal(String),
}

/// `Result` of this crate.
pub type Result<T, E = WebError> = std::result::Result<T, E>;

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden(_) | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Review(creditguard_review::Error::UnknownCase(_)) => StatusCode::NOT_FOUND,
            WebError::Review(
                creditguard_review::Error::Conflict { .. }
                | creditguard_review::Error::Transition { .. },
            ) => StatusCode::CONFLICT,
            WebError::Review(e) if e.is_usage() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "Request failed.");
            "Something went wrong on the server; it has been logged. / 服务器出错，已记录。"
                .to_string()
        } else if status == StatusCode::NOT_FOUND {
            "Not found. / 未找到。".to_string()
        } else {
            self.to_string()
        };
        let mut resp = crate::pages::page(crate::pages::error_page(status, &message));
        *resp.status_mut() = status;
        resp
    }
}
