//! Conversation tests as data: a bundle's `tests/*.yaml` say what a customer says, turn by
//! turn, and what the bot must understand, answer, remember and start; `tests/fixtures.yaml`
//! holds the company systems' data they see (orders, products, refunds, the moment it is).
//! Each test runs through the real chat turn (`TurnService`) against an in-memory store and
//! the fixtures, offline, and every failing turn is reported, not just the first.
//!
//! ```yaml
//! tests:
//!   - name: a late order is offered a refund
//!     customer: alice            # default: the fixtures' first customer
//!     verified: false            # optional: a messaging channel's user not linked to the
//!                                # customer yet (default true: a signed-in customer)
//!     language: en               # optional: every turn is answered in it
//!     turns:
//!       - say: where is order 1002
//!         intent: order_status   # the understood intent's name
//!         reply: "(?i)refund"    # a regex over the turn's replies, joined by newlines
//!         reply_not: "on its way"
//!         language: en           # the language the bot answered in
//!         asks_in: en            # optional: the language the client asks for (the API's)
//!         state: order_status.offer  # the dialogue state's `kind` after the turn
//!       - say: yes please
//!         jobs: [refund.request] # the job types the turn started, in order
//!         handoff: false         # whether the turn handed the conversation to a person
//!         writes:                # the connector writes it started (`job = "connector"`)
//!           - operation: boxes.pause_box
//!             inputs: { subscription_id: sub_ana }  # optional: all of them, exactly
//!             key: "pause:sub_ana"                  # optional: the flow's idempotency key
//! ```
//! A test may start from a state (`state: {kind: payment_help_offered}`), as a vendor event
//! leaves a conversation.
//!
//! The operations a bundle declares for the company's own systems answer from the fixtures'
//! `operations`: per operation, the first entry whose `when` matches the call's inputs serves
//! its `record` (the fields as the connector file maps them: money as `{amount_cents,
//! currency}`, times RFC 3339), or fails as an unreachable system with `error: true`; no entry
//! matching is "none" (a 404). Checked at load against the operation's inputs and fields.
//!
//! The order system's id format, as a connector file's `order_ids` declares it, is the
//! fixtures' `order_ids` (`order_ids: { prefix: "SO-", digits: 5 }`): customers' "88140" is
//! then `SO-88140`.
//!
//! ```yaml
//! operations:
//!   "boxes.get_subscription":
//!     - when: { customer_id: ana }
//!       record: { id: sub_ana, status: active, price: { amount_cents: 3990, currency: USD } }
//!     - when: { customer_id: gus }
//!       error: true
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::auth::{Principal, DEFAULT_TENANT};
use crate::bot::error::{line_of, BundleError, BundleErrors};
use crate::bot::Bot;
use crate::config::ChatSettings;
use crate::connectors::catalog::{Op, Returns};
use crate::connectors::config::{find_op, DeclaredOps};
use crate::connectors::{
    ConnectorError, Customer, InventoryPort, OperationsPort, Order, OrdersPort, Product,
};
use crate::conversation::{ConversationKey, DialogueState};
use crate::dialogue::{Dialogue, Ending};
use crate::flow::engine::Waiting;
use crate::flow::value::Record;
use crate::jobs::{refund_key, JobKind};
use crate::store::memory::MemoryStore;
use crate::store::{Begin, ConversationStore, EffectLedger, EffectOutcome};
use crate::turn::{PostMessage, TurnService};

pub const FIXTURES: &str = "fixtures.yaml";

/// The systems' data the tests see: what the connectors would answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// The moment every turn happens at, so lateness is the same on every run.
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
    #[serde(default)]
    pub customers: Vec<Customer>,
    #[serde(default)]
    pub orders: Vec<Order>,
    #[serde(default)]
    pub products: Vec<Product>,
    /// Refunds the fulfillment ledger has (asked for in an earlier conversation).
    #[serde(default)]
    pub refunds: Vec<RefundFixture>,
    /// Where customers update a payment method (`PAYMENT_UPDATE_URL`).
    #[serde(default)]
    pub payment_update_url: Option<String>,
    /// What the company's own declared operations answer, by operation name.
    #[serde(default)]
    pub operations: BTreeMap<String, Vec<OperationFixture>>,
    /// What the order system's ids look like, as its connector file's `order_ids` says
    /// (`{ prefix: "SO-", digits: 5 }`); none: ids are taken as written.
    #[serde(default)]
    pub order_ids: Option<crate::order_ids::OrderIdFormat>,
}

/// One answer of a declared operation: served to a call whose inputs match `when`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFixture {
    /// Inputs and the values they must have; empty matches every call.
    #[serde(default)]
    pub when: BTreeMap<String, Json>,
    /// The record, as the connector file maps it.
    #[serde(default)]
    pub record: Option<Json>,
    /// The call fails as an unreachable system's would.
    #[serde(default)]
    pub error: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundFixture {
    pub order: String,
    pub state: RefundState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    InProgress,
    SetAside,
    Done,
    Failed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    tests: Vec<ConversationTest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationTest {
    pub name: String,
    #[serde(default)]
    pub customer: Option<String>,
    /// False: the conversation is a messaging channel's user not linked to a CRM customer
    /// (`Principal::unverified`). Their id is still `customer`'s, the worst case of a channel
    /// id that happens to be a customer's: what needs an account must stay out of reach all
    /// the same.
    #[serde(default = "verified_by_default")]
    pub verified: bool,
    /// Where the conversation stands before the first turn (default: a new conversation): a
    /// flow a vendor's event started (`{ flow: payment_help, with: { payment_url: … } }`), or
    /// a state (`{ kind: handoff_offered, reason: … }`).
    #[serde(default)]
    pub state: Option<Start>,
    pub turns: Vec<TurnTest>,
    /// Systems (`orders`, `inventory`) that time out or answer 5xx in this test: a turn that
    /// needs one defers its answer to a job.
    #[serde(default)]
    pub down: Vec<System>,
    /// Systems that answer what the mapping cannot read: the turn says so at once.
    #[serde(default)]
    pub broken: Vec<System>,
    /// The language every turn must be answered in (a turn's own `language` overrides it).
    #[serde(default)]
    pub language: Option<String>,
    /// Set at load: the file and line the test starts on.
    #[serde(skip)]
    pub file: String,
    #[serde(skip)]
    pub line: usize,
}

fn verified_by_default() -> bool {
    true
}

/// Where a test's conversation starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Start {
    /// The bundle's flow, started as a vendor's event starts it, with these inputs.
    Flow {
        flow: String,
        #[serde(default)]
        with: BTreeMap<String, String>,
    },
    State(DialogueState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    Orders,
    Inventory,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnTest {
    pub say: String,
    #[serde(default)]
    pub intent: Option<String>,
    #[serde(default, with = "pattern")]
    pub reply: Option<Regex>,
    #[serde(default, with = "pattern")]
    pub reply_not: Option<Regex>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub jobs: Option<Vec<String>>,
    #[serde(default)]
    pub handoff: Option<bool>,
    #[serde(default)]
    pub writes: Option<Vec<WriteTest>>,
    /// The language the bot must answer in.
    #[serde(default)]
    pub language: Option<String>,
    /// Sent as the chat API's `language`.
    #[serde(default)]
    pub asks_in: Option<String>,
}

/// A connector write a turn must start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteTest {
    pub operation: String,
    /// Every input the write is sent with, as a system reads it (times RFC 3339).
    #[serde(default)]
    pub inputs: Option<BTreeMap<String, Json>>,
    #[serde(default)]
    pub key: Option<String>,
}

impl fmt::Display for WriteTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.operation)?;
        if let Some(inputs) = &self.inputs {
            let shown: Vec<String> = inputs
                .iter()
                .map(|(k, v)| format!("{k}={}", scalar(v)))
                .collect();
            write!(f, " {{{}}}", shown.join(", "))?;
        }
        if let Some(key) = &self.key {
            write!(f, " key {key}")?;
        }
        Ok(())
    }
}

/// A fixture's scalar as the text a flow value is compared with (`Value::exact`).
fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Regexes are compiled at load, so a bad one is a load error naming its file, not a failure.
mod pattern {
    use regex::Regex;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
        let raw = String::deserialize(d)?;
        Regex::new(&raw)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{raw:?} is not a regex: {e}")))
    }
}

/// A bundle's tests and fixtures, loaded and checked.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The bundle the tests talk to.
    pub bot: Arc<Bot>,
    pub fixtures: Fixtures,
    pub tests: Vec<ConversationTest>,
}

fn yaml_error(file: &str, e: &serde_norway::Error) -> BundleError {
    // The message carries "at line N column M" too; the line is also kept apart for tools.
    BundleError::new(file, e.location().map(|l| l.line()), "", e.to_string())
}

fn read(path: &Path) -> Result<String, BundleError> {
    std::fs::read_to_string(path).map_err(|e| {
        BundleError::new(
            path.display().to_string(),
            None,
            "",
            format!("cannot read: {e}"),
        )
    })
}

pub fn parse_fixtures(file: &str, text: &str) -> Result<Fixtures, BundleErrors> {
    let fixtures: Fixtures = serde_norway::from_str(text).map_err(|e| yaml_error(file, &e))?;
    let mut errors = BundleErrors::default();
    let customers: BTreeSet<&str> = fixtures.customers.iter().map(|c| c.id.as_str()).collect();
    for o in &fixtures.orders {
        if !customers.contains(o.customer_id.as_str()) {
            let line = text.find(&o.id).map(|b| line_of(text, b));
            errors.push(BundleError::new(
                file,
                line,
                format!("orders.{}.customer_id", o.id),
                format!("{:?} is not one of the customers", o.customer_id),
            ));
        }
    }
    errors.into_result(fixtures)
}

/// The fixtures' `operations`, checked against the operations the bundle's flows may call
/// (`declared`): each a declared read of one record, `when` naming its inputs, each record
/// with every required field and no other, of the right kinds. A typo is a load error here,
/// not a test failing for another reason.
pub fn check_operations(
    file: &str,
    text: &str,
    fixtures: &Fixtures,
    declared: &DeclaredOps,
) -> Result<(), BundleErrors> {
    let mut errors = BundleErrors::default();
    for (name, entries) in &fixtures.operations {
        let line = text.find(name.as_str()).map(|b| line_of(text, b));
        let mut err = |key: String, message: String| {
            errors.push(BundleError::new(file, line, key, message));
        };
        let here = format!("operations.{name}");
        let op = match find_op(name, declared) {
            Some(op @ Op::Declared(_)) if matches!(op.returns(), Returns::One(_)) => op,
            Some(Op::Declared(_)) => {
                err(
                    here,
                    "not a read of one record: flows start writes as jobs (check them with `writes`)"
                        .into(),
                );
                continue;
            }
            Some(_) => {
                err(
                    here,
                    "built in: its answers are the fixtures' customers, orders and products".into(),
                );
                continue;
            }
            None => {
                err(
                    here,
                    "no such operation: the bundle's connectors.toml does not declare it".into(),
                );
                continue;
            }
        };
        for (i, entry) in entries.iter().enumerate() {
            let key = format!("{here}[{i}]");
            for input in entry.when.keys() {
                if !op.inputs().iter().any(|x| x.name == input) {
                    let takes: Vec<&str> = op.inputs().iter().map(|x| x.name).collect();
                    err(
                        format!("{key}.when.{input}"),
                        format!(
                            "{name} takes no such input (it takes: {})",
                            takes.join(", ")
                        ),
                    );
                }
            }
            match (&entry.record, entry.error) {
                (Some(_), true) | (None, false) => {
                    err(key, "needs a `record` or `error: true`, not both".into())
                }
                (Some(r), false) => {
                    if let Err(problems) = fixture_record(op, r) {
                        for p in problems {
                            err(format!("{key}.record"), p);
                        }
                    }
                }
                (None, true) => {}
            }
        }
    }
    errors.into_result(())
}

/// A fixture's record as a flow binds it, or what is wrong with it.
fn fixture_record(op: Op, r: &Json) -> Result<Record, Vec<String>> {
    let Returns::One(shape) = op.returns() else {
        return Err(vec![format!("{op} does not read one record")]);
    };
    let Some(given) = r.as_object() else {
        return Err(vec!["a record is a map of its fields".into()]);
    };
    let fields = shape.fields();
    let root = |name: &'static str| name.split('.').next().unwrap_or(name);
    let mut problems = Vec::new();
    for k in given.keys() {
        if !fields.iter().any(|f| root(f.name) == k) {
            let mut names: Vec<&str> = fields.iter().map(|f| root(f.name)).collect();
            names.dedup();
            problems.push(format!(
                "{op} has no field `{k}` (it has: {})",
                names.join(", ")
            ));
        }
    }
    for f in fields.iter().filter(|f| f.required) {
        let pointer = format!("/{}", f.name.replace('.', "/"));
        if r.pointer(&pointer).is_none_or(Json::is_null) {
            problems.push(format!("`{}` is required", f.name));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    crate::connectors::operations::record(op, r).map_err(|e| vec![e.to_string()])
}

/// Parses one test file; `customers` are the fixtures' (a test naming another is an error).
pub fn parse_tests(
    file: &str,
    text: &str,
    customers: &[Customer],
) -> Result<Vec<ConversationTest>, BundleErrors> {
    let parsed: TestFile = serde_norway::from_str(text).map_err(|e| yaml_error(file, &e))?;
    let mut errors = BundleErrors::default();
    let mut names = BTreeSet::new();
    let mut tests = parsed.tests;
    let mut from = 0;
    for t in &mut tests {
        // serde keeps no positions: the test starts where its name is first written after
        // the previous test's.
        let at = text[from..].find(t.name.as_str()).map(|b| from + b);
        t.line = at.map_or(1, |b| line_of(text, b));
        from = at.map_or(from, |b| b + t.name.len());
        t.file = file.to_string();
        let key = format!("tests.{:?}", t.name);
        if !names.insert(t.name.clone()) {
            errors.push(BundleError::new(
                file,
                Some(t.line),
                &key,
                "a test of this name is already in the file",
            ));
        }
        if t.turns.is_empty() {
            errors.push(BundleError::new(file, Some(t.line), &key, "has no turns"));
        }
        if let Some(c) = &t.customer {
            if !customers.iter().any(|k| &k.id == c) {
                errors.push(BundleError::new(
                    file,
                    Some(t.line),
                    format!("{key}.customer"),
                    format!("{c:?} is not a customer in {FIXTURES}"),
                ));
            }
        }
    }
    errors.into_result(tests)
}

impl Suite {
    /// `<bundle>/tests/fixtures.yaml` and every other `<bundle>/tests/*.yaml`, in name order;
    /// every problem of every file is reported.
    pub fn load(bundle: &Path) -> Result<Suite, BundleErrors> {
        let bot = Arc::new(Bot::load(bundle)?);
        let dir = bundle.join("tests");
        let fixtures_path = dir.join(FIXTURES);
        let fixtures_name = fixtures_path.display().to_string();
        let fixtures_text = read(&fixtures_path)?;
        let fixtures = parse_fixtures(&fixtures_name, &fixtures_text)?;
        check_operations(&fixtures_name, &fixtures_text, &fixtures, &bot.declared)?;
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| {
                BundleError::new(
                    dir.display().to_string(),
                    None,
                    "",
                    format!("cannot read: {e}"),
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "yaml")
                    && p.file_name().is_some_and(|n| n != FIXTURES)
            })
            .collect();
        files.sort();
        let mut errors = BundleErrors::default();
        let mut tests = Vec::new();
        for path in files {
            let name = path.display().to_string();
            match read(&path)
                .map_err(BundleErrors::from)
                .and_then(|text| parse_tests(&name, &text, &fixtures.customers))
            {
                Ok(t) => tests.extend(t),
                Err(e) => errors.0.extend(e.0),
            }
        }
        if tests.is_empty() && errors.is_empty() {
            errors.push(BundleError::new(
                dir.display().to_string(),
                None,
                "",
                "no tests (*.yaml beside fixtures.yaml)",
            ));
        }
        errors.into_result(Suite {
            bot,
            fixtures,
            tests,
        })
    }
}

/// One turn that did not go as its test says.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub test: String,
    /// 1-based.
    pub turn: usize,
    pub said: String,
    pub problems: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {:?}, turn {} ({:?}):",
            self.file, self.line, self.test, self.turn, self.said
        )?;
        for p in &self.problems {
            write!(f, "\n    {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub passed: usize,
    pub failures: Vec<Failure>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The company's systems as the fixtures say they answer.
pub struct FixtureSystems {
    fixtures: Fixtures,
    /// The declared operations' answers, their records as flows bind them.
    served: BTreeMap<String, Vec<(When, Served)>>,
    down: Vec<System>,
    broken: Vec<System>,
}

/// Inputs and the values a call must have for an answer.
type When = BTreeMap<String, Json>;

enum Served {
    Record(Record),
    Down,
    /// A record [`check_operations`] refuses (when it was not run): the call fails.
    Bad(String),
}

impl FixtureSystems {
    /// `declared`: the operations the bundle's flows may call, for their records' fields.
    pub fn new(fixtures: Fixtures, declared: &DeclaredOps) -> Self {
        let served = fixtures
            .operations
            .iter()
            .map(|(name, entries)| {
                let op = find_op(name, declared);
                let answers = entries
                    .iter()
                    .map(|e| {
                        let served = match (&e.record, op) {
                            (_, _) if e.error => Served::Down,
                            (Some(r), Some(op)) => match fixture_record(op, r) {
                                Ok(record) => Served::Record(record),
                                Err(problems) => Served::Bad(problems.join("; ")),
                            },
                            _ => Served::Bad(format!("{name}: no record")),
                        };
                        (e.when.clone(), served)
                    })
                    .collect();
                (name.clone(), answers)
            })
            .collect();
        Self {
            fixtures,
            served,
            down: Vec::new(),
            broken: Vec::new(),
        }
    }

    fn failing(&self, system: System) -> Result<(), ConnectorError> {
        let name = match system {
            System::Orders => "orders",
            System::Inventory => "inventory",
        };
        if self.down.contains(&system) {
            return Err(ConnectorError::Unavailable {
                system: name,
                detail: "down in this conversation test".into(),
            });
        }
        if self.broken.contains(&system) {
            return Err(ConnectorError::Malformed {
                system: name,
                detail: "broken in this conversation test".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl OrdersPort for FixtureSystems {
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
        self.failing(System::Orders)?;
        let mut mine: Vec<Order> = self
            .fixtures
            .orders
            .iter()
            .filter(|o| o.customer_id == customer_id)
            .cloned()
            .collect();
        // Newest first, as the port promises.
        mine.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
        Ok(mine)
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, ConnectorError> {
        self.failing(System::Orders)?;
        Ok(self
            .fixtures
            .orders
            .iter()
            .find(|o| o.id == order_id)
            .cloned())
    }
}

#[async_trait]
impl InventoryPort for FixtureSystems {
    async fn products(&self) -> Result<Vec<Product>, ConnectorError> {
        self.failing(System::Inventory)?;
        Ok(self.fixtures.products.clone())
    }
}

#[async_trait]
impl OperationsPort for FixtureSystems {
    async fn read(
        &self,
        operation: &str,
        inputs: &Record,
    ) -> Result<Option<Record>, ConnectorError> {
        let matches = |when: &BTreeMap<String, Json>| {
            when.iter()
                .all(|(k, v)| inputs.get(k).is_some_and(|x| x.exact() == scalar(v)))
        };
        let answer = self
            .served
            .get(operation)
            .and_then(|answers| answers.iter().find(|(when, _)| matches(when)));
        match answer {
            None => Ok(None),
            Some((_, Served::Record(r))) => Ok(Some(r.clone())),
            Some((_, Served::Down)) => Err(ConnectorError::Unavailable {
                system: "fixtures",
                detail: format!("{operation} fails in the fixtures"),
            }),
            Some((_, Served::Bad(why))) => Err(ConnectorError::Malformed {
                system: "fixtures",
                detail: why.clone(),
            }),
        }
    }

    /// Writes leave as jobs (the tests check them with `writes`); nothing runs them here.
    async fn write(&self, _: &str, _: &Record, _: &str) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// A chat turn service over a fresh in-memory store and the fixtures, at the fixtures' `now`:
/// what the tests and `switchboard chat` talk to.
pub async fn offline_service(
    bot: Arc<Bot>,
    fixtures: &Fixtures,
) -> (TurnService, Arc<MemoryStore>) {
    let systems = FixtureSystems::new(fixtures.clone(), &bot.declared);
    service_with(bot, systems).await
}

async fn service_with(bot: Arc<Bot>, systems: FixtureSystems) -> (TurnService, Arc<MemoryStore>) {
    let fixtures = &systems.fixtures;
    let store = Arc::new(MemoryStore::new());
    for r in &fixtures.refunds {
        seed_refund(&store, r, fixtures.now).await;
    }
    let now = fixtures.now;
    let payment_update_url = fixtures.payment_update_url.clone();
    let order_ids = fixtures.order_ids.clone();
    let systems = Arc::new(systems);
    let dialogue = Dialogue::of(bot, systems.clone())
        .with_order_ids(order_ids)
        .with_operations(Some(systems.clone()))
        .with_inventory(Some(systems))
        .with_ledger(store.clone())
        .with_payment_update_url(payment_update_url);
    let service = TurnService::new(store.clone(), dialogue, ChatSettings::default())
        .with_clock(Arc::new(move || now));
    (service, store)
}

async fn seed_refund(store: &MemoryStore, r: &RefundFixture, now: OffsetDateTime) {
    let key = refund_key(DEFAULT_TENANT, &r.order);
    let lease = std::time::Duration::from_secs(60);
    let Ok(Begin::Started(lease)) = store.begin(DEFAULT_TENANT, &key, lease, now).await else {
        return;
    };
    let _ = match r.state {
        RefundState::InProgress => Ok(()),
        RefundState::SetAside => store.set_aside(DEFAULT_TENANT, &key, &lease.token).await,
        RefundState::Done | RefundState::Failed => {
            let outcome = if r.state == RefundState::Done {
                EffectOutcome::Done
            } else {
                EffectOutcome::Failed
            };
            store
                .complete(DEFAULT_TENANT, &key, &lease.token, outcome, &[])
                .await
        }
    };
}

/// Runs every test; each in a conversation of its own, on a store of its own.
pub async fn run(suite: &Suite) -> Report {
    let mut report = Report::default();
    for test in &suite.tests {
        let failures = run_one(&suite.bot, &suite.fixtures, test).await;
        if failures.is_empty() {
            report.passed += 1;
        }
        report.failures.extend(failures);
    }
    report
}

/// What a test's `state:` names: `idle`, `clarifying`, `handoff_offered`, or for a flow that
/// waits `<flow>.<step>` — the step's `id`, else the slot it asks for or `confirm` — and
/// `<flow>.handoff_offer` once it offers a person.
pub fn state_name(bot: &Bot, state: &DialogueState) -> String {
    let DialogueState::Flow(f) = state else {
        return serde_json::to_value(state)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default();
    };
    let frame = &f.frame;
    let step = match &frame.waiting {
        Some(Waiting::HandoffOffer { .. }) => "handoff_offer".to_string(),
        waiting => {
            let id = bot
                .flows
                .get(&frame.flow)
                .and_then(|fl| fl.steps.get(frame.step))
                .and_then(|s| s.id.clone());
            match (id, waiting) {
                (Some(id), _) => id,
                (None, Some(Waiting::Slot { slot })) => slot.clone(),
                (None, _) => "confirm".to_string(),
            }
        }
    };
    format!("{}.{step}", frame.flow)
}

async fn run_one(bot: &Arc<Bot>, fixtures: &Fixtures, test: &ConversationTest) -> Vec<Failure> {
    let (service, store) = service_with(
        bot.clone(),
        FixtureSystems {
            down: test.down.clone(),
            broken: test.broken.clone(),
            ..FixtureSystems::new(fixtures.clone(), &bot.declared)
        },
    )
    .await;
    let customer = test
        .customer
        .clone()
        .or_else(|| fixtures.customers.first().map(|c| c.id.clone()))
        .unwrap_or_else(|| "customer".into());
    let who = if test.verified {
        Principal::customer(DEFAULT_TENANT, customer.clone())
    } else {
        Principal::unverified(DEFAULT_TENANT, customer.clone())
    };
    let mut conversation_id = None;
    if let Some(start) = &test.state {
        let state = match start {
            Start::State(state) => state.clone(),
            Start::Flow { flow, with } => {
                let inputs = with
                    .iter()
                    .map(|(k, v)| (k.clone(), crate::flow::value::Value::text(v)))
                    .collect();
                let opened = service
                    .dialogue()
                    .open_flow(&who, flow, inputs, &Default::default(), fixtures.now)
                    .await;
                match opened {
                    Some(o) => o.state,
                    None => {
                        return vec![Failure {
                            file: test.file.clone(),
                            line: test.line,
                            test: test.name.clone(),
                            turn: 0,
                            said: String::new(),
                            problems: vec![format!("no flow {flow:?} to start in")],
                        }]
                    }
                }
            }
        };
        let id = crate::conversation::new_conversation_id();
        store
            .seed_conversation_at(
                ConversationKey {
                    tenant: DEFAULT_TENANT.into(),
                    id: id.clone(),
                },
                &customer,
                state,
                fixtures.now,
            )
            .await;
        conversation_id = Some(id);
    }
    let mut failures = Vec::new();
    for (i, turn) in test.turns.iter().enumerate() {
        let fail = |problems: Vec<String>| Failure {
            file: test.file.clone(),
            line: test.line,
            test: test.name.clone(),
            turn: i + 1,
            said: turn.say.clone(),
            problems,
        };
        let reply = match service
            .post(
                &who,
                PostMessage {
                    conversation_id: conversation_id.clone(),
                    text: turn.say.clone(),
                    client_message_id: None,
                    language: turn.asks_in.clone(),
                    quick_reply: None,
                },
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                failures.push(fail(vec![format!("the turn failed: {e}")]));
                // Later turns depend on this one: they would only report its consequences.
                break;
            }
        };
        conversation_id = Some(reply.conversation_id.clone());
        let said = reply
            .replies
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let outbox = store.take_outbox();
        let jobs: Vec<String> = outbox
            .iter()
            .map(|j| j.kind.type_name().to_string())
            .collect();
        let writes: Vec<WriteTest> = outbox
            .iter()
            .filter_map(|j| match &j.kind {
                JobKind::ConnectorWrite {
                    operation,
                    inputs,
                    idempotency_key,
                } => Some(WriteTest {
                    operation: operation.clone(),
                    inputs: Some(
                        inputs
                            .iter()
                            .map(|(k, v)| (k.clone(), Json::String(v.exact())))
                            .collect(),
                    ),
                    key: Some(idempotency_key.clone()),
                }),
                _ => None,
            })
            .collect();
        let key = ConversationKey {
            tenant: DEFAULT_TENANT.into(),
            id: reply.conversation_id.clone(),
        };
        let state = match store.load(&key, 1).await {
            Ok(Some(s)) => state_name(bot, &s.conversation.state),
            _ => String::new(),
        };
        let mut problems = Vec::new();
        let intent = reply.facts.intent.name();
        if let Some(want) = &turn.intent {
            if want != intent {
                problems.push(format!(
                    "intent: expected {want}, got {intent} ({:.2})",
                    reply.facts.confidence
                ));
            }
        }
        if let Some(want) = turn.language.as_ref().or(test.language.as_ref()) {
            if reply.language.as_deref() != Some(want.as_str()) {
                problems.push(format!(
                    "language: expected {want}, got {}",
                    reply.language.as_deref().unwrap_or("none")
                ));
            }
        }
        if let Some(re) = &turn.reply {
            if !re.is_match(&said) {
                problems.push(format!("reply: expected to match /{re}/, got {said:?}"));
            }
        }
        if let Some(re) = &turn.reply_not {
            if re.is_match(&said) {
                problems.push(format!(
                    "reply_not: expected not to match /{re}/, got {said:?}"
                ));
            }
        }
        if let Some(want) = &turn.state {
            if *want != state {
                problems.push(format!("state: expected {want}, got {state}"));
            }
        }
        if let Some(want) = &turn.jobs {
            if *want != jobs {
                problems.push(format!("jobs: expected {want:?}, got {jobs:?}"));
            }
        }
        if let Some(want) = &turn.writes {
            if !same_writes(want, &writes) {
                let show = |ws: &[WriteTest]| {
                    ws.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                problems.push(format!(
                    "writes: expected [{}], got [{}]",
                    show(want),
                    show(&writes)
                ));
            }
        }
        if let Some(want) = turn.handoff {
            let got = reply.facts.ending == Ending::Handoff;
            if want != got {
                problems.push(format!("handoff: expected {want}, got {got}"));
            }
        }
        if !problems.is_empty() {
            failures.push(fail(problems));
        }
    }
    failures
}

/// The writes started are those wanted, in order; an input or key left out of a wanted one is
/// not compared.
fn same_writes(want: &[WriteTest], got: &[WriteTest]) -> bool {
    let as_text = |m: &BTreeMap<String, Json>| -> BTreeMap<String, String> {
        m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect()
    };
    want.len() == got.len()
        && want.iter().zip(got).all(|(w, g)| {
            w.operation == g.operation
                && w.key.as_ref().is_none_or(|k| Some(k) == g.key.as_ref())
                && w.inputs
                    .as_ref()
                    .is_none_or(|i| Some(as_text(i)) == g.inputs.as_ref().map(as_text))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES_YAML: &str = "\
now: 2026-11-24T12:00:00Z
customers:
  - id: alice
orders:
  - id: \"1002\"
    customer_id: alice
    status: in_transit
    placed_at: 2026-11-14T10:00:00Z
    promised_by: 2026-11-21T00:00:00Z
    total: { amount_cents: 4599, currency: USD }
";

    fn suite(tests: &str) -> Suite {
        let fixtures = parse_fixtures("fixtures.yaml", FIXTURES_YAML).unwrap();
        let tests = parse_tests("t.yaml", tests, &fixtures.customers).unwrap();
        Suite {
            bot: Bot::embedded(),
            fixtures,
            tests,
        }
    }

    /// `./dev/test` runs the unit tests: a change that breaks the shipped bot's conversations
    /// fails here, each failing turn named.
    #[tokio::test]
    async fn the_default_bundles_conversation_tests_pass() {
        let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/bot");
        let suite = Suite::load(&bundle).unwrap_or_else(|e| panic!("{e}"));
        assert!(suite.tests.len() >= 40, "{} tests", suite.tests.len());
        let report = run(&suite).await;
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert!(report.ok(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn a_passing_test_passes() {
        let report = run(&suite(
            "tests:
  - name: late order
    turns:
      - say: where is order 1002
        intent: order_status
        reply: refund
        state: order_status.offer
        jobs: []
      - say: yes please
        jobs: [refund.request]
        state: idle
        handoff: false
",
        ))
        .await;
        assert!(report.ok(), "{:?}", report.failures);
        assert_eq!(report.passed, 1);
    }

    #[tokio::test]
    async fn every_failing_expectation_is_reported_with_file_test_and_turn() {
        let report = run(&suite(
            "tests:
  - name: fine
    turns:
      - say: hello
  - name: wrong on purpose
    turns:
      - say: where is order 1002
        intent: greet
        reply: delivered
        reply_not: refund
        state: idle
        jobs: [agent.handoff]
        handoff: true
      - say: yes
        reply: requested a refund
",
        ))
        .await;
        assert_eq!(report.passed, 1);
        assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
        let f = &report.failures[0];
        assert_eq!((f.file.as_str(), f.line, f.turn), ("t.yaml", 5, 1));
        assert_eq!(f.problems.len(), 6, "{:?}", f.problems);
        let text = f.to_string();
        for part in [
            "t.yaml:5: \"wrong on purpose\", turn 1 (\"where is order 1002\")",
            "intent: expected greet, got order_status",
            "reply: expected to match /delivered/",
            "reply_not: expected not to match /refund/",
            "state: expected idle, got order_status.offer",
            "jobs: expected [\"agent.handoff\"], got []",
            "handoff: expected true, got false",
        ] {
            assert!(text.contains(part), "{part:?} not in\n{text}");
        }
    }

    #[test]
    fn bad_files_are_load_errors_naming_file_and_line() {
        let fixtures = parse_fixtures("fixtures.yaml", FIXTURES_YAML).unwrap();
        let e = parse_tests(
            "t.yaml",
            "tests:\n  - name: x\n    turns:\n      - say: hi\n        reply: \"(\"\n",
            &fixtures.customers,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a regex"), "{e}");
        // The turn's line: the YAML parser places a value's own error at its mapping.
        assert_eq!(e.0[0].line, Some(4), "{e}");
        let e = parse_tests(
            "t.yaml",
            "tests:\n  - name: x\n    customer: bob\n    turns:\n      - say: hi\n        colour: red\n",
            &fixtures.customers,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("t.yaml:6"), "{e}");
        let e = parse_tests(
            "t.yaml",
            "tests:\n  - name: x\n    customer: bob\n    turns: []\n",
            &fixtures.customers,
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(e.to_string().contains("\"bob\" is not a customer"), "{e}");
        let e = parse_fixtures(
            "fixtures.yaml",
            &FIXTURES_YAML.replace("customer_id: alice", "customer_id: carol"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("fixtures.yaml:5: orders.1002.customer_id"),
            "{e}"
        );
        // The order id format is checked as a connector file's is.
        let with = |ids: &str| parse_fixtures("fixtures.yaml", &format!("{FIXTURES_YAML}{ids}"));
        let f = with("order_ids: { prefix: \"SO-\", digits: 5 }\n").unwrap();
        assert_eq!(f.order_ids.unwrap().prefix(), "SO-");
        let e = with("order_ids: { prefix: \"ORDER-\" }\n").unwrap_err();
        assert!(e.to_string().contains("1 to 4 letters"), "{e}");
    }

    const SUBSCRIPTIONS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/bots/subscriptions"
    );

    fn subscriptions() -> Arc<Bot> {
        Arc::new(Bot::load(Path::new(SUBSCRIPTIONS)).unwrap_or_else(|e| panic!("{e}")))
    }

    const BOXES: &str = "\
now: 2026-11-24T12:00:00Z
customers:
  - id: ana
  - id: gus
operations:
  \"boxes.get_subscription\":
    - when: { customer_id: ana }
      record:
        id: sub_ana
        plan: Veggie box
        status: active
        next_box: 2026-11-27T08:00:00Z
        price: { amount_cents: 3990, currency: USD }
    - when: { customer_id: gus }
      error: true
";

    /// The second example bot's flows read its own system and start its write, and its small
    /// talk is its own: its tests run against the fixtures' recorded answers.
    #[tokio::test]
    async fn the_subscription_bots_tests_pass_on_recorded_answers() {
        let suite = Suite::load(Path::new(SUBSCRIPTIONS)).unwrap_or_else(|e| panic!("{e}"));
        assert!(suite.tests.len() >= 30, "{}", suite.tests.len());
        let report = run(&suite).await;
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert!(report.ok(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn recorded_answers_serve_by_input_and_writes_are_checked_by_operation_inputs_and_key() {
        let bot = subscriptions();
        let fixtures = parse_fixtures("fixtures.yaml", BOXES).unwrap();
        check_operations("fixtures.yaml", BOXES, &fixtures, &bot.declared).unwrap();
        let tests = parse_tests(
            "t.yaml",
            "tests:
  - name: skip
    customer: ana
    turns:
      - say: can i skip my next box?
        reply: Veggie box
        writes: []
      - say: yes
        jobs: [connector.write]
        writes:
          - operation: boxes.pause_box
            inputs: { subscription_id: sub_ana, reason: asked in chat }
            key: \"pause:sub_ana:2026-11-27T08:00:00Z\"
  - name: down
    customer: gus
    turns:
      - say: when is my next box
        reply: can't reach
  - name: wrong write
    customer: ana
    turns:
      - say: skip my next box
      - say: yes
        writes:
          - operation: boxes.pause_box
            inputs: { subscription_id: sub_ben }
",
            &fixtures.customers,
        )
        .unwrap();
        let report = run(&Suite {
            bot,
            fixtures,
            tests,
        })
        .await;
        assert_eq!(report.passed, 2, "{:?}", report.failures);
        let [f] = &report.failures[..] else {
            panic!("{:?}", report.failures)
        };
        assert_eq!((f.test.as_str(), f.turn), ("wrong write", 2));
        assert_eq!(
            f.problems,
            ["writes: expected [boxes.pause_box {subscription_id=sub_ben}], got [boxes.pause_box {reason=asked in chat, subscription_id=sub_ana} key pause:sub_ana:2026-11-27T08:00:00Z]"]
        );
    }

    #[test]
    fn recorded_answers_are_checked_against_the_operations_at_load() {
        let bot = subscriptions();
        let text = "\
now: 2026-11-24T12:00:00Z
operations:
  \"boxes.get_subscription\":
    - when: { customer: ana }
      record: { id: s, plan: p, status: active, colour: red, next_box: soon }
    - record: { id: s }
      error: true
  \"boxes.pause_box\":
    - error: true
  \"orders.get_status\":
    - error: true
  \"boxes.teleport\":
    - error: true
";
        let fixtures = parse_fixtures("f.yaml", text).unwrap();
        let e = check_operations("f.yaml", text, &fixtures, &bot.declared).unwrap_err();
        let all: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        for want in [
            "f.yaml:3: operations.boxes.get_subscription[0].when.customer: boxes.get_subscription takes no such input (it takes: customer_id)",
            "f.yaml:3: operations.boxes.get_subscription[0].record: boxes.get_subscription has no field `colour`",
            "f.yaml:3: operations.boxes.get_subscription[0].record: `price.amount_cents` is required",
            "f.yaml:3: operations.boxes.get_subscription[1]: needs a `record` or `error: true`, not both",
            "f.yaml:8: operations.boxes.pause_box: not a read of one record",
            "f.yaml:12: operations.boxes.teleport: no such operation",
            "f.yaml:10: operations.orders.get_status: built in",
        ] {
            assert!(
                all.iter().any(|a| a.starts_with(want)),
                "{want:?} not in\n{}",
                all.join("\n")
            );
        }
        // A field of the wrong kind, once the record is otherwise whole.
        let text = BOXES.replace("2026-11-27T08:00:00Z", "next thursday");
        let fixtures = parse_fixtures("f.yaml", &text).unwrap();
        let e = check_operations("f.yaml", &text, &fixtures, &bot.declared).unwrap_err();
        assert!(e.to_string().contains("`next_box` is not a time"), "{e}");
    }
}
