//! RFC 9457 problem details: every error an entry point returns has this JSON shape.

use serde::Serialize;

/// An error that ends a request, with the status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// `allow` lists the methods the resource takes (the `Allow` header RFC 9110 asks for).
    #[error("{detail}")]
    MethodNotAllowed { detail: String, allow: &'static str },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u32,
    },
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u32,
    },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Unavailable { .. } => 503,
            ApiError::Internal(_) => 500,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::TooManyRequests { .. } => "too-many-requests",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::Unavailable {
                retry_after_secs, ..
            }
            | ApiError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The methods to name in an `Allow` header, for a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }

    pub fn to_problem(&self, instance: Option<&str>) -> Problem {
        let status = self.status();
        Problem {
            r#type: format!("https://switchboard.dev/problems/{}", self.slug()),
            title: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_string(),
            status,
            // Internal details stay in the logs; the caller gets a generic sentence.
            detail: match self {
                ApiError::Internal(_) => "An unexpected error occurred.".to_string(),
                other => other.to_string(),
            },
            instance: instance.map(str::to_string),
        }
    }
}

/// The RFC 9457 body.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Problem {
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let p = ApiError::Internal("dynamodb said: secret table arn".into()).to_problem(None);
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("arn"));
    }

    #[test]
    fn titles_follow_the_status() {
        let p = ApiError::PayloadTooLarge("too big".into()).to_problem(Some("/v1/messages"));
        assert_eq!(p.title, "Payload Too Large");
        assert_eq!(p.detail, "too big");
        assert!(p.r#type.ends_with("/payload-too-large"));
    }
}
