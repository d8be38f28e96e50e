//! Connector files (`config/connectors.toml`): per system a base URL, auth, limits and the
//! operations the flows call, as REST or GraphQL requests with response mappings. Validated
//! when loaded; every error names the file, the field and what is wrong.
//!
//! `${NAME}` in a `base_url` is read from the environment when the file is loaded, so one file
//! serves every stage; a system marked `optional = true` whose variables are unset is off.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::catalog::{Declared, Field, Input, Kind, Op, Returns, Shape, IDEMPOTENCY_KEY};
use super::mapping::Mapping;
use super::template::{JsonTemplate, Template};
use crate::order_ids::{OrderIdFormat, OrderIdSpec};
use crate::secrets::SecretRef;

/// The configuration compiled into the functions: the demo systems' shapes, with base URLs from
/// the environment (the template's `OrdersApiUrl`, … parameters).
pub const BUNDLED: &str = include_str!("../../../config/connectors.toml");
pub const BUNDLED_NAME: &str = "config/connectors.toml (bundled)";

/// Stands in for a base URL that is off or wrong while the rest of its system is checked.
const PLACEHOLDER_URL: &str = "https://placeholder.invalid";

/// Any longer and a turn's budget or a Lambda's timeout is the real limit anyway.
const MAX_TIMEOUT_MS: u64 = 30_000;
const MAX_RETRIES: u32 = 5;

/// The first problem of a file, with the line it is on, and every other problem found in the same
/// pass (`also`): an operator fixes a file in one go, not one error per deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorConfigError {
    pub file: String,
    /// 1-based, where the field (or the nearest table holding it) is written.
    pub line: Option<usize>,
    /// Dotted path of the offending field (`systems.orders.operations.get_status.path`).
    pub field: String,
    pub message: String,
    pub also: Vec<ConnectorConfigError>,
}

impl std::fmt::Display for ConnectorConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        for more in &self.also {
            write!(f, "\n{more}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectorConfigError {}

impl ConnectorConfigError {
    pub fn new(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: None,
            field: field.into(),
            message: message.into(),
            also: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    systems: BTreeMap<String, RawSystem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    base_url: String,
    #[serde(default)]
    optional: bool,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    backoff_ms: Option<u64>,
    max_retry_after_ms: Option<u64>,
    circuit_failures: Option<u32>,
    circuit_open_ms: Option<u64>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    operations: BTreeMap<String, RawOperation>,
    /// The orders system's: what its order ids look like (`{ prefix = "SO-", digits = 5 }`).
    order_ids: Option<OrderIdSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawAuth {
    #[default]
    None,
    ApiKey {
        header: Option<String>,
        query: Option<String>,
        secret: SecretRef,
        #[serde(default)]
        prefix: String,
    },
    Bearer {
        secret: SecretRef,
    },
    Basic {
        username: String,
        password: Option<SecretRef>,
    },
    /// The secret as a leading path segment (`/bot<token>/sendMessage`: Telegram's Bot API).
    PathToken {
        secret: SecretRef,
        #[serde(default)]
        prefix: String,
    },
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret: SecretRef,
        scope: Option<String>,
        audience: Option<String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// How an OAuth2 client presents its credentials to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Basic,
    Body,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<toml::Value>,
    form: Option<BTreeMap<String, String>>,
    graphql: Option<String>,
    variables: Option<toml::Value>,
    operation_name: Option<String>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    response: Option<RawResponse>,
    /// A declared operation's: "one", "many" or "nothing".
    returns: Option<String>,
    /// A declared operation's inputs: name = "required" | "optional".
    inputs: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    at: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    ApiKey {
        place: KeyPlace,
        secret: SecretRef,
        prefix: String,
    },
    Bearer {
        secret: SecretRef,
    },
    Basic {
        username: String,
        password: Option<SecretRef>,
    },
    /// `/<prefix><secret>` before every operation's path. The URL then holds a secret, so the
    /// engine never prints URLs (see `describe`).
    PathToken {
        secret: SecretRef,
        prefix: String,
    },
    OAuth2(OAuth2Config),
}

#[derive(Debug, Clone)]
pub enum KeyPlace {
    Header(http::HeaderName),
    Query(String),
}

#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: SecretRef,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(JsonTemplate),
    Form(Vec<(String, Template)>),
    GraphQl {
        query: String,
        variables: Option<JsonTemplate>,
        operation_name: Option<String>,
        /// The request body's constant part, serialised once at load: `{"query":…` and
        /// `"operationName":…`, without the closing brace (the variables go after it).
        encoded: String,
    },
}

#[derive(Debug, Clone)]
pub struct OperationConfig {
    pub op: Op,
    pub method: http::Method,
    /// Appended to the system's base URL; inputs in it are escaped as path segments.
    pub path: Option<Template>,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Body,
    pub timeout: Duration,
    /// Retries after the first attempt; zero unless the operation is safe to repeat.
    pub retries: u32,
    pub mapping: Option<Mapping>,
}

#[derive(Debug, Clone)]
pub struct SystemConfig {
    pub name: &'static str,
    pub base_url: Url,
    pub auth: Auth,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub backoff: Duration,
    pub max_retry_after: Duration,
    pub circuit_failures: u32,
    pub circuit_open: Duration,
    pub operations: BTreeMap<Op, OperationConfig>,
    /// The orders system's ids, when the file says what they look like: customers who write
    /// "88140" or "so88140" mean `SO-88140`.
    pub order_ids: Option<OrderIdFormat>,
}

#[derive(Debug, Clone)]
pub struct ConnectorsConfig {
    /// The file(s) it came from, for messages.
    pub source: String,
    pub systems: BTreeMap<&'static str, SystemConfig>,
    /// Optional systems left off because their variables are unset, with the variable.
    pub disabled: Vec<(&'static str, String)>,
    /// The operations the files declare for systems of the company's own, by name
    /// (`boxes.get_subscription`), those of systems that are off included: a flow that uses
    /// one is checked against what it takes and gives back wherever the system is reachable.
    pub declared: DeclaredOps,
}

/// The operations connector files declare for systems of the company's own, by name.
pub type DeclaredOps = BTreeMap<&'static str, Op>;

/// An operation by its name (`orders.get_status`, `boxes.pause_box`): one of `declared`, or a
/// built-in one.
pub fn find_op(name: &str, declared: &DeclaredOps) -> Option<Op> {
    if let Some(op) = declared.get(name) {
        return Some(*op);
    }
    let (system, operation) = name.split_once('.')?;
    Op::find(system, operation)
}

impl ConnectorsConfig {
    pub fn operation(&self, op: Op) -> Option<(&SystemConfig, &OperationConfig)> {
        let system = self.systems.get(op.system())?;
        Some((system, system.operations.get(&op)?))
    }

    pub fn has(&self, op: Op) -> bool {
        self.operation(op).is_some()
    }

    /// What the orders system's ids look like, if its file says (`order_ids`).
    pub fn order_ids(&self) -> Option<&OrderIdFormat> {
        self.systems.get("orders")?.order_ids.as_ref()
    }

    /// An operation by its name (`orders.get_status`, `boxes.pause_box`): a built-in one, or
    /// one the files declare.
    pub fn find(&self, name: &str) -> Option<Op> {
        find_op(name, &self.declared)
    }

    /// An error naming the operations `who` needs and the file lacks.
    pub fn require(&self, ops: &[Op], who: &str) -> Result<(), ConnectorConfigError> {
        let missing: Vec<&str> = ops
            .iter()
            .filter(|op| !self.has(**op))
            .map(|op| op.name())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let why = self
            .disabled
            .iter()
            .filter(|(s, _)| missing.iter().any(|m| m.starts_with(&format!("{s}."))))
            .map(|(s, v)| format!(" ({s} is off: {v} is not set)"))
            .collect::<String>();
        Err(ConnectorConfigError::new(
            self.source.clone(),
            "",
            format!("{who} needs {}{why}", missing.join(", ")),
        ))
    }
}

/// True for hosts a plain-`http` URL may name: this machine only.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `https` everywhere, plain `http` only to loopback (the local stack and test doubles).
pub fn check_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL end up in logs and in the checker's output: `auth` holds them.
        return Err("a URL cannot carry credentials (user:password@): use `auth`".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{raw:?}: plain http is only for loopback; use https"
        )),
        other => Err(format!("{raw:?}: scheme {other} is not http(s)")),
    }
}

/// Replaces `${NAME}` with the variable's value; `Err(NAME)` for the first one unset.
pub(crate) fn interpolate(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Result<String, String>> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Err(format!("unclosed `${{` in {raw:?}")))?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Err(format!(
                "`${{{name}}}` is not an environment variable name"
            )));
        }
        match env(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => out.push_str(v.trim()),
            None => return Err(Ok(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A header a file may set by value: never a credential, which would sit in the file in clear
/// and go out unmarked as sensitive; `auth` (with a secret reference) sends those.
fn plain_header(raw: &str) -> Result<http::HeaderName, String> {
    let name = header_name(raw)?;
    if [
        http::header::AUTHORIZATION,
        http::header::PROXY_AUTHORIZATION,
        http::header::COOKIE,
    ]
    .contains(&name)
    {
        return Err(format!(
            "{raw} carries credentials: use `auth` with a secret reference"
        ));
    }
    Ok(name)
}

fn header_name(raw: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(raw.as_bytes())
        .map_err(|_| format!("{raw:?} is not a header name"))
}

/// True when the GraphQL document's operation is a mutation (not safe to repeat blindly).
fn is_mutation(query: &str) -> bool {
    let mut rest = query;
    loop {
        rest = rest.trim_start();
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, r)| r),
            None => break,
        }
    }
    rest.starts_with("mutation")
}

struct Ctx<'a> {
    file: &'a str,
    /// Problems of parts already given up on (a system, an operation): reported with the first.
    found: std::cell::RefCell<Vec<ConnectorConfigError>>,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ConnectorConfigError {
        ConnectorConfigError::new(self.file, field, message)
    }

    /// Keeps a problem (and those it carries) and goes on with the next part of the file.
    fn note(&self, mut e: ConnectorConfigError) {
        let more = std::mem::take(&mut e.also);
        let mut found = self.found.borrow_mut();
        found.push(e);
        found.extend(more);
    }

    /// Several problems of one part as one error, the first carrying the others; `None` if
    /// there are none.
    fn all(&self, problems: Vec<ConnectorConfigError>) -> Option<ConnectorConfigError> {
        let mut flat = problems.into_iter().flat_map(|mut e| {
            let more = std::mem::take(&mut e.also);
            std::iter::once(e).chain(more)
        });
        let mut first = flat.next()?;
        first.also = flat.collect();
        Some(first)
    }

    /// All problems found, the first carrying the others, each with its line in `text`.
    fn finish(self, text: &str) -> Result<(), ConnectorConfigError> {
        let mut found = self.found.into_inner();
        for e in &mut found {
            e.line = crate::bot::error::line_of_key(text, &e.field);
        }
        found.sort_by_key(|e| e.line.unwrap_or(0));
        let mut all = found.into_iter();
        match all.next() {
            None => Ok(()),
            Some(mut first) => {
                first.also = all.collect();
                Err(first)
            }
        }
    }
}

/// Parses and validates one connector file. `env` answers `${NAME}` in base URLs.
pub fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ConnectorsConfig, ConnectorConfigError> {
    let cx = Ctx {
        file,
        found: Default::default(),
    };
    // The message and line only: toml's own rendering quotes the offending line, which may be
    // a secret pasted in place of its reference, and this error goes to the init log.
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let mut err = cx.err(String::new(), e.message().trim_end().to_string());
        err.line = e.span().map(|s| crate::bot::error::line_of(text, s.start));
        err
    })?;
    let mut systems = BTreeMap::new();
    let mut disabled = Vec::new();
    let mut declared = BTreeMap::new();
    for (name, sys) in raw.systems {
        let here = format!("systems.{name}");
        let built_in = Op::systems().find(|s| *s == name);
        let name = match built_in {
            Some(name) => name,
            // A system of the company's own declares what its operations return; one that
            // declares nothing is more likely a misspelt built-in one.
            None if sys.operations.values().any(|o| o.returns.is_some()) => {
                if !is_name(&name) {
                    cx.note(cx.err(here, NAME_RULE));
                    continue;
                }
                leak(name)
            }
            None => {
                let known: Vec<&str> = Op::systems().collect();
                cx.note(cx.err(
                    here,
                    format!(
                        "not a system the bot knows (built in: {}); a system of your own declares its operations, each with `returns`",
                        known.join(", ")
                    ),
                ));
                continue;
            }
        };
        match system(&cx, name, built_in.is_none(), sys, env, &mut declared) {
            Ok(Ok(s)) => {
                systems.insert(name, s);
            }
            Ok(Err(var)) => disabled.push((name, var)),
            Err(e) => cx.note(e),
        }
    }
    cx.finish(text)?;
    Ok(ConnectorsConfig {
        source: file.to_string(),
        systems,
        disabled,
        declared,
    })
}

const NAME_RULE: &str =
    "a name of your own is lowercase letters, digits and `_` (flows write `system.operation` and `into.field`)";

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Kept for the life of the process: see [`Declared`].
fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

/// True when an operation changes something in the system: a method other than GET (one with
/// a body and no method is a POST), or a GraphQL mutation.
fn is_write(raw: &RawOperation) -> bool {
    match (&raw.graphql, &raw.method) {
        (Some(query), _) => is_mutation(query),
        (None, Some(m)) => !m.eq_ignore_ascii_case("GET"),
        (None, None) => raw.body.is_some() || raw.form.is_some(),
    }
}

/// A declared operation: its `returns`, its `inputs` (plus `idempotency_key` for a write, which
/// must send it), and its response fields with their kinds, which are rewritten here into the
/// mapping the built-in operations use (a money field becomes `<name>.amount_cents` and
/// `<name>.currency`).
fn declare(
    cx: &Ctx<'_>,
    system: &'static str,
    operation: &str,
    field: &str,
    raw: &mut RawOperation,
) -> Result<Op, ConnectorConfigError> {
    let f = |k: &str| format!("{field}.{k}");
    if !is_name(operation) {
        return Err(cx.err(field.to_string(), NAME_RULE));
    }
    let write = is_write(raw);
    let mut inputs = Vec::new();
    for (name, need) in raw.inputs.iter().flatten() {
        let here = f(&format!("inputs.{name}"));
        if !is_name(name) {
            return Err(cx.err(here, NAME_RULE));
        }
        let required = match need.as_str() {
            "required" => true,
            "optional" => false,
            other => {
                return Err(cx.err(
                    here,
                    format!("{other:?}: an input is \"required\" or \"optional\""),
                ))
            }
        };
        inputs.push(Input {
            name: if name == IDEMPOTENCY_KEY {
                IDEMPOTENCY_KEY
            } else {
                leak(name.as_str())
            },
            required: required || name == IDEMPOTENCY_KEY,
        });
    }
    if write && !inputs.iter().any(|i| i.name == IDEMPOTENCY_KEY) {
        // Every write gets one from its job; it need not be listed, only sent.
        inputs.push(Input {
            name: IDEMPOTENCY_KEY,
            required: true,
        });
    }
    let shape = match &mut raw.response {
        Some(r) => Shape::Declared(declared_fields(cx, &f("response.fields"), &mut r.fields)?),
        None => Shape::Declared(&[]),
    };
    let returns = match raw.returns.as_deref() {
        Some("one") => Returns::One(shape),
        Some("many") => Returns::Many(shape),
        Some("nothing") => Returns::Nothing,
        Some(other) => {
            return Err(cx.err(
                f("returns"),
                format!("{other:?}: an operation returns \"one\" record, \"many\" or \"nothing\""),
            ))
        }
        None => {
            return Err(cx.err(
                f("returns"),
                "an operation of your own says what it returns: \"one\" record, \"many\" or \"nothing\"",
            ))
        }
    };
    if write && returns != Returns::Nothing {
        // A write is done once its system says 2xx: an answer we then failed to map would turn
        // a change that happened into "I couldn't make that change" and a handoff.
        return Err(cx.err(
            f("returns"),
            "a write returns \"nothing\": its success is the system's 2xx, not a record",
        ));
    }
    if matches!(
        returns,
        Returns::One(Shape::Declared(&[])) | Returns::Many(Shape::Declared(&[]))
    ) {
        return Err(cx.err(
            f("response"),
            "a read says which fields it gives back: `[…response]` with `fields.<name> = { pointer = …, kind = … }`",
        ));
    }
    Ok(Op::Declared(
        Declared {
            system,
            operation: leak(operation),
            name: leak(format!("{system}.{operation}")),
            inputs: Box::leak(inputs.into_boxed_slice()),
            returns,
        }
        .leak(),
    ))
}

const KINDS: &str = "text, integer, money, time, flag, status";

/// The fields of a declared record, each `{ pointer = "/plan", kind = "text" }` (plus what a
/// built-in field takes: `map`, `default`, `as`, `strip_prefix`, or `value` instead of a
/// pointer), and `required = true` for one the record cannot do without. Money is
/// `{ kind = "money", amount = "/price/cents", currency = "/price/currency" }` (`as = "cents"`
/// for an amount in major units; `currency = { value = "EUR" }` for a fixed one). A status
/// lists the words flows compare it with in its `map`'s values.
fn declared_fields(
    cx: &Ctx<'_>,
    here: &str,
    fields: &mut BTreeMap<String, toml::Value>,
) -> Result<&'static [Field], ConnectorConfigError> {
    let mut out = Vec::new();
    let mut lowered = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, v) in std::mem::take(fields) {
        let at = format!("{here}.{name}");
        if !is_name(&name) {
            problems.push(cx.err(at, NAME_RULE));
            continue;
        }
        // One field's problem does not hide the next one's.
        if let Err(e) = declared_field(cx, &at, name, v, &mut out, &mut lowered) {
            problems.push(e);
        }
    }
    match cx.all(problems) {
        Some(e) => Err(e),
        None => {
            *fields = lowered;
            Ok(Box::leak(out.into_boxed_slice()))
        }
    }
}

/// One declared field into `out` (what flows read) and `lowered` (its mapping).
fn declared_field(
    cx: &Ctx<'_>,
    at: &str,
    name: String,
    v: toml::Value,
    out: &mut Vec<Field>,
    lowered: &mut BTreeMap<String, toml::Value>,
) -> Result<(), ConnectorConfigError> {
    let toml::Value::Table(mut t) = v else {
        return Err(cx.err(
            at,
            format!("say where it is and its kind: {{ pointer = \"/{name}\", kind = \"text\" }} (kinds: {KINDS})"),
        ));
    };
    let required = match t.remove("required") {
        None => false,
        Some(toml::Value::Boolean(b)) => b,
        Some(_) => return Err(cx.err(format!("{at}.required"), "is true or false")),
    };
    let kind = match t.remove("kind") {
        Some(toml::Value::String(k)) => k,
        Some(_) => return Err(cx.err(format!("{at}.kind"), format!("one of {KINDS}"))),
        None => {
            return Err(cx.err(
                at,
                format!("say what kind of value it is: `kind = \"text\"` ({KINDS})"),
            ))
        }
    };
    let kind = match kind.as_str() {
        "text" => Kind::Text,
        "integer" => Kind::Integer,
        "time" => Kind::Time,
        "flag" => Kind::Flag,
        "status" => {
            let Some(toml::Value::Table(map)) = t.get("map") else {
                return Err(cx.err(
                    at,
                    "a status names the words flows compare it with: `map = { ACTIVE = \"active\", … }`",
                ));
            };
            let mut words: Vec<&'static str> = Vec::new();
            for (k, w) in map {
                match w.as_str() {
                    Some(w) if is_name(w) && w != "unknown" => {
                        if !words.contains(&w) {
                            words.push(leak(w));
                        }
                    }
                    _ => {
                        return Err(cx.err(
                            format!("{at}.map.{k}"),
                            "a status is a word of lowercase letters, digits and `_` (flows compare it: s.status == 'active'), not `unknown` (what any other value reads as)",
                        ))
                    }
                }
            }
            Kind::Status(Box::leak(words.into_boxed_slice()))
        }
        "money" => {
            for k in t.keys() {
                if !["amount", "currency", "as", "default"].contains(&k.as_str()) {
                    return Err(cx.err(
                        format!("{at}.{k}"),
                        "money takes `amount` and `currency` (pointers), and `as = \"cents\"` or `default`",
                    ));
                }
            }
            let (Some(amount), Some(currency)) = (t.remove("amount"), t.remove("currency")) else {
                return Err(cx.err(
                    at,
                    "money says where its `amount` and `currency` are: { kind = \"money\", amount = \"/price/cents\", currency = \"/price/currency\" } (or currency = { value = \"EUR\" })",
                ));
            };
            let toml::Value::String(amount) = amount else {
                return Err(cx.err(format!("{at}.amount"), "a JSON pointer (\"/price/cents\")"));
            };
            t.insert("pointer".into(), toml::Value::String(amount));
            let cents = format!("{name}.amount_cents");
            let code = format!("{name}.currency");
            out.push(Field {
                name: leak(cents.as_str()),
                kind: Kind::Minor,
                required,
            });
            out.push(Field {
                name: leak(code.as_str()),
                kind: Kind::Text,
                required,
            });
            lowered.insert(cents, toml::Value::Table(t));
            lowered.insert(code, currency);
            return Ok(());
        }
        other => {
            return Err(cx.err(
                format!("{at}.kind"),
                format!("{other:?} is not a kind ({KINDS})"),
            ))
        }
    };
    out.push(Field {
        name: leak(name.as_str()),
        kind,
        required,
    });
    lowered.insert(name, toml::Value::Table(t));
    Ok(())
}

fn ms(
    cx: &Ctx<'_>,
    field: String,
    value: Option<u64>,
    default: u64,
    max: u64,
) -> Result<Duration, ConnectorConfigError> {
    let v = value.unwrap_or(default);
    if v == 0 || v > max {
        return Err(cx.err(field, format!("must be between 1 and {max}")));
    }
    Ok(Duration::from_millis(v))
}

/// The system, or (`Ok(Err(variable))`) an optional one that is off for want of `variable`.
fn system(
    cx: &Ctx<'_>,
    name: &'static str,
    own: bool,
    sys: RawSystem,
    env: &dyn Fn(&str) -> Option<String>,
    declared: &mut BTreeMap<&'static str, Op>,
) -> Result<Result<SystemConfig, String>, ConnectorConfigError> {
    let here = |f: &str| format!("systems.{name}.{f}");
    // A system whose variable is unset is off, not an error: a function is given only the URLs
    // of the systems it uses, and `require` names the variable when it needs one that is off.
    // The rest of the system is still checked, against a placeholder URL.
    let mut off = None;
    let base = match interpolate(&sys.base_url, env) {
        Ok(b) => b,
        Err(Ok(var)) => {
            if sys.optional {
                tracing::info!(system = name, variable = %var, "optional connector system is off: its variable is unset");
            } else {
                tracing::warn!(system = name, variable = %var, "connector system is off: its variable is unset");
            }
            off = Some(var);
            PLACEHOLDER_URL.to_string()
        }
        Err(Err(m)) => {
            cx.note(cx.err(here("base_url"), m));
            PLACEHOLDER_URL.to_string()
        }
    };
    // A bad URL is noted and the rest of the system still checked against a placeholder, so
    // one run names every problem of the file.
    let base_url = match check_url(&base) {
        Ok(url) if url.query().is_some() || url.fragment().is_some() => {
            cx.note(cx.err(
                here("base_url"),
                "takes no query or fragment (operations set their own `query`)",
            ));
            Url::parse(PLACEHOLDER_URL).expect("a valid URL")
        }
        Ok(url) => url,
        Err(m) => {
            cx.note(cx.err(here("base_url"), m));
            Url::parse(PLACEHOLDER_URL).expect("a valid URL")
        }
    };
    let default_timeout = sys.timeout_ms;
    ms(
        cx,
        here("timeout_ms"),
        default_timeout,
        1_000,
        MAX_TIMEOUT_MS,
    )?;
    let default_retries = sys.retries;
    if default_retries.is_some_and(|r| r > MAX_RETRIES) {
        return Err(cx.err(here("retries"), format!("at most {MAX_RETRIES}")));
    }
    let auth = match sys.auth {
        RawAuth::None => Auth::None,
        RawAuth::ApiKey {
            header,
            query,
            secret,
            prefix,
        } => {
            let place = match (header, query) {
                (Some(h), None) => {
                    KeyPlace::Header(header_name(&h).map_err(|m| cx.err(here("auth.header"), m))?)
                }
                (None, Some(q)) if !q.is_empty() => KeyPlace::Query(q),
                _ => {
                    return Err(cx.err(
                        here("auth"),
                        "an api_key goes in a `header` or a `query` parameter: name one",
                    ))
                }
            };
            Auth::ApiKey {
                place,
                secret,
                prefix,
            }
        }
        RawAuth::Bearer { secret } => Auth::Bearer { secret },
        RawAuth::PathToken { secret, prefix } => {
            if !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(cx.err(
                    here("auth.prefix"),
                    "a path token's prefix is letters, digits, `_` or `-`",
                ));
            }
            Auth::PathToken { secret, prefix }
        }
        RawAuth::Basic { username, password } => {
            // The account a deployment signs in as (Twilio's account SID) is its own, not the
            // file's: `${NAME}` reads it from the environment, as in base URLs.
            // Unset, the system is off like one whose base URL's variable is unset.
            let username = match interpolate(&username, env) {
                Ok(u) => u,
                Err(Ok(var)) => {
                    off.get_or_insert(var);
                    "placeholder".to_string()
                }
                Err(Err(m)) => return Err(cx.err(here("auth.username"), m)),
            };
            if username.contains(':') {
                return Err(cx.err(here("auth.username"), "a basic username cannot contain `:`"));
            }
            Auth::Basic { username, password }
        }
        RawAuth::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
            client_auth,
        } => {
            let token_url = interpolate(&token_url, env).map_err(|e| {
                cx.err(
                    here("auth.token_url"),
                    match e {
                        Ok(var) => format!("environment variable {var} is not set"),
                        Err(m) => m,
                    },
                )
            })?;
            Auth::OAuth2(OAuth2Config {
                token_url: check_url(&token_url).map_err(|m| cx.err(here("auth.token_url"), m))?,
                client_id,
                client_secret,
                scope,
                audience,
                client_auth,
            })
        }
    };
    // Only order ids are ever written by customers: on another system the key is a mistake.
    let order_ids = match sys.order_ids {
        None => None,
        Some(_) if name != "orders" => {
            cx.note(cx.err(
                here("order_ids"),
                "only the orders system says what its order ids look like",
            ));
            None
        }
        Some(spec) => {
            // Both keys' problems at once, each on its own line.
            let prefix = OrderIdFormat::check_prefix(&spec.prefix)
                .map_err(|m| cx.note(cx.err(here("order_ids.prefix"), m)));
            let digits = spec.digits.map_or(Ok(()), |n| {
                OrderIdFormat::check_digits(n)
                    .map_err(|m| cx.note(cx.err(here("order_ids.digits"), m)))
            });
            match (prefix, digits) {
                (Ok(()), Ok(())) => OrderIdFormat::try_from(spec).ok(),
                _ => None,
            }
        }
    };
    let mut headers = Vec::new();
    for (k, v) in &sys.headers {
        let n = plain_header(k).map_err(|m| cx.err(here(&format!("headers.{k}")), m))?;
        let v = http::HeaderValue::from_str(v)
            .map_err(|_| cx.err(here(&format!("headers.{k}")), "not a valid header value"))?;
        headers.push((n, v));
    }
    let mut operations = BTreeMap::new();
    for (op_name, mut raw) in sys.operations {
        let field = here(&format!("operations.{op_name}"));
        let op = if own {
            match declare(cx, name, &op_name, &field, &mut raw) {
                Ok(op) => op,
                Err(e) => {
                    cx.note(e);
                    continue;
                }
            }
        } else {
            let Some(op) = Op::find(name, &op_name) else {
                let known: Vec<&str> = Op::of_system(name).map(|o| o.operation()).collect();
                cx.note(cx.err(
                    field.clone(),
                    format!(
                        "not an operation of {name} (operations: {})",
                        known.join(", ")
                    ),
                ));
                continue;
            };
            if raw.returns.is_some() || raw.inputs.is_some() {
                cx.note(cx.err(
                    field.clone(),
                    format!("{op} is built in: what it takes and returns is fixed (drop `returns` and `inputs`)"),
                ));
                continue;
            }
            op
        };
        // One operation's problem does not hide the next one's.
        let checked = ms(
            cx,
            format!("{field}.timeout_ms"),
            raw.timeout_ms.or(default_timeout),
            1_000,
            MAX_TIMEOUT_MS,
        )
        .and_then(|timeout| operation(cx, &field, op, raw, timeout, default_retries))
        .and_then(|config| {
            // An input nothing sends is a typo or a leftover: a flow would fill it in vain.
            match op.inputs().iter().find(|i| own && !config.uses(i.name)) {
                Some(unused) => Err(cx.err(
                    format!("{field}.inputs.{}", unused.name),
                    format!("the request never uses `{{{}}}`", unused.name),
                )),
                None => Ok(config),
            }
        });
        match checked {
            Ok(config) => {
                if own {
                    declared.insert(op.name(), op);
                }
                operations.insert(op, config);
            }
            Err(e) => cx.note(e),
        }
    }
    let system = SystemConfig {
        name,
        base_url,
        auth,
        headers,
        backoff: ms(cx, here("backoff_ms"), sys.backoff_ms, 50, 10_000)?,
        max_retry_after: ms(
            cx,
            here("max_retry_after_ms"),
            sys.max_retry_after_ms,
            2_000,
            MAX_TIMEOUT_MS,
        )?,
        circuit_failures: match sys.circuit_failures.unwrap_or(5) {
            0 => return Err(cx.err(here("circuit_failures"), "must be at least 1")),
            n => n,
        },
        circuit_open: ms(
            cx,
            here("circuit_open_ms"),
            sys.circuit_open_ms,
            30_000,
            3_600_000,
        )?,
        operations,
        order_ids,
    };
    Ok(match off {
        Some(var) => Err(var),
        None => Ok(system),
    })
}

fn templates(
    cx: &Ctx<'_>,
    field: &str,
    raw: &BTreeMap<String, String>,
    inputs: &[Input],
) -> Result<Vec<(String, Template)>, ConnectorConfigError> {
    raw.iter()
        .map(|(k, v)| {
            Template::parse(v, inputs)
                .map(|t| (k.clone(), t))
                .map_err(|m| cx.err(format!("{field}.{k}"), m))
        })
        .collect()
}

fn operation(
    cx: &Ctx<'_>,
    field: &str,
    op: Op,
    mut raw: RawOperation,
    timeout: Duration,
    default_retries: Option<u32>,
) -> Result<OperationConfig, ConnectorConfigError> {
    // The answer's mapping is checked whatever is wrong with the request: both are reported.
    let mapping = response_mapping(cx, field, op, raw.response.take());
    match (
        request(cx, field, op, raw, timeout, default_retries),
        mapping,
    ) {
        (Ok(config), Ok(mapping)) => Ok(OperationConfig { mapping, ..config }),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(m)) => Err(cx.all(vec![e, m]).expect("two problems")),
    }
}

/// How the operation's answer maps to its record, every bad field named.
fn response_mapping(
    cx: &Ctx<'_>,
    field: &str,
    op: Op,
    response: Option<RawResponse>,
) -> Result<Option<Mapping>, ConnectorConfigError> {
    let f = |k: &str| format!("{field}.{k}");
    match (op.returns(), response) {
        (Returns::Nothing, Some(r)) if !r.fields.is_empty() || r.at.is_some() => {
            Err(cx.err(f("response"), format!("{op} reads nothing from the answer")))
        }
        (Returns::Nothing, _) => Ok(None),
        (Returns::One(shape) | Returns::Many(shape), Some(r)) => {
            Mapping::parse(r.at.as_deref(), &r.fields, shape.fields())
                .map(Some)
                .map_err(|problems| {
                    let problems = problems
                        .into_iter()
                        .map(|(path, m)| cx.err(f(&format!("response.{path}")), m))
                        .collect();
                    cx.all(problems).expect("a failed mapping names a problem")
                })
        }
        (_, None) => Err(cx.err(
            f("response"),
            "say where the record is and how its fields map (`[…response]` with `fields`)",
        )),
    }
}

/// The request: method, path, query, headers, body, retries.
fn request(
    cx: &Ctx<'_>,
    field: &str,
    op: Op,
    raw: RawOperation,
    timeout: Duration,
    default_retries: Option<u32>,
) -> Result<OperationConfig, ConnectorConfigError> {
    let f = |k: &str| format!("{field}.{k}");
    let inputs = op.inputs();
    let graphql = raw.graphql.is_some();
    if graphql && (raw.body.is_some() || raw.form.is_some()) {
        return Err(cx.err(
            field.to_string(),
            "a GraphQL operation sends `graphql` and `variables`, not `body` or `form`",
        ));
    }
    if raw.body.is_some() && raw.form.is_some() {
        return Err(cx.err(
            field.to_string(),
            "send a JSON `body` or a `form`, not both",
        ));
    }
    if !graphql && (raw.variables.is_some() || raw.operation_name.is_some()) {
        return Err(cx.err(
            f("variables"),
            "`variables` and `operation_name` belong to a `graphql` operation",
        ));
    }
    let method = match raw.method.as_deref() {
        None if graphql || raw.body.is_some() || raw.form.is_some() => http::Method::POST,
        None => http::Method::GET,
        Some(m) => {
            let m = m.to_ascii_uppercase();
            match m.as_str() {
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
                    http::Method::from_bytes(m.as_bytes()).expect("a standard method")
                }
                _ => {
                    return Err(cx.err(
                        f("method"),
                        format!("{m:?} is not one of GET, POST, PUT, PATCH, DELETE"),
                    ))
                }
            }
        }
    };
    if graphql && method != http::Method::POST {
        return Err(cx.err(f("method"), "GraphQL is sent with POST"));
    }
    let path = match &raw.path {
        None => None,
        Some(p) if p.is_empty() || p.starts_with('/') => {
            let t = Template::parse(p, inputs).map_err(|m| cx.err(f("path"), m))?;
            if p.contains('?') || p.contains('#') {
                return Err(cx.err(f("path"), "put query parameters in `query`, not the path"));
            }
            Some(t)
        }
        Some(p) => return Err(cx.err(f("path"), format!("{p:?} must start with `/`"))),
    };
    if path.is_none() && !graphql {
        return Err(cx.err(f("path"), "a REST operation needs a `path`"));
    }
    let query = templates(cx, &f("query"), &raw.query, inputs)?;
    let headers = templates(cx, &f("headers"), &raw.headers, inputs)?
        .into_iter()
        .map(|(k, t)| {
            Ok((
                plain_header(&k).map_err(|m| cx.err(f(&format!("headers.{k}")), m))?,
                t,
            ))
        })
        .collect::<Result<Vec<_>, ConnectorConfigError>>()?;
    let json = |v: &toml::Value, name: &str| -> Result<JsonTemplate, ConnectorConfigError> {
        let v = serde_json::to_value(v).map_err(|e| cx.err(f(name), e.to_string()))?;
        JsonTemplate::parse(&v, inputs).map_err(|m| cx.err(f(name), m))
    };
    let body = match (raw.graphql, raw.body, raw.form) {
        (Some(query), _, _) => {
            if query.trim().is_empty() {
                return Err(cx.err(f("graphql"), "the GraphQL document is empty"));
            }
            let mut head = serde_json::Map::new();
            head.insert("query".into(), query.clone().into());
            if let Some(n) = &raw.operation_name {
                head.insert("operationName".into(), n.clone().into());
            }
            let mut encoded = serde_json::Value::Object(head).to_string();
            encoded.pop();
            Body::GraphQl {
                query,
                variables: raw
                    .variables
                    .as_ref()
                    .map(|v| json(v, "variables"))
                    .transpose()?,
                operation_name: raw.operation_name,
                encoded,
            }
        }
        (None, Some(b), _) => Body::Json(json(&b, "body")?),
        (None, None, Some(form)) => Body::Form(templates(cx, &f("form"), &form, inputs)?),
        (None, None, None) => Body::None,
    };
    if method == http::Method::GET && !matches!(body, Body::None) {
        return Err(cx.err(f("method"), "a GET sends no body"));
    }
    let mut config = OperationConfig {
        op,
        method,
        path,
        query,
        headers,
        body,
        timeout,
        retries: 0,
        mapping: None,
    };
    let keyed = config.uses(IDEMPOTENCY_KEY);
    let (method, body) = (&config.method, &config.body);
    let safe = match body {
        Body::GraphQl { query, .. } => !is_mutation(query),
        _ => *method == http::Method::GET,
    };
    if inputs.iter().any(|i| i.name == IDEMPOTENCY_KEY) && !keyed {
        return Err(cx.err(
            field.to_string(),
            format!(
                "{op} has side effects: send `{{{IDEMPOTENCY_KEY}}}` (usually as an `Idempotency-Key` header) so a repeat never acts twice"
            ),
        ));
    }
    let retries = match raw.retries {
        Some(r) if r > MAX_RETRIES => {
            return Err(cx.err(f("retries"), format!("at most {MAX_RETRIES}")))
        }
        Some(r) if r > 0 && !safe && !keyed => {
            return Err(cx.err(
                f("retries"),
                "only safe operations (GET, GraphQL queries) or ones sending an idempotency key are retried",
            ))
        }
        Some(r) => r,
        None if safe || keyed => default_retries.unwrap_or(2),
        None => 0,
    };
    config.retries = retries;
    Ok(config)
}

impl OperationConfig {
    /// True if any of the request's templates use the input `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.path.as_ref().is_some_and(|t| t.uses(name))
            || self.query.iter().any(|(_, t)| t.uses(name))
            || self.headers.iter().any(|(_, t)| t.uses(name))
            || match &self.body {
                Body::Json(t) => t.uses(name),
                Body::Form(ts) => ts.iter().any(|(_, t)| t.uses(name)),
                Body::GraphQl { variables, .. } => variables.as_ref().is_some_and(|v| v.uses(name)),
                Body::None => false,
            }
    }
}

/// Reads the connector configuration: `spec` (`SWITCHBOARD_CONNECTORS_FILE`) names one or more
/// files, comma-separated, each a path or an SSM parameter holding the text (`ssm:/name`; a
/// deployed function has no files but its binary); each system is in one of them only.
/// Without `spec`, the bundled file.
pub async fn load(
    spec: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    ssm: Option<&aws_sdk_ssm::Client>,
) -> Result<ConnectorsConfig, ConnectorConfigError> {
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
        return parse(BUNDLED_NAME, BUNDLED, env);
    };
    let mut parts = Vec::new();
    for source in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let cannot = |message: String| ConnectorConfigError::new(source, "", message);
        let text = match source.strip_prefix("ssm:") {
            Some(name) => {
                let ssm = ssm.ok_or_else(|| cannot("no SSM client to read it with".into()))?;
                crate::secrets::ssm_parameter(ssm, name)
                    .await
                    .map_err(|e| cannot(e.to_string()))?
                    .value
                    .ok_or_else(|| cannot("the parameter has no value".into()))?
            }
            None => {
                crate::config::read_config_file(std::path::Path::new(source)).map_err(cannot)?
            }
        };
        parts.push(parse(source, &text, env)?);
    }
    merge(parts)
}

/// One configuration from several files' systems.
pub fn merge(parts: Vec<ConnectorsConfig>) -> Result<ConnectorsConfig, ConnectorConfigError> {
    let mut out = ConnectorsConfig {
        source: parts
            .iter()
            .map(|p| p.source.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        systems: BTreeMap::new(),
        disabled: Vec::new(),
        declared: BTreeMap::new(),
    };
    for part in parts {
        out.declared.extend(part.declared);
        for (name, system) in part.systems {
            if out.systems.contains_key(name) {
                return Err(ConnectorConfigError::new(
                    part.source.clone(),
                    format!("systems.{name}"),
                    "is also configured in an earlier file",
                ));
            }
            out.systems.insert(name, system);
        }
        out.disabled.extend(part.disabled);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn error_of(text: &str) -> String {
        parse("c.toml", text, &|k| {
            (k == "API").then(|| "http://127.0.0.1:9".to_string())
        })
        .unwrap_err()
        .to_string()
    }

    const OK_OP: &str = r#"
[systems.orders]
base_url = "${API}"
[systems.orders.operations.get_status]
path = "/orders/{order_id}"
[systems.orders.operations.get_status.response]
fields = { id = "/id", customer_id = "/c", status = "/s", placed_at = "/p", "total.amount_cents" = "/t", "total.currency" = "/cur" }
"#;

    #[test]
    fn a_minimal_file_parses_with_defaults() {
        let c = parse("c.toml", OK_OP, &|_| Some("http://127.0.0.1:9/api/".into())).unwrap();
        let (sys, op) = c.operation(Op::OrdersGetStatus).unwrap();
        assert_eq!(sys.base_url.as_str(), "http://127.0.0.1:9/api/");
        assert_eq!(op.method, http::Method::GET);
        assert_eq!(op.retries, 2, "safe operations retry by default");
        assert_eq!(op.timeout, Duration::from_millis(1_000));
        assert!(c.require(&[Op::OrdersGetStatus], "chat").is_ok());
        let e = c
            .require(&[Op::OrdersGetStatus, Op::OrdersListByCustomer], "chat")
            .unwrap_err();
        assert_eq!(e.to_string(), "c.toml: chat needs orders.list_by_customer");
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[systems.ordres]\nbase_url = \"https://x\"\n",
                "systems.ordres",
                "not a system the bot knows",
            ),
            (
                "[systems.orders]\nbase_url = \"https://u:p@x\"\n",
                "systems.orders.base_url",
                "cannot carry credentials",
            ),
            (
                "[systems.orders]\nbase_url = \"${NOPE}\"\nheaders = { Authorization = \"Bearer sk_live\" }\n",
                "systems.orders.headers.Authorization",
                "use `auth`",
            ),
            (
                "[systems.orders]\nbase_url = \"http://orders.example.com\"\n",
                "systems.orders.base_url",
                "only for loopback",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\ntimeout_ms = 0\n",
                "systems.orders.timeout_ms",
                "between 1 and",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\ncolour = 1\n",
                "",
                "colour",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\n[systems.orders.operations.get_stat]\npath = \"/o\"\n",
                "systems.orders.operations.get_stat",
                "get_status",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\nauth = { type = \"bearer\", secret = \"hunter2\" }\n",
                "c.toml:3:",
                "not a secret reference",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\nauth = { type = \"api_key\", secret = \"env:K\" }\n",
                "systems.orders.auth",
                "header",
            ),
            (
                "[systems.payments]\nbase_url = \"https://x\"\n[systems.payments.operations.refund]\npath = \"/refunds\"\nbody = { order = \"{order_id}\" }\n[systems.payments.operations.refund.response]\nfields = { id = \"/id\" }\n",
                "systems.payments.operations.refund",
                "idempotency_key",
            ),
            (
                "[systems.inventory]\nbase_url = \"https://x\"\n[systems.inventory.operations.availability]\ngraphql = \"mutation { x }\"\nretries = 1\n[systems.inventory.operations.availability.response]\nat = \"/data/p\"\nfields = { sku = \"/s\", name = \"/n\", available = \"/a\" }\n",
                "systems.inventory.operations.availability.retries",
                "only safe operations",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\n[systems.orders.operations.get_status]\npath = \"/orders/{id}\"\n",
                "systems.orders.operations.get_status.path",
                "not an input",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\n[systems.orders.operations.get_status]\npath = \"/orders/{order_id}\"\n",
                "systems.orders.operations.get_status.response",
                "fields",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\n[systems.orders.operations.get_status]\npath = \"/orders/{order_id}\"\n[systems.orders.operations.get_status.response]\nfields = { id = \"/id\" }\n",
                "systems.orders.operations.get_status.response.fields.customer_id",
                "required",
            ),
        ];
        for (text, field, needle) in cases {
            let e = error_of(text);
            assert!(!e.contains("hunter2") && !e.contains("sk_live"), "{e}");
            assert!(e.starts_with("c.toml:"), "{e}");
            assert!(e.contains(field), "{e} should name {field}");
            assert!(e.contains(needle), "{e} should say {needle}");
        }
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once_with_its_line() {
        let text = "[systems.ordres]\nbase_url = \"https://x\"\n\n[systems.orders]\nbase_url = \"https://x\"\n[systems.orders.operations.get_stat]\npath = \"/o\"\n[systems.orders.operations.list_by_customer]\npath = \"o\"\n";
        let e = parse("c.toml", text, &no_env).unwrap_err();
        let all = e.to_string();
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), 4, "{all}");
        assert!(
            lines[0].starts_with("c.toml:1: systems.ordres: not a system"),
            "{all}"
        );
        assert!(
            lines[1].starts_with("c.toml:6: systems.orders.operations.get_stat: not an operation"),
            "{all}"
        );
        // Its missing response mapping as well as its bad path.
        assert!(
            lines[2].starts_with(
                "c.toml:8: systems.orders.operations.list_by_customer.response: say where"
            ),
            "{all}"
        );
        assert!(
            lines[3].starts_with("c.toml:9: systems.orders.operations.list_by_customer.path"),
            "{all}"
        );
        assert_eq!(e.also.len(), 3);
        // A bad base URL does not hide the system's operations' problems.
        let text = "[systems.orders]\nbase_url = \"ftp://x\"\n[systems.orders.operations.get_status]\npath = \"o\"\n";
        let all = parse("c.toml", text, &no_env).unwrap_err().to_string();
        assert!(all.contains("c.toml:2: systems.orders.base_url"), "{all}");
        assert!(
            all.contains("c.toml:4: systems.orders.operations.get_status.path"),
            "{all}"
        );
    }

    #[test]
    fn the_orders_system_says_what_its_ids_look_like() {
        let text = OK_OP.replace(
            "base_url = \"${API}\"\n",
            "base_url = \"${API}\"\norder_ids = { prefix = \"SO-\", digits = 5 }\n",
        );
        let c = parse("c.toml", &text, &|_| Some("http://127.0.0.1:9".into())).unwrap();
        let f = c.order_ids().expect("declared");
        assert_eq!((f.prefix(), f.digits()), ("SO-", Some(5)));
        assert_eq!(f.canonical("so88140").as_deref(), Some("SO-88140"));
        let plain = parse("c.toml", OK_OP, &|_| Some("http://127.0.0.1:9".into())).unwrap();
        assert!(
            plain.order_ids().is_none(),
            "nothing declared: ids as written"
        );
    }

    #[test]
    fn a_bad_order_id_format_is_named_with_its_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[systems.orders]\nbase_url = \"https://x\"\norder_ids = { prefix = \"ORDER-\" }\n",
                "c.toml:3: systems.orders.order_ids.prefix: \"ORDER-\": 1 to 4 letters",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\n\n[systems.orders.order_ids]\nprefix = \"SO-\"\ndigits = 2\n",
                "c.toml:6: systems.orders.order_ids.digits: 2: between 4 and 15",
            ),
            (
                "[systems.crm]\nbase_url = \"https://x\"\norder_ids = { prefix = \"SO-\" }\n",
                "c.toml:3: systems.crm.order_ids: only the orders system",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\norder_ids = { prefix = \"SO-\", pattern = \"SO-#####\" }\n",
                "unknown field `pattern`",
            ),
        ];
        for (text, wanted) in cases {
            let e = error_of(text);
            assert!(e.contains(wanted), "{e}\nshould say {wanted}");
        }
    }

    #[test]
    fn optional_systems_without_their_variable_are_off() {
        let c = parse(
            "c.toml",
            "[systems.inventory]\nbase_url = \"${INVENTORY_URL}\"\noptional = true\n",
            &no_env,
        )
        .unwrap();
        assert!(c.systems.is_empty());
        let e = c.require(&[Op::InventoryAvailability], "chat").unwrap_err();
        assert!(e.to_string().contains("inventory is off"), "{e}");
    }

    #[test]
    fn the_bundled_file_serves_each_function_with_only_its_variables() {
        let chat_env = |k: &str| (k == "ORDERS_API_URL").then(|| "http://127.0.0.1:1".to_string());
        let chat = parse(BUNDLED_NAME, BUNDLED, &chat_env).unwrap();
        chat.require(&[Op::OrdersGetStatus, Op::OrdersListByCustomer], "chat")
            .unwrap();
        assert!(!chat.has(Op::InventoryAvailability) && !chat.has(Op::EmailSend));
        let e = chat
            .require(&[Op::PaymentsRefund, Op::CrmFindCustomer], "fulfillment")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("payments.refund, crm.find_customer")
                && e.contains("crm is off: CRM_API_URL is not set")
                && e.contains("payments is off: PAYMENTS_API_URL is not set"),
            "{e}"
        );
        let all = parse(BUNDLED_NAME, BUNDLED, &|k| {
            Some(match k {
                "TWILIO_ACCOUNT_SID" => "AC0123".into(),
                _ => "http://127.0.0.1:1".into(),
            })
        })
        .unwrap();
        for op in Op::ALL {
            assert!(all.has(op), "{op}");
        }
        let (_, refund) = all.operation(Op::PaymentsRefund).unwrap();
        assert_eq!(refund.retries, 2, "keyed: retried");
    }

    #[test]
    fn mutations_are_recognised() {
        assert!(is_mutation("  # refund\n mutation Refund($id: ID!) { x }"));
        assert!(!is_mutation("query { products { sku } }"));
        assert!(!is_mutation("{ products { sku } }"));
    }

    const SUBSCRIPTIONS: &str =
        include_str!("../../../examples/bots/subscriptions/connectors.toml");

    fn boxes_env(k: &str) -> Option<String> {
        (k == "SUBSCRIPTIONS_API_URL").then(|| "http://127.0.0.1:9/boxes".to_string())
    }

    #[test]
    fn a_system_of_your_own_declares_its_operations() {
        let c = parse("s.toml", SUBSCRIPTIONS, &boxes_env).unwrap();
        let get = c.find("boxes.get_subscription").unwrap();
        assert_eq!(get.name(), "boxes.get_subscription");
        assert_eq!(get.system(), "boxes");
        let inputs: Vec<(&str, bool)> = get.inputs().iter().map(|i| (i.name, i.required)).collect();
        assert_eq!(inputs, [("customer_id", true)]);
        let Returns::One(Shape::Declared(fields)) = get.returns() else {
            panic!("{:?}", get.returns())
        };
        let kinds: Vec<(&str, Kind, bool)> = fields
            .iter()
            .map(|f| (f.name, f.kind, f.required))
            .collect();
        assert_eq!(
            kinds,
            [
                ("boxes_skipped", Kind::Integer, false),
                ("gift", Kind::Flag, false),
                ("id", Kind::Text, true),
                ("next_box", Kind::Time, false),
                ("plan", Kind::Text, true),
                ("price.amount_cents", Kind::Minor, true),
                ("price.currency", Kind::Text, true),
                (
                    "status",
                    Kind::Status(&["active", "cancelled", "paused"]),
                    true
                ),
            ]
        );
        let (_, read) = c.operation(get).unwrap();
        assert_eq!(read.retries, 2, "a GET is safe to retry");

        let pause = c.find("boxes.pause_box").unwrap();
        let inputs: Vec<(&str, bool)> = pause
            .inputs()
            .iter()
            .map(|i| (i.name, i.required))
            .collect();
        assert_eq!(
            inputs,
            [
                ("reason", false),
                ("subscription_id", true),
                (IDEMPOTENCY_KEY, true)
            ],
            "a write takes the job's idempotency key without listing it"
        );
        assert_eq!(pause.returns(), Returns::Nothing);
        let (_, write) = c.operation(pause).unwrap();
        assert_eq!(write.method, http::Method::POST);
        assert_eq!(write.retries, 2, "keyed: retried");
        // Built-in operations are found by name as before.
        assert_eq!(c.find("orders.get_status"), Some(Op::OrdersGetStatus));
        assert_eq!(c.find("boxes.nope"), None);
    }

    #[test]
    fn a_declared_system_that_is_off_still_declares_its_operations() {
        let c = parse("s.toml", SUBSCRIPTIONS, &no_env).unwrap();
        assert!(c.systems.is_empty());
        assert!(
            c.find("boxes.pause_box").is_some(),
            "flows are checked against it"
        );
        let merged = merge(vec![
            c,
            parse("c.toml", OK_OP, &|_| Some("http://127.0.0.1:9".into())).unwrap(),
        ])
        .unwrap();
        assert!(merged.find("boxes.get_subscription").is_some());
        assert!(merged.find("orders.get_status").is_some());
    }

    /// A declared system with one operation `op` (TOML under its table) and its response.
    fn own(op: &str, response: &str) -> String {
        format!("[systems.boxes]\nbase_url = \"https://x\"\n[systems.boxes.operations.get]\n{op}\n[systems.boxes.operations.get.response]\n{response}\n")
    }

    const GET: &str = "returns = \"one\"\ninputs = { id = \"required\" }\npath = \"/s/{id}\"";

    #[test]
    fn declared_operations_are_checked_like_built_in_ones() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                "[systems.boxes]\nbase_url = \"https://x\"\n[systems.boxes.operations.pause]\nreturns = \"one\"\nmethod = \"POST\"\npath = \"/p\"\nheaders = { Idempotency-Key = \"{idempotency_key}\" }\n[systems.boxes.operations.pause.response]\nfields.id = { pointer = \"/id\", kind = \"text\" }\n".into(),
                "systems.boxes.operations.pause.returns",
                "a write returns \"nothing\"",
            ),
            (
                own("returns = \"some\"\npath = \"/s\"", "fields.id = { pointer = \"/id\", kind = \"text\" }"),
                "systems.boxes.operations.get.returns",
                "\"one\" record, \"many\" or \"nothing\"",
            ),
            (
                "[systems.boxes]\nbase_url = \"https://x\"\n[systems.boxes.operations.a]\nreturns = \"nothing\"\nmethod = \"POST\"\npath = \"/a\"\nheaders = { Idempotency-Key = \"{idempotency_key}\" }\n[systems.boxes.operations.b]\npath = \"/b\"\n".into(),
                "systems.boxes.operations.b.returns",
                "says what it returns",
            ),
            (
                own("returns = \"one\"\ninputs = { id = \"needed\" }\npath = \"/s/{id}\"", ""),
                "systems.boxes.operations.get.inputs.id",
                "\"required\" or \"optional\"",
            ),
            (
                own("returns = \"one\"\ninputs = { id = \"required\", extra = \"optional\" }\npath = \"/s/{id}\"", "fields.id = { pointer = \"/id\", kind = \"text\" }"),
                "systems.boxes.operations.get.inputs.extra",
                "never uses `{extra}`",
            ),
            (
                own("returns = \"one\"\npath = \"/s/{id}\"", "fields.id = { pointer = \"/id\", kind = \"text\" }"),
                "systems.boxes.operations.get.path",
                "this operation takes no inputs",
            ),
            (
                "[systems.boxes]\nbase_url = \"https://x\"\n[systems.boxes.operations.pause]\nreturns = \"nothing\"\ninputs = { id = \"required\" }\nmethod = \"POST\"\npath = \"/s/{id}/pause\"\n".into(),
                "systems.boxes.operations.pause",
                "send `{idempotency_key}`",
            ),
            (
                "[systems.boxes]\nbase_url = \"https://x\"\n[systems.boxes.operations.pause]\nreturns = \"nothing\"\ngraphql = \"mutation { pause }\"\n".into(),
                "systems.boxes.operations.pause",
                "send `{idempotency_key}`",
            ),
            (
                own(GET, "fields.plan = \"/plan\""),
                "systems.boxes.operations.get.response.fields.plan",
                "kind = \"text\" }",
            ),
            (
                own(GET, "fields.plan = { pointer = \"/plan\" }"),
                "systems.boxes.operations.get.response.fields.plan",
                "say what kind",
            ),
            (
                own(GET, "fields.plan = { pointer = \"/plan\", kind = \"words\" }"),
                "systems.boxes.operations.get.response.fields.plan.kind",
                "not a kind (text, integer, money, time, flag, status)",
            ),
            (
                own(GET, "fields.state = { pointer = \"/s\", kind = \"status\" }"),
                "systems.boxes.operations.get.response.fields.state",
                "map = {",
            ),
            (
                own(GET, "fields.state = { pointer = \"/s\", kind = \"status\", map = { ACTIVE = \"Active\" } }"),
                "systems.boxes.operations.get.response.fields.state.map.ACTIVE",
                "lowercase",
            ),
            (
                own(GET, "fields.state = { pointer = \"/s\", kind = \"status\", map = { ACTIVE = \"active\" }, default = \"paused\" }"),
                "systems.boxes.operations.get.response.fields.state",
                "not one of this status's words (active, or unknown)",
            ),
            (
                own(GET, "fields.price = { kind = \"money\", amount = \"/p\" }"),
                "systems.boxes.operations.get.response.fields.price",
                "`amount` and `currency`",
            ),
            (
                own(GET, "fields.price = { kind = \"money\", amount = \"/p\", currency = \"/c\", as = \"unix\" }"),
                "systems.boxes.operations.get.response.fields.price.amount_cents",
                "does not apply here",
            ),
            (
                own(GET, "fields.next = { pointer = \"/n\", kind = \"time\", default = \"soon\" }"),
                "systems.boxes.operations.get.response.fields.next",
                "RFC 3339",
            ),
            (
                own(GET, "fields.\"plan.name\" = { pointer = \"/plan\", kind = \"text\" }"),
                "systems.boxes.operations.get.response.fields.plan.name",
                "lowercase letters",
            ),
            (
                own(GET, "fields.on = { pointer = \"/on\", kind = \"flag\", required = \"yes\" }"),
                "systems.boxes.operations.get.response.fields.on.required",
                "true or false",
            ),
            (
                own(GET, ""),
                "systems.boxes.operations.get.response",
                "fields",
            ),
            (
                "[systems.Boxes]\nbase_url = \"https://x\"\n[systems.Boxes.operations.get]\nreturns = \"nothing\"\npath = \"/s\"\n".into(),
                "systems.Boxes",
                "lowercase letters",
            ),
            (
                "[systems.orders]\nbase_url = \"https://x\"\n[systems.orders.operations.get_status]\nreturns = \"one\"\npath = \"/orders/{order_id}\"\n".into(),
                "systems.orders.operations.get_status",
                "is built in",
            ),
        ];
        for (text, field, needle) in &cases {
            let e = error_of(text);
            assert!(e.starts_with("c.toml:"), "{e}");
            assert!(
                e.contains(&format!(" {field}: ")),
                "{e} should name {field}"
            );
            assert!(e.contains(needle), "{e} should say {needle}");
        }
    }

    #[test]
    fn every_problem_of_declared_operations_is_reported_with_its_line() {
        let text = "[systems.boxes]\nbase_url = \"https://x\"\n\n[systems.boxes.operations.get]\nreturns = \"one\"\npath = \"/s\"\n[systems.boxes.operations.get.response]\nfields.plan = { pointer = \"/plan\" }\n\n[systems.boxes.operations.put]\nreturns = \"nothing\"\nmethod = \"PUT\"\npath = \"/s\"\n";
        let e = parse("c.toml", text, &no_env).unwrap_err();
        let all = e.to_string();
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), 2, "{all}");
        assert!(
            lines[0].starts_with(
                "c.toml:8: systems.boxes.operations.get.response.fields.plan: say what kind"
            ),
            "{all}"
        );
        assert!(
            lines[1]
                .starts_with("c.toml:10: systems.boxes.operations.put: boxes.put has side effects"),
            "{all}"
        );
    }

    #[test]
    fn every_bad_field_of_an_operation_is_reported_with_its_line() {
        // A built-in operation's mapping: a bad pointer, a field the record does not have and
        // a status the flows do not know, in one operation, and a bad path beside them.
        let text = r#"[systems.orders]
base_url = "https://x"
[systems.orders.operations.get_status]
path = "orders/{order_id}"
[systems.orders.operations.get_status.response.fields]
id = "id"
customer_id = "/c"
colour = "/colour"
status = { pointer = "/s", map = { IN_TRANSIT = "in_trasit" } }
placed_at = "/p"
"total.amount_cents" = "/t"
"total.currency" = "/cur"
"#;
        let e = parse("c.toml", text, &no_env).unwrap_err();
        let all = e.to_string();
        let lines: Vec<&str> = all.lines().collect();
        let op = "systems.orders.operations.get_status.response.fields";
        assert_eq!(lines.len(), 4, "{all}");
        assert!(
            lines[0].starts_with("c.toml:4: systems.orders.operations.get_status.path: "),
            "{all}"
        );
        assert!(
            lines[1].starts_with(&format!("c.toml:6: {op}.id: ")),
            "{all}"
        );
        assert!(
            lines[2].starts_with(&format!("c.toml:8: {op}.colour: not a field")),
            "{all}"
        );
        assert!(
            lines[3].starts_with(&format!("c.toml:9: {op}.status: "))
                && lines[3].contains("in_trasit"),
            "{all}"
        );

        // A declared operation's fields.
        let text = r#"[systems.boxes]
base_url = "https://x"
[systems.boxes.operations.get]
returns = "one"
path = "/s"
[systems.boxes.operations.get.response.fields]
plan = { pointer = "/plan" }
price = { kind = "money", amount = "/p" }
state = { pointer = "/state", kind = "stauts" }
"#;
        let all = parse("c.toml", text, &no_env).unwrap_err().to_string();
        let lines: Vec<&str> = all.lines().collect();
        let op = "systems.boxes.operations.get";
        assert_eq!(lines.len(), 3, "{all}");
        assert!(
            lines[0].starts_with(&format!(
                "c.toml:7: {op}.response.fields.plan: say what kind"
            )),
            "{all}"
        );
        assert!(
            lines[1].starts_with(&format!("c.toml:8: {op}.response.fields.price: money says")),
            "{all}"
        );
        assert!(
            lines[2].starts_with(&format!(
                "c.toml:9: {op}.response.fields.state.kind: \"stauts\" is not a kind"
            )),
            "{all}"
        );
    }

    #[test]
    fn a_system_is_configured_once() {
        let a = parse("a.toml", OK_OP, &|_| Some("http://127.0.0.1:9".into())).unwrap();
        let b = parse("b.toml", OK_OP, &|_| Some("http://127.0.0.1:9".into())).unwrap();
        let e = merge(vec![a, b]).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml: systems.orders: is also configured in an earlier file"
        );
    }
}
