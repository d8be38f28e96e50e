//! Cold start of each function's release binary: the process is started as Lambda starts it
//! (its environment plus `AWS_LAMBDA_RUNTIME_API`), against a minimal Runtime API served here on
//! loopback. Cold start is spawn → its first `GET /2018-06-01/runtime/invocation/next`, i.e.
//! everything `main` does before it can take work (config, AWS clients, connectors, the intent
//! model). That first poll is answered with one real invocation, and the time to its response is
//! the first-invoke latency (first connections to DynamoDB, SQS, the demo systems included).
//! The chat function's own log line for that request gives the part of it that was not I/O
//! (`elapsed_us - io_us`, the turns benchmark's own time): what init left for the first turn.
//! Each process is killed by PID afterwards.
//!
//!     coldstart [--runs K] [--port P] [--bin-dir DIR] [--functions chat,webhook,fulfillment]
//!               [--log-dir DIR] [--json PATH]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use switchboard_bench::{env, machine, own_time_logged, write_json, Args, Stats, Us};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

const USAGE: &str = "usage: coldstart [--runs K (20)] [--port P (19800)] [--bin-dir DIR ($CARGO_TARGET_DIR/release)] \
[--functions chat,webhook,fulfillment] [--log-dir DIR] [--json PATH]";

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// What the function asked of the Runtime API, and when.
enum Seen {
    Next(Instant),
    Response { at: Instant, body: Bytes },
    Error { body: Bytes },
}

struct RuntimeApi {
    /// The invocation the next `GET .../next` hands out (request id, event); taken by it.
    pending: Mutex<Option<(String, Bytes)>>,
    seen: mpsc::UnboundedSender<Seen>,
    /// Wakes the long poll a function makes after its first response, once it is killed.
    released: Notify,
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn serve(
    api: Arc<RuntimeApi>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if method == Method::GET && path == NEXT {
        let _ = api.seen.send(Seen::Next(at));
        let next = api.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((request_id, event)) = next else {
            // As Lambda does between invocations: hold the poll. The process is killed before
            // it would get another event; the timeout only bounds a poll nobody released.
            let _ = tokio::time::timeout(Duration::from_secs(60), api.released.notified()).await;
            return Ok(reply(StatusCode::GONE, "benchmark over"));
        };
        let deadline_ms =
            (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64 + 30_000;
        let mut r = Response::new(Full::new(event));
        for (name, value) in [
            ("lambda-runtime-aws-request-id", request_id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench".to_string(),
            ),
            ("lambda-runtime-trace-id", "Root=1-bench".to_string()),
            ("content-type", "application/json".to_string()),
        ] {
            if let Ok(value) = value.parse() {
                r.headers_mut().insert(name, value);
            }
        }
        return Ok(r);
    }
    if method == Method::POST && path.starts_with("/2018-06-01/runtime/") {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let at = Instant::now();
        let _ = api.seen.send(if path.ends_with("/response") {
            Seen::Response { at, body }
        } else {
            // .../invocation/<id>/error and /init/error
            Seen::Error { body }
        });
        return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
    }
    Ok(reply(StatusCode::NOT_FOUND, "no such Runtime API route"))
}

/// The event each function gets for its first invocation, and what its answer is called.
fn first_event(function: &str) -> Result<Value, String> {
    match function {
        "chat" => {
            let token = switchboard_bench::customer_token("cust_alice")?;
            let cmid = format!("bench-cold-{}", ulid::Ulid::new());
            Ok(switchboard_bench::post_message(
                &token,
                "where is my order 1001?",
                None,
                &cmid,
            ))
        }
        "webhook" => switchboard_bench::signed_stripe_event(),
        "fulfillment" => Ok(json!({ "Records": [] })),
        other => Err(format!(
            "unknown function {other:?} (chat, webhook, fulfillment)"
        )),
    }
}

/// What the answer says, briefly: an HTTP function's status code, or the batch response.
fn outcome(function: &str, body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match function {
        "fulfillment" => match v.get("batchItemFailures").and_then(Value::as_array) {
            Some(f) => format!("{} batch item failures", f.len()),
            None => "unexpected answer".into(),
        },
        _ => match v.get("statusCode").and_then(Value::as_u64) {
            Some(code) => format!("HTTP {code}"),
            None => "unexpected answer".into(),
        },
    }
}

struct Run {
    cold: Duration,
    first_invoke: Duration,
    /// The first request's own time from the function's `chat request` log line (chat only).
    first_own: Option<Duration>,
    outcome: String,
    /// The function's peak resident set after its first invocation.
    peak_rss: Option<u64>,
}

async fn run_once(
    api: &RuntimeApi,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    function: &str,
    binary: &std::path::Path,
    port: u16,
    log: &std::fs::File,
) -> Result<Run, String> {
    while seen.try_recv().is_ok() {}
    let event = first_event(function)?;
    *api.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some((
        ulid::Ulid::new().to_string(),
        Bytes::from(event.to_string()),
    ));
    let stdio = || log.try_clone().map_err(|e| format!("log file: {e}"));
    let mut command = tokio::process::Command::new(binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .stdin(std::process::Stdio::null())
        .stdout(stdio()?)
        .stderr(stdio()?)
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let pid = child.id();

    let result = async {
        let mut ready = None;
        loop {
            tokio::select! {
                s = seen.recv() => match s {
                    Some(Seen::Next(at)) if ready.is_none() => ready = Some(at),
                    Some(Seen::Next(_)) => {}
                    Some(Seen::Response { at, body }) => {
                        let ready = ready.ok_or("a response before any poll")?;
                        return Ok(Run {
                            cold: ready - spawned,
                            first_invoke: at - ready,
                            first_own: None,
                            outcome: outcome(function, &body),
                            // Read before the kill below, while its /proc entry is there.
                            peak_rss: pid.and_then(|p| switchboard_bench::peak_rss_bytes(Some(p))),
                        });
                    }
                    Some(Seen::Error { body }) => {
                        return Err(format!(
                            "{function} reported an error: {}",
                            String::from_utf8_lossy(&body)
                        ))
                    }
                    None => return Err("the Runtime API stopped".to_string()),
                },
                status = child.wait() => {
                    return Err(format!("{function} exited early ({})", status.map(|s| s.to_string()).unwrap_or_default()));
                }
                _ = tokio::time::sleep(Duration::from_secs(60)) => {
                    return Err(format!("{function} did not answer within 60 s"));
                }
            }
        }
    }
    .await;

    // By PID, via the handle that spawned it: the process is ours.
    let _ = child.start_kill();
    let _ = child.wait().await;
    api.released.notify_waiters();
    result.map_err(|e| format!("{e} (pid {pid:?})"))
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("coldstart: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let args = Args::parse(USAGE, &[])?;
    let runs = args.number("runs", 20)?.max(1);
    let port = u16::try_from(args.number("port", 19800)?).map_err(|_| "--port: too large")?;
    let bin_dir = match args.get("bin-dir") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
        )
        .join("release"),
    };
    let functions: Vec<String> = args
        .get("functions")
        .unwrap_or("chat,webhook,fulfillment")
        .split(',')
        .map(str::to_string)
        .collect();
    let log_dir = std::path::PathBuf::from(
        args.get("log-dir")
            .map(str::to_string)
            .unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    // The functions read these; fail here with a hint rather than in each child's log.
    env("TABLE_NAME")?;
    env("AWS_ENDPOINT_URL")?;

    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("binding 127.0.0.1:{port}: {e}"))?;
        let (tx, mut seen) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            pending: Mutex::new(None),
            seen: tx,
            released: Notify::new(),
        });
        let server_api = api.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let api = server_api.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| serve(api.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });

        let mut results = serde_json::Map::new();
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}   {:>8}  first answer",
            "function", "cold p50", "p90", "p99", "max", "1st p50", "p99", "max", "size"
        );
        for function in &functions {
            let binary = bin_dir.join(function);
            let size = std::fs::metadata(&binary)
                .map_err(|e| format!("{}: {e} (cargo build --release --bins)", binary.display()))?
                .len();
            let log_path = log_dir.join(format!("coldstart-{function}.log"));
            let log = std::fs::File::create(&log_path)
                .map_err(|e| format!("{}: {e}", log_path.display()))?;
            let mut cold = Vec::new();
            let mut first = Vec::new();
            let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
            let mut peak_rss = 0u64;
            let mut first_own = Vec::new();
            for _ in 0..runs {
                let logged = log.metadata().map(|m| m.len()).unwrap_or_default();
                let mut run = run_once(&api, &mut seen, function, &binary, port, &log)
                    .await
                    .map_err(|e| format!("{e}; its output is in {}", log_path.display()))?;
                run.first_own = own_time_logged(&log_path, logged);
                cold.push(run.cold);
                first.push(run.first_invoke);
                first_own.extend(run.first_own);
                peak_rss = peak_rss.max(run.peak_rss.unwrap_or_default());
                *outcomes.entry(run.outcome).or_default() += 1;
            }
            let (c, f) = (Stats::of(&cold), Stats::of(&first));
            println!(
                "{:<12} {:>9} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}   {:>5.1} MB  {:?}",
                function,
                Us(c.p50_us).to_string(),
                Us(c.p90_us).to_string(),
                Us(c.p99_us).to_string(),
                Us(c.max_us).to_string(),
                Us(f.p50_us).to_string(),
                Us(f.p99_us).to_string(),
                Us(f.max_us).to_string(),
                size as f64 / 1e6,
                outcomes
            );
            if !first_own.is_empty() {
                let o = Stats::of(&first_own);
                println!(
                    "{:<12} first invoke, own time (not I/O): p50 {}, p99 {}, max {}",
                    "",
                    Us(o.p50_us),
                    Us(o.p99_us),
                    Us(o.max_us)
                );
            }
            results.insert(
                function.clone(),
                json!({
                    "binary": binary.display().to_string(),
                    "binary_bytes": size,
                    "cold_start": c,
                    "first_invoke": f,
                    // Absent for functions that log no `chat request` line.
                    "first_invoke_own": (!first_own.is_empty()).then(|| Stats::of(&first_own)),
                    "cold_start_samples_us": cold.iter().map(|d| d.as_micros() as u64).collect::<Vec<_>>(),
                    "first_answers": outcomes,
                    "peak_rss_bytes": peak_rss,
                }),
            );
        }
        write_json(
            args.get("json"),
            &json!({
                "benchmark": "coldstart",
                "runs": runs,
                "first_events": {
                    "chat": "POST /v1/messages as cust_alice (dev JWT): \"where is my order 1001?\" in a new conversation",
                    "webhook": "a Stripe payment_intent.payment_failed event with a fresh id, validly signed",
                    "fulfillment": "an SQS batch with no records ({\"Records\":[]})",
                },
                "functions": results,
                "machine": machine(),
            }),
        )
    })
}
