//! The load test: N customers chatting at once while signed vendor webhooks arrive and
//! fulfillment runs the jobs both start, against a running local stack; afterwards the table is
//! read back to prove that nothing was lost or doubled. `dev/load` starts a stack (release builds)
//! and runs this; `load --help` lists the options.

mod chat;
mod check;
mod hooks;
mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_it::Stack;

const HELP: &str = "\
load: N concurrent customers chatting with the local stack for D seconds while signed vendor
webhooks arrive and jobs run; then the jobs queue is drained and the table is checked: every
answered message stored once with its replies, every accepted webhook applied once.

Usage: load [options]        (the stack's endpoints come from its ready file's environment,
                              as for the integration tests; dev/load does all of it)

Options:
  --customers N          concurrent customers (default 20): the demo systems' cust_alice,
                         cust_bob, cust_carol and cust_dave first, then cust_load_001...
  --duration SECS        how long they chat (default 60; at least 60 unless --short)
  --short                allow a shorter run (a smoke test, not a load test)
  --max-requests N       stop starting turns after this many (default 100000)
  --timeout SECS         per-request timeout (default 30); a timed-out message is retried
                         with the same client_message_id
  --retries N            retries of one message on a timeout, 409, 429 or 5xx (default 2)
  --think-ms MS          mean pause between a customer's turns (default 300; 0.5x-1.5x)
  --webhook-rate R       vendor events per second (default 2)
  --duplicate-every K    every Kth event is delivered twice (default 4; 0: never)
  --bad-every K          after every Kth event, a badly signed one (default 7; 0: never)
  --drain-timeout SECS   how long to wait for the jobs queue to empty afterwards (default 300)
  --seed N               random seed for the customers' choices (default: from the clock)
  --json PATH            write the figures and checks as JSON
  --markdown PATH        write a \"## Load test\" section (docs/benchmarks.md embeds it)
  --command TEXT         the command shown in the Markdown (default: this one's arguments;
                         dev/load passes its own)
  -h, --help             this text

Exit status: 0 when every check passes; 1 on any 5xx, unanswered or lost or doubled message,
webhook applied other than once, bad signature not refused, jobs left in the queue or the DLQ
grown; 2 on bad options or a missing stack.";

#[derive(Debug, Clone)]
pub struct Opts {
    pub customers: usize,
    pub duration: Duration,
    pub short: bool,
    pub max_requests: u64,
    pub timeout: Duration,
    pub retries: u32,
    pub think: Duration,
    pub webhook_rate: f64,
    pub duplicate_every: u64,
    pub bad_every: u64,
    pub drain_timeout: Duration,
    pub seed: u64,
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub command: String,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        customers: 20,
        duration: Duration::from_secs(60),
        short: false,
        max_requests: 100_000,
        timeout: Duration::from_secs(30),
        retries: 2,
        think: Duration::from_millis(300),
        webhook_rate: 2.0,
        duplicate_every: 4,
        bad_every: 7,
        drain_timeout: Duration::from_secs(300),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        json: None,
        markdown: None,
        command: std::iter::once("load".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a valid number"))
        }
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--short" => o.short = true,
            "--customers" => o.customers = num(flag, value(flag)?)?,
            "--duration" => o.duration = Duration::from_secs(num(flag, value(flag)?)?),
            "--max-requests" => o.max_requests = num(flag, value(flag)?)?,
            "--timeout" => o.timeout = Duration::from_secs(num(flag, value(flag)?)?),
            "--retries" => o.retries = num(flag, value(flag)?)?,
            "--think-ms" => o.think = Duration::from_millis(num(flag, value(flag)?)?),
            "--webhook-rate" => o.webhook_rate = num(flag, value(flag)?)?,
            "--duplicate-every" => o.duplicate_every = num(flag, value(flag)?)?,
            "--bad-every" => o.bad_every = num(flag, value(flag)?)?,
            "--drain-timeout" => o.drain_timeout = Duration::from_secs(num(flag, value(flag)?)?),
            "--seed" => o.seed = num(flag, value(flag)?)?,
            "--json" => o.json = Some(value(flag)?.into()),
            "--markdown" => o.markdown = Some(value(flag)?.into()),
            "--command" => o.command = value(flag)?,
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    if o.customers == 0 || o.customers > 999 {
        return Err("--customers must be 1 to 999".into());
    }
    if o.duration < Duration::from_secs(60) && !o.short {
        return Err(
            "--duration must be at least 60 s for a load test (--short allows less, for a smoke run)"
                .into(),
        );
    }
    if o.duration.is_zero() || o.max_requests == 0 || o.timeout.is_zero() {
        return Err("--duration, --max-requests and --timeout must be above zero".into());
    }
    if !(o.webhook_rate.is_finite() && (0.0..=200.0).contains(&o.webhook_rate)) {
        return Err("--webhook-rate must be 0 to 200 per second".into());
    }
    Ok(o)
}

/// What every task shares: the stack, the bounds, and the run's unique tag.
pub struct Shared {
    pub stack: Stack,
    pub http: reqwest::Client,
    pub opts: Opts,
    pub started: Instant,
    pub deadline: Instant,
    /// Digits unique to this run (order numbers, client message ids): a stack reused across
    /// runs keeps its old orders and messages apart from this run's.
    pub run: String,
    turns_started: AtomicU64,
    orders: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// Whether a new turn may start (the time and request bounds); takes one if so.
    pub fn start_turn(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            return false;
        }
        if self.turns_started.fetch_add(1, Ordering::Relaxed) >= self.opts.max_requests {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }

    /// Sleeps `d`, or less if the run ends first.
    pub async fn pause(&self, d: Duration) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(d.min(left)).await;
    }

    /// A fresh order number of this run, numeric so customers can type it as `#...`.
    pub fn order_number(&self) -> String {
        format!(
            "{}{:05}",
            self.run,
            self.orders.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A late order of `customer`'s own in the demo systems.
    pub async fn create_order(&self, customer: &str, total_cents: i64) -> Result<String, String> {
        let id = self.order_number();
        let resp = self
            .http
            .post(format!("{}/_admin/orders", self.stack.demo_url))
            .json(&serde_json::json!({ "id": id, "customer_id": customer, "total_cents": total_cents }))
            .send()
            .await
            .map_err(|e| format!("create order: {e}"))?;
        if resp.status().as_u16() != 201 {
            return Err(format!("create order: status {}", resp.status()));
        }
        Ok(id)
    }
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{HELP}");
            return;
        }
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    let missing: Vec<&str> = [
        "CHAT_URL",
        "WEBHOOK_URL",
        "DEMO_URL",
        "TABLE_NAME",
        "JOBS_QUEUE_URL",
        "JOBS_DLQ_URL",
        "JWT_HS256_SECRET",
        "LOCAL_STACK_NAME",
        "DEV_WEBHOOK_SECRET_STRIPE",
        "DEV_WEBHOOK_SECRET_SHOPIFY",
        "DEV_WEBHOOK_SECRET_BILLING",
    ]
    .into_iter()
    .filter(|v| std::env::var(v).is_err())
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "load: {} not set: run against a local stack (dev/load starts one), with its ready file's environment",
            missing.join(", ")
        );
        std::process::exit(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let passed = runtime.block_on(run(opts));
    std::process::exit(if passed { 0 } else { 1 });
}

async fn run(opts: Opts) -> bool {
    let stack = Stack::connect().await;
    let http = match reqwest::Client::builder()
        .timeout(opts.timeout)
        .pool_max_idle_per_host(64)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("load: HTTP client: {e}");
            return false;
        }
    };
    let run = format!("{}", 100_000 + switchboard_it::unix_now() % 900_000);
    let customers = chat::customer_ids(opts.customers);
    let load_before = load_avg();
    let date = time::OffsetDateTime::now_utc();

    // What is already there, so a reused stack's earlier runs are not counted as this one's.
    let baseline = check::Baseline::read(&stack).await;
    let log_offset = report::log_len(&stack);

    let now = Instant::now();
    let shared = Arc::new(Shared {
        stack,
        http,
        deadline: now + opts.duration,
        started: now,
        opts,
        run,
        turns_started: AtomicU64::new(0),
        orders: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    println!(
        "load: {} customers for {} s, webhooks at {}/s (run {}); load average {load_before}",
        shared.opts.customers,
        shared.opts.duration.as_secs(),
        shared.opts.webhook_rate,
        shared.run
    );

    let mut chatters = tokio::task::JoinSet::new();
    for (i, customer) in customers.iter().enumerate() {
        let shared = shared.clone();
        let customer = customer.clone();
        let seed = shared.opts.seed.wrapping_add(i as u64);
        chatters.spawn(async move { chat::customer(shared, customer, seed).await });
    }
    let hook_targets = hooks::Targets::for_customers(&customers);
    let hooks_task = {
        let shared = shared.clone();
        tokio::spawn(async move { hooks::sender(shared, hook_targets).await })
    };
    let mut logs = Vec::new();
    while let Some(joined) = chatters.join_next().await {
        match joined {
            Ok(log) => logs.push(log),
            Err(e) => eprintln!("load: a customer task failed: {e}"),
        }
    }
    let chatted = shared.started.elapsed();
    let hook_log = hooks_task.await.unwrap_or_else(|e| {
        eprintln!("load: the webhook sender failed: {e}");
        hooks::HookLog::default()
    });
    let load_after = load_avg();
    println!(
        "load: chatting done after {:.1} s; draining the jobs queue and checking the table",
        chatted.as_secs_f64()
    );

    let checks = check::run(&shared, &baseline, &logs, &hook_log).await;
    let figures = report::Figures::new(&logs, &hook_log, chatted, &checks);
    let ctx = report::Context {
        date,
        load_before,
        load_after,
        stack_note: std::env::var("LOAD_STACK_NOTE").ok(),
        server: report::server_elapsed(&shared.stack, log_offset),
    };
    let text = report::text(&shared.opts, &figures, &checks, &ctx);
    println!("{text}");
    if let Some(path) = &shared.opts.json {
        let json = report::json(&shared.opts, &figures, &checks, &ctx);
        if let Err(e) = std::fs::write(path, format!("{json:#}\n")) {
            eprintln!("load: cannot write {}: {e}", path.display());
        }
    }
    if let Some(path) = &shared.opts.markdown {
        let md = report::markdown(&shared.opts, &figures, &checks, &ctx);
        if let Err(e) = std::fs::write(path, md) {
            eprintln!("load: cannot write {}: {e}", path.display());
        }
    }
    checks.passed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn a_load_test_lasts_a_minute_unless_it_says_short() {
        assert!(parse_args(&args("--duration 30")).is_err());
        let o = parse_args(&args("--duration 30 --short --customers 3")).unwrap();
        assert_eq!((o.duration.as_secs(), o.customers), (30, 3));
        assert_eq!(parse_args(&[]).unwrap().customers, 20);
        assert!(parse_args(&args("--customers")).is_err());
        assert!(parse_args(&args("--customers x")).is_err());
        assert!(parse_args(&args("--bogus")).is_err());
    }
}
