//! What the benchmark binaries share: argument parsing, percentiles, the JSON summary, and the
//! requests they send (dev tokens, API Gateway and function URL events, signed Stripe events).
//!
//! The binaries run against the local stack (`dev/stack.py up --no-functions`) with its ready
//! file sourced into the environment; `dev/bench` does both.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use switchboard::signatures::{sign, Scheme, SigningKey};

/// `--name value` pairs and bare `--flag`s. The binaries take few options; a parser crate would
/// be the only new dependency.
pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses the process arguments; `flags` lists the options that take no value. Anything else
    /// is an error with the usage line.
    pub fn parse(usage: &str, flags: &[&str]) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut set = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            if arg == "-h" || arg == "--help" {
                return Err(usage.to_string());
            }
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}\n{usage}"));
            };
            if flags.contains(&name) {
                set.push(name.to_string());
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| format!("--{name} needs a value\n{usage}"))?;
            values.insert(name.to_string(), value);
        }
        Ok(Self { values, flags: set })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// A whole number option, `default` when absent.
    pub fn number(&self, name: &str, default: usize) -> Result<usize, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name} must be a whole number, not {v:?}")),
        }
    }
}

/// A required environment variable, with a hint when the stack's ready file was not sourced.
pub fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!(
            "{name} is not set: run under dev/bench, or source a local stack's ready file \
             (dev/stack.py up --no-functions --ready-file F; set -a; . F; set +a)"
        )
    })
}

/// Percentiles of a sample, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stats {
    pub n: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Stats {
    /// Nearest-rank percentiles (p99 of 300 samples is the 297th smallest): every figure is
    /// one that was measured, none interpolated.
    pub fn of(samples: &[Duration]) -> Stats {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let rank = |p: f64| -> f64 {
            if us.is_empty() {
                return f64::NAN;
            }
            let i = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
            us[i]
        };
        Stats {
            n: us.len(),
            p50_us: rank(0.50),
            p90_us: rank(0.90),
            p99_us: rank(0.99),
            max_us: us.last().copied().unwrap_or(f64::NAN),
            mean_us: if us.is_empty() {
                f64::NAN
            } else {
                us.iter().sum::<f64>() / us.len() as f64
            },
        }
    }
}

/// A duration in microseconds, written in the unit that reads best.
pub struct Us(pub f64);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if us.is_nan() {
            write!(f, "-")
        } else if us >= 1e6 {
            write!(f, "{:.2} s", us / 1e6)
        } else if us >= 1e3 {
            write!(f, "{:.2} ms", us / 1e3)
        } else {
            write!(f, "{us:.1} µs")
        }
    }
}

/// Writes the summary where `--json` says, if it says.
pub fn write_json(path: Option<&str>, summary: &Value) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(summary).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {path}: {e}"))
}

/// A customer's token as the local stack's chat API accepts it (its key, issuer and audience),
/// valid for a day.
pub fn customer_token(customer: &str) -> Result<String, String> {
    let secret = env("JWT_HS256_SECRET")?;
    let issuer = std::env::var("JWT_ISSUER").ok().filter(|v| !v.is_empty());
    let audience = std::env::var("JWT_AUDIENCE").ok().filter(|v| !v.is_empty());
    Ok(switchboard::auth::DevClaims::new(customer)
        .issued_for(issuer.as_deref(), audience.as_deref())
        .expires_in(24 * 3600)
        .sign_hs256(secret.as_bytes()))
}

/// An HTTP API (payload 2.0) event as API Gateway sends it to the chat function after the JWT
/// authorizer; the function checks the token itself as well.
pub fn http_event(method: &str, path: &str, headers: Value, body: Option<String>) -> Value {
    let request_id = ulid::Ulid::new().to_string();
    let now = time::OffsetDateTime::now_utc();
    let mut all = json!({
        "accept": "application/json",
        "host": "localhost",
        "user-agent": "switchboard-bench",
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-amzn-trace-id": format!("Root=1-{request_id}"),
    });
    if let (Some(all), Some(extra)) = (all.as_object_mut(), headers.as_object()) {
        all.extend(extra.clone());
    }
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": all,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "switchboard-bench"
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "isBase64Encoded": false,
        "body": body,
    })
}

/// `POST /v1/messages` as `token`'s customer.
pub fn post_message(
    token: &str,
    text: &str,
    conversation_id: Option<&str>,
    client_message_id: &str,
) -> Value {
    let mut body = json!({ "text": text, "client_message_id": client_message_id });
    if let Some(id) = conversation_id {
        body["conversation_id"] = id.into();
    }
    http_event(
        "POST",
        "/v1/messages",
        json!({
            "authorization": format!("Bearer {token}"),
            "content-type": "application/json",
        }),
        Some(body.to_string()),
    )
}

/// A Stripe `payment_intent.payment_failed` event with a fresh id, signed with the stack's
/// Stripe secret (`signatures::sign`, as Stripe signs), as the webhook function URL delivers it.
pub fn signed_stripe_event() -> Result<Value, String> {
    let secret = env("WEBHOOK_SECRET_STRIPE")?;
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let id = ulid::Ulid::new().to_string().to_lowercase();
    let body = json!({
        "id": format!("evt_bench_{id}"),
        "object": "event",
        "type": "payment_intent.payment_failed",
        "created": ts,
        "data": {"object": {
            "id": format!("pi_bench_{id}"),
            "object": "payment_intent",
            "customer": "cus_alice01",
            "amount": 4599,
            "currency": "usd",
            "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}
        }}
    })
    .to_string();
    let key =
        SigningKey::new(Scheme::Stripe, &secret).map_err(|e| format!("Stripe secret: {e}"))?;
    let mut headers = json!({ "content-type": "application/json" });
    for (name, value) in sign(Scheme::Stripe, &key, "", ts, body.as_bytes()) {
        headers[name] = Value::String(value);
    }
    Ok(http_event("POST", "/webhooks/stripe", headers, Some(body)))
}

/// The machine the figures come from, for the report.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "loadavg_at_end": loadavg,
        "arch": std::env::consts::ARCH,
    })
}

/// A process's peak resident set so far (`VmHWM` in `/proc/<pid>/status`; `None` for "self"
/// is this process), in bytes. Linux only, as the benchmarks are.
pub fn peak_rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The own time (`elapsed_us - io_us`) of the first `chat request` line the function wrote to
/// `log` after byte `from`: this run's first request.
pub fn own_time_logged(log: &std::path::Path, from: u64) -> Option<Duration> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?);
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["message"] == "chat request")
        .and_then(|line| {
            let field = |name: &str| line["fields"][name].as_u64();
            Some(Duration::from_micros(
                field("elapsed_us")?.saturating_sub(field("io_us")?),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let s = Stats::of(&samples);
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (50.0, 99.0, 100.0));
        let one = Stats::of(&[Duration::from_micros(7)]);
        assert_eq!((one.p50_us, one.p99_us), (7.0, 7.0));
        assert!(Stats::of(&[]).p50_us.is_nan());
    }

    #[test]
    fn the_first_requests_own_time_is_read_from_what_this_run_logged() {
        let log = std::env::temp_dir().join(format!("coldstart-{}.log", ulid::Ulid::new()));
        let line = |elapsed: u64, io: u64| {
            format!(
                "{{\"level\":\"INFO\",\"fields\":{{\"message\":\"chat request\",\"elapsed_us\":{elapsed},\"io_us\":{io}}}}}\n"
            )
        };
        let earlier = line(9_000, 1_000);
        let text = format!(
            "{earlier}not JSON\n{{\"fields\":{{\"message\":\"chat function ready\"}}}}\n{}{}",
            line(35_355, 34_336),
            line(5_000, 1_000)
        );
        std::fs::write(&log, &text).unwrap();
        // An earlier run's line is skipped; this run's first one counts.
        assert_eq!(
            own_time_logged(&log, earlier.len() as u64),
            Some(Duration::from_micros(1_019))
        );
        assert_eq!(own_time_logged(&log, 0), Some(Duration::from_micros(8_000)));
        assert_eq!(own_time_logged(&log, text.len() as u64), None);
        assert_eq!(own_time_logged(&log, text.len() as u64 + 10), None);
        std::fs::remove_file(&log).unwrap();
    }
}
