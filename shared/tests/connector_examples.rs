//! The example connector files in config/examples/: each passes the validator, they load
//! together, and each one drives the ports against a local double shaped like the real API
//! (Shopify's Admin GraphQL, Stripe's form-encoded REST, an OAuth2 CRM and Postmark).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use wiremock::matchers::{
    basic_auth, bearer_token, body_partial_json, body_string_contains, header, method, path,
    query_param,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use switchboard::auth::Principal;
use switchboard::connectors::catalog::Op;
use switchboard::connectors::config::{self, ConnectorsConfig};
use switchboard::connectors::configured::Configured;
use switchboard::connectors::engine::{http_client, Connectors};
use switchboard::connectors::{
    ConnectorError, Customer, CustomersPort, EmailPort, InventoryPort, OrderItem, OrderStatus,
    OrdersPort, PaymentsPort, Product, RefundReceipt,
};
use switchboard::conversation::{DialogueState, Slots};
use switchboard::dialogue::{Dialogue, Outcome};
use switchboard::money::Money;
use switchboard::secrets::{SecretError, SecretRef, SecretSource, SecretValue};

const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

/// Every `${VARIABLE}` the example files use.
const VARIABLES: &[&str] = &[
    "SHOPIFY_GRAPHQL_URL",
    "STRIPE_API_URL",
    "STRIPE_CUSTOMERS_URL",
    "CRM_API_URL",
    "CRM_TOKEN_URL",
    "POSTMARK_API_URL",
];

const SHOPIFY_TOKEN: &str = "shpat_test_token";
const SHOPIFY_PATH: &str = "/admin/api/2025-01/graphql.json";
/// The Shopify customer the tests sign in as (the JWT `sub` is the customer's numeric id).
const SHOPPER: &str = "7390123456";

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples")
}

fn example(name: &str) -> String {
    let path = examples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(name: &str, text: &str, vars: &[(&str, String)]) -> ConnectorsConfig {
    let vars: HashMap<&str, String> = vars.iter().cloned().collect();
    config::parse(name, text, &|k| vars.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_example(name: &str, vars: &[(&str, String)]) -> ConnectorsConfig {
    parse(&format!("config/examples/{name}"), &example(name), vars)
}

/// The secrets the example files name, as Secrets Manager would hand them out. (The real
/// `Secrets` resolves `secretsmanager:` references only with an AWS client.)
struct FakeSecrets;

#[async_trait]
impl SecretSource for FakeSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Vec<SecretValue>, SecretError> {
        let name = reference.to_string();
        let value = match name.as_str() {
            "secretsmanager:switchboard/shopify#admin_token" => SHOPIFY_TOKEN,
            "secretsmanager:switchboard/stripe#refunds_key" => "rk_test_refunds",
            "secretsmanager:switchboard/stripe#customers_read_key" => "rk_test_customers",
            "secretsmanager:switchboard/crm#client_secret" => "crm-client-secret",
            "secretsmanager:switchboard/postmark#server_token" => "pm-server-token",
            _ => return Err(SecretError::NotFound(name)),
        };
        Ok(vec![SecretValue::new(value)])
    }
}

fn ports(config: ConnectorsConfig) -> Configured {
    Configured(Arc::new(Connectors::new(
        config,
        http_client(),
        Arc::new(FakeSecrets),
        Duration::from_secs(300),
    )))
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

fn header_of<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers
        .get(name)
        .unwrap_or_else(|| panic!("{} {} has no {name} header", req.method, req.url))
        .to_str()
        .unwrap()
}

fn form_of(req: &Request) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    pairs.sort();
    pairs
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Validation and loading

#[test]
fn every_example_passes_the_validator() {
    let mut files: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    assert!(
        ["crm.toml", "shopify.toml", "stripe.toml"]
            .iter()
            .all(|f| files.iter().any(|n| n == f)),
        "{files:?}"
    );
    for base in ["https://placeholder.invalid", "http://127.0.0.1:9"] {
        let vars: Vec<(&str, String)> = VARIABLES.iter().map(|v| (*v, base.to_string())).collect();
        for file in &files {
            let c = parse_example(file, &vars);
            assert!(
                c.disabled.is_empty(),
                "{file}: every variable is set, yet {:?} is off",
                c.disabled
            );
            assert!(!c.systems.is_empty(), "{file} configures nothing");
        }
    }
    // Plain http is for loopback only.
    let vars: Vec<(&str, String)> = VARIABLES
        .iter()
        .map(|v| (*v, "http://shop.example.com".to_string()))
        .collect();
    let e = config::parse("shopify.toml", &example("shopify.toml"), &|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap_err();
    assert!(e.to_string().contains("only for loopback"), "{e}");
}

fn placeholders(except: &[&str]) -> Vec<(&'static str, String)> {
    VARIABLES
        .iter()
        .filter(|v| !except.contains(v))
        .map(|v| (*v, format!("https://{}.example", v.to_ascii_lowercase())))
        .collect()
}

const FULFILLMENT_NEEDS: &[Op] = &[
    Op::OrdersGetStatus,
    Op::OrdersListByCustomer,
    Op::PaymentsRefund,
    Op::CrmGetCustomer,
    Op::CrmFindCustomer,
    Op::CrmFindByVendorId,
];

#[test]
fn the_three_examples_load_together() {
    // Shopify + Stripe payments + the CRM (and Postmark): Stripe's customer directory is off.
    let vars = placeholders(&["STRIPE_CUSTOMERS_URL"]);
    let all = config::merge(
        ["shopify.toml", "stripe.toml", "crm.toml"]
            .iter()
            .map(|f| parse_example(f, &vars))
            .collect(),
    )
    .unwrap();
    let systems: Vec<&str> = all.systems.keys().copied().collect();
    assert_eq!(systems, ["crm", "email", "inventory", "orders", "payments"]);
    assert_eq!(
        all.systems["crm"].base_url.as_str(),
        "https://crm_api_url.example/"
    );
    assert_eq!(all.disabled, [("crm", "STRIPE_CUSTOMERS_URL".to_string())]);
    // Every operation the flows and jobs need; the messaging channels' sends and the phone
    // lookup are only for deployments with channels (docs/channels.md).
    let needed: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| {
            !matches!(
                op,
                Op::CrmFindByPhone
                    | Op::WhatsappSendMessage
                    | Op::TwilioSendMessage
                    | Op::TelegramSendMessage
            )
        })
        .collect();
    all.require(&needed, "every flow").unwrap();

    // Shopify + Stripe as payments and customer directory, without the CRM file.
    let vars = placeholders(&[]);
    let two = config::merge(
        ["shopify.toml", "stripe.toml"]
            .iter()
            .map(|f| parse_example(f, &vars))
            .collect(),
    )
    .unwrap();
    assert_eq!(
        two.systems["crm"].base_url.as_str(),
        "https://stripe_customers_url.example/"
    );
    two.require(FULFILLMENT_NEEDS, "the fulfillment function")
        .unwrap();
    assert!(!two.has(Op::EmailSend), "email goes through SES then");

    // Both customer directories on: refused, naming the second file and the system.
    let e = config::merge(
        ["shopify.toml", "stripe.toml", "crm.toml"]
            .iter()
            .map(|f| parse_example(f, &vars))
            .collect(),
    )
    .unwrap_err();
    assert_eq!(e.file, "config/examples/crm.toml");
    assert_eq!(e.field, "systems.crm");
}

// ---------------------------------------------------------------------------------------------
// Shopify

fn shopify_order_1001() -> Value {
    json!({
        "name": "#1001",
        "createdAt": "2026-11-21T10:00:00Z",
        "customer": { "legacyResourceId": SHOPPER },
        "totalPriceSet": { "shopMoney": { "amount": "29.99", "currencyCode": "USD" } },
        "lineItems": { "nodes": [{ "name": "Wireless Mouse", "quantity": 1 }] },
        "fulfillments": [{
            "displayStatus": "IN_TRANSIT",
            "estimatedDeliveryAt": "2026-11-26T18:00:00Z",
            "deliveredAt": null,
            "trackingInfo": [{ "company": "UPS", "url": "https://www.ups.com/track?tracknum=1Z1001" }]
        }]
    })
}

fn shopify_orders_of_shopper() -> Value {
    json!([
        {
            "name": "#1002",
            "createdAt": "2026-11-23T09:30:00Z",
            "customer": { "legacyResourceId": SHOPPER },
            "totalPriceSet": { "shopMoney": { "amount": "45.9", "currencyCode": "USD" } },
            "lineItems": { "nodes": [
                { "name": "Noise-Cancelling Headphones - Black", "quantity": 1 },
                { "name": "USB-C Cable", "quantity": 2 }
            ] },
            "fulfillments": []
        },
        shopify_order_1001(),
        {
            "name": "#998",
            "createdAt": "2026-10-02T08:00:00Z",
            "customer": { "legacyResourceId": SHOPPER },
            "totalPriceSet": { "shopMoney": { "amount": "12.50", "currencyCode": "USD" } },
            "lineItems": { "nodes": [{ "name": "Phone Case", "quantity": 1 }] },
            "fulfillments": [{
                "displayStatus": "DELIVERED",
                "estimatedDeliveryAt": null,
                "deliveredAt": "2026-10-05T14:12:00Z",
                "trackingInfo": []
            }]
        }
    ])
}

/// Shopify's envelope: `data`, plus the query's cost in `extensions`.
fn graphql_data(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": data,
        "extensions": { "cost": {
            "requestedQueryCost": 32, "actualQueryCost": 8,
            "throttleStatus": { "maximumAvailable": 2000.0, "currentlyAvailable": 1992, "restoreRate": 100.0 }
        } }
    }))
}

/// A double of one shop's Admin GraphQL endpoint: orders by name and by customer, and stock.
async fn shopify_double() -> MockServer {
    let server = MockServer::start().await;
    let graphql = |operation: &str, query: &str| {
        Mock::given(method("POST"))
            .and(path(SHOPIFY_PATH))
            .and(header("X-Shopify-Access-Token", SHOPIFY_TOKEN))
            .and(body_partial_json(json!({
                "operationName": operation,
                "variables": { "query": query }
            })))
    };
    graphql("OrderByName", "name:1001")
        .respond_with(graphql_data(
            json!({ "orders": { "nodes": [shopify_order_1001()] } }),
        ))
        .mount(&server)
        .await;
    graphql("OrderByName", "name:9999")
        .respond_with(graphql_data(json!({ "orders": { "nodes": [] } })))
        .mount(&server)
        .await;
    graphql("OrdersOfCustomer", &format!("customer_id:{SHOPPER}"))
        .respond_with(graphql_data(
            json!({ "orders": { "nodes": shopify_orders_of_shopper() } }),
        ))
        .mount(&server)
        .await;
    server
}

fn shopify_vars(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![(
        "SHOPIFY_GRAPHQL_URL",
        format!("{}{SHOPIFY_PATH}", server.uri()),
    )]
}

#[tokio::test]
async fn shopify_orders_map_into_typed_orders() {
    let server = shopify_double().await;
    let shop = ports(parse_example("shopify.toml", &shopify_vars(&server)));

    let order = shop.order("1001").await.unwrap().expect("order #1001");
    assert_eq!(order.id, "1001", "Shopify's order name without its \"#\"");
    assert_eq!(order.customer_id, SHOPPER);
    assert_eq!(order.status, OrderStatus::InTransit);
    assert_eq!(order.placed_at, datetime!(2026-11-21 10:00 UTC));
    assert_eq!(order.promised_by, Some(datetime!(2026-11-26 18:00 UTC)));
    assert_eq!(order.delivered_at, None);
    assert_eq!(order.carrier.as_deref(), Some("UPS"));
    assert_eq!(
        order.tracking_url.as_deref(),
        Some("https://www.ups.com/track?tracknum=1Z1001")
    );
    assert_eq!(
        order.total,
        Money {
            amount_cents: 2999,
            currency: "USD".into()
        }
    );
    assert_eq!(
        order.items,
        [OrderItem {
            name: "Wireless Mouse".into(),
            quantity: 1
        }]
    );
    assert_eq!(order.payment_ref, None);

    assert_eq!(
        shop.order("9999").await.unwrap(),
        None,
        "no match is no order"
    );

    let orders = shop.recent_orders(SHOPPER).await.unwrap();
    let summary: Vec<(&str, OrderStatus, i64)> = orders
        .iter()
        .map(|o| (o.id.as_str(), o.status, o.total.amount_cents))
        .collect();
    assert_eq!(
        summary,
        [
            ("1002", OrderStatus::Processing, 4590),
            ("1001", OrderStatus::InTransit, 2999),
            ("998", OrderStatus::Delivered, 1250),
        ]
    );
    assert_eq!(orders[0].items.len(), 2);
    assert_eq!(orders[0].items[1].quantity, 2);
    assert_eq!(
        (orders[0].carrier.as_ref(), orders[0].promised_by),
        (None, None)
    );
    assert_eq!(
        orders[2].delivered_at,
        Some(datetime!(2026-10-05 14:12 UTC))
    );
    assert_eq!(orders[2].tracking_url, None);

    // Every request: POST with the access token, the document as written (no input spliced
    // into it), the inputs in `variables`.
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 3);
    for req in &sent {
        assert_eq!(req.method.as_str(), "POST");
        assert_eq!(header_of(req, "x-shopify-access-token"), SHOPIFY_TOKEN);
        assert!(header_of(req, "content-type").starts_with("application/json"));
        let body: Value = req.body_json().unwrap();
        let document = body["query"].as_str().unwrap();
        assert!(
            !document.contains(SHOPPER) && !document.contains("1001"),
            "{document}"
        );
        assert!(
            document.contains(&format!(
                "query {}($query: String!)",
                body["operationName"].as_str().unwrap()
            )),
            "{document}"
        );
    }
    let variables: Vec<Value> = sent
        .iter()
        .map(|r| r.body_json::<Value>().unwrap()["variables"].clone())
        .collect();
    assert_eq!(
        variables,
        [
            json!({ "query": "name:1001" }),
            json!({ "query": "name:9999" }),
            json!({ "query": format!("customer_id:{SHOPPER}") }),
        ]
    );
    let list: Value = sent[2].body_json().unwrap();
    let document = list["query"].as_str().unwrap();
    assert!(
        document.contains("sortKey: CREATED_AT, reverse: true"),
        "newest first: {document}"
    );
}

#[tokio::test]
async fn shopify_stock_is_read_and_a_throttled_query_is_retried() {
    let server = MockServer::start().await;
    let stock = || {
        Mock::given(method("POST"))
            .and(path(SHOPIFY_PATH))
            .and(header("X-Shopify-Access-Token", SHOPIFY_TOKEN))
            .and(body_partial_json(json!({
                "operationName": "Stock",
                "variables": { "query": "product_status:active inventory_quantity:>=0" }
            })))
    };
    // Over the cost budget: HTTP 200 with a THROTTLED error, once.
    stock()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errors": [{
                "message": "Throttled",
                "extensions": { "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits" }
            }],
            "extensions": { "cost": {
                "requestedQueryCost": 102, "actualQueryCost": null,
                "throttleStatus": { "maximumAvailable": 2000.0, "currentlyAvailable": 40, "restoreRate": 100.0 }
            } }
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    stock()
        .respond_with(graphql_data(json!({ "productVariants": { "nodes": [
            { "sku": "LAMP-03", "displayName": "Desk Lamp - Black", "inventoryQuantity": 7 },
            { "sku": null, "displayName": "Gift Wrap", "inventoryQuantity": 0 }
        ] } })))
        .mount(&server)
        .await;
    let shop = ports(parse_example("shopify.toml", &shopify_vars(&server)));

    let products = shop.products().await.unwrap();
    assert_eq!(
        products,
        [
            Product {
                sku: "LAMP-03".into(),
                name: "Desk Lamp - Black".into(),
                available: 7,
                price: None,
            },
            Product {
                sku: String::new(),
                name: "Gift Wrap".into(),
                available: 0,
                price: None,
            },
        ]
    );
    assert_eq!(
        requests(&server).await.len(),
        2,
        "THROTTLED is retried, once here"
    );
    assert!(!shop.0.is_open("inventory"));
}

// ---------------------------------------------------------------------------------------------
// The same question through two differently shaped order systems

fn owner() -> Principal {
    Principal::customer("default", SHOPPER)
}

async fn ask(orders: &Configured, who: &Principal, text: &str) -> Outcome {
    Dialogue::new(Arc::new(orders.clone()))
        .respond(who, &DialogueState::Idle, &Slots::default(), text, NOW)
        .await
}

#[tokio::test]
async fn changing_only_the_config_points_the_bot_at_a_differently_shaped_backend() {
    // The demo-shaped REST system (config/connectors.toml, as bundled) ...
    let demo = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1001",
            "customer_id": SHOPPER,
            "status": "in_transit",
            "placed_at": "2026-11-21T10:00:00Z",
            "promised_by": "2026-11-26T18:00:00Z",
            "delivered_at": null,
            "carrier": "UPS",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z1001",
            "total": { "amount_cents": 2999, "currency": "USD" },
            "items": [{ "name": "Wireless Mouse", "quantity": 1 }]
        })))
        .mount(&demo)
        .await;
    let demo_vars: Vec<(&str, String)> = ["ORDERS_API_URL", "CRM_API_URL", "PAYMENTS_API_URL"]
        .iter()
        .map(|v| (*v, demo.uri()))
        .collect();
    let through_demo = ports(parse(config::BUNDLED_NAME, config::BUNDLED, &demo_vars));

    // ... and Shopify's GraphQL, through shopify.toml. The dialogue is the same code.
    let shopify = shopify_double().await;
    let through_shopify = ports(parse_example("shopify.toml", &shopify_vars(&shopify)));

    let question = "where is my order #1001?";
    let a = ask(&through_demo, &owner(), question).await;
    let b = ask(&through_shopify, &owner(), question).await;
    assert_eq!(a.replies.len(), 1, "{:?}", a.replies);
    assert_eq!(
        a.replies[0],
        "Order #1001 (Wireless Mouse) is on its way with UPS.\n\
         Tracking: https://www.ups.com/track?tracknum=1Z1001\n\
         It's expected by November 26."
    );
    // Shopify names the order "#1001"; the mapping strips the "#", so the answers are the same.
    assert_eq!(b.replies, a.replies);
    assert_eq!(
        (&a.state, &b.state),
        (&DialogueState::Idle, &DialogueState::Idle)
    );
    assert!(a.jobs.is_empty() && b.jobs.is_empty());
    assert_eq!(a.slots.order_id.as_deref(), Some("1001"));
    assert_eq!(b.slots.order_id.as_deref(), Some("1001"));

    // Someone else asking about the same order hears the same "not on your account" from both.
    let stranger = Principal::customer("default", "4242");
    let a = ask(&through_demo, &stranger, question).await;
    let b = ask(&through_shopify, &stranger, question).await;
    assert_eq!(a.replies, b.replies);
    assert!(
        a.replies[0].contains("couldn't find order #1001 on your account"),
        "{:?}",
        a.replies
    );
}

// ---------------------------------------------------------------------------------------------
// Stripe

/// A demo-shaped orders system that knows each order's PaymentIntent, for Stripe refunds.
const ORDERS_WITH_PAYMENTS: &str = r#"
[systems.orders]
base_url = "${ORDERS_API_URL}"
[systems.orders.operations.get_status]
path = "/orders/{order_id}"
[systems.orders.operations.get_status.response]
fields = { id = "/id", customer_id = "/customer_id", status = "/status", placed_at = "/placed_at", "total.amount_cents" = "/total/amount_cents", "total.currency" = "/total/currency", payment_ref = "/payment_intent" }
"#;

fn demo_order(id: &str, payment_intent: Option<&str>) -> Value {
    let mut o = json!({
        "id": id,
        "customer_id": "cust_alice",
        "status": "in_transit",
        "placed_at": "2026-11-12T10:00:00Z",
        "total": { "amount_cents": 4599, "currency": "USD" }
    });
    if let Some(pi) = payment_intent {
        o["payment_intent"] = json!(pi);
    }
    o
}

#[tokio::test]
async fn stripe_refunds_the_orders_payment_intent_with_a_form_and_an_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/1002"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(demo_order("1002", Some("pi_3Q1002"))),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders/1003"))
        .respond_with(ResponseTemplate::new(200).set_body_json(demo_order("1003", None)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(bearer_token("rk_test_refunds"))
        .and(body_string_contains("payment_intent=pi_3Q1002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_3Q1002", "object": "refund", "amount": 4599, "currency": "usd",
            "payment_intent": "pi_3Q1002", "status": "succeeded",
            "metadata": { "order_id": "1002" }, "reason": "requested_by_customer"
        })))
        .mount(&server)
        .await;
    // What Stripe says to a refund that names no charge or payment intent.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": {
            "type": "invalid_request_error",
            "message": "One of the following params should be provided for this request: payment_intent or charge."
        } })))
        .mount(&server)
        .await;
    let vars = vec![
        ("ORDERS_API_URL", server.uri()),
        ("STRIPE_API_URL", server.uri()),
    ];
    let config = config::merge(vec![
        parse("orders.toml", ORDERS_WITH_PAYMENTS, &vars),
        parse_example("stripe.toml", &vars),
    ])
    .unwrap();
    assert!(!config.has(Op::CrmGetCustomer), "Stripe's directory is off");
    let bot = ports(config);

    let usd = |c| Money {
        amount_cents: c,
        currency: "USD".into(),
    };
    let receipt = bot
        .refund("1002", &usd(4599), "refund:default:1002")
        .await
        .unwrap();
    assert_eq!(
        receipt,
        RefundReceipt {
            id: "re_3Q1002".into(),
            status: "succeeded".into(),
            amount: usd(4599),
        }
    );

    let sent = requests(&server).await;
    assert_eq!(
        sent.iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect::<Vec<_>>(),
        ["GET /orders/1002", "POST /v1/refunds"],
        "the order is read first, for its payment"
    );
    let refund = &sent[1];
    assert_eq!(
        header_of(refund, "content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(header_of(refund, "authorization"), "Bearer rk_test_refunds");
    assert_eq!(header_of(refund, "idempotency-key"), "refund:default:1002");
    assert_eq!(header_of(refund, "stripe-version"), "2024-06-20");
    assert_eq!(
        form_of(refund),
        pairs(&[
            ("amount", "4599"),
            ("metadata[order_id]", "1002"),
            ("payment_intent", "pi_3Q1002"),
            ("reason", "requested_by_customer"),
        ])
    );

    // An order without a payment reference: no payment_intent is sent, and Stripe's refusal is
    // final (never a refund of some other payment).
    let e = bot
        .refund("1003", &usd(4599), "refund:default:1003")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ConnectorError::Rejected { status: 400, .. }),
        "{e}"
    );
    let sent = requests(&server).await;
    let last = sent.last().unwrap();
    assert_eq!(
        form_of(last),
        pairs(&[
            ("amount", "4599"),
            ("metadata[order_id]", "1003"),
            ("reason", "requested_by_customer"),
        ])
    );
    assert_eq!(sent.len(), 4, "a 400 is not retried");
}

fn stripe_customer(id: &str, our_id: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "email": "alice@example.com",
        "name": "Alice Martin",
        "metadata": match our_id {
            Some(c) => json!({ "customer_id": c }),
            None => json!({}),
        },
    })
}

#[tokio::test]
async fn stripe_customers_are_known_by_the_id_in_their_metadata() {
    let server = MockServer::start().await;
    let get = |p: &str| {
        Mock::given(method("GET"))
            .and(path(p.to_string()))
            .and(bearer_token("rk_test_customers"))
            .and(header("Stripe-Version", "2024-06-20"))
    };
    let list = |data: Vec<Value>| {
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/customers", "has_more": false, "data": data
        }))
    };
    get("/v1/customers")
        .and(query_param("email", "alice@example.com"))
        .and(query_param("limit", "2"))
        .respond_with(list(vec![stripe_customer(
            "cus_alice01",
            Some("cust_alice"),
        )]))
        .mount(&server)
        .await;
    get("/v1/customers")
        .and(query_param("email", "dashboard@example.com"))
        .respond_with(list(vec![stripe_customer("cus_dash", None)]))
        .mount(&server)
        .await;
    get("/v1/customers/cus_alice01")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(stripe_customer("cus_alice01", Some("cust_alice"))),
        )
        .mount(&server)
        .await;
    get("/v1/customers/cus_gone")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cus_gone", "object": "customer", "deleted": true
        })))
        .mount(&server)
        .await;
    get("/v1/customers/cus_nope")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "message": "No such customer: 'cus_nope'"
        } })))
        .mount(&server)
        .await;
    get("/v1/customers/search")
        .and(query_param("query", "metadata['customer_id']:'cust_alice'"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "search_result", "url": "/v1/customers/search", "has_more": false,
            "next_page": null,
            "data": [stripe_customer("cus_alice01", Some("cust_alice"))]
        })))
        .mount(&server)
        .await;
    let vars = vec![
        ("STRIPE_API_URL", server.uri()),
        ("STRIPE_CUSTOMERS_URL", server.uri()),
    ];
    let bot = ports(parse_example("stripe.toml", &vars));

    // Stripe does not confirm addresses: not verified.
    let alice = Some(Customer {
        id: "cust_alice".into(),
        email: Some("alice@example.com".into()),
        name: Some("Alice Martin".into()),
        email_verified: false,
    });
    assert_eq!(bot.by_email("alice@example.com").await.unwrap(), alice);
    assert_eq!(
        bot.by_vendor_id("stripe", "cus_alice01").await.unwrap(),
        alice,
        "one object read as a list of one"
    );
    assert_eq!(bot.by_id("cust_alice").await.unwrap(), alice);
    assert_eq!(bot.by_vendor_id("stripe", "cus_nope").await.unwrap(), None);
    // Customers the bot cannot map (no metadata, deleted): refused, not guessed; the vendor-event
    // handler reads a non-transient error as no match.
    for e in [
        bot.by_vendor_id("stripe", "cus_gone").await.unwrap_err(),
        bot.by_email("dashboard@example.com").await.unwrap_err(),
    ] {
        assert!(matches!(e, ConnectorError::Malformed { .. }), "{e}");
        assert!(!e.is_transient());
    }
    assert_eq!(requests(&server).await.len(), 6, "nothing was retried");
}

// ---------------------------------------------------------------------------------------------
// The OAuth2 CRM and Postmark

fn crm_contact(our_id: &str) -> Value {
    json!({
        "id": "ct_8f2k",
        "type": "contact",
        "attributes": {
            "external_id": our_id,
            "email": "alice@example.com",
            "full_name": "Alice Martin",
            "email_verified": true,
            "created_at": "2025-03-02T11:00:00Z"
        }
    })
}

#[tokio::test]
async fn the_crm_fetches_one_oauth2_token_and_uses_it_as_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(basic_auth("switchboard-support-bot", "crm-client-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "crm-access-1", "token_type": "Bearer", "expires_in": 3600,
            "scope": "contacts.read"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let contacts = |filter: &str, value: &str, data: Vec<Value>| {
        Mock::given(method("GET"))
            .and(path("/v2/contacts"))
            .and(bearer_token("crm-access-1"))
            .and(query_param(filter, value))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": data, "meta": { "total": 1 }
            })))
    };
    contacts(
        "filter[external_id]",
        "cust_alice",
        vec![crm_contact("cust_alice")],
    )
    .expect(1)
    .mount(&server)
    .await;
    contacts(
        "filter[email]",
        "alice@example.com",
        vec![crm_contact("cust_alice")],
    )
    .expect(1)
    .mount(&server)
    .await;
    contacts(
        "filter[identities.id]",
        "cus_alice01",
        vec![crm_contact("cust_alice")],
    )
    .expect(1)
    .mount(&server)
    .await;
    let vars = vec![
        ("CRM_API_URL", format!("{}/v2", server.uri())),
        ("CRM_TOKEN_URL", format!("{}/oauth/token", server.uri())),
    ];
    let config = parse_example("crm.toml", &vars);
    assert_eq!(
        config.disabled,
        [("email", "POSTMARK_API_URL".to_string())],
        "email is off without its variable"
    );
    let bot = ports(config);

    let alice = Some(Customer {
        id: "cust_alice".into(),
        email: Some("alice@example.com".into()),
        name: Some("Alice Martin".into()),
        email_verified: true,
    });
    assert_eq!(bot.by_id("cust_alice").await.unwrap(), alice);
    assert_eq!(bot.by_email("alice@example.com").await.unwrap(), alice);
    assert_eq!(
        bot.by_vendor_id("stripe", "cus_alice01").await.unwrap(),
        alice
    );
    server.verify().await;

    let sent = requests(&server).await;
    let token = &sent[0];
    assert_eq!(token.url.path(), "/oauth/token");
    assert_eq!(
        form_of(token),
        pairs(&[
            ("grant_type", "client_credentials"),
            ("scope", "contacts.read")
        ])
    );
    let basic = base64::engine::general_purpose::STANDARD
        .encode("switchboard-support-bot:crm-client-secret");
    assert_eq!(header_of(token, "authorization"), format!("Basic {basic}"));
    let lookups: Vec<&Request> = sent[1..].iter().collect();
    assert_eq!(lookups.len(), 3);
    for req in &lookups {
        assert_eq!(header_of(req, "authorization"), "Bearer crm-access-1");
    }
    let vendor = lookups[2]
        .url
        .query_pairs()
        .into_owned()
        .collect::<Vec<_>>();
    assert!(
        vendor.contains(&("filter[identities.source]".into(), "stripe".into())),
        "{vendor:?}"
    );
}

#[tokio::test]
async fn postmark_sends_the_confirmation_as_json_with_the_server_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .and(header("X-Postmark-Server-Token", "pm-server-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "To": "alice@example.com", "SubmittedAt": "2026-11-24T12:00:01Z",
            "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let vars = vec![
        ("CRM_API_URL", "https://crm.example".to_string()),
        (
            "CRM_TOKEN_URL",
            "https://crm.example/oauth/token".to_string(),
        ),
        ("POSTMARK_API_URL", server.uri()),
    ];
    let bot = ports(parse_example("crm.toml", &vars));

    bot.send(
        "alice@example.com",
        "Your refund for order #1002",
        "We've refunded $45.99.",
        "email:default:refund:1002",
    )
    .await
    .unwrap();
    server.verify().await;
    let sent = requests(&server).await;
    assert_eq!(header_of(&sent[0], "accept"), "application/json");
    assert_eq!(
        sent[0].body_json::<Value>().unwrap(),
        json!({
            "From": "Acme Support <support@acme.example>",
            "To": "alice@example.com",
            "Subject": "Your refund for order #1002",
            "TextBody": "We've refunded $45.99.",
            "MessageStream": "outbound",
            "Metadata": { "idempotency_key": "email:default:refund:1002" }
        })
    );
}
