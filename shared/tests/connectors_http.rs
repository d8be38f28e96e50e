//! The connector engine's failure paths against real HTTP servers on loopback (wiremock):
//! retries and what is never retried, timeouts, malformed answers, GraphQL errors, OAuth2 token
//! refresh, `Retry-After`, the circuit breaker, the turn's deadline, auth placement, path
//! escaping, and the graceful replies the dialogue gives when a system is down.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use switchboard::auth::Principal;
use switchboard::connectors::catalog::Op;
use switchboard::connectors::config::{self, ConnectorsConfig};
use switchboard::connectors::configured::Configured;
use switchboard::connectors::engine::{http_client, Connectors, Reply};
use switchboard::connectors::resilience::with_deadline;
use switchboard::connectors::{ConnectorError, InventoryPort, OrdersPort, PaymentsPort};
use switchboard::conversation::{DialogueState, Slots};
use switchboard::dialogue::{Dialogue, Outcome, DOWN_WILL_MESSAGE, SYSTEM_DOWN};
use switchboard::money::Money;
use switchboard::secrets::Secrets;
use tokio::time::Instant;
use wiremock::matchers::{basic_auth, bearer_token, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Building engines

/// The secrets `env:NAME` references resolve to in these tests.
const SECRETS: &[(&str, &str)] = &[
    ("API_KEY", "s3cret"),
    ("API_TOKEN", "tok-123"),
    ("API_PASSWORD", "pa:ss"),
    ("CLIENT_SECRET", "shh"),
];

fn secret(name: &str) -> Option<String> {
    SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// Parses a connector file whose `${NAME}`s are answered by `vars`.
fn parse(text: &str, vars: &[(&str, String)]) -> ConnectorsConfig {
    config::parse("test.toml", text, &|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("the test's connector file is invalid: {e}\n{text}"))
}

fn connectors(config: ConnectorsConfig) -> Arc<Connectors> {
    Arc::new(Connectors::new(
        config,
        http_client(),
        Arc::new(Secrets::new(secret, None)),
        Duration::from_secs(300),
    ))
}

/// An engine for `text`, with `${API}` the server's URL.
fn engine(server: &MockServer, text: &str) -> Arc<Connectors> {
    connectors(parse(text, &[("API", server.uri())]))
}

/// The orders system's operations, shared by most tests (the system's table comes first).
const ORDERS_OPS: &str = r#"
[systems.orders.operations.get_status]
path = "/orders/{order_id}"
response.fields = { id = "/id", customer_id = "/customer_id", status = "/status", placed_at = "/placed_at", carrier = "/carrier", "total.amount_cents" = "/total/amount_cents", "total.currency" = "/total/currency" }

[systems.orders.operations.list_by_customer]
path = "/orders"
query = { customer_id = "{customer_id}" }
response.at = "/orders"
response.fields = { id = "/id", customer_id = "/customer_id", status = "/status", placed_at = "/placed_at", "total.amount_cents" = "/total/amount_cents", "total.currency" = "/total/currency" }
"#;

/// An orders system at `${API}` with `settings` (keys of `[systems.orders]`, one a line).
fn orders(settings: &str) -> String {
    format!("[systems.orders]\nbase_url = \"${{API}}\"\n{settings}\n{ORDERS_OPS}")
}

/// An inventory system at `${API}` whose availability operation is `graphql`.
fn inventory(settings: &str, graphql: &str) -> String {
    format!(
        r#"[systems.inventory]
base_url = "${{API}}"
{settings}

[systems.inventory.operations.availability]
graphql = "{graphql}"
response.at = "/data/products"
response.fields = {{ sku = "/sku", name = "/name", available = "/available" }}
"#
    )
}

const PAYMENTS: &str = r#"
[systems.payments]
base_url = "${API}"
retries = 2
backoff_ms = 10

[systems.payments.operations.refund]
method = "POST"
path = "/refunds"
headers = { Idempotency-Key = "{idempotency_key}" }
body = { order_id = "{order_id}", amount = { amount_cents = "{amount_cents}", currency = "{currency}" } }
response.fields = { id = "/id", status = "/status", "amount.amount_cents" = "/amount/amount_cents", "amount.currency" = "/amount/currency" }
"#;

/// An order as the orders API answers it.
fn order_json(id: &str, customer: &str) -> Value {
    json!({
        "id": id,
        "customer_id": customer,
        "status": "IN_TRANSIT",
        "placed_at": "2026-11-14T12:00:00Z",
        "carrier": "UPS",
        "total": { "amount_cents": 4599, "currency": "USD" },
        "extra": "ignored"
    })
}

fn ok_order(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(order_json(id, "alice"))
}

async fn get_status(c: &Connectors, order_id: &str) -> Result<Reply, ConnectorError> {
    c.call(Op::OrdersGetStatus, &[("order_id", json!(order_id))])
        .await
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

#[track_caller]
fn expect_unavailable(r: Result<Reply, ConnectorError>, needle: &str) -> String {
    match r {
        Err(e @ ConnectorError::Unavailable { .. }) => {
            let text = e.to_string();
            assert!(text.contains(needle), "{text:?} should say {needle:?}");
            text
        }
        other => panic!("expected Unavailable ({needle}), got {other:?}"),
    }
}

#[track_caller]
fn expect_one(r: Result<Reply, ConnectorError>) -> Value {
    match r {
        Ok(Reply::One(v)) => v,
        other => panic!("expected one record, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1-3: what is retried and what is not

#[tokio::test]
async fn a_get_answered_500_is_retried_and_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ok_order("1001"))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 2\nbackoff_ms = 10"));

    let v = expect_one(get_status(&c, "1001").await);
    assert_eq!(v["id"], "1001");
    assert_eq!(v["status"], "in_transit", "statuses are normalised");
    assert_eq!(
        v["total"],
        json!({ "amount_cents": 4599, "currency": "USD" })
    );
    assert!(v.get("extra").is_none(), "only mapped fields are kept");
    assert_eq!(requests(&server).await.len(), 2);
    assert!(!c.is_open("orders"));
}

#[tokio::test]
async fn a_keyed_refund_is_retried_with_the_same_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/refunds"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_1",
            "status": "succeeded",
            "amount": { "amount_cents": 4599, "currency": "usd" }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let ports = Configured(engine(&server, PAYMENTS));

    let amount = Money {
        amount_cents: 4599,
        currency: "usd".into(),
    };
    let receipt = ports
        .refund("1001", &amount, "refund-1001-k1")
        .await
        .expect("the third attempt succeeds");
    assert_eq!(receipt.id, "re_1");
    assert_eq!(receipt.status, "succeeded");
    assert_eq!(receipt.amount.amount_cents, 4599);
    assert_eq!(receipt.amount.currency, "USD");

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 3);
    for r in &sent {
        assert_eq!(
            r.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok()),
            Some("refund-1001-k1"),
            "every attempt carries the same key"
        );
        assert_eq!(
            r.body_json::<Value>().unwrap(),
            json!({ "order_id": "1001", "amount": { "amount_cents": 4599, "currency": "USD" } }),
            "every attempt sends the same body"
        );
    }
}

#[tokio::test]
async fn unsafe_operations_without_a_key_are_not_retried() {
    // A GraphQL mutation is unsafe: the system's `retries = 3` does not apply to it.
    let text = inventory(
        "retries = 3\nbackoff_ms = 10",
        "mutation Reserve { products { sku name available } }",
    );
    let server = MockServer::start().await;
    let config = parse(&text, &[("API", server.uri())]);
    assert_eq!(
        config
            .operation(Op::InventoryAvailability)
            .unwrap()
            .1
            .retries,
        0
    );
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let c = connectors(config);
    let r = c.call(Op::InventoryAvailability, &[]).await;
    expect_unavailable(r, "HTTP 500");
    assert_eq!(requests(&server).await.len(), 1);

    // So is a REST POST that sends no idempotency key.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders/1001"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(
        &server,
        &format!(
            "[systems.orders]\nbase_url = \"${{API}}\"\nretries = 3\nbackoff_ms = 10\n{}",
            ORDERS_OPS.replacen(
                "path = \"/orders/{order_id}\"",
                "method = \"POST\"\npath = \"/orders/{order_id}\"",
                1
            )
        ),
    );
    expect_unavailable(get_status(&c, "1001").await, "HTTP 502");
    assert_eq!(requests(&server).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 4: timeouts

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ok_order("1001").set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("timeout_ms = 300\nretries = 0"));

    let started = Instant::now();
    let text = expect_unavailable(get_status(&c, "1001").await, "timed out");
    let took = started.elapsed();
    assert!(text.starts_with("orders is unavailable"), "{text}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(2_500),
        "gave up after the 300 ms timeout, not the 3 s answer: {took:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_within_the_timeout_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ok_order("1001").set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("timeout_ms = 5000\nretries = 0"));

    let started = Instant::now();
    let v = expect_one(get_status(&c, "1001").await);
    assert_eq!(v["id"], "1001");
    assert!(started.elapsed() >= Duration::from_millis(290));
}

// ---------------------------------------------------------------------------------------------
// 5: answers that do not fit the mapping

#[tokio::test]
async fn malformed_json_is_malformed_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>oops</html>", "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 3\nbackoff_ms = 10"));

    match get_status(&c, "1001").await {
        Err(e @ ConnectorError::Malformed { .. }) => {
            let text = e.to_string();
            assert!(text.contains("not JSON"), "{text}");
            assert!(!text.contains("oops"), "the body is not echoed: {text}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 1);
    assert!(!c.is_open("orders"), "the system answered: it is up");
}

#[tokio::test]
async fn a_missing_required_field_is_malformed_and_named() {
    let server = MockServer::start().await;
    let mut body = order_json("1001", "alice");
    body.as_object_mut().unwrap().remove("status");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 3\nbackoff_ms = 10"));

    match get_status(&c, "1001").await {
        Err(ConnectorError::Malformed { system, detail }) => {
            assert_eq!(system, "orders");
            assert!(detail.contains("`status` is missing"), "{detail}");
            assert!(
                detail.contains("\"/status\""),
                "names the pointer: {detail}"
            );
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6: GraphQL errors on HTTP 200

const PRODUCTS_QUERY: &str = "query Products { products { sku name available } }";

#[tokio::test]
async fn graphql_errors_on_200_are_rejected_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": null,
            "errors": [
                // Vendors quote the request back: the email must not reach the error (a log).
                { "message": "Field 'stock' doesn't exist on type 'Product' (asked by bob@example.com)" },
                { "message": "second" }
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(
        &server,
        &inventory("retries = 3\nbackoff_ms = 10", PRODUCTS_QUERY),
    );

    match c.call(Op::InventoryAvailability, &[]).await {
        Err(ConnectorError::Rejected {
            system,
            status,
            detail,
        }) => {
            assert_eq!((system, status), ("inventory", 200));
            assert!(detail.contains("GraphQL errors (2)"), "{detail}");
            assert!(detail.contains("Field 'stock' doesn't exist"), "{detail}");
            assert!(detail.contains("(asked by [email])"), "{detail}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_throttled_graphql_answer_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED" } }]
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "products": [
                { "sku": "LAMP-1", "name": "Desk lamp", "available": 3 },
                { "sku": "MUG-2", "name": "Mug", "available": "0" }
            ] }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(
        &server,
        &inventory("retries = 2\nbackoff_ms = 10", PRODUCTS_QUERY),
    );

    let products = Configured(c).products().await.expect("the retry succeeds");
    assert_eq!(products.len(), 2);
    assert_eq!(
        (products[0].sku.as_str(), products[0].available),
        ("LAMP-1", 3)
    );
    assert_eq!(products[1].available, 0, "numeric strings read as numbers");
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    for r in &sent {
        assert_eq!(
            r.body_json::<Value>().unwrap(),
            json!({ "query": PRODUCTS_QUERY })
        );
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7: OAuth2 client credentials

#[tokio::test]
async fn the_default_inventory_mapping_reads_prices_sent_as_decimal_strings() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "products": [
                { "sku": "MOUSE-01", "name": "Wireless Mouse", "available": 42,
                  "price": { "amount": "24.99", "currencyCode": "USD" } },
                { "sku": "GIFT-9", "name": "Gift Wrap", "available": 5, "price": null }
            ] }
        })))
        .mount(&server)
        .await;
    let unset = "http://127.0.0.1:9".to_string();
    let vars = [
        ("INVENTORY_GRAPHQL_URL", server.uri()),
        ("ORDERS_API_URL", unset.clone()),
        ("CRM_API_URL", unset.clone()),
        ("PAYMENTS_API_URL", unset.clone()),
        ("EMAIL_API_URL", unset),
    ];
    let c = connectors(parse(include_str!("../../config/connectors.toml"), &vars));
    let products = Configured(c).products().await.unwrap();
    assert_eq!(
        products[0].price,
        Some(Money {
            amount_cents: 2499,
            currency: "USD".into()
        }),
        "\"24.99\" is exactly 2499 cents"
    );
    assert_eq!(
        products[1].price, None,
        "a product without a price has none"
    );
}

fn oauth2_orders(extra_auth: &str) -> String {
    orders(&format!(
        "retries = 0\nauth = {{ type = \"oauth2\", token_url = \"${{TOKEN_URL}}/oauth/token\", client_id = \"switchboard\", client_secret = \"env:CLIENT_SECRET\", scope = \"orders.read\"{extra_auth} }}"
    ))
}

fn oauth2_engine(api: &MockServer, idp: &MockServer, extra_auth: &str) -> Arc<Connectors> {
    connectors(parse(
        &oauth2_orders(extra_auth),
        &[("API", api.uri()), ("TOKEN_URL", idp.uri())],
    ))
}

fn token(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "access_token": value, "token_type": "Bearer", "expires_in": 3600 }))
}

fn form_of(r: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn a_token_refused_with_401_is_replaced_and_the_call_succeeds() {
    let (api, idp) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token("token-A"))
        .up_to_n_times(1)
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token("token-B"))
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .and(bearer_token("token-A"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(bearer_token("token-B"))
        .respond_with(ok_order("1001"))
        .mount(&api)
        .await;
    let c = oauth2_engine(&api, &idp, "");

    let v = expect_one(get_status(&c, "1001").await);
    assert_eq!(v["id"], "1001");
    assert_eq!(requests(&idp).await.len(), 2, "a new token after the 401");
    assert_eq!(requests(&api).await.len(), 2);

    // Token B is cached from now on.
    expect_one(get_status(&c, "1001").await);
    expect_one(get_status(&c, "1001").await);
    assert_eq!(requests(&idp).await.len(), 2);
    assert_eq!(requests(&api).await.len(), 4);

    let expected_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("switchboard:shh")
    );
    for r in requests(&idp).await {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            r.headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some(expected_basic.as_str()),
            "client credentials in basic auth"
        );
        let form = form_of(&r);
        assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
        assert!(form.contains(&("scope".into(), "orders.read".into())));
        assert!(
            !form.iter().any(|(k, _)| k == "client_secret"),
            "the secret is not in the body with basic client auth: {form:?}"
        );
    }
}

#[tokio::test]
async fn a_fresh_token_refused_too_is_rejected() {
    let (api, idp) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(token("token-A"))
        .up_to_n_times(1)
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .respond_with(token("token-B"))
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&api)
        .await;
    let c = oauth2_engine(&api, &idp, "");

    match get_status(&c, "1001").await {
        Err(ConnectorError::Rejected { status, detail, .. }) => {
            assert_eq!(status, 401);
            assert!(detail.contains("fresh token was refused too"), "{detail}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(requests(&idp).await.len(), 2, "one new token, not a loop");
    assert_eq!(requests(&api).await.len(), 2);
}

#[tokio::test]
async fn a_valid_token_is_fetched_once_for_many_calls() {
    let (api, idp) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token("token-T"))
        .expect(1)
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .and(bearer_token("token-T"))
        .respond_with(ok_order("1001"))
        .expect(2)
        .mount(&api)
        .await;
    // Client credentials in the form rather than in basic auth, this time.
    let c = oauth2_engine(&api, &idp, ", client_auth = \"body\"");

    expect_one(get_status(&c, "1001").await);
    expect_one(get_status(&c, "1001").await);
    let tokens = requests(&idp).await;
    assert_eq!(tokens.len(), 1, "the token is cached");
    assert!(tokens[0].headers.get("authorization").is_none());
    let form = form_of(&tokens[0]);
    for pair in [
        ("grant_type", "client_credentials"),
        ("client_id", "switchboard"),
        ("client_secret", "shh"),
    ] {
        assert!(
            form.contains(&(pair.0.into(), pair.1.into())),
            "{pair:?} in {form:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8: 429 and Retry-After

#[tokio::test]
async fn retry_after_within_the_limit_is_waited_then_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_order("1001"))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 1\nbackoff_ms = 10"));

    let started = Instant::now();
    expect_one(get_status(&c, "1001").await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After: 1 is honoured, not the 10 ms backoff: {took:?}"
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_limit_fails_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(
        &server,
        &orders("retries = 3\nbackoff_ms = 10\nmax_retry_after_ms = 2000\ncircuit_failures = 1"),
    );

    let started = Instant::now();
    let text = expect_unavailable(get_status(&c, "1001").await, "rate limited");
    assert!(text.contains("retry after 30 s"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(requests(&server).await.len(), 1);
    assert!(
        !c.is_open("orders"),
        "a rate-limited system is up: its circuit stays closed"
    );
}

// ---------------------------------------------------------------------------------------------
// 9: the circuit breaker

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_then_probes_and_closes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let c = engine(
        &server,
        &orders("retries = 0\ncircuit_failures = 3\ncircuit_open_ms = 300"),
    );

    for i in 1..=3 {
        assert!(!c.is_open("orders"), "closed before failure {i}");
        expect_unavailable(get_status(&c, "1001").await, "HTTP 500");
    }
    assert!(c.is_open("orders"));
    expect_unavailable(get_status(&c, "1001").await, "circuit open");
    assert_eq!(
        requests(&server).await.len(),
        3,
        "an open circuit fails without reaching the system"
    );

    // Past circuit_open_ms, one probe reaches the system; it fails, so the circuit opens again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    expect_unavailable(get_status(&c, "1001").await, "HTTP 500");
    assert_eq!(requests(&server).await.len(), 4);
    expect_unavailable(get_status(&c, "1001").await, "circuit open");
    assert_eq!(requests(&server).await.len(), 4);

    // The system recovers: the next probe succeeds and closes the circuit.
    Mock::given(method("GET"))
        .respond_with(ok_order("1001"))
        .with_priority(1)
        .mount(&server)
        .await;
    expect_unavailable(get_status(&c, "1001").await, "circuit open");
    tokio::time::sleep(Duration::from_millis(450)).await;
    expect_one(get_status(&c, "1001").await);
    assert!(!c.is_open("orders"));
    expect_one(get_status(&c, "1001").await);
    assert_eq!(requests(&server).await.len(), 6);
}

// ---------------------------------------------------------------------------------------------
// 10: the turn's deadline

#[tokio::test]
async fn the_turn_deadline_stops_a_retry_that_would_end_past_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    // The first backoff is 1 to 2 s; the deadline is 100 ms away.
    let c = engine(&server, &orders("retries = 2\nbackoff_ms = 2000"));

    let started = Instant::now();
    let r = with_deadline(
        Instant::now() + Duration::from_millis(100),
        get_status(&c, "1001"),
    )
    .await;
    expect_unavailable(r, "HTTP 500");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "no backoff was slept: {:?}",
        started.elapsed()
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn within_a_roomy_deadline_retries_still_run() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 2\nbackoff_ms = 10"));

    let r = with_deadline(
        Instant::now() + Duration::from_secs(20),
        get_status(&c, "1001"),
    )
    .await;
    expect_unavailable(r, "HTTP 500");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn the_turn_deadline_cuts_a_retry_after_wait() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 2"));

    let started = Instant::now();
    let r = with_deadline(
        Instant::now() + Duration::from_millis(100),
        get_status(&c, "1001"),
    )
    .await;
    expect_unavailable(r, "rate limited");
    assert!(started.elapsed() < Duration::from_millis(900));
}

// ---------------------------------------------------------------------------------------------
// 11: credentials reach the server where the file says

/// Calls `op` on an orders system with `auth`, against a server that answers only requests
/// matching `matcher` (anything else gets wiremock's 404, which reads as "absent").
async fn auth_reaches(auth: &str, op: Op, matcher: impl Match + 'static) {
    let (inputs, body) = match op {
        Op::OrdersListByCustomer => (
            [("customer_id", json!("alice"))],
            json!({ "orders": [order_json("1001", "alice")] }),
        ),
        _ => ([("order_id", json!("1001"))], order_json("1001", "alice")),
    };
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(matcher)
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders(&format!("retries = 0\nauth = {auth}")));
    let reply = c.call(op, &inputs).await;
    assert!(
        matches!(reply, Ok(Reply::One(_) | Reply::Many(_))),
        "{auth}: the server did not see the credential: {reply:?} ({:?})",
        requests(&server).await.first().map(|r| &r.headers)
    );
    if let Ok(Reply::Many(list)) = &reply {
        assert_eq!(list.len(), 1);
    }
}

#[tokio::test]
async fn an_api_key_goes_in_its_header_with_its_prefix() {
    auth_reaches(
        r#"{ type = "api_key", header = "X-Api-Key", prefix = "Key ", secret = "env:API_KEY" }"#,
        Op::OrdersGetStatus,
        header("x-api-key", "Key s3cret"),
    )
    .await;
}

#[tokio::test]
async fn an_api_key_goes_in_its_query_parameter_beside_the_operations_own() {
    let both = |r: &Request| {
        query_param("api_key", "s3cret").matches(r)
            && query_param("customer_id", "alice").matches(r)
            && path("/orders").matches(r)
    };
    auth_reaches(
        r#"{ type = "api_key", query = "api_key", secret = "env:API_KEY" }"#,
        Op::OrdersListByCustomer,
        both,
    )
    .await;
}

#[tokio::test]
async fn a_bearer_token_goes_in_authorization() {
    auth_reaches(
        r#"{ type = "bearer", secret = "env:API_TOKEN" }"#,
        Op::OrdersGetStatus,
        bearer_token("tok-123"),
    )
    .await;
}

#[tokio::test]
async fn basic_auth_goes_in_authorization() {
    auth_reaches(
        r#"{ type = "basic", username = "bot", password = "env:API_PASSWORD" }"#,
        Op::OrdersGetStatus,
        basic_auth("bot", "pa:ss"),
    )
    .await;
}

#[tokio::test]
async fn a_missing_secret_is_misconfigured_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_order("1001"))
        .expect(0)
        .mount(&server)
        .await;
    let c = engine(
        &server,
        &orders("retries = 0\nauth = { type = \"bearer\", secret = \"env:NOT_SET\" }"),
    );
    // Not transient: retrying a job for a secret nobody set only walks it to the DLQ.
    match get_status(&c, "1001").await {
        Err(ConnectorError::Misconfigured { detail, .. }) => {
            assert!(detail.contains("credentials"), "{detail}")
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 12: inputs are escaped as one path segment

#[tokio::test]
async fn an_input_is_escaped_as_one_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/orders/a%2Fb%3Fc"))
        .respond_with(ok_order("a/b?c"))
        .expect(1)
        .mount(&server)
        .await;
    // A base URL with a path of its own (and a trailing slash) keeps it.
    let c = connectors(parse(
        &orders("retries = 0"),
        &[("API", format!("{}/api/", server.uri()))],
    ));

    let v = expect_one(get_status(&c, "a/b?c").await);
    assert_eq!(v["id"], "a/b?c");
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url.path(), "/api/orders/a%2Fb%3Fc");
    assert_eq!(sent[0].url.query(), None, "the `?` did not start a query");
}

#[tokio::test]
async fn an_input_with_dots_and_a_slash_stays_in_its_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/orders/%2E%2E%2Fadmin"))
        .respond_with(ok_order("x"))
        .expect(1)
        .mount(&server)
        .await;
    let c = connectors(parse(
        &orders("retries = 0"),
        &[("API", format!("{}/api/", server.uri()))],
    ));
    expect_one(get_status(&c, "../admin").await);
}

/// An input made of dots (`%2E%2E` is still `..` to a URL parser, however it was escaped) must
/// never climb out of its place in the path: the request either stays one segment under
/// `/api/orders/` or is not sent at all.
#[tokio::test]
async fn a_dot_or_dot_dot_input_never_climbs_out_of_the_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let c = connectors(parse(
        &orders("retries = 0"),
        &[("API", format!("{}/api/", server.uri()))],
    ));
    let mut seen = 0;
    for id in ["..", ".", "...", "%2e%2e", ".%2E", "../admin"] {
        let r = get_status(&c, id).await;
        let sent = requests(&server).await;
        match &sent[seen..] {
            [] => assert!(
                matches!(r, Err(ConnectorError::Rejected { .. })),
                "{id:?}: not sent, so refused: {r:?}"
            ),
            [one] => {
                let p = one.url.path();
                let rest = p.strip_prefix("/api/orders/").unwrap_or_else(|| {
                    panic!("order id {id:?} reached {p:?}, outside /api/orders/")
                });
                assert!(
                    !rest.is_empty() && !rest.contains('/'),
                    "order id {id:?} reached {p:?}"
                );
                assert!(matches!(r, Ok(Reply::Absent)), "{id:?}: {r:?}");
            }
            more => panic!("{id:?}: {} requests", more.len()),
        }
        seen = sent.len();
    }
}

/// A token endpoint that accepts the connection and never answers must not hold a call (and,
/// through the token lock, every call to the system) for longer than a request may take: the
/// token request gets the operation's timeout.
#[tokio::test]
async fn a_hanging_token_endpoint_does_not_hang_the_call() {
    let (api, idp) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(token("token-T").set_delay(Duration::from_secs(8)))
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_order("1001"))
        .mount(&api)
        .await;
    // Each API request may take 300 ms; the call as a whole gets a generous 4 s.
    let text = oauth2_orders("").replacen("retries = 0", "retries = 0\ntimeout_ms = 300", 1);
    let c = connectors(parse(
        &text,
        &[("API", api.uri()), ("TOKEN_URL", idp.uri())],
    ));

    let r = tokio::time::timeout(Duration::from_secs(4), get_status(&c, "1001")).await;
    let r = r.expect("the call waited for the 8 s token answer");
    expect_unavailable(r, "token endpoint");
    assert_eq!(requests(&api).await.len(), 0);
}

// ---------------------------------------------------------------------------------------------
// 13: graceful replies through the dialogue

fn alice() -> Principal {
    Principal::customer("t", "alice")
}

const ASK: &str = "where is my order #1001?";

fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-11-24 12:00 UTC)
}

/// The bundle's sentence `key`, as the dialogue says it.
fn said(d: &Dialogue, key: &str) -> String {
    d.messages().render(key, &[])
}

/// Alice's first message of a conversation.
async fn ask(d: &Dialogue) -> Outcome {
    d.respond(
        &alice(),
        &DialogueState::Idle,
        &Slots::default(),
        ASK,
        now(),
    )
    .await
}

#[tokio::test]
async fn a_down_order_system_defers_a_chat_turn_with_a_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    // A retry (1 to 2 s of backoff) could not end within the 150 ms budget.
    let c = engine(&server, &orders("retries = 2\nbackoff_ms = 2000"));
    let d = Dialogue::new(Arc::new(Configured(c))).with_budget(Some(Duration::from_millis(150)));

    let started = Instant::now();
    let out = ask(&d).await;
    assert!(out.deferred);
    assert_eq!(out.replies, vec![said(&d, DOWN_WILL_MESSAGE)]);
    assert_eq!(out.state, DialogueState::Idle);
    assert!(out.jobs.is_empty());
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(requests(&server).await.len(), 1);
}

/// Each way an order system fails, through a chat turn: the customer always gets a reply; what
/// may pass (a 5xx, a timeout, a long rate limit, an open circuit) defers the answer to a job
/// that asks again, what will not (an answer we cannot read, a refusal) says so; no turn state
/// is kept either way. Only a system that did not answer counts towards opening its circuit.
#[tokio::test]
async fn every_failure_gets_a_graceful_reply_through_the_dialogue() {
    let cases = [
        (
            "a 500",
            ResponseTemplate::new(500),
            "retries = 0",
            true,
            true,
        ),
        (
            "a slow answer",
            ok_order("1001").set_delay(Duration::from_secs(3)),
            "retries = 0\ntimeout_ms = 200",
            true,
            true,
        ),
        (
            "a 429 longer than the turn",
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
            "retries = 2",
            true,
            false,
        ),
        (
            "broken JSON",
            ResponseTemplate::new(200).set_body_string(r#"{"id": "1001", "#),
            "retries = 0",
            false,
            false,
        ),
        (
            "a record missing its status",
            ResponseTemplate::new(200).set_body_json(json!({ "id": "1001" })),
            "retries = 0",
            false,
            false,
        ),
        (
            "a 403",
            ResponseTemplate::new(403),
            "retries = 0",
            false,
            false,
        ),
    ];
    for (case, answer, settings, transient, down) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let c = engine(
            &server,
            &orders(&format!("circuit_failures = 1\n{settings}")),
        );
        let d = Dialogue::new(Arc::new(Configured(c.clone())))
            .with_budget(Some(Duration::from_secs(1)));

        let out = ask(&d).await;
        let expected = if transient {
            DOWN_WILL_MESSAGE
        } else {
            SYSTEM_DOWN
        };
        assert_eq!(out.replies, vec![said(&d, expected)], "{case}");
        assert_eq!(out.deferred, transient, "{case}: answered later");
        assert_eq!(out.state, DialogueState::Idle, "{case}");
        assert!(out.jobs.is_empty(), "{case}");
        if down {
            // The circuit opened on that failure: the next turn defers without calling.
            assert!(c.is_open("orders"), "{case}");
            let sent = requests(&server).await.len();
            let again = ask(&d).await;
            assert!(again.deferred, "{case}: open circuit");
            assert_eq!(again.replies, vec![said(&d, DOWN_WILL_MESSAGE)]);
            assert_eq!(requests(&server).await.len(), sent, "{case}: not called");
        } else {
            // It answered (a refusal, a rate limit, something unreadable): it is not down.
            assert!(!c.is_open("orders"), "{case}");
        }
    }
}

#[tokio::test]
async fn a_down_order_system_without_a_budget_stays_deferred_after_its_retries() {
    // The deferred answer's own run (no budget): the connector's retries are spent, and the
    // outcome says the system is still down, so the job comes back later instead of telling
    // the customer to try again themselves.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(2)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 1\nbackoff_ms = 10"));
    let d = Dialogue::new(Arc::new(Configured(c)));

    let out = ask(&d).await;
    assert!(out.deferred);
    assert!(out.jobs.is_empty());
}

#[tokio::test]
async fn a_working_order_system_answers_through_the_dialogue() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ok_order("1001"))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 0"));
    let d = Dialogue::new(Arc::new(Configured(c))).with_budget(Some(Duration::from_secs(5)));

    let out = ask(&d).await;
    assert!(!out.deferred);
    let text = out.replies.join("\n");
    assert!(text.contains("#1001"), "{text}");
    assert!(text.contains("UPS"), "{text}");
    assert_eq!(out.slots.order_id.as_deref(), Some("1001"));
}

#[tokio::test]
async fn another_customers_order_reads_as_not_found_through_the_dialogue() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_json("1001", "bob")))
        .expect(1)
        .mount(&server)
        .await;
    let c = engine(&server, &orders("retries = 0"));
    let ports: Arc<dyn OrdersPort> = Arc::new(Configured(c));
    let d = Dialogue::new(ports);

    let out = ask(&d).await;
    let text = out.replies.join("\n");
    assert!(text.contains("couldn't find order #1001"), "{text}");
    assert!(
        !text.contains("UPS"),
        "nothing of bob's order shows: {text}"
    );
}
