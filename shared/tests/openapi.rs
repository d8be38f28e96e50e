//! Keeps openapi/chat.json in step with the code: the routes it describes are exactly
//! `api::ROUTES`, every operation is authenticated and documents its errors, and the JSON the
//! server's types emit (or accept) has the shape the description gives. Schemathesis then checks
//! the running function against the same file (dev/schemathesis_run.py).
//!
//! The schema check here is deliberately small: `$ref`, `allOf`, `type`, `required`,
//! `properties`, `items`, `pattern`, `enum`, `const`, `minimum` and string lengths, which is all
//! the description uses for the types below. Unlike JSON Schema, an object property the
//! description does not list is an error: a field the server starts emitting must be documented.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use switchboard::api::ROUTES;
use switchboard::config::ChatSettings;
use switchboard::conversation::{
    is_valid_conversation_id, new_conversation_id, ConversationSummary, Message, Role,
};
use switchboard::handoff::{Handoff, HandoffState, QueueEntry};
use switchboard::problem::{ApiError, Problem};
use switchboard::turn::{PostMessage, TurnReply};
use time::macros::datetime;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/chat.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Follows a local `$ref` (`#/components/...`) until it reaches a definition.
fn resolve<'a>(spec: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(target) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are used: {target}"));
        node = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling reference {target}"));
    }
    panic!("reference cycle at {node}");
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec.pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("components.schemas.{name} is missing"))
}

fn string_set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn property_names(spec: &Value, schema: &Value) -> BTreeSet<String> {
    resolve(spec, schema)["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

/// The properties an object schema documents, its `allOf` parts' included.
fn documented(spec: &Value, node: &Value) -> BTreeSet<String> {
    let node = resolve(spec, node);
    let mut names = property_names(spec, node);
    for part in node
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        names.extend(documented(spec, part));
    }
    names
}

/// Checks `value` against `node`; problems are pushed as "path: what".
fn check(spec: &Value, node: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    check_part(spec, node, value, at, errors);
    if let Value::Object(map) = value {
        let known = documented(spec, node);
        for k in map.keys().filter(|k| !known.contains(*k)) {
            errors.push(format!("{at}: `{k}` is emitted but not documented"));
        }
    }
}

/// `check` without the undocumented-property rule, which needs the whole `allOf` to apply.
fn check_part(spec: &Value, node: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let node = resolve(spec, node);
    if let Some(all) = node.get("allOf").and_then(Value::as_array) {
        for part in all {
            check_part(spec, part, value, at, errors);
        }
    }
    if let Some(t) = node.get("type") {
        let names: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("{at}: type must be a string or a list"),
        };
        if !names.iter().any(|n| type_matches(n, value)) {
            errors.push(format!("{at}: {value} is not of type {t}"));
            return;
        }
    }
    if let Some(c) = node.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let Some(options) = node.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    match value {
        Value::Object(map) => {
            for required in string_set(node.get("required")) {
                if !map.contains_key(&required) {
                    errors.push(format!("{at}: required `{required}` was not emitted"));
                }
            }
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for (k, v) in map {
                    if let Some(p) = props.get(k) {
                        check(spec, p, v, &format!("{at}.{k}"), errors);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(spec, item, v, &format!("{at}[{i}]"), errors);
                }
            }
        }
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(min) = node.get("minLength").and_then(Value::as_u64) {
                if chars < min {
                    errors.push(format!("{at}: {s:?} is shorter than {min}"));
                }
            }
            if let Some(max) = node.get("maxLength").and_then(Value::as_u64) {
                if chars > max {
                    errors.push(format!("{at}: {s:?} is longer than {max}"));
                }
            }
            if let Some(p) = node.get("pattern").and_then(Value::as_str) {
                let re = regex::Regex::new(p).unwrap_or_else(|e| panic!("{at}: pattern {p}: {e}"));
                if !re.is_match(s) {
                    errors.push(format!("{at}: {s:?} does not match {p}"));
                }
            }
        }
        Value::Number(n) => {
            if let (Some(min), Some(x)) = (node.get("minimum").and_then(Value::as_f64), n.as_f64())
            {
                if x < min {
                    errors.push(format!("{at}: {n} is below {min}"));
                }
            }
        }
        _ => {}
    }
}

fn assert_conforms(spec: &Value, name: &str, value: &Value) {
    let mut errors = Vec::new();
    check(spec, schema(spec, name), value, name, &mut errors);
    assert!(
        errors.is_empty(),
        "{value} does not match components.schemas.{name}:\n  {}",
        errors.join("\n  ")
    );
}

fn message(seq: u64, role: Role, full: bool) -> Message {
    Message {
        seq,
        role,
        text: "where is my order?".into(),
        created_at: datetime!(2026-01-02 03:04:05.123456789 UTC),
        client_message_id: full.then(|| "m-1".to_string()),
        reply_to: full.then_some(1),
        quick_replies: if full {
            vec![switchboard::conversation::QuickReply {
                label: "#1002 (Desk Lamp)".into(),
                value: "1002".into(),
            }]
        } else {
            Vec::new()
        },
        links: if full {
            switchboard::links::links_in("track it at https://track.example/1002.")
        } else {
            Vec::new()
        },
        agent_id: full.then(|| "agent_ann".to_string()),
        internal: full,
    }
}

#[test]
fn paths_and_methods_are_exactly_the_routes() {
    let spec = spec();
    let mut described = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) {
                described.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "ROUTES lists a route twice");
    let undocumented: Vec<_> = served.difference(&described).collect();
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in openapi/chat.json: {undocumented:?}; described but not served: {unserved:?}"
    );
}

#[test]
fn every_operation_is_authenticated_and_documents_its_errors() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let scheme = &spec["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");

    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let label = format!("{} {path}", method.to_uppercase());
            // An empty requirement (`{}`) would make authentication optional.
            let security = op["security"].as_array().unwrap_or_else(|| {
                panic!("{label} has no security of its own");
            });
            assert!(
                !security.is_empty()
                    && security
                        .iter()
                        .all(|r| r.get("bearerAuth").is_some() && keys(r).len() == 1),
                "{label}: security must be bearerAuth only, got {security:?}"
            );
            let responses = op["responses"].as_object().expect("responses");
            for status in ["200", "401", "429"] {
                assert!(
                    responses.contains_key(status),
                    "{label} does not document {status}"
                );
            }
            assert!(
                !responses.contains_key("default"),
                "{label}: a `default` response would let any status conform"
            );
            for (status, response) in responses {
                let response = resolve(&spec, response);
                let content = response["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{label} {status} has no content"));
                let media: Vec<&String> = content.keys().collect();
                if status.starts_with('2') {
                    assert_eq!(media, ["application/json"], "{label} {status}");
                    // So that schemathesis flags a field the server emits undocumented.
                    let body = resolve(&spec, &content["application/json"]["schema"]);
                    assert_eq!(body["additionalProperties"], false, "{label} {status}");
                    continue;
                }
                assert_eq!(media, ["application/problem+json"], "{label} {status}");
                // The body's status is the response's own.
                let problem = json!({
                    "type": "https://switchboard.dev/problems/x", "title": "T",
                    "status": status.parse::<u16>().expect("a numeric status"), "detail": "d",
                });
                let mut errors = Vec::new();
                let body_schema = &content["application/problem+json"]["schema"];
                check(&spec, body_schema, &problem, &label, &mut errors);
                assert!(errors.is_empty(), "{label} {status}: {errors:?}");
                let headers = response.get("headers").and_then(Value::as_object);
                let retry_after = headers.and_then(|h| h.get("Retry-After"));
                if status == "429" || status == "503" {
                    let header = resolve(&spec, retry_after.expect("Retry-After"));
                    assert_eq!(header["required"], true, "{label} {status}");
                }
            }
        }
    }
}

#[test]
fn problem_fields_are_the_ones_serde_emits() {
    let spec = spec();
    let problem = schema(&spec, "Problem");
    let minimal = to_json(&ApiError::NotFound("no such conversation".into()).to_problem(None));
    let full = to_json(
        &ApiError::Unavailable {
            detail: "down".into(),
            retry_after_secs: 2,
        }
        .to_problem(Some("/v1/messages")),
    );
    assert_eq!(string_set(problem.get("required")), keys(&minimal));
    assert_eq!(property_names(&spec, problem), keys(&full));
    assert_conforms(&spec, "Problem", &minimal);
    assert_conforms(&spec, "Problem", &full);
    // Every status the server can produce has its own response in the description.
    let responses = spec["components"]["responses"]
        .as_object()
        .expect("responses");
    for err in [
        ApiError::BadRequest(String::new()),
        ApiError::Unauthorized(String::new()),
        ApiError::Forbidden(String::new()),
        ApiError::NotFound(String::new()),
        ApiError::Conflict(String::new()),
        ApiError::PayloadTooLarge(String::new()),
        ApiError::UnsupportedMediaType(String::new()),
        ApiError::Internal(String::new()),
    ] {
        let p: Problem = err.to_problem(None);
        let documented = responses.values().any(|r| {
            r.pointer("/content/application~1problem+json/schema/allOf/1/properties/status/const")
                == Some(&json!(p.status))
        });
        assert!(documented, "no components.responses entry for {}", p.status);
    }
}

#[test]
fn messages_and_replies_match_their_schemas() {
    let spec = spec();
    let roles: Vec<Value> = [Role::Customer, Role::Bot, Role::Agent]
        .iter()
        .map(to_json)
        .collect();
    assert_eq!(schema(&spec, "Role")["enum"], Value::Array(roles));

    let bare = to_json(&message(1, Role::Bot, false));
    let full = to_json(&message(2, Role::Customer, true));
    let m = schema(&spec, "Message");
    assert_eq!(string_set(m.get("required")), keys(&bare));
    assert_eq!(property_names(&spec, m), keys(&full));
    assert_conforms(&spec, "Message", &bare);
    assert_conforms(&spec, "Message", &full);

    let reply = TurnReply {
        conversation_id: new_conversation_id(),
        message: message(1, Role::Customer, true),
        replies: vec![message(2, Role::Bot, false), message(3, Role::Bot, false)],
        language: Some("es".into()),
        // Never serialised: the keys compared below would show it if it were.
        facts: Default::default(),
    };
    let reply = to_json(&reply);
    assert_eq!(
        property_names(&spec, schema(&spec, "TurnReply")),
        keys(&reply)
    );
    assert_conforms(&spec, "TurnReply", &reply);

    let listed = ConversationSummary {
        id: new_conversation_id(),
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        updated_at: datetime!(2026-01-02 03:05:00.5 UTC),
        last_seq: 4,
        handoff: None,
    };
    let changed = to_json(&ConversationSummary {
        handoff: Some(HandoffState::WithAgent),
        ..listed.clone()
    });
    let summary = to_json(&listed);
    let s = schema(&spec, "ConversationSummary");
    assert_eq!(string_set(s.get("required")), keys(&summary));
    assert_eq!(property_names(&spec, s), keys(&changed));
    assert_conforms(&spec, "ConversationSummary", &summary);
    assert_conforms(&spec, "ConversationSummary", &changed);
    assert_conforms(
        &spec,
        "ConversationList",
        &json!({ "conversations": [summary] }),
    );
    assert_conforms(
        &spec,
        "MessagesPage",
        &json!({ "messages": [full, bare], "next_after": 2, "handoff": "with_agent", "working": false }),
    );
}

#[test]
fn the_handoff_queue_matches_its_schema() {
    let spec = spec();
    let states: Vec<Value> = [
        HandoffState::Bot,
        HandoffState::Waiting,
        HandoffState::WithAgent,
        HandoffState::Resolved,
    ]
    .iter()
    .map(to_json)
    .collect();
    assert_eq!(schema(&spec, "HandoffState")["enum"], Value::Array(states));
    let since = datetime!(2026-01-02 03:04:05 UTC);
    let entry = |handoff: Handoff, language: Option<&str>| QueueEntry {
        conversation_id: new_conversation_id(),
        customer_id: "alice".into(),
        handoff,
        language: language.map(str::to_string),
    };
    let bare = to_json(
        &entry(
            Handoff::Waiting {
                reason: "human_agent".into(),
                order_id: None,
                since,
            },
            None,
        )
        .line(since)
        .expect("queued"),
    );
    let full = to_json(
        &entry(
            Handoff::WithAgent {
                agent_id: "agent_ann".into(),
                since,
                taken_at: since,
                reason: "human_agent".into(),
                order_id: Some("1002".into()),
            },
            Some("es"),
        )
        .line(since + time::Duration::minutes(3))
        .expect("queued"),
    );
    let q = schema(&spec, "QueuedHandoff");
    assert_eq!(string_set(q.get("required")), keys(&bare));
    assert_eq!(property_names(&spec, q), keys(&full));
    assert_conforms(&spec, "QueuedHandoff", &bare);
    assert_conforms(&spec, "QueuedHandoff", &full);
    assert_conforms(&spec, "HandoffQueue", &json!({ "handoffs": [bare, full] }));
}

/// The checker above must be able to fail, or the tests using it prove nothing.
#[test]
fn the_schema_check_catches_drift() {
    let spec = spec();
    let mut errors = Vec::new();
    let mut extra = to_json(&message(1, Role::Bot, false));
    extra["sentiment"] = json!("happy");
    extra["role"] = json!("robot");
    extra["seq"] = json!(0);
    check(
        &spec,
        schema(&spec, "Message"),
        &extra,
        "Message",
        &mut errors,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    errors.clear();
    let mut missing = to_json(&message(1, Role::Bot, false));
    missing.as_object_mut().expect("an object").remove("text");
    check(
        &spec,
        schema(&spec, "Message"),
        &missing,
        "Message",
        &mut errors,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.clear();
    let not_found = &spec["components"]["responses"]["NotFound"]["content"]
        ["application/problem+json"]["schema"];
    let problem = to_json(&ApiError::BadRequest("x".into()).to_problem(None));
    check(&spec, not_found, &problem, "NotFound", &mut errors);
    assert_eq!(
        errors.len(),
        1,
        "a 400 body is not a 404 problem: {errors:?}"
    );
}

#[test]
fn the_post_message_body_is_what_the_server_accepts() {
    let spec = spec();
    let body = schema(&spec, "PostMessage");
    // deny_unknown_fields on PostMessage: the description must reject extras too.
    assert_eq!(body["additionalProperties"], false);
    let full = json!({
        "text": "hi",
        "conversation_id": new_conversation_id(),
        "client_message_id": "m-1",
        "language": "es-MX",
        "quick_reply": "1002",
    });
    assert_eq!(property_names(&spec, body), keys(&full));
    serde_json::from_value::<PostMessage>(full.clone()).expect("every documented field parses");
    let minimal = json!({ "text": "hi" });
    assert_eq!(string_set(body.get("required")), keys(&minimal));
    serde_json::from_value::<PostMessage>(minimal).expect("only the required fields parse");
    let mut extra = full.clone();
    extra["tenant"] = json!("other");
    assert!(serde_json::from_value::<PostMessage>(extra).is_err());

    // A field is nullable in the description exactly when serde takes `null` for it.
    for (name, prop) in body["properties"].as_object().expect("properties") {
        let mut with_null = full.clone();
        with_null[name] = Value::Null;
        let documented = string_set(prop.get("type")).contains("null")
            || prop.get("type") == Some(&json!("null"));
        let accepted = serde_json::from_value::<PostMessage>(with_null).is_ok();
        assert_eq!(documented, accepted, "PostMessage.{name}: null");
    }

    let text = &body["properties"]["text"];
    assert_eq!(
        text["maxLength"],
        json!(ChatSettings::default().max_text_chars)
    );
    // The text check is on the trimmed text: white space alone is not a message.
    let pattern = regex::Regex::new(text["pattern"].as_str().expect("a pattern")).expect("regex");
    for blank in [" ", "\t\r\n", "\u{a0}\u{2003}\u{3000}", "\u{85}"] {
        assert_eq!(blank.trim(), "");
        assert!(
            !pattern.is_match(blank),
            "{blank:?} passes the text pattern"
        );
    }
    for fine in ["a", " hi ", "\u{feff}"] {
        assert!(!fine.trim().is_empty());
        assert!(pattern.is_match(fine), "{fine:?} fails the text pattern");
    }
}

#[test]
fn the_conversation_id_pattern_is_the_server_check() {
    let spec = spec();
    let p = spec["components"]["parameters"]["ConversationIdPath"]["schema"]["pattern"]
        .as_str()
        .expect("a pattern");
    let re = regex::Regex::new(p).expect("regex");
    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    let new = new_conversation_id();
    for id in [
        "short",
        "abcdefgh",
        "abc#defgh",
        "abc/defgh",
        "with space",
        "ünïcödé1",
        &long,
        &too_long,
        &new,
    ] {
        assert_eq!(re.is_match(id), is_valid_conversation_id(id), "{id:?}");
    }
    assert_eq!(
        schema(&spec, "PostMessage")["properties"]["conversation_id"]["pattern"],
        p
    );
}
