//! The HTTP event both HTTP entry points receive: payload format 2.0, which API Gateway HTTP APIs
//! and Lambda function URLs share. Parsed here rather than through `lambda_http` because that
//! crate panics on an invalid base64 body; here a bad body is a 400 like any other bad input.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE};

/// AWS and local emulators send `null` for absent fields as often as they omit them.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpEvent {
    #[serde(default, deserialize_with = "null_as_default")]
    pub raw_path: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub raw_query_string: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_base64_encoded: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub request_context: RequestContext,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    #[serde(default, deserialize_with = "null_as_default")]
    pub request_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub http: HttpContext,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpContext {
    #[serde(default, deserialize_with = "null_as_default")]
    pub method: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub path: String,
}

impl HttpEvent {
    pub fn method(&self) -> &str {
        &self.request_context.http.method
    }

    pub fn path(&self) -> &str {
        if self.raw_path.is_empty() {
            &self.request_context.http.path
        } else {
            &self.raw_path
        }
    }

    /// Header names are case-insensitive; both AWS front doors lower-case them, a test may not.
    /// `name` is given in lower case: the map answers at once, and only a miss scans.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .or_else(|| {
                self.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }

    pub fn query(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.raw_query_string.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The raw body bytes, base64-decoded if the front door encoded them, within `limit` bytes.
    pub fn body_bytes(&self, limit: usize) -> Result<Vec<u8>, ApiError> {
        let Some(body) = self.body.as_deref() else {
            return Ok(Vec::new());
        };
        // Checked before decoding so an oversized body costs no allocation; base64 is 4/3 larger.
        let encoded_limit = if self.is_base64_encoded {
            limit.div_ceil(3) * 4
        } else {
            limit
        };
        if body.len() > encoded_limit {
            return Err(too_large(limit));
        }
        let bytes = if self.is_base64_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| {
                    ApiError::BadRequest("body is marked base64 but is not valid base64".into())
                })?
        } else {
            body.as_bytes().to_vec()
        };
        if bytes.len() > limit {
            return Err(too_large(limit));
        }
        Ok(bytes)
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("request body exceeds {limit} bytes"))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
    /// Always present: cargo-lambda's emulator (like `aws_lambda_events`) requires the field.
    pub cookies: Vec<String>,
}

impl HttpResponse {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Self::with_body(status, "application/json", body),
            Err(e) => Self::error(
                &ApiError::Internal(format!("serialising response: {e}")),
                None,
            ),
        }
    }

    pub fn error(err: &ApiError, instance: Option<&str>) -> Self {
        let problem = err.to_problem(instance);
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".into());
        let mut r = Self::with_body(err.status(), PROBLEM_CONTENT_TYPE, body);
        if let Some(secs) = err.retry_after() {
            r.headers.insert("retry-after".into(), secs.to_string());
        }
        if let Some(methods) = err.allow() {
            r.headers.insert("allow".into(), methods.into());
        }
        if err.status() == 401 {
            r.headers.insert("www-authenticate".into(), "Bearer".into());
        }
        r
    }

    /// A plain response of `content_type` (a webhook handshake's challenge, Twilio's TwiML).
    pub fn text(status: u16, content_type: &str, body: String) -> Self {
        Self::with_body(status, content_type, body)
    }

    /// A response with no body (a CORS preflight's 204).
    pub fn empty(status: u16) -> Self {
        let mut r = Self::with_body(status, "text/plain", String::new());
        r.headers.remove("content-type");
        r
    }

    fn with_body(status: u16, content_type: &str, body: String) -> Self {
        let mut headers = BTreeMap::new();
        headers.insert("content-type".into(), content_type.into());
        headers.insert("cache-control".into(), "no-store".into());
        Self {
            status_code: status,
            headers,
            body,
            is_base64_encoded: false,
            cookies: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str, b64: bool) -> HttpEvent {
        HttpEvent {
            body: Some(body.into()),
            is_base64_encoded: b64,
            ..Default::default()
        }
    }

    #[test]
    fn invalid_base64_is_a_bad_request_not_a_panic() {
        let err = event("%%%not base64", true).body_bytes(1024).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn base64_bodies_are_decoded() {
        assert_eq!(event("aGVsbG8=", true).body_bytes(1024).unwrap(), b"hello");
    }

    #[test]
    fn oversized_bodies_are_413_either_way() {
        assert_eq!(
            event(&"a".repeat(11), false)
                .body_bytes(10)
                .unwrap_err()
                .status(),
            413
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode([0u8; 11]);
        assert_eq!(event(&b64, true).body_bytes(10).unwrap_err().status(), 413);
    }

    #[test]
    fn parses_a_function_url_event() {
        let raw = r#"{"version":"2.0","rawPath":"/v1/messages","rawQueryString":"after=3&x=%20y",
            "headers":{"Authorization":"Bearer t"},"requestContext":{"requestId":"r1",
            "http":{"method":"POST","path":"/v1/messages"}},"isBase64Encoded":false,"body":"{}"}"#;
        let e: HttpEvent = serde_json::from_str(raw).unwrap();
        assert_eq!(e.method(), "POST");
        assert_eq!(e.header("authorization"), Some("Bearer t"));
        assert_eq!(e.query("after").as_deref(), Some("3"));
        assert_eq!(e.query("x").as_deref(), Some(" y"));
    }

    #[test]
    fn nulls_are_absent_fields() {
        let raw = r#"{"rawPath":"/x","rawQueryString":null,"headers":null,"body":null,
            "isBase64Encoded":null,"requestContext":{"requestId":null,"http":{"method":"GET","path":null}}}"#;
        let e: HttpEvent = serde_json::from_str(raw).unwrap();
        assert_eq!(e.raw_query_string, "");
        assert_eq!(e.body_bytes(10).unwrap(), b"");
    }

    #[test]
    fn unavailable_errors_carry_retry_after() {
        let r = HttpResponse::error(
            &ApiError::Unavailable {
                detail: "down".into(),
                retry_after_secs: 5,
            },
            None,
        );
        assert_eq!(r.status_code, 503);
        assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("5"));
        let r = HttpResponse::error(
            &ApiError::MethodNotAllowed {
                detail: "no".into(),
                allow: "POST",
            },
            None,
        );
        assert_eq!(r.headers.get("allow").map(String::as_str), Some("POST"));
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some(PROBLEM_CONTENT_TYPE)
        );
    }
}
