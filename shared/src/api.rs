//! The chat HTTP API: routes, authentication and JSON in and out. Every error is a problem
//! details body; every request gets one log line with its outcome.

use serde::Serialize;

use crate::auth::JwtVerifier;
use crate::http_event::{HttpEvent, HttpResponse};
use crate::problem::ApiError;
use crate::turn::{PostMessage, TurnService};

const MAX_PAGE: usize = 100;

/// Every route the chat API serves, as (method, path template). `shared/tests/openapi.rs` checks
/// that openapi/chat.json describes exactly these, so a route added here without its description
/// (or the other way round) fails the tests.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/messages"),
    ("GET", "/v1/conversations"),
    ("GET", "/v1/conversations/{conversation_id}/messages"),
    ("POST", "/v1/conversations/{conversation_id}/takeover"),
    ("POST", "/v1/conversations/{conversation_id}/release"),
    ("POST", "/v1/conversations/{conversation_id}/agent-messages"),
    ("DELETE", "/v1/customers/{customer_id}"),
];

pub struct ChatApi {
    verifier: JwtVerifier,
    turns: TurnService,
}

#[derive(Serialize)]
struct MessagesPage {
    messages: Vec<crate::conversation::Message>,
    /// Pass as `after=` to read on; equals the request's `after` when nothing is new.
    next_after: u64,
}

#[derive(Serialize)]
struct ConversationList {
    conversations: Vec<crate::conversation::ConversationSummary>,
}

enum Route<'a> {
    PostMessage,
    History(&'a str),
    Conversations,
}

fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (route, allowed) = match segments.as_slice() {
        ["v1", "messages"] => (Route::PostMessage, "POST"),
        ["v1", "conversations"] => (Route::Conversations, "GET"),
        ["v1", "conversations", id, "messages"] => (Route::History(id), "GET"),
        _ => return Err(ApiError::NotFound(format!("no route for {path}"))),
    };
    if method != allowed {
        return Err(ApiError::MethodNotAllowed(format!(
            "{path} accepts {allowed} only"
        )));
    }
    Ok(route)
}

fn parse_limit(event: &HttpEvent) -> Result<usize, ApiError> {
    match event.query("limit") {
        None => Ok(50),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

impl ChatApi {
    pub fn new(verifier: JwtVerifier, turns: TurnService) -> Self {
        Self { verifier, turns }
    }

    pub async fn handle(&self, event: HttpEvent) -> HttpResponse {
        let started = std::time::Instant::now();
        let response = match self.dispatch(&event).await {
            Ok(r) => r,
            Err(e) => {
                if e.status() >= 500 {
                    tracing::error!(error = %e, "request failed");
                }
                HttpResponse::error(&e, Some(event.path()))
            }
        };
        tracing::info!(
            request_id = %event.request_context.request_id,
            method = %event.method(),
            path = %event.path(),
            status = response.status_code,
            elapsed_us = started.elapsed().as_micros() as u64,
            "chat request"
        );
        response
    }

    async fn dispatch(&self, event: &HttpEvent) -> Result<HttpResponse, ApiError> {
        let route = route(event.method(), event.path())?;
        // Authentication comes before the body is read: an anonymous caller learns nothing else.
        let who = self.verifier.verify_header(event.header("authorization"))?;
        match route {
            Route::PostMessage => {
                let content_type = event.header("content-type").unwrap_or("application/json");
                if !content_type
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
                {
                    return Err(ApiError::UnsupportedMediaType(
                        "send application/json".into(),
                    ));
                }
                let body = event.body_bytes(self.turns.settings().max_body_bytes)?;
                let req: PostMessage = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
                let reply = self.turns.post(&who, req).await?;
                Ok(HttpResponse::json(200, &reply))
            }
            Route::History(id) => {
                let after = match event.query("after") {
                    None => 0,
                    Some(v) => v.parse::<u64>().map_err(|_| {
                        ApiError::BadRequest("after must be a message seq (a whole number)".into())
                    })?,
                };
                let messages = self
                    .turns
                    .history(&who, id, after, parse_limit(event)?)
                    .await?;
                let next_after = messages.last().map_or(after, |m| m.seq);
                Ok(HttpResponse::json(
                    200,
                    &MessagesPage {
                        messages,
                        next_after,
                    },
                ))
            }
            Route::Conversations => {
                let conversations = self.turns.conversations(&who, parse_limit(event)?).await?;
                Ok(HttpResponse::json(200, &ConversationList { conversations }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("POST", "/v1/messages"),
            Ok(Route::PostMessage)
        ));
        assert!(matches!(
            route("GET", "/v1/conversations/"),
            Ok(Route::Conversations)
        ));
        assert!(matches!(
            route("GET", "/v1/conversations/abc/messages"),
            Ok(Route::History("abc"))
        ));
        assert_eq!(route("GET", "/v1/messages").err().unwrap().status(), 405);
        assert_eq!(route("GET", "/v2/nope").err().unwrap().status(), 404);
    }
}
