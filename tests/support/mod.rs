//! Helpers for the integration tests: they talk to the running local stack (`./dev/test` starts
//! it and exports its endpoints) over HTTP and read state back through the AWS APIs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use switchboard::auth::{DevClaims, Role};
use switchboard::signatures::{sign, Scheme, SigningKey};

pub struct Stack {
    pub chat_url: String,
    pub webhook_url: String,
    pub lambda_url: String,
    pub demo_url: String,
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    /// moto, where the table and queues live (and its test-only fault routes).
    pub aws_url: String,
    /// The stack's name: its state and logs are under `.local/<name>/`.
    pub name: String,
    jwt_secret: String,
    /// The chat function's `JWT_ISSUER` / `JWT_AUDIENCE`: every token minted here carries them.
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    pub http: reqwest::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Held for the test's length: see `connect_alone`.
    _turn: Turn,
}

/// A test binary's tests run side by side, and a fulfillment batch can hold jobs of several of
/// them. A test that kills the instance running its job would make the others' jobs in that
/// batch run again (a refused write called twice), so it runs alone in its binary. (Jobs an
/// earlier test left retrying can still be in the batch.) A test connects once: a second
/// `connect` while a `connect_alone` waits would wait behind it for ever.
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

enum Turn {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need the local stack; run them with ./dev/test")
    })
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Stack {
    pub async fn connect() -> Stack {
        Self::with_turn(Turn::Shared(TURNS.read().await)).await
    }

    /// For a test that kills a function instance: no other test of its binary runs meanwhile.
    pub async fn connect_alone() -> Stack {
        Self::with_turn(Turn::Alone(TURNS.write().await)).await
    }

    async fn with_turn(turn: Turn) -> Stack {
        let aws = switchboard::setup::aws()
            .await
            .expect("AWS configuration from the local stack's environment");
        Stack {
            _turn: turn,
            chat_url: var("CHAT_URL"),
            webhook_url: var("WEBHOOK_URL"),
            lambda_url: var("LAMBDA_URL"),
            demo_url: var("DEMO_URL"),
            table: var("TABLE_NAME"),
            queue_url: var("JOBS_QUEUE_URL"),
            dlq_url: var("JOBS_DLQ_URL"),
            aws_url: var("AWS_ENDPOINT_URL"),
            name: var("LOCAL_STACK_NAME"),
            jwt_secret: var("JWT_HS256_SECRET"),
            jwt_issuer: std::env::var("JWT_ISSUER").ok().filter(|v| !v.is_empty()),
            jwt_audience: std::env::var("JWT_AUDIENCE").ok().filter(|v| !v.is_empty()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            ddb: aws_sdk_dynamodb::Client::new(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
        }
    }

    /// Claims the stack accepts for `sub` (its issuer and audience, ten minutes), to adjust
    /// (`.role(..)`, `.tenant(..)`, `.expires_in(..)`) and `sign`.
    pub fn claims(&self, sub: &str) -> DevClaims {
        DevClaims::new(sub).issued_for(self.jwt_issuer.as_deref(), self.jwt_audience.as_deref())
    }

    /// Signs with the stack's key.
    pub fn sign(&self, claims: &DevClaims) -> String {
        claims.sign_hs256(self.jwt_secret.as_bytes())
    }

    pub fn token(&self, customer: &str) -> String {
        self.sign(&self.claims(customer))
    }

    pub fn expired_token(&self, customer: &str) -> String {
        self.sign(&self.claims(customer).expires_in(-600))
    }

    /// Runs the project's DLQ command (`dev/dlq.py`) against this stack; its output.
    pub fn dlq(&self, args: &[&str]) -> String {
        let root = repo_root();
        let out = std::process::Command::new(root.join(".venv/bin/python"))
            .arg(root.join("dev/dlq.py"))
            .args(args)
            .args(["--stack-name", &self.name])
            .output()
            .expect("run dev/dlq.py");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A customer id no other test (or earlier run against the same stack) uses.
    pub fn fresh_customer(prefix: &str) -> String {
        format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("the function answers");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            content_type,
            retry_after,
            body,
        }
    }

    pub async fn post_raw(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/v1/messages", self.chat_url))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post(&self, token: &str, body: Value) -> Reply {
        self.post_raw(Some(token), "application/json", body.to_string())
            .await
    }

    /// Posts and insists on 200; returns the reply body.
    pub async fn say(&self, token: &str, conversation: Option<&str>, text: &str) -> Value {
        let mut body = json!({ "text": text });
        if let Some(c) = conversation {
            body["conversation_id"] = c.into();
        }
        let r = self.post(token, body).await;
        assert_eq!(r.status, 200, "POST /v1/messages {text:?}: {}", r.body);
        r.body
    }

    pub async fn get(&self, token: Option<&str>, path_and_query: &str) -> Reply {
        let mut req = self.http.get(format!("{}{path_and_query}", self.chat_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// Any method on the chat API, with an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        token: Option<&str>,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.chat_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        self.send(req).await
    }

    /// A token for `sub` with a role in a tenant (None: the default one), signed with the
    /// stack's key.
    pub fn token_as(&self, sub: &str, tenant: Option<&str>, role: Role) -> String {
        let mut claims = self.claims(sub).role(role);
        if let Some(t) = tenant {
            claims = claims.tenant(t);
        }
        self.sign(&claims)
    }

    /// Polls history until a message satisfies `pred`, as a client should: a 429 waits out its
    /// `Retry-After` (a wait of a minute or more outlasts the caller's burst).
    pub async fn wait_for_message(
        &self,
        token: &str,
        conversation: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self
                .get(
                    Some(token),
                    &format!("/v1/conversations/{conversation}/messages?limit=100"),
                )
                .await;
            if r.status == 429 && Instant::now() < deadline {
                let secs = r.retry_after.as_deref().and_then(|s| s.parse().ok());
                tokio::time::sleep(Duration::from_secs(secs.unwrap_or(1))).await;
                continue;
            }
            assert_eq!(r.status, 200, "{}", r.body);
            if let Some(m) = r.body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| pred(m))
            {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no matching message within {timeout:?}: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The demo email API's one call with idempotency key `key`, once made, and everything it
    /// has recorded (`calls`, `sent`). Fails on a second call with the key (a duplicate email)
    /// or when none is made within `timeout`.
    pub async fn wait_for_email(&self, key: &str, timeout: Duration) -> (Value, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            let emails = self.demo_admin("emails").await;
            let sent: Vec<&Value> = emails["calls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["idempotency_key"] == key)
                .collect();
            if let [one] = sent.as_slice() {
                return ((*one).clone(), emails);
            }
            assert!(sent.len() < 2, "{emails}");
            assert!(
                Instant::now() < deadline,
                "no email {key} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every item of a conversation's partition, read straight from DynamoDB.
    pub async fn partition(
        &self,
        tenant: &str,
        conversation: &str,
    ) -> Vec<HashMap<String, AttributeValue>> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("T#{tenant}#C#{conversation}")),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("query the table");
        out.items().to_vec()
    }

    /// One item by its key, read consistently.
    pub async fn item(&self, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item()
            .cloned()
    }

    /// Waits until a job's effect is finished (`done` or `failed`) and returns which.
    pub async fn wait_for_effect(&self, tenant: &str, job_key: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.effect_state(tenant, job_key).await;
            match state.as_deref() {
                Some("done") | Some("failed") => return state.unwrap(),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "effect {job_key} not finished within {timeout:?} (state {state:?})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// POSTs a body with headers to the webhook function's URL.
    pub async fn webhook(&self, vendor: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/webhooks/{vendor}", self.webhook_url))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        self.send(req).await
    }

    /// The local stack's signing secret for a vendor, as the vendor holds it.
    pub fn webhook_secret(vendor: &str) -> String {
        var(&format!("DEV_WEBHOOK_SECRET_{}", vendor.to_uppercase()))
    }

    pub async fn sort_keys(&self, conversation: &str) -> Vec<String> {
        self.partition("default", conversation)
            .await
            .iter()
            .map(|i| i["sk"].as_s().unwrap().clone())
            .collect()
    }

    /// Visible plus in-flight messages.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let attrs = out.attributes().unwrap();
        [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|a| {
            attrs
                .get(a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    pub async fn wait_until_drained(&self, url: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.queue_depth(url).await > 0 {
            assert!(
                Instant::now() < deadline,
                "{url} did not drain within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Invokes a function through cargo-lambda's Invoke API, as `cargo lambda invoke` does.
    pub async fn invoke(&self, function: &str, event: &Value) -> Value {
        let resp = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.lambda_url
            ))
            .json(event)
            .send()
            .await
            .expect("invoke endpoint answers");
        assert!(
            resp.status().is_success(),
            "invoke {function}: {}",
            resp.status()
        );
        resp.json().await.expect("JSON result")
    }

    /// A GET on the demo systems' test-only inspection API (`/_admin/...`).
    pub async fn demo_admin(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/_admin/{path}", self.demo_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A subscription of the test's own in the demo `boxes` system (the subscriptions example
    /// bot's), for a fresh customer: (customer, subscription id).
    pub async fn create_subscription(&self, state: &str) -> (String, String) {
        let customer = Stack::fresh_customer("cust_box");
        let id = unique("sub");
        let resp = self
            .http
            .post(format!("{}/_admin/boxes/subscriptions", self.demo_url))
            .json(&json!({ "id": id, "customer_id": customer, "state": state }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        (customer, id)
    }

    /// What the `boxes` system saw for `key` (the calls carrying it, the changes it made), and
    /// the subscription `sub` now.
    pub async fn boxes_seen(&self, key: &str, sub: &str) -> (usize, u64, Value) {
        let v = self.demo_admin("boxes").await;
        let calls = v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["idempotency_key"] == key)
            .count();
        let changes = v["changes"][key].as_u64().unwrap_or(0);
        let s = v["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == sub)
            .cloned()
            .unwrap();
        (calls, changes, s)
    }

    pub async fn refunds_for(&self, order_id: &str) -> (usize, usize) {
        let v = self.demo_admin("refunds").await;
        let refunds = v["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["order_id"] == order_id)
            .count();
        let calls = v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["body"]["order_id"] == order_id)
            .count();
        (refunds, calls)
    }

    /// A late order of the test's own in the demo systems, so refund keys never collide.
    pub async fn create_order(&self, customer: &str, total_cents: i64) -> String {
        self.create_order_as(customer, total_cents, "in_transit")
            .await
    }

    /// An order of the test's own with a status (`in_transit`: late; `delivered`, `cancelled`).
    pub async fn create_order_as(&self, customer: &str, total_cents: i64, status: &str) -> String {
        self.create_order_with(
            customer,
            json!({ "total_cents": total_cents, "status": status }),
        )
        .await
    }

    /// An order of the test's own with any of the fields `POST /_admin/orders` takes
    /// (dev/demo_systems.py: total_cents, status, placed_days_ago, promised_in_days, carrier).
    pub async fn create_order_with(&self, customer: &str, fields: Value) -> String {
        let id = format!("T{}", ulid::Ulid::new());
        let mut order = json!({ "id": id, "customer_id": customer });
        order
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().expect("fields are an object").clone());
        let resp = self
            .http
            .post(format!("{}/_admin/orders", self.demo_url))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        id
    }

    /// A CRM customer of the test's own, `<id>@example.com`: what is mailed to the address the
    /// CRM has for them is the test's alone.
    pub async fn create_customer(&self, prefix: &str) -> String {
        let id = Self::fresh_customer(prefix);
        let resp = self
            .http
            .post(format!("{}/_admin/customers", self.demo_url))
            .json(&json!({ "id": id, "email": format!("{id}@example.com") }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        id
    }

    /// The demo payments API forgets the idempotency keys of an order's refunds, as Stripe does
    /// after 24 hours (the refunds stay counted by `refunds_for`).
    pub async fn forget_refund_keys(&self, order_id: &str) {
        let resp = self
            .http
            .post(format!("{}/_admin/refunds/forget", self.demo_url))
            .json(&json!({ "order_id": order_id }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }

    /// Arms a fault in the demo systems (see dev/demo_systems.py: path, match, status, delay_ms,
    /// times, for_ms); returns its id, for `clear_fault`.
    pub async fn arm_fault(&self, fault: Value) -> String {
        let resp = self
            .http
            .post(format!("{}/_admin/faults", self.demo_url))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let armed: Value = resp.json().await.unwrap();
        armed["id"].as_str().expect("a fault id").to_string()
    }

    /// Disarms a demo-systems fault before its time is up.
    pub async fn clear_fault(&self, id: &str) {
        let resp = self
            .http
            .delete(format!("{}/_admin/faults/{id}", self.demo_url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    /// Requests the demo systems are holding (a delay fault), with the caller's TCP port.
    pub async fn inflight(&self) -> Vec<Value> {
        self.demo_admin("inflight").await["requests"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// SIGKILLs the `function` process that owns the loopback TCP connection from `port`: the
    /// one instance making that call, found through /proc (Linux). Returns its PID.
    pub fn kill_caller(&self, function: &str, port: u16) -> u32 {
        let binary = repo_root().join("target/debug").join(function);
        let mut inodes = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let local_port = cols
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if local_port == Some(port) {
                    inodes.push(format!("socket:[{}]", cols[9]));
                }
            }
        }
        assert!(!inodes.is_empty(), "no connection from port {port}");
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // Any target directory's build of the function (CARGO_TARGET_DIR may move it): the
            // connection's owner below is what singles out the one instance.
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref().and_then(std::path::Path::file_name) != binary.file_name() {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            let owns = fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
            });
            if owns {
                let status = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(status.success(), "kill {pid}");
                return pid;
            }
        }
        panic!("no {function} process owns the connection from port {port}");
    }

    /// What the functions have logged so far (all three share one log under cargo-lambda).
    pub fn functions_log(&self) -> String {
        let path = repo_root()
            .join(".local")
            .join(&self.name)
            .join("logs/functions.log");
        String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned()
    }

    /// Arms a fault in front of moto (dev/moto_server.py: target, match, status, code, delay_ms,
    /// when, times); returns its id, for `clear_aws_fault`.
    pub async fn arm_aws_fault(&self, fault: Value) -> String {
        let resp = self
            .http
            .post(format!("{}/_switchboard/faults", self.aws_url))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        let armed: Value = resp.json().await.unwrap();
        armed["id"].as_str().unwrap().to_string()
    }

    /// How many requests a moto fault has matched so far.
    pub async fn aws_fault_hits(&self, id: &str) -> u64 {
        let all: Value = self
            .http
            .get(format!("{}/_switchboard/faults", self.aws_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["hits"].as_u64())
            .unwrap_or(0)
    }

    /// Removes a moto fault; requests it holds go on at once.
    pub async fn clear_aws_fault(&self, id: &str) {
        let resp = self
            .http
            .delete(format!("{}/_switchboard/faults/{id}", self.aws_url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    /// Requests a moto fault is holding, with the caller's TCP port (`peer_port`).
    pub async fn aws_inflight(&self) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/_switchboard/inflight", self.aws_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests"].as_array().unwrap().clone()
    }

    /// Waits until a moto fault holds a request whose body contains `needle`; its caller's port.
    pub async fn wait_for_held(&self, needle: &str, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            let held = self.aws_inflight().await;
            if let Some(r) = held
                .iter()
                .find(|r| r["body"].as_str().is_some_and(|b| b.contains(needle)))
            {
                return r["peer_port"].as_u64().unwrap() as u16;
            }
            assert!(
                Instant::now() < deadline,
                "no request with {needle:?} held: {held:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends jobs straight to the jobs queue, as the relay would: (FIFO group, body) each,
    /// every one with a deduplication id of its own.
    pub async fn send_jobs(&self, entries: &[(&str, &str)]) {
        let entries: Vec<aws_sdk_sqs::types::SendMessageBatchRequestEntry> = entries
            .iter()
            .enumerate()
            .map(|(i, (group, body))| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(*body)
                    .message_group_id(*group)
                    .message_deduplication_id(unique("dedup"))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("send to the jobs queue");
        assert!(out.failed().is_empty(), "{:?}", out.failed());
    }

    /// What the bot said in a conversation (its first 100 messages), oldest first.
    pub async fn bot_texts(&self, token: &str, conversation: &str) -> Vec<String> {
        let page = self
            .get(
                Some(token),
                &format!("/v1/conversations/{conversation}/messages?limit=100"),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "bot")
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    }

    /// Messages on a queue whose body contains `needle`, with their attributes, looked at
    /// without taking them: each one received stays hidden until a receive finds nothing more,
    /// so none is counted twice, and all are made visible again after. On a FIFO queue that
    /// is what is receivable: each group's messages up to its first hidden one (the ones a test
    /// looks for here are alone in their group).
    pub async fn peek(&self, url: &str, needle: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut seen: Vec<aws_sdk_sqs::types::Message> = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_attribute_names("All")
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            if got.messages().is_empty() {
                break;
            }
            seen.extend(got.messages().iter().cloned());
        }
        for m in &seen {
            if let Some(receipt) = m.receipt_handle() {
                // Gone meanwhile (another reader deleted it) is fine.
                let _ = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
        }
        seen.retain(|m| m.body().unwrap_or_default().contains(needle));
        seen
    }

    /// The state of a job's effect, if it has begun.
    pub async fn effect_state(&self, tenant: &str, job_key: &str) -> Option<String> {
        self.item(&format!("T#{tenant}#E#{job_key}"), "EFFECT")
            .await
            .and_then(|i| i.get("effect_state").and_then(|s| s.as_s().ok()).cloned())
    }
}

/// A unique id with a readable prefix (message ids, markers, deduplication ids).
/// What the shipped bot says for message `key` (no variables), as the functions say it.
pub fn bot_text(key: &str) -> String {
    switchboard::bot::Bot::embedded()
        .default_messages()
        .render(key, &[])
}

/// Whether `text` is the "let me check" / "I can't reach our systems" of a deferred turn.
pub fn is_deferral_text(text: &str) -> bool {
    use switchboard::dialogue::{DOWN_WILL_MESSAGE, LET_ME_CHECK};
    text == bot_text(LET_ME_CHECK) || text == bot_text(DOWN_WILL_MESSAGE)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A job of the `default` tenant's conversation, as the jobs queue carries it.
pub fn job_body(customer: &str, conversation: &str, kind: switchboard::jobs::JobKind) -> String {
    let key = switchboard::conversation::ConversationKey {
        tenant: "default".into(),
        id: conversation.into(),
    };
    serde_json::to_string(&switchboard::jobs::Job::new(&key, customer, kind)).unwrap()
}

/// A proactive message job: the bot posts `text` once (`id`).
pub fn proactive_body(customer: &str, conversation: &str, id: &str, text: &str) -> String {
    job_body(
        customer,
        conversation,
        switchboard::jobs::JobKind::ProactiveMessage {
            id: id.into(),
            text: text.into(),
        },
    )
}

/// The effect key of the default tenant's job for a vendor event claimed under `claim_id` (the
/// event id, or the body's hash for GitHub and Shopify), built as the jobs module builds it:
/// its parts escaped, so a `body-sha256:` id is not a plain join.
pub fn event_job_key(vendor: &str, claim_id: &str) -> String {
    switchboard::jobs::KeyParts::new("event")
        .part("default")
        .part(vendor)
        .part(claim_id)
        .finish()
}

pub fn texts(reply: &Value) -> Vec<String> {
    reply["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

/// Seconds since the Unix epoch, as vendors stamp their signatures.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The headers `vendor` would send with `body`, signed with the local stack's secret for it.
pub fn signed(
    scheme: Scheme,
    vendor: &str,
    id: &str,
    ts: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let key = SigningKey::new(scheme, &Stack::webhook_secret(vendor)).unwrap();
    sign(scheme, &key, id, ts, body)
}

pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
