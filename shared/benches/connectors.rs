//! Connector overhead per call, network excluded: building an operation's request from its
//! templates, mapping the answer's bytes into our shape, and reading that into the typed record
//! the port returns; and what a call costs while its system's circuit is open.
//!
//!   cargo bench -p switchboard --bench connectors
//!
//! Targets: overhead under 50 µs p99 per call; a call to an open circuit under 5 µs. Each
//! iteration is timed on its own with `Instant` (20 000 after a warm-up), and the sorted samples
//! give p50, p99 and max; a counting allocator (off while timing) gives the heap allocations of
//! one run. Credentials are left off (`Connectors::prepare` skips them: fetching them is I/O,
//! and a warm container has them cached). Figures: docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use switchboard::connectors::catalog::Op;
use switchboard::connectors::config::{self, ConnectorsConfig};
use switchboard::connectors::engine::{http_client, Connectors, Reply};
use switchboard::connectors::{ConnectorError, Order};
use switchboard::money::Money;
use switchboard::secrets::{SecretError, SecretRef, SecretSource, SecretValue};

#[path = "support/mod.rs"]
mod support;
use support::{allocations, machine, start_counting, stop_counting, Samples};

const WARM_UP: usize = 2_000;
const ITERATIONS: usize = 20_000;
const OVERHEAD_TARGET_US: f64 = 50.0;
const OPEN_CIRCUIT_TARGET_US: f64 = 5.0;

/// No system here needs a secret; one that asked would be a bug in the bench.
struct NoSecrets;

#[async_trait]
impl SecretSource for NoSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Vec<SecretValue>, SecretError> {
        Err(SecretError::NotFound(reference.to_string()))
    }
}

fn connectors(config: ConnectorsConfig) -> Connectors {
    Connectors::new(
        config,
        http_client(),
        Arc::new(NoSecrets),
        Duration::from_secs(300),
    )
}

/// The bundled demo file with every system at `base`.
fn bundled(base: &str) -> ConnectorsConfig {
    config::parse(config::BUNDLED_NAME, config::BUNDLED, &|_| {
        Some(base.into())
    })
    .expect("the bundled connector file parses")
}

fn shopify_like() -> ConnectorsConfig {
    config::parse("shopify-like.toml", SHOPIFY_LIKE, &|_| {
        Some("http://127.0.0.1:9/admin/api/2025-07/graphql.json".into())
    })
    .expect("the Shopify-like file parses")
}

/// The demo order system's answer to `GET /orders/1002` (dev/demo_systems.py, as Python's
/// `json.dumps` writes it): a late order with two items.
const DEMO_ORDER: &str = r#"{"id": "1002", "customer_id": "cust_alice", "status": "in_transit", "placed_at": "2026-11-08T10:15:00Z", "promised_by": "2026-11-16T10:15:00Z", "delivered_at": null, "carrier": "FedEx", "tracking_url": "https://track.example.com/fedex/1Z1002", "total": {"amount_cents": 4599, "currency": "USD"}, "items": [{"name": "Noise-Cancelling Headphones", "quantity": 1}, {"name": "USB-C Cable", "quantity": 2}]}"#;

/// `GET /orders?customer_id=cust_alice`: Alice's three orders.
const DEMO_ORDERS: &str = r#"{"orders": [{"id": "1001", "customer_id": "cust_alice", "status": "in_transit", "placed_at": "2026-11-17T10:15:00Z", "promised_by": "2026-11-22T10:15:00Z", "delivered_at": null, "carrier": "UPS", "tracking_url": "https://track.example.com/ups/1Z1001", "total": {"amount_cents": 2999, "currency": "USD"}, "items": [{"name": "Wireless Mouse", "quantity": 1}]}, {"id": "1002", "customer_id": "cust_alice", "status": "in_transit", "placed_at": "2026-11-08T10:15:00Z", "promised_by": "2026-11-16T10:15:00Z", "delivered_at": null, "carrier": "FedEx", "tracking_url": "https://track.example.com/fedex/1Z1002", "total": {"amount_cents": 4599, "currency": "USD"}, "items": [{"name": "Noise-Cancelling Headphones", "quantity": 1}, {"name": "USB-C Cable", "quantity": 2}]}, {"id": "0987", "customer_id": "cust_alice", "status": "delivered", "placed_at": "2026-05-04T10:15:00Z", "promised_by": "2026-06-03T10:15:00Z", "delivered_at": "2026-06-02T10:15:00Z", "carrier": "UPS", "tracking_url": "https://track.example.com/ups/1Z0987", "total": {"amount_cents": 1250, "currency": "USD"}, "items": [{"name": "Phone Case", "quantity": 1}]}]}"#;

/// A Shopify-like order system: the Admin GraphQL API's `orders` query by order name, with
/// Shopify's statuses, decimal amounts and nested connections mapped into our order.
const SHOPIFY_LIKE: &str = r#"
[systems.orders]
base_url = "${SHOP_GRAPHQL_URL}"
headers = { Accept = "application/json" }
auth = { type = "api_key", header = "X-Shopify-Access-Token", secret = "env:SHOPIFY_TOKEN" }

[systems.orders.operations.get_status]
graphql = """
query OrderStatus($query: String!) {
  orders(first: 1, query: $query) {
    nodes {
      name
      customer { id }
      displayFulfillmentStatus
      createdAt
      totalPriceSet { shopMoney { amount currencyCode } }
      lineItems(first: 50) { nodes { name quantity } }
      fulfillments(first: 1) {
        estimatedDeliveryAt
        deliveredAt
        trackingInfo(first: 1) { company url }
      }
    }
  }
}
"""
operation_name = "OrderStatus"
variables = { query = "name:{order_id}" }

[systems.orders.operations.get_status.response]
at = "/data/orders/nodes/0"
fields.id = "/name"
fields.customer_id = "/customer/id"
fields.status = { pointer = "/displayFulfillmentStatus", map = { FULFILLED = "shipped", PARTIALLY_FULFILLED = "shipped", IN_PROGRESS = "processing", UNFULFILLED = "processing" }, default = "processing" }
fields.placed_at = "/createdAt"
fields.promised_by = "/fulfillments/0/estimatedDeliveryAt"
fields.delivered_at = "/fulfillments/0/deliveredAt"
fields.carrier = "/fulfillments/0/trackingInfo/0/company"
fields.tracking_url = "/fulfillments/0/trackingInfo/0/url"
fields."total.amount_cents" = { pointer = "/totalPriceSet/shopMoney/amount", as = "cents" }
fields."total.currency" = "/totalPriceSet/shopMoney/currencyCode"
fields.items = { each = "/lineItems/nodes", fields = { name = "/name", quantity = "/quantity" } }
"#;

/// What Shopify answers that query with, `extensions.cost` included.
const SHOPIFY_ORDER: &str = r##"{"data":{"orders":{"nodes":[{"name":"#1002","customer":{"id":"gid://shopify/Customer/7008170049582"},"displayFulfillmentStatus":"FULFILLED","createdAt":"2026-11-08T10:15:00Z","totalPriceSet":{"shopMoney":{"amount":"45.99","currencyCode":"USD"}},"lineItems":{"nodes":[{"name":"Noise-Cancelling Headphones","quantity":1},{"name":"USB-C Cable","quantity":2}]},"fulfillments":[{"estimatedDeliveryAt":"2026-11-16T10:15:00Z","deliveredAt":null,"trackingInfo":[{"company":"FedEx","url":"https://www.fedex.com/fedextrack/?trknbr=771234567890"}]}]}]}},"extensions":{"cost":{"requestedQueryCost":13,"actualQueryCost":5,"throttleStatus":{"maximumAvailable":2000.0,"currentlyAvailable":1995,"restoreRate":100.0}}}}"##;

/// The refund as `PaymentsPort::refund` asks for it: seven inputs, `payment_ref` absent.
fn refund_inputs(order_id: &str, amount: &Money, key: &str) -> [(&'static str, Value); 7] {
    [
        ("order_id", json!(order_id)),
        ("amount_cents", json!(amount.amount_cents)),
        ("amount", json!(amount.major_units())),
        ("currency", json!(amount.currency.to_ascii_uppercase())),
        (
            "currency_lower",
            json!(amount.currency.to_ascii_lowercase()),
        ),
        ("idempotency_key", json!(key)),
        ("payment_ref", Value::Null),
    ]
}

fn typed_order(op: Op, reply: Reply<Order>) -> Order {
    match reply {
        Reply::One(o) => o,
        other => panic!("{op}: expected one order, got {}", other.kind()),
    }
}

fn typed_orders(op: Op, reply: Reply<Order>) -> Vec<Order> {
    match reply {
        Reply::Many(mut orders) => {
            // As the port does: newest first.
            orders.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
            orders
        }
        other => panic!("{op}: expected orders, got {}", other.kind()),
    }
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

/// One table row per measured part.
struct Row {
    case: &'static str,
    part: &'static str,
    samples: Samples,
    /// Heap allocations of one run of the part.
    allocs: u64,
    target_us: Option<f64>,
}

/// Times `build` then `map` in each iteration (`WARM_UP` untimed first); `total` is both,
/// timed end to end. What they return is dropped after the clock stops: on the real path the
/// request goes to the HTTP client and the record to the flow.
fn phased<R, T>(case: &'static str, build: impl Fn() -> R, map: impl Fn() -> T) -> Vec<Row> {
    for _ in 0..WARM_UP {
        black_box((build(), map()));
    }
    let mut b = Vec::with_capacity(ITERATIONS);
    let mut m = Vec::with_capacity(ITERATIONS);
    let mut t = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        let request = black_box(build());
        let built = Instant::now();
        let record = black_box(map());
        let mapped = Instant::now();
        b.push(built - start);
        m.push(mapped - built);
        t.push(mapped - start);
        drop((request, record));
    }
    let (build_allocs, map_allocs) = (allocations(&build), allocations(&map));
    vec![
        Row {
            case,
            part: "build (inputs + `prepare`)",
            samples: Samples::new(b),
            allocs: build_allocs,
            target_us: None,
        },
        Row {
            case,
            part: "map (`read` + typed record)",
            samples: Samples::new(m),
            allocs: map_allocs,
            target_us: None,
        },
        Row {
            case,
            part: "**total**",
            samples: Samples::new(t),
            allocs: build_allocs + map_allocs,
            target_us: Some(OVERHEAD_TARGET_US),
        },
    ]
}

/// One order by id: `prepare`, then `read` and the typed `Order`, as `OrdersPort::order` does.
fn one_order(
    case: &'static str,
    c: &Connectors,
    order_id: &'static str,
    answer: &'static [u8],
) -> Vec<Row> {
    let op = Op::OrdersGetStatus;
    phased(
        case,
        || {
            let inputs = [("order_id", json!(order_id))];
            c.prepare(op, &inputs).expect("the request builds")
        },
        || typed_order(op, c.read(op, black_box(answer)).expect("the answer maps")),
    )
}

/// A customer's orders, newest first, as `OrdersPort::recent_orders` does.
fn list_orders(
    case: &'static str,
    c: &Connectors,
    customer_id: &'static str,
    answer: &'static [u8],
) -> Vec<Row> {
    let op = Op::OrdersListByCustomer;
    phased(
        case,
        || {
            let inputs = [("customer_id", json!(customer_id))];
            c.prepare(op, &inputs).expect("the request builds")
        },
        || typed_orders(op, c.read(op, black_box(answer)).expect("the answer maps")),
    )
}

fn refund_build(c: &Connectors) -> Row {
    let op = Op::PaymentsRefund;
    let amount = Money {
        amount_cents: 4599,
        currency: "usd".into(),
    };
    let key = "refund:conv_01JD4Z8Q3W9M7X2K5N6P:1002";
    let build = || {
        let inputs = refund_inputs("1002", &amount, key);
        c.prepare(op, &inputs).expect("the request builds")
    };
    Row {
        case: "payments.refund (demo REST, JSON body)",
        part: "build (inputs + `prepare`)",
        samples: timed(build),
        allocs: allocations(build),
        target_us: Some(OVERHEAD_TARGET_US),
    }
}

/// A loopback port where nothing listens: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    l.local_addr().expect("its address").port()
}

fn is_circuit_open(r: &Result<Reply, ConnectorError>) -> bool {
    matches!(r, Err(ConnectorError::Unavailable { detail, .. }) if detail.contains("circuit open"))
}

/// `Connectors::call`, awaited, while the system's circuit is open.
fn open_circuit() -> Row {
    let port = closed_port();
    let text = format!(
        r#"
[systems.orders]
base_url = "http://127.0.0.1:{port}"
retries = 0
circuit_failures = 1
circuit_open_ms = 3600000

[systems.orders.operations.get_status]
path = "/orders/{{order_id}}"

[systems.orders.operations.get_status.response]
fields = {{ id = "/id", customer_id = "/customer_id", status = "/status", placed_at = "/placed_at", "total.amount_cents" = "/total/amount_cents", "total.currency" = "/total/currency" }}
"#
    );
    let c = connectors(config::parse("open-circuit.toml", &text, &|_| None).expect("parses"));
    let op = Op::OrdersGetStatus;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let inputs = [("order_id", json!("1002"))];
        let first = c.call(op, &inputs).await;
        assert!(
            matches!(&first, Err(ConnectorError::Unavailable { detail, .. }) if !detail.contains("circuit open")),
            "the first call fails to connect: {first:?}"
        );
        assert!(c.is_open("orders"), "one failure opens the circuit");
        for _ in 0..WARM_UP {
            let r = c.call(op, &inputs).await;
            assert!(is_circuit_open(&r), "refused by the open circuit: {r:?}");
        }
        let mut samples = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let start = Instant::now();
            let r = c.call(op, black_box(&inputs)).await;
            samples.push(start.elapsed());
            assert!(is_circuit_open(&r), "refused by the open circuit: {r:?}");
        }
        start_counting();
        let r = c.call(op, &inputs).await;
        let allocs = stop_counting();
        assert!(is_circuit_open(&r), "refused by the open circuit: {r:?}");
        Row {
            case: "open circuit (orders.get_status)",
            part: "`call`, awaited",
            samples: Samples::new(samples),
            allocs,
            target_us: Some(OPEN_CIRCUIT_TARGET_US),
        }
    })
}

/// Times `f` alone: `WARM_UP` untimed runs, then `ITERATIONS` timed ones.
fn timed<T>(mut f: impl FnMut() -> T) -> Samples {
    timed_with(|| (), |()| f())
}

/// Times `f` over what `setup` makes, `setup` and the drop of `f`'s result untimed.
fn timed_with<S, T>(mut setup: impl FnMut() -> S, mut f: impl FnMut(S) -> T) -> Samples {
    for _ in 0..WARM_UP {
        black_box(f(setup()));
    }
    Samples::new(
        (0..ITERATIONS)
            .map(|_| {
                let input = setup();
                let start = Instant::now();
                let out = f(input);
                let elapsed = start.elapsed();
                drop(black_box(out));
                elapsed
            })
            .collect(),
    )
}

/// Checks once, untimed, that each case does what it claims.
fn sanity(demo: &Connectors, shopify: &Connectors) {
    let r = demo
        .prepare(Op::OrdersGetStatus, &[("order_id", json!("1002"))])
        .unwrap();
    assert_eq!(r.url().as_str(), "http://127.0.0.1:9/orders/1002");
    let o = typed_order(
        Op::OrdersGetStatus,
        demo.read(Op::OrdersGetStatus, DEMO_ORDER.as_bytes())
            .unwrap(),
    );
    assert_eq!((o.id.as_str(), o.items.len()), ("1002", 2));

    let r = demo
        .prepare(
            Op::OrdersListByCustomer,
            &[("customer_id", json!("cust_alice"))],
        )
        .unwrap();
    assert_eq!(
        r.url().as_str(),
        "http://127.0.0.1:9/orders?customer_id=cust_alice"
    );
    let os = typed_orders(
        Op::OrdersListByCustomer,
        demo.read(Op::OrdersListByCustomer, DEMO_ORDERS.as_bytes())
            .unwrap(),
    );
    assert_eq!(
        os.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["1001", "1002", "0987"]
    );

    let r = shopify
        .prepare(Op::OrdersGetStatus, &[("order_id", json!("1002"))])
        .unwrap();
    assert_eq!(r.method(), "POST");
    let body: Value = serde_json::from_slice(r.body().unwrap().as_bytes().unwrap()).unwrap();
    assert_eq!(body["variables"], json!({ "query": "name:1002" }));
    assert_eq!(body["operationName"], "OrderStatus");
    let o = typed_order(
        Op::OrdersGetStatus,
        shopify
            .read(Op::OrdersGetStatus, SHOPIFY_ORDER.as_bytes())
            .unwrap(),
    );
    assert_eq!(o.id, "#1002");
    assert_eq!(o.status, switchboard::connectors::OrderStatus::Shipped);
    assert_eq!(o.total.amount_cents, 4599);
    assert_eq!(o.carrier.as_deref(), Some("FedEx"));
    assert_eq!(o.items.len(), 2);

    let money = Money {
        amount_cents: 4599,
        currency: "usd".into(),
    };
    let r = demo
        .prepare(
            Op::PaymentsRefund,
            &refund_inputs("1002", &money, "refund:1002"),
        )
        .unwrap();
    assert_eq!(r.url().as_str(), "http://127.0.0.1:9/refunds");
    assert_eq!(r.headers()["idempotency-key"], "refund:1002");
    let body: Value = serde_json::from_slice(r.body().unwrap().as_bytes().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({ "order_id": "1002", "amount": { "amount_cents": 4599, "currency": "USD" } })
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: both just run.
    // Every call emits its metrics (formatting included in the figures); only the write to
    // stdout, where the results go, is skipped.
    switchboard::metrics::discard_output();
    let demo_config = bundled("http://127.0.0.1:9");
    let shopify_config = shopify_like();
    let demo = connectors(demo_config.clone());
    let shopify = connectors(shopify_config.clone());
    sanity(&demo, &shopify);

    let mut rows = Vec::new();
    rows.extend(one_order(
        "orders.get_status (demo REST, 2 items)",
        &demo,
        "1002",
        DEMO_ORDER.as_bytes(),
    ));
    rows.extend(list_orders(
        "orders.list_by_customer (demo REST, 3 orders)",
        &demo,
        "cust_alice",
        DEMO_ORDERS.as_bytes(),
    ));
    rows.extend(one_order(
        "orders.get_status (Shopify-like GraphQL)",
        &shopify,
        "1002",
        SHOPIFY_ORDER.as_bytes(),
    ));
    rows.push(refund_build(&demo));
    rows.push(open_circuit());

    println!("connectors: per-call overhead, network excluded; {ITERATIONS} timed iterations per row after {WARM_UP} untimed");
    println!("machine: {}", machine());
    println!();
    println!("| case | part | p50 | p99 | max | allocations | target (p99) |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let p99 = r.samples.percentile(0.99);
        let target = match r.target_us {
            Some(t) => {
                let verdict = if p99.as_secs_f64() * 1e6 < t {
                    "pass"
                } else {
                    "**miss**"
                };
                format!("< {t} µs: {verdict}")
            }
            None => String::new(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.case,
            r.part,
            us(r.samples.percentile(0.50)),
            us(p99),
            us(r.samples.max()),
            r.allocs,
            target
        );
    }
}
