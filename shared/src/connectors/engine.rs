//! Runs the operations of a connector file: builds each request from its templates, sends it
//! on the container's one HTTP client with the system's credentials, retries what is safe to
//! retry within the turn's deadline, keeps a circuit breaker per system, and maps the answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json_borrow::Value as Json;
use tokio::time::Instant;
use url::Url;

use super::auth::{Credential, Credentials, SecretCache};
use super::catalog::{Op, Returns};
use super::config::{Body, ConnectorsConfig, DeclaredOps, OperationConfig, SystemConfig};
use super::mapping::Mapping;
use super::record::Record;
use super::resilience::{self, Breaker};
use super::template::{lookup, push_path_segment, Inputs};
use super::ConnectorError;
use crate::io_clock::IoFutureExt;
use crate::metrics::{self, Directive, Unit};
use crate::secrets::SecretSource;

/// One client per container: its connection pool is reused across invocations of a warm
/// function. Each request sets its operation's own timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .pool_idle_timeout(Duration::from_secs(60))
        .https_only(false)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with only timeouts and a user agent always builds")
}

/// How long init waits for a token endpoint.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(3);

/// What a successful call gave back: records in our own shape (see `catalog::Shape`), read as
/// `T` (a port's typed record; `serde_json::Value` for tests and tools).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T = Value> {
    /// `Returns::One` found nothing (HTTP 404, or `null` where the record should be).
    Absent,
    One(T),
    Many(Vec<T>),
    Done,
}

impl<T> Reply<T> {
    /// Which kind of reply, for errors (the records themselves may be customer data).
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Absent => "nothing found",
            Reply::One(_) => "one record",
            Reply::Many(_) => "a list",
            Reply::Done => "done",
        }
    }
}

struct System {
    config: SystemConfig,
    credentials: Credentials,
    breaker: Breaker,
}

/// Every configured system, ready to call. Built once per container.
pub struct Connectors {
    systems: BTreeMap<&'static str, System>,
    /// Every configured operation by its name, for callers that have only the name (flows).
    by_name: BTreeMap<&'static str, Op>,
    /// What the files declare for the company's own systems, those that are off included.
    declared: DeclaredOps,
    client: reqwest::Client,
    secrets: SecretCache,
}

/// A transport error in a few words (reqwest's own `Display` can repeat the URL, whose query
/// may hold an API key).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off".into()
    } else {
        "request failed".into()
    }
}

/// How one attempt ended.
enum Attempt<T> {
    Answer(Reply<T>),
    /// Worth another attempt, after `wait` if the system said so.
    Transient {
        error: ConnectorError,
        wait: Option<Duration>,
        /// The system was reached (429 or a GraphQL throttle): it is up, only busy.
        up: bool,
    },
    /// Final: the system answered and said no, or answered something we cannot read.
    Final(ConnectorError),
    /// The OAuth2 token was refused; get another and try again once.
    Reauthenticate,
}

impl<T> Attempt<T> {
    /// The request or its answer broke off: the system may be down.
    fn transport(system: &'static str, op: Op, e: &reqwest::Error) -> Self {
        Attempt::Transient {
            error: ConnectorError::Unavailable {
                system,
                detail: format!("{op}: {}", describe(e)),
            },
            wait: None,
            up: false,
        }
    }
}

impl Connectors {
    pub fn new(
        config: ConnectorsConfig,
        client: reqwest::Client,
        secrets: Arc<dyn SecretSource>,
        secrets_ttl: Duration,
    ) -> Self {
        let by_name = config
            .systems
            .values()
            .flat_map(|s| s.operations.keys())
            .map(|op| (op.name(), *op))
            .collect();
        let declared = config.declared;
        let systems = config
            .systems
            .into_iter()
            .map(|(name, config)| {
                let breaker = Breaker::new(config.circuit_failures, config.circuit_open);
                (
                    name,
                    System {
                        credentials: Credentials::new(config.auth.clone()),
                        config,
                        breaker,
                    },
                )
            })
            .collect();
        Self {
            systems,
            by_name,
            declared,
            client,
            secrets: SecretCache::new(secrets, secrets_ttl),
        }
    }

    pub fn has(&self, op: Op) -> bool {
        self.lookup(op).is_some()
    }

    /// The operations the files declare for the company's own systems (a system that is off
    /// included: its flows are still valid, its calls fail as unavailable).
    pub fn declared(&self) -> &DeclaredOps {
        &self.declared
    }

    /// What the orders system's ids look like, if its file says (`order_ids`).
    pub fn order_ids(&self) -> Option<&crate::order_ids::OrderIdFormat> {
        self.systems.get("orders")?.config.order_ids.as_ref()
    }

    /// A configured operation by its name (`orders.get_status`, `boxes.get_subscription`).
    pub fn find(&self, name: &str) -> Option<Op> {
        self.by_name.get(name).copied()
    }

    /// True if `op`'s request uses the input `name` (so the caller knows to look it up).
    pub fn uses(&self, op: Op, name: &str) -> bool {
        self.lookup(op).is_some_and(|(_, o)| o.uses(name))
    }

    fn lookup(&self, op: Op) -> Option<(&System, &OperationConfig)> {
        let s = self.systems.get(op.system())?;
        Some((s, s.config.operations.get(&op)?))
    }

    /// Reads every system's credentials now, so a missing secret shows in the init log rather
    /// than in a customer's first turn. Failures are logged, not fatal: the call retries.
    pub async fn warm_up(&self) {
        // All systems at once: each may be a secret read or a token request, and one after
        // another they added up in the cold start.
        let ready = self.systems.iter().map(|(name, s)| async move {
            let ready = s
                .credentials
                .credential(name, &self.secrets, &self.client, WARM_UP_TIMEOUT)
                .await;
            (name, ready)
        });
        for (name, ready) in futures_util::future::join_all(ready).await {
            if let Err(e) = ready {
                tracing::error!(system = name, error = %e, "connector credentials not ready");
            }
        }
    }

    pub fn is_open(&self, system: &str) -> bool {
        self.systems
            .get(system)
            .is_some_and(|s| s.breaker.is_open())
    }

    /// Calls `op` with `inputs`: the answer mapped into our shape, as JSON.
    pub async fn call(&self, op: Op, inputs: Inputs<'_>) -> Result<Reply, ConnectorError> {
        self.call_as(op, inputs).await
    }

    /// Calls `op` with `inputs`: the answer mapped into our shape and read as `T`.
    pub async fn call_as<T: DeserializeOwned>(
        &self,
        op: Op,
        inputs: Inputs<'_>,
    ) -> Result<Reply<T>, ConnectorError> {
        let started = Instant::now();
        let result = self.call_with_retries(op, inputs).await;
        // The whole call as the flow waited for it (retries and backoff included), by system:
        // `ConnectorError` is 0 or 1 per call, so its average is the error rate.
        let system = op.system();
        metrics::emit(
            &[("System", system)],
            &[Directive {
                sets: &[&["System"]],
                metrics: &[
                    (
                        "ConnectorLatency",
                        Unit::Milliseconds,
                        metrics::millis(started.elapsed()),
                    ),
                    (
                        "ConnectorError",
                        Unit::Count,
                        if result.is_err() { 1.0 } else { 0.0 },
                    ),
                ],
            }],
        );
        result
    }

    async fn call_with_retries<T: DeserializeOwned>(
        &self,
        op: Op,
        inputs: Inputs<'_>,
    ) -> Result<Reply<T>, ConnectorError> {
        let system_name = op.system();
        let (system, operation) = self.lookup(op).ok_or(ConnectorError::Misconfigured {
            system: system_name,
            detail: format!("{op} is not configured"),
        })?;
        let permit = system
            .breaker
            .admit()
            .map_err(|_| ConnectorError::Unavailable {
                system: system_name,
                detail: "circuit open after repeated failures".into(),
            })?;
        let mut retries_left = operation.retries;
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let credential = system
                .credentials
                .credential(system_name, &self.secrets, &self.client, operation.timeout)
                .await?;
            let request = self.request(system, operation, inputs, &credential)?;
            let started = Instant::now();
            let outcome = self.attempt(system, operation, request).await;
            tracing::debug!(
                operation = op.name(),
                attempt,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "connector attempt"
            );
            let (error, wait) = match outcome {
                Attempt::Answer(reply) => {
                    permit.success();
                    return Ok(reply);
                }
                Attempt::Final(e) => {
                    permit.success();
                    return Err(e);
                }
                Attempt::Reauthenticate if !reauthenticated => {
                    // The request was refused unread, so sending it again is safe whatever it is.
                    system.credentials.reject(&credential).await;
                    reauthenticated = true;
                    continue;
                }
                Attempt::Reauthenticate => {
                    permit.success();
                    return Err(ConnectorError::Rejected {
                        system: system_name,
                        status: 401,
                        detail: format!("{op}: a fresh token was refused too"),
                    });
                }
                Attempt::Transient { error, wait, up } => {
                    let wait = match wait {
                        // A wait longer than we may spend is not waited: the caller hears now.
                        Some(w) if w > system.config.max_retry_after => {
                            retries_left = 0;
                            w
                        }
                        Some(w) => w,
                        None => resilience::backoff(system.config.backoff, attempt),
                    };
                    if retries_left == 0 || !resilience::fits(wait) {
                        if up {
                            permit.success();
                        } else {
                            permit.failure();
                        }
                        return Err(error);
                    }
                    (error, wait)
                }
            };
            tracing::info!(operation = op.name(), attempt, error = %error, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).io().await;
            retries_left -= 1;
            attempt += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        system: &System,
        operation: &OperationConfig,
        request: reqwest::Request,
    ) -> Attempt<T> {
        let name = system.config.name;
        let op = operation.op;
        let resp = match self.client.execute(request).io().await {
            Ok(r) => r,
            Err(e) => return Attempt::transport(name, op, &e),
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            401 if system.credentials.is_oauth2() => return Attempt::Reauthenticate,
            // A 404 is "no such record" only where the path names one (`/orders/{order_id}`);
            // elsewhere (a collection, a GraphQL endpoint) it means the URL is wrong, and
            // reading it as "no orders" would hide that.
            404 if !names_a_record(operation) => {
                return Attempt::Final(ConnectorError::Rejected {
                    system: name,
                    status,
                    detail: format!("{op}: HTTP 404 (is the base URL right?)"),
                })
            }
            404 => {
                return match op.returns() {
                    Returns::One(_) => Attempt::Answer(Reply::Absent),
                    Returns::Many(_) => Attempt::Answer(Reply::Many(Vec::new())),
                    Returns::Nothing => Attempt::Final(ConnectorError::Rejected {
                        system: name,
                        status,
                        detail: format!("{op}: not found"),
                    }),
                }
            }
            429 => {
                let wait = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| resilience::retry_after(v, time::OffsetDateTime::now_utc()));
                return Attempt::Transient {
                    error: ConnectorError::Unavailable {
                        system: name,
                        detail: match wait {
                            Some(w) => format!("{op}: rate limited; retry after {} s", w.as_secs()),
                            None => format!("{op}: rate limited"),
                        },
                    },
                    wait,
                    up: true,
                };
            }
            500..=599 => {
                return Attempt::Transient {
                    error: ConnectorError::Unavailable {
                        system: name,
                        detail: format!("{op}: HTTP {status}"),
                    },
                    wait: None,
                    up: false,
                }
            }
            // The body is not kept: error pages can echo what was sent, customer data included.
            _ => {
                return Attempt::Final(ConnectorError::Rejected {
                    system: name,
                    status,
                    detail: format!("{op}: HTTP {status}"),
                })
            }
        }
        let bytes = match resp.bytes().io().await {
            Ok(b) => b,
            Err(e) => return Attempt::transport(name, op, &e),
        };
        match read(name, operation, &bytes) {
            Ok(reply) => Attempt::Answer(reply),
            Err(e @ ConnectorError::Unavailable { .. }) => Attempt::Transient {
                error: e,
                wait: None,
                up: true,
            },
            Err(e) => Attempt::Final(e),
        }
    }

    /// The request for one attempt: URL from the base and the path and query templates, the
    /// system's and the operation's headers, the credential, the body.
    fn request(
        &self,
        system: &System,
        operation: &OperationConfig,
        inputs: Inputs<'_>,
        credential: &Credential,
    ) -> Result<reqwest::Request, ConnectorError> {
        let name = system.config.name;
        let op = operation.op;
        let bad = |detail: String| ConnectorError::Misconfigured {
            system: name,
            detail: format!("{op}: {detail}"),
        };
        let mut url = String::with_capacity(160);
        url.push_str(system.config.base_url.as_str());
        if let Credential::PathSegment(segment) = credential {
            while url.ends_with('/') {
                url.pop();
            }
            url.push('/');
            url.push_str(segment.expose());
        }
        if let Some(path) = &operation.path {
            // URLs treat "%2E%2E" as "..", however escaped: such an input would climb out of
            // its place in the path, so it is refused. No real id is only dots.
            // An empty one would name the collection instead of a record.
            if let Some(v) = path.vars().find(|v| {
                lookup(inputs, v)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.bytes().all(|b| b == b'.'))
            }) {
                return Err(ConnectorError::Rejected {
                    system: name,
                    status: 400,
                    detail: format!("{op}: `{v}` cannot be empty or only dots"),
                });
            }
            while url.ends_with('/') {
                url.pop();
            }
            path.render_with(inputs, &mut url, push_path_segment)
                .map_err(bad)?;
        }
        let mut url = Url::parse(&url).map_err(|e| bad(e.to_string()))?;
        if !operation.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, t) in &operation.query {
                if let Some(v) = t.render(inputs).map_err(bad)? {
                    q.append_pair(k, &v);
                }
            }
        }
        let mut req = self
            .client
            .request(operation.method.clone(), url)
            .timeout(operation.timeout);
        for (n, v) in &system.config.headers {
            req = req.header(n, v);
        }
        for (n, t) in &operation.headers {
            if let Some(v) = t.render(inputs).map_err(bad)? {
                let v = http::HeaderValue::try_from(v)
                    .map_err(|_| bad(format!("header {n}: not a valid value")))?;
                req = req.header(n, v);
            }
        }
        req = credential.apply(req);
        req = match &operation.body {
            Body::None => req,
            Body::Json(t) => req.json(&t.render(inputs).map_err(bad)?.unwrap_or(Value::Null)),
            Body::Form(fields) => {
                let mut pairs = Vec::with_capacity(fields.len());
                for (k, t) in fields {
                    if let Some(v) = t.render(inputs).map_err(bad)? {
                        pairs.push((k.as_str(), v));
                    }
                }
                req.form(&pairs)
            }
            Body::GraphQl {
                variables, encoded, ..
            } => {
                // The query is escaped once, at load; only the variables are rendered here.
                let mut body = Vec::with_capacity(encoded.len() + 64);
                body.extend_from_slice(encoded.as_bytes());
                if let Some(v) = variables {
                    let v = v.render(inputs).map_err(bad)?.unwrap_or(Value::Null);
                    body.extend_from_slice(b",\"variables\":");
                    serde_json::to_writer(&mut body, &v).map_err(|e| bad(e.to_string()))?;
                }
                body.push(b'}');
                req.body(body)
            }
        };
        let mut request = req.build().map_err(|e| bad(describe(&e)))?;
        if matches!(operation.body, Body::GraphQl { .. }) {
            // As `RequestBuilder::json` does: a content type the file sets is kept.
            request
                .headers_mut()
                .entry(http::header::CONTENT_TYPE)
                .or_insert(http::HeaderValue::from_static("application/json"));
        }
        Ok(request)
    }

    /// Builds `op`'s request without sending it (benchmarks and tests). Credentials are left
    /// off: fetching them is I/O.
    pub fn prepare(&self, op: Op, inputs: Inputs<'_>) -> Result<reqwest::Request, ConnectorError> {
        let (system, operation) = self.lookup(op).ok_or(ConnectorError::Misconfigured {
            system: op.system(),
            detail: format!("{op} is not configured"),
        })?;
        self.request(system, operation, inputs, &Credential::None)
    }

    /// Maps an answer's bytes as `op` would, read as `T` (benchmarks and tests).
    pub fn read<T: DeserializeOwned>(
        &self,
        op: Op,
        bytes: &[u8],
    ) -> Result<Reply<T>, ConnectorError> {
        let (system, operation) = self.lookup(op).ok_or(ConnectorError::Misconfigured {
            system: op.system(),
            detail: format!("{op} is not configured"),
        })?;
        read(system.config.name, operation, bytes)
    }
}

/// True for a REST operation whose path holds an input: its 404 means "no such record".
fn names_a_record(operation: &OperationConfig) -> bool {
    !matches!(operation.body, Body::GraphQl { .. })
        && operation
            .path
            .as_ref()
            .is_some_and(|p| p.vars().next().is_some())
}

fn field<'v, 'a>(v: &'v Json<'a>, name: &str) -> Option<&'v Json<'a>> {
    v.as_object()?.get(name)
}

/// GraphQL error codes that mean "later", not "never" (Shopify's cost throttle among them).
const TRANSIENT_GRAPHQL_CODES: &[&str] =
    &["THROTTLED", "INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"];

fn read<T: DeserializeOwned>(
    system: &'static str,
    operation: &OperationConfig,
    bytes: &[u8],
) -> Result<Reply<T>, ConnectorError> {
    let op = operation.op;
    let graphql = matches!(operation.body, Body::GraphQl { .. });
    let nothing;
    let mapping = match &operation.mapping {
        Some(m) => m,
        // A REST answer with nothing to read is done at 2xx; a GraphQL one still says in
        // `errors` whether the mutation happened.
        None if !graphql => return Ok(Reply::Done),
        None => {
            nothing = Mapping::default();
            &nothing
        }
    };
    let malformed = |detail: String| ConnectorError::Malformed {
        system,
        detail: format!("{op}: {detail}"),
    };
    // Parsed borrowing its text: the mapping copies only what the typed record keeps.
    let answer: Json = serde_json::from_slice(bytes)
        .map_err(|e| malformed(format!("the answer is not JSON ({e})")))?;
    if graphql {
        // GraphQL reports failures in `errors`, usually on HTTP 200.
        if let Some(errors) = field(&answer, "errors").and_then(|e| e.as_array()) {
            if !errors.is_empty() {
                let code = |e: &Json| {
                    field(e, "extensions")
                        .and_then(|x| field(x, "code"))
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                };
                // The message is the vendor's and may quote the request back ("no customer
                // with email ..."): it reaches the logs through the error, so personal data
                // is taken out here, before the cut (half an email is still one).
                let first = field(&errors[0], "message")
                    .and_then(|m| m.as_str())
                    .map(crate::redact::redact)
                    .unwrap_or("(no message)".into())
                    .chars()
                    .take(200)
                    .collect::<String>();
                if errors
                    .iter()
                    .filter_map(code)
                    .any(|c| TRANSIENT_GRAPHQL_CODES.contains(&c.as_str()))
                {
                    return Err(ConnectorError::Unavailable {
                        system,
                        detail: format!("{op}: GraphQL: {first}"),
                    });
                }
                return Err(ConnectorError::Rejected {
                    system,
                    status: 200,
                    detail: format!("{op}: GraphQL errors ({}): {first}", errors.len()),
                });
            }
        }
    }
    let typed = |r: &Record| r.read::<T>().map_err(|e| malformed(e.to_string()));
    match op.returns() {
        Returns::One(_) => Ok(match mapping.one(&answer).map_err(malformed)? {
            Some(r) => Reply::One(typed(&r)?),
            None => Reply::Absent,
        }),
        Returns::Many(_) => Ok(Reply::Many(
            mapping
                .many(&answer)
                .map_err(malformed)?
                .iter()
                .map(typed)
                .collect::<Result<_, _>>()?,
        )),
        Returns::Nothing => Ok(Reply::Done),
    }
}
