//! The figures of a run, as a readable summary, JSON and a Markdown section.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::{CustomerLog, Outcome};
use crate::check::Checks;
use crate::hooks::HookLog;
use switchboard_it::Stack;

use crate::Opts;

pub struct Context {
    pub date: time::OffsetDateTime,
    pub load_before: String,
    pub load_after: String,
    /// How the stack was started, when dev/load says.
    pub stack_note: Option<String>,
    /// The chat function's own time per POST /v1/messages, from its log lines of this run.
    pub server: Latency,
}

/// The functions' log as it is now (all three log to one file under cargo-lambda).
pub fn log_len(stack: &Stack) -> u64 {
    std::fs::metadata(log_path(stack)).map_or(0, |m| m.len())
}

fn log_path(stack: &Stack) -> std::path::PathBuf {
    switchboard_it::repo_root()
        .join(".local")
        .join(&stack.name)
        .join("logs/functions.log")
}

/// `elapsed_us` of the chat function's "chat request" lines for POST /v1/messages written
/// since `offset`: the function's time without the client's and cargo-lambda's queueing.
pub fn server_elapsed(stack: &Stack, offset: u64) -> Latency {
    let bytes = std::fs::read(log_path(stack)).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let mut samples: Vec<Duration> = String::from_utf8_lossy(&bytes[start..])
        .lines()
        .filter(|l| l.contains("\"chat request\"") && l.contains("/v1/messages"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["method"] == "POST")
        .filter_map(|v| v["fields"]["elapsed_us"].as_u64())
        .map(Duration::from_micros)
        .collect();
    Latency::of(&mut samples)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// Nearest-rank percentiles, in milliseconds.
    fn of(samples: &mut [Duration]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            ms(samples[i.clamp(1, samples.len()) - 1])
        };
        Latency {
            count: samples.len(),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: ms(samples[samples.len() - 1]),
            mean: samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64,
        }
    }

    fn json(&self) -> Value {
        json!({ "count": self.count, "p50_ms": round(self.p50), "p95_ms": round(self.p95),
                "p99_ms": round(self.p99), "max_ms": round(self.max), "mean_ms": round(self.mean) })
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[derive(Debug, Default)]
pub struct Figures {
    pub duration_secs: f64,
    pub requests: usize,
    pub turns: usize,
    pub answered: usize,
    pub retries: usize,
    pub s2xx: usize,
    pub s4xx: usize,
    pub s429: usize,
    pub s5xx: usize,
    pub timeouts: usize,
    pub transport: usize,
    pub reply: Latency,
    pub throughput: f64,
    pub hook_events: usize,
    pub hook_deliveries: usize,
    pub hook_queued: usize,
    pub hook_duplicates: usize,
    pub hook_conflicts: usize,
    pub hook_doubled: usize,
    pub hook_bad: usize,
    pub hook_rejected: usize,
    pub hook_5xx: usize,
    pub hook_latency: Latency,
    pub jobs: usize,
}

impl Figures {
    pub fn new(
        logs: &[CustomerLog],
        hooks: &HookLog,
        chatted: Duration,
        checks: &Checks,
    ) -> Figures {
        let attempts: Vec<_> = logs.iter().flat_map(|l| l.attempts.iter()).collect();
        let count = |f: &dyn Fn(Outcome) -> bool| attempts.iter().filter(|a| f(a.outcome)).count();
        let mut ok: Vec<Duration> = attempts
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Status(s) if (200..300).contains(&s)))
            .map(|a| a.latency)
            .collect();
        let turns = logs.iter().map(|l| l.turns.len()).sum();
        let answered = logs
            .iter()
            .flat_map(|l| l.turns.iter())
            .filter(|t| t.answer.is_some())
            .count();
        let deliveries: Vec<_> = hooks
            .events
            .iter()
            .flat_map(|e| e.deliveries.iter())
            .collect();
        let mut hook_lat: Vec<Duration> = deliveries
            .iter()
            .filter(|d| d.status.is_some())
            .map(|d| d.latency)
            .collect();
        let accepted = hooks.events.iter().filter(|e| e.accepted()).count();
        Figures {
            duration_secs: chatted.as_secs_f64(),
            requests: attempts.len(),
            turns,
            answered,
            retries: attempts.iter().filter(|a| a.retry).count(),
            s2xx: ok.len(),
            s4xx: count(
                &|o| matches!(o, Outcome::Status(s) if (400..500).contains(&s) && s != 429),
            ),
            s429: count(&|o| o == Outcome::Status(429)),
            s5xx: count(&|o| matches!(o, Outcome::Status(s) if s >= 500)),
            timeouts: count(&|o| o == Outcome::Timeout),
            transport: count(&|o| o == Outcome::Transport),
            reply: Latency::of(&mut ok),
            throughput: answered as f64 / chatted.as_secs_f64().max(0.001),
            hook_events: hooks.events.len(),
            hook_deliveries: deliveries.len() + hooks.bad.len(),
            hook_queued: hooks.events.iter().map(|e| e.queued()).sum(),
            hook_duplicates: deliveries.iter().filter(|d| d.duplicate).count(),
            hook_conflicts: deliveries.iter().filter(|d| d.status == Some(409)).count(),
            hook_doubled: hooks.events.iter().filter(|e| e.doubled).count(),
            hook_bad: hooks.bad.len(),
            hook_rejected: hooks.bad.iter().filter(|b| b.status == Some(401)).count(),
            hook_5xx: deliveries
                .iter()
                .filter(|d| d.status.is_some_and(|s| s >= 500))
                .count()
                + hooks
                    .bad
                    .iter()
                    .filter(|b| b.status.is_some_and(|s| s >= 500))
                    .count(),
            hook_latency: Latency::of(&mut hook_lat),
            // Refunds (each also queues an email), deferred answers and accepted events.
            jobs: checks.refunds * 2 + checks.deferred + accepted,
        }
    }
}

fn params(o: &Opts) -> String {
    format!(
        "{} customers, {} s, think {} ms, per-request timeout {} s, {} retries; webhooks {}/s, \
         every {} delivered twice, a badly signed one after every {}; max {} turns",
        o.customers,
        o.duration.as_secs(),
        o.think.as_millis(),
        o.timeout.as_secs(),
        o.retries,
        o.webhook_rate,
        o.duplicate_every,
        o.bad_every,
        o.max_requests
    )
}

pub fn text(o: &Opts, f: &Figures, c: &Checks, ctx: &Context) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n== Load test ==");
    let _ = writeln!(s, "parameters  {}", params(o));
    let _ = writeln!(
        s,
        "machine     load average {} before, {} after ({} CPUs)",
        ctx.load_before,
        ctx.load_after,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        s,
        "chat        {} turns ({} answered) in {:.1} s: {:.1} replies/s; {} requests, {} retries",
        f.turns, f.answered, f.duration_secs, f.throughput, f.requests, f.retries
    );
    let _ = writeln!(
        s,
        "statuses    2xx {}  4xx {}  429 {}  5xx {}  timeouts {}  connection errors {}",
        f.s2xx, f.s4xx, f.s429, f.s5xx, f.timeouts, f.transport
    );
    let r = &f.reply;
    let _ = writeln!(
        s,
        "reply time  p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (mean {:.1}, {} replies)",
        r.p50, r.p95, r.p99, r.max, r.mean, r.count
    );
    let v = &ctx.server;
    let _ = writeln!(
        s,
        "in function p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (chat's own log, {} requests)",
        v.p50, v.p95, v.p99, v.max, v.count
    );
    let _ = writeln!(
        s,
        "webhooks    {} events, {} deliveries: {} queued (202), {} duplicates (200), {} come-back-later (409), \
         {} doubled on purpose; {} badly signed, {} refused (401); 5xx {}",
        f.hook_events,
        f.hook_deliveries,
        f.hook_queued,
        f.hook_duplicates,
        f.hook_conflicts,
        f.hook_doubled,
        f.hook_bad,
        f.hook_rejected,
        f.hook_5xx
    );
    let h = &f.hook_latency;
    let _ = writeln!(
        s,
        "webhook     p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        h.p50, h.p99, h.max
    );
    let _ = writeln!(
        s,
        "jobs        ~{} ({} refunds + their emails, {} deferred answers, accepted events); queue empty {:.1} s after; DLQ {} -> {}",
        f.jobs, c.refunds, c.deferred, c.drain_secs, c.dlq_before, c.dlq_after
    );
    let _ = writeln!(
        s,
        "table       {} conversations, {} messages read back; {} effects checked",
        c.conversations, c.messages, c.effects
    );
    let _ = writeln!(s, "checks");
    for check in &c.list {
        let _ = writeln!(
            s,
            "  [{}] {}: {}",
            if check.ok { "ok" } else { "FAIL" },
            check.name,
            check.detail
        );
        if !check.ok {
            for e in &check.examples {
                let _ = writeln!(s, "         {e}");
            }
        }
    }
    let _ = write!(
        s,
        "result      {}",
        if c.passed() { "PASS" } else { "FAIL" }
    );
    s
}

pub fn json(o: &Opts, f: &Figures, c: &Checks, ctx: &Context) -> Value {
    json!({
        "command": o.command,
        "date": ctx.date.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "parameters": {
            "customers": o.customers, "duration_secs": o.duration.as_secs(),
            "max_requests": o.max_requests, "timeout_secs": o.timeout.as_secs(),
            "retries": o.retries, "think_ms": o.think.as_millis() as u64,
            "webhook_rate": o.webhook_rate, "duplicate_every": o.duplicate_every,
            "bad_every": o.bad_every, "seed": o.seed, "stack": ctx.stack_note,
        },
        "machine": { "loadavg_before": ctx.load_before, "loadavg_after": ctx.load_after,
                     "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()) },
        "chat": {
            "duration_secs": round(f.duration_secs), "turns": f.turns, "answered": f.answered,
            "requests": f.requests, "retries": f.retries, "replies_per_sec": round(f.throughput),
            "status": { "2xx": f.s2xx, "4xx": f.s4xx, "429": f.s429, "5xx": f.s5xx,
                        "timeouts": f.timeouts, "connection_errors": f.transport },
            "reply_time": f.reply.json(),
            "function_time": ctx.server.json(),
        },
        "webhooks": {
            "events": f.hook_events, "deliveries": f.hook_deliveries, "queued": f.hook_queued,
            "duplicates": f.hook_duplicates, "conflicts": f.hook_conflicts,
            "doubled_on_purpose": f.hook_doubled, "badly_signed": f.hook_bad,
            "rejected": f.hook_rejected, "5xx": f.hook_5xx, "latency": f.hook_latency.json(),
        },
        "jobs": { "approx": f.jobs, "refunds": c.refunds, "deferred_answers": c.deferred,
                  "drain_secs": round(c.drain_secs), "dlq_before": c.dlq_before,
                  "dlq_after": c.dlq_after },
        "table": { "conversations": c.conversations, "messages": c.messages,
                   "effects_checked": c.effects, "stored_without_reply_seen": c.stored_unanswered },
        "checks": c.list.iter().map(|k| json!({
            "name": k.name, "ok": k.ok, "detail": k.detail, "examples": k.examples
        })).collect::<Vec<_>>(),
        "passed": c.passed(),
    })
}

pub fn markdown(o: &Opts, f: &Figures, c: &Checks, ctx: &Context) -> String {
    let mut s = String::new();
    let date = ctx
        .date
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let _ = writeln!(s, "## Load test\n");
    let _ = writeln!(s, "Command: `{}` ({date}).\n", o.command);
    let _ = writeln!(s, "Parameters: {}.", params(o));
    if let Some(note) = &ctx.stack_note {
        let _ = writeln!(s, "Stack: {note}.");
    }
    let _ = writeln!(
        s,
        "Machine: {} CPUs, load average {} before and {} after (other work shares the machine).\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ctx.load_before,
        ctx.load_after
    );
    let _ = writeln!(s, "| Figure | Value |\n|---|---|");
    let r = &f.reply;
    let rows = [
        (
            "Chat turns (answered)",
            format!("{} ({})", f.turns, f.answered),
        ),
        (
            "Requests (of which retries)",
            format!("{} ({})", f.requests, f.retries),
        ),
        (
            "Throughput",
            format!(
                "{:.1} replies/s over {:.1} s",
                f.throughput, f.duration_secs
            ),
        ),
        (
            "Reply time p50 / p95 / p99 / max",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms",
                r.p50, r.p95, r.p99, r.max
            ),
        ),
        (
            "Chat function's own time p50 / p99 (its log)",
            format!("{:.1} / {:.1} ms", ctx.server.p50, ctx.server.p99),
        ),
        (
            "Statuses 2xx / 4xx / 429 / 5xx / timeouts",
            format!(
                "{} / {} / {} / {} / {}",
                f.s2xx, f.s4xx, f.s429, f.s5xx, f.timeouts
            ),
        ),
        (
            "Webhook events / deliveries",
            format!("{} / {}", f.hook_events, f.hook_deliveries),
        ),
        (
            "Webhooks queued / duplicates / 409 / 5xx",
            format!(
                "{} / {} / {} / {}",
                f.hook_queued, f.hook_duplicates, f.hook_conflicts, f.hook_5xx
            ),
        ),
        (
            "Badly signed webhooks refused",
            format!("{} of {}", f.hook_rejected, f.hook_bad),
        ),
        (
            "Webhook answer p50 / p99",
            format!("{:.1} / {:.1} ms", f.hook_latency.p50, f.hook_latency.p99),
        ),
        (
            "Jobs (refunds, deferred answers)",
            format!("~{} ({}, {})", f.jobs, c.refunds, c.deferred),
        ),
        (
            "Queue drained after the run",
            format!("{:.1} s", c.drain_secs),
        ),
        (
            "DLQ before / after",
            format!("{} / {}", c.dlq_before, c.dlq_after),
        ),
        (
            "Read back",
            format!(
                "{} conversations, {} messages, {} effects",
                c.conversations, c.messages, c.effects
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s, "\nChecks:\n");
    for check in &c.list {
        let _ = writeln!(
            s,
            "- {} {}: {}",
            if check.ok { "✔" } else { "✘" },
            check.name,
            check.detail
        );
    }
    let _ = writeln!(
        s,
        "\nResult: **{}**.",
        if c.passed() { "pass" } else { "FAIL" }
    );
    s
}
