//! The chat HTTP API: routes, authentication and JSON in and out. Every error is a problem
//! details body; every request gets one log line with its outcome.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::JwtVerifier;
use crate::conversation::is_valid_conversation_id;
use crate::dialogue::{Ending, TurnFacts};
use crate::http_event::{HttpEvent, HttpResponse};
use crate::io_clock;
use crate::metrics::{self, Directive, Unit};
use crate::problem::ApiError;
use crate::rate_limit::RateLimiter;
use crate::turn::{AgentMessage, HandoffChange, PostMessage, TurnService};

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
    ("POST", "/v1/conversations/{conversation_id}/resolve"),
    ("POST", "/v1/conversations/{conversation_id}/agent-messages"),
    ("DELETE", "/v1/customers/{customer_id}"),
    ("GET", "/v1/handoffs"),
];

pub struct ChatApi {
    verifier: JwtVerifier,
    turns: TurnService,
    limiter: RateLimiter,
    cors: crate::cors::Cors,
}

#[derive(Serialize)]
struct MessagesPage {
    messages: Vec<crate::conversation::Message>,
    /// Pass as `after=` to read on; equals the request's `after` when nothing is new.
    next_after: u64,
    /// Who answers the customer: bot, waiting, with_agent or resolved.
    handoff: crate::handoff::HandoffState,
    /// An answer is on its way (the bot said "let me check"): clients show it typing.
    working: bool,
    /// The messaging channel the conversation is held in: replies go out there.
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<ChannelInfo>,
}

/// What a history page says of a channel: which one, and whether the customer has proven an
/// account. Never their address (a phone number): the transcript is enough to answer them.
#[derive(Serialize)]
struct ChannelInfo {
    name: String,
    provider: crate::channels::message::Provider,
    verified: bool,
}

#[derive(Serialize)]
struct HandoffQueue {
    handoffs: Vec<crate::handoff::QueuedHandoff>,
}

#[derive(Serialize)]
struct ConversationList {
    conversations: Vec<crate::conversation::ConversationSummary>,
}

#[derive(Serialize)]
struct Erased<'a> {
    customer_id: &'a str,
    #[serde(flatten)]
    erasure: crate::store::Erasure,
}

#[derive(Debug)]
enum Route<'a> {
    PostMessage,
    History(&'a str),
    Conversations,
    TakeOver(&'a str),
    Release(&'a str),
    Resolve(&'a str),
    AgentMessage(&'a str),
    EraseCustomer(&'a str),
    Handoffs,
}

impl Route<'_> {
    /// The route as `ROUTES` names it: what the request line logs instead of the path, whose
    /// ids may be personal (an erasure's `/v1/customers/alice%40example.com`, in an encoding the
    /// log redactor does not read).
    fn template(&self) -> &'static str {
        match self {
            Route::PostMessage => "/v1/messages",
            Route::History(_) => "/v1/conversations/{conversation_id}/messages",
            Route::Conversations => "/v1/conversations",
            Route::TakeOver(_) => "/v1/conversations/{conversation_id}/takeover",
            Route::Release(_) => "/v1/conversations/{conversation_id}/release",
            Route::Resolve(_) => "/v1/conversations/{conversation_id}/resolve",
            Route::AgentMessage(_) => "/v1/conversations/{conversation_id}/agent-messages",
            Route::EraseCustomer(_) => "/v1/customers/{customer_id}",
            Route::Handoffs => "/v1/handoffs",
        }
    }

    /// The conversation the path names, if it is shaped like one (a ULID, never personal).
    fn conversation(&self) -> Option<&str> {
        match self {
            Route::History(id)
            | Route::TakeOver(id)
            | Route::Release(id)
            | Route::Resolve(id)
            | Route::AgentMessage(id) => Some(*id).filter(|id| is_valid_conversation_id(id)),
            _ => None,
        }
    }
}

/// The route a path names, and the one method it serves.
fn parse(path: &str) -> Option<(Route<'_>, &'static str)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    Some(match segments.as_slice() {
        ["v1", "messages"] => (Route::PostMessage, "POST"),
        ["v1", "conversations"] => (Route::Conversations, "GET"),
        ["v1", "conversations", id, "messages"] => (Route::History(id), "GET"),
        ["v1", "conversations", id, "takeover"] => (Route::TakeOver(id), "POST"),
        ["v1", "conversations", id, "release"] => (Route::Release(id), "POST"),
        ["v1", "conversations", id, "resolve"] => (Route::Resolve(id), "POST"),
        ["v1", "conversations", id, "agent-messages"] => (Route::AgentMessage(id), "POST"),
        ["v1", "customers", id] => (Route::EraseCustomer(id), "DELETE"),
        ["v1", "handoffs"] => (Route::Handoffs, "GET"),
        _ => return None,
    })
}

fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, ApiError> {
    let (route, allowed) =
        parse(path).ok_or_else(|| ApiError::NotFound(format!("no route for {path}")))?;
    if method != allowed {
        return Err(ApiError::MethodNotAllowed {
            detail: format!("{path} accepts {allowed} only"),
            allow: allowed,
        });
    }
    Ok(route)
}

/// The queue `GET /v1/handoffs` lists: `state=waiting` (the default) or `with_agent`.
fn parse_handoff_state(event: &HttpEvent) -> Result<crate::handoff::HandoffState, ApiError> {
    match event.query("state") {
        None => Ok(crate::handoff::HandoffState::Waiting),
        Some(v) => crate::handoff::HandoffState::parse_queue(&v).ok_or_else(|| {
            ApiError::BadRequest("state must be \"waiting\" or \"with_agent\"".into())
        }),
    }
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
    pub fn new(verifier: JwtVerifier, turns: TurnService, limiter: RateLimiter) -> Self {
        Self {
            verifier,
            turns,
            limiter,
            cors: crate::cors::Cors::default(),
        }
    }

    /// Answers browsers on these sites' origins (the widget's, the console's).
    pub fn with_cors(mut self, cors: crate::cors::Cors) -> Self {
        self.cors = cors;
        self
    }

    pub async fn handle(&self, event: HttpEvent) -> HttpResponse {
        let mut response = self.respond(&event).await;
        self.cors.decorate(&event, &mut response);
        response
    }

    async fn respond(&self, event: &HttpEvent) -> HttpResponse {
        // A preflight is answered before the route and the token: it carries none.
        if parse(event.path()).is_some() {
            if let Some(preflight) = self.cors.preflight(event) {
                return preflight;
            }
        }
        let started = std::time::Instant::now();
        let mut turn = None;
        let (result, io) = io_clock::measure(self.dispatch(event, &mut turn)).await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if e.status() >= 500 {
                    tracing::error!(error = %e, "request failed");
                }
                HttpResponse::error(&e, Some(event.path()))
            }
        };
        let elapsed = started.elapsed();
        let facts = turn.as_ref().map(|(_, f): &(String, TurnFacts)| f);
        let named = parse(event.path()).map(|(r, _)| r);
        // One line per request, whatever it was; a turn adds what it understood and how it
        // ended. The text of messages is never logged, nor the path: its route and ids are.
        tracing::info!(
            request_id = %event.request_context.request_id,
            method = %event.method(),
            route = named.as_ref().map_or("unmatched", Route::template),
            status = response.status_code,
            elapsed_us = elapsed.as_micros() as u64,
            io_us = io.as_micros() as u64,
            conversation = turn
                .as_ref()
                .map(|(c, _)| c.as_str())
                .or_else(|| named.as_ref().and_then(Route::conversation)),
            intent = facts.map(|f| f.intent.name()),
            confidence = facts.map(|f| f.confidence),
            outcome = facts.map(|f| f.ending.as_str()),
            "chat request"
        );
        if let Some(f) = facts {
            turn_metrics(f, elapsed, elapsed.saturating_sub(io));
        }
        response
    }

    /// The request's JSON body, within the size limit.
    fn json_body<T: DeserializeOwned>(&self, event: &HttpEvent) -> Result<T, ApiError> {
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
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }

    /// Serves the request; a customer's turn leaves its conversation and facts in `turn`.
    async fn dispatch(
        &self,
        event: &HttpEvent,
        turn: &mut Option<(String, TurnFacts)>,
    ) -> Result<HttpResponse, ApiError> {
        let route = route(event.method(), event.path())?;
        // Authentication comes before the body is read: an anonymous caller learns nothing else.
        let who = self
            .verifier
            .verify_header(event.header("authorization"))
            .await?;
        // Then the caller's rate, before any work is done for them.
        if let Err(wait) = self
            .limiter
            .check(&format!("{}#{}", who.tenant, who.customer_id))
        {
            tracing::info!(role = who.role.as_str(), "rate limited");
            return Err(ApiError::TooManyRequests {
                detail: "too many requests; slow down".into(),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u32,
            });
        }
        match route {
            Route::PostMessage => {
                let req: PostMessage = self.json_body(event)?;
                let reply = self.turns.post(&who, req).await?;
                *turn = Some((reply.conversation_id.clone(), reply.facts.clone()));
                Ok(HttpResponse::json(200, &reply))
            }
            Route::History(id) => {
                let after = match event.query("after") {
                    None => 0,
                    Some(v) => v.parse::<u64>().map_err(|_| {
                        ApiError::BadRequest("after must be a message seq (a whole number)".into())
                    })?,
                };
                let page = self
                    .turns
                    .history_page(&who, id, after, parse_limit(event)?)
                    .await?;
                Ok(HttpResponse::json(
                    200,
                    &MessagesPage {
                        messages: page.messages,
                        next_after: page.next_after,
                        handoff: page.conversation.handoff.state(),
                        // Held by an agent, a job's answer goes to them: nobody is typing for
                        // the customer.
                        working: !page.conversation.handoff.is_with_agent()
                            && page
                                .conversation
                                .slots
                                .is_answering(time::OffsetDateTime::now_utc()),
                        channel: page.conversation.channel.as_ref().map(|c| ChannelInfo {
                            name: c.channel.clone(),
                            provider: c.provider,
                            verified: c.linked,
                        }),
                    },
                ))
            }
            Route::Conversations => {
                let customer = event.query("customer_id");
                let conversations = self
                    .turns
                    .conversations(&who, customer.as_deref(), parse_limit(event)?)
                    .await?;
                Ok(HttpResponse::json(200, &ConversationList { conversations }))
            }
            Route::TakeOver(id) | Route::Release(id) | Route::Resolve(id) => {
                let change = match route {
                    Route::TakeOver(_) => HandoffChange::TakeOver,
                    Route::Release(_) => HandoffChange::Release,
                    _ => HandoffChange::Resolve,
                };
                let summary = self.turns.change_handoff(&who, id, change).await?;
                Ok(HttpResponse::json(200, &summary))
            }
            Route::Handoffs => {
                // The role first (a customer learns nothing of the query's rules), then the
                // query, before the queue is read: bad input reads nothing.
                crate::access::require(&who, crate::access::Action::ListHandoffs, "")?;
                let (state, limit) = (parse_handoff_state(event)?, parse_limit(event)?);
                let handoffs = self.turns.handoffs(&who, state, limit).await?;
                Ok(HttpResponse::json(200, &HandoffQueue { handoffs }))
            }
            Route::AgentMessage(id) => {
                let req: AgentMessage = self.json_body(event)?;
                let reply = self.turns.agent_reply(&who, id, req).await?;
                Ok(HttpResponse::json(200, &reply))
            }
            Route::EraseCustomer(raw) => {
                // Ids may hold '@' and ':', which clients percent-encode in a path.
                let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
                let customer_id = decoded.as_ref();
                let erasure = self.turns.erase_customer(&who, customer_id).await?;
                Ok(HttpResponse::json(
                    200,
                    &Erased {
                        customer_id,
                        erasure,
                    },
                ))
            }
        }
    }
}

/// A turn the dialogue answered: its latency (by intent), the project's own share of it, the
/// intent's confidence, and whether it was an exit (fallback, handoff). A replayed message or
/// one an agent holds ran no dialogue and is not counted.
fn turn_metrics(f: &TurnFacts, elapsed: Duration, own: Duration) {
    if matches!(f.ending, Ending::Replayed | Ending::WithAgent) {
        return;
    }
    let flag = |e: Ending| if f.ending == e { 1.0 } else { 0.0 };
    metrics::emit(
        &[("Intent", f.intent.name())],
        &[
            Directive {
                sets: &[&[], &["Intent"]],
                metrics: &[("TurnLatency", Unit::Milliseconds, metrics::millis(elapsed))],
            },
            Directive {
                sets: &[&["Intent"]],
                metrics: &[("IntentConfidence", Unit::None, f64::from(f.confidence))],
            },
            Directive {
                sets: &[&[]],
                metrics: &[
                    ("TurnOverhead", Unit::Microseconds, own.as_micros() as f64),
                    ("Fallback", Unit::Count, flag(Ending::Fallback)),
                    ("Handoff", Unit::Count, flag(Ending::Handoff)),
                ],
            },
        ],
    );
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
        assert!(matches!(
            route("DELETE", "/v1/customers/cust_1"),
            Ok(Route::EraseCustomer("cust_1"))
        ));
    }

    #[test]
    fn requests_are_logged_by_route_not_path() {
        for (method, template) in ROUTES {
            let path = template
                .replace("{conversation_id}", "01J00000000000000000000000")
                .replace("{customer_id}", "alice%40example.com");
            let (r, _) = parse(&path).unwrap();
            assert_eq!(r.template(), *template, "{method} {path}");
        }
        let (r, _) = parse("/v1/conversations/alice@example.com/messages").unwrap();
        assert_eq!(r.conversation(), None, "not a conversation id: not logged");
    }

    #[test]
    fn every_listed_route_is_served_and_only_with_its_method() {
        for (method, template) in ROUTES {
            let path = template
                .replace("{conversation_id}", "01J00000000000000000000000")
                .replace("{customer_id}", "cust_1");
            assert!(route(method, &path).is_ok(), "{method} {path}");
            for other in ["GET", "POST", "DELETE", "PUT"] {
                let served = ROUTES.iter().any(|(m, t)| *m == other && t == template);
                assert_eq!(route(other, &path).is_ok(), served, "{other} {path}");
            }
        }
    }
}
