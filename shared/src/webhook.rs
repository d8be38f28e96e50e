//! Webhook intake. For now it accepts and logs a vendor's POST; verification, deduplication and
//! enqueueing arrive with the webhook work, in front of the same entry point.

use serde::Serialize;

use crate::http_event::{HttpEvent, HttpResponse};
use crate::problem::ApiError;

/// Vendors' payloads are small; Stripe's and GitHub's documented maximums are well below this.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

#[derive(Serialize)]
struct Accepted<'a> {
    accepted: bool,
    vendor: &'a str,
}

fn vendor_of(path: &str) -> Result<&str, ApiError> {
    match path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["webhooks", vendor]
            if !vendor.is_empty()
                && vendor.len() <= 32
                && vendor
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(vendor)
        }
        _ => Err(ApiError::NotFound(format!("no webhook endpoint at {path}"))),
    }
}

pub fn handle(event: &HttpEvent) -> HttpResponse {
    let result = (|| {
        if event.method() != "POST" {
            return Err(ApiError::MethodNotAllowed("webhooks are POSTed".into()));
        }
        let vendor = vendor_of(event.path())?;
        let body = event.body_bytes(MAX_WEBHOOK_BYTES)?;
        Ok((vendor, body.len()))
    })();
    match result {
        Ok((vendor, bytes)) => {
            tracing::info!(vendor, bytes, request_id = %event.request_context.request_id, "webhook received");
            HttpResponse::json(
                202,
                &Accepted {
                    accepted: true,
                    vendor,
                },
            )
        }
        Err(e) => {
            tracing::info!(status = e.status(), reason = %e, path = %event.path(), "webhook rejected");
            HttpResponse::error(&e, Some(event.path()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: &str, b64: bool) -> HttpEvent {
        let mut e = HttpEvent {
            raw_path: path.into(),
            body: Some(body.into()),
            is_base64_encoded: b64,
            ..Default::default()
        };
        e.request_context.http.method = "POST".into();
        e
    }

    #[test]
    fn accepts_a_vendor_post() {
        assert_eq!(
            handle(&post("/webhooks/stripe", "{}", false)).status_code,
            202
        );
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert_eq!(
            handle(&post("/webhooks/stripe", "!!!", true)).status_code,
            400
        );
        assert_eq!(
            handle(&post("/webhooks/../etc", "{}", false)).status_code,
            404
        );
        assert_eq!(handle(&post("/other", "{}", false)).status_code, 404);
        let big = "a".repeat(MAX_WEBHOOK_BYTES + 1);
        assert_eq!(
            handle(&post("/webhooks/github", &big, false)).status_code,
            413
        );
    }
}
