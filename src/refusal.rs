//! [`Refusal`]: a request refused as a whole, before or instead of its normal answer: an
//! HTTP status and a plain-text reason. The one place where such refusals become responses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A status and the reason shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut message = self.message;
        message.push('\n');
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    }
}

/// A refusal with `status` and `message`.
pub fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}
