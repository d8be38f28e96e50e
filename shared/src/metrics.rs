//! Metrics as CloudWatch Embedded Metric Format lines: Lambda ships stdout to CloudWatch Logs,
//! which turns each line into metrics with no API call in the request path.
//!
//! The namespace is `METRICS_NAMESPACE` (the template sets `Switchboard/<stack name>`, so two
//! stacks in one account do not mix), `Switchboard` without it. Every dimension set is a custom
//! metric CloudWatch bills monthly (per value seen), so each metric names the sets it needs;
//! `count` uses the rollup (no dimension) and its first dimension. The list of metrics, their
//! units and dimensions is in docs/operations.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const DEFAULT_NAMESPACE: &str = "Switchboard";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Microseconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Microseconds => "Microseconds",
            Unit::None => "None",
        }
    }
}

/// Metrics that share dimension sets, e.g. `TurnLatency` by nothing and by `Intent`.
#[derive(Debug, Clone, Copy)]
pub struct Directive<'a> {
    /// Each set is a list of dimension names given to `emf_line`; `&[]` is the rollup.
    pub sets: &'a [&'a [&'a str]],
    pub metrics: &'a [(&'a str, Unit, f64)],
}

fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        std::env::var("METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
    })
}

/// One EMF document: the dimensions' values and every directive's metrics at the root.
/// Written straight into one string (a connector call that fails fast on an open circuit
/// still emits one, and building `serde_json` maps cost it ~5 µs and 60-odd allocations).
pub fn emf_line(
    namespace: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    directives: &[Directive<'_>],
) -> String {
    let mut out = String::with_capacity(256 + 96 * directives.len());
    out.push_str("{\"_aws\":{\"Timestamp\":");
    let _ = write!(out, "{timestamp_ms}");
    out.push_str(",\"CloudWatchMetrics\":[");
    for (i, d) in directives.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"Namespace\":");
        push_str_json(&mut out, namespace);
        out.push_str(",\"Dimensions\":[");
        for (j, set) in d.sets.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            for (k, name) in set.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                push_str_json(&mut out, name);
            }
            out.push(']');
        }
        out.push_str("],\"Metrics\":[");
        for (j, (name, unit, _)) in d.metrics.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"Name\":");
            push_str_json(&mut out, name);
            out.push_str(",\"Unit\":\"");
            out.push_str(unit.as_str());
            out.push_str("\"}");
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    for (k, v) in dimensions {
        out.push(',');
        push_str_json(&mut out, k);
        out.push(':');
        push_str_json(&mut out, v);
    }
    for d in directives {
        for (name, _, value) in d.metrics {
            out.push(',');
            push_str_json(&mut out, name);
            out.push(':');
            if !value.is_finite() {
                // Never expected; CloudWatch skips a null rather than rejecting the line.
                out.push_str("null");
            } else if value.fract() == 0.0 && value.abs() < 9e15 {
                let _ = write!(out, "{}", *value as i64);
            } else {
                let _ = write!(out, "{value}");
            }
        }
    }
    out.push('}');
    out
}

/// `s` as a JSON string. Names and values here are ours or config's (intents, systems,
/// vendors), but a vendor name with a quote must not break the line.
fn push_str_json(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

static DISCARD: AtomicBool = AtomicBool::new(cfg!(test));

/// Builds every document as usual but writes none: for benchmarks, whose own output is on
/// stdout, and which should still pay for the formatting. Unit tests start this way.
pub fn discard_output() {
    DISCARD.store(true, Ordering::Relaxed);
}

/// Writes one EMF document to stdout.
pub fn emit(dimensions: &[(&str, &str)], directives: &[Directive<'_>]) {
    let ms = crate::clock::now_ms();
    let line = emf_line(namespace(), ms, dimensions, directives);
    if DISCARD.load(Ordering::Relaxed) {
        std::hint::black_box(line);
        return;
    }
    // One write per line so concurrent log lines never interleave inside it.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// One count of `name`: by nothing (what alarms read) and by its first dimension. Further
/// dimensions are written as values only, for Logs Insights: each combination made a metric
/// would be billed every month it is seen.
pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    let first: Vec<&str> = dimensions.iter().take(1).map(|(k, _)| *k).collect();
    let mut sets: Vec<&[&str]> = vec![&[]];
    if !first.is_empty() {
        sets.push(&first);
    }
    emit(
        dimensions,
        &[Directive {
            sets: &sets,
            metrics: &[(name, Unit::Count, 1.0)],
        }],
    );
}

/// Milliseconds to the microsecond: finer digits are noise and only lengthen the line.
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// A function's first ready moment in this process: `ColdStart` and `InitDuration` by
/// `Function` (Lambda's own REPORT line has the init time, but not as a metric).
pub fn cold_start(function: &str, process_started: Instant) {
    emit(
        &[("Function", function)],
        &[Directive {
            sets: &[&["Function"]],
            metrics: &[
                ("ColdStart", Unit::Count, 1.0),
                (
                    "InitDuration",
                    Unit::Milliseconds,
                    millis(process_started.elapsed()),
                ),
            ],
        }],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_carries_each_directive_and_the_dimension_values() {
        let line = emf_line(
            "Switchboard/test",
            7,
            &[("Intent", "order_status")],
            &[
                Directive {
                    sets: &[&[], &["Intent"]],
                    metrics: &[("TurnLatency", Unit::Milliseconds, 12.5)],
                },
                Directive {
                    sets: &[&[]],
                    metrics: &[("Fallback", Unit::Count, 0.0)],
                },
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directives = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(v["_aws"]["Timestamp"], 7);
        assert_eq!(directives[0]["Namespace"], "Switchboard/test");
        assert_eq!(
            directives[0]["Dimensions"],
            serde_json::json!([[], ["Intent"]])
        );
        assert_eq!(
            directives[0]["Metrics"][0],
            serde_json::json!({"Name": "TurnLatency", "Unit": "Milliseconds"})
        );
        assert_eq!(directives[1]["Dimensions"], serde_json::json!([[]]));
        assert_eq!(v["Intent"], "order_status");
        assert_eq!(v["TurnLatency"], 12.5);
        assert_eq!(v["Fallback"], 0);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn odd_names_and_values_still_make_valid_json() {
        let line = emf_line(
            "ns \"quoted\"",
            1,
            &[("Vendor", "a\"b\\c\nd")],
            &[Directive {
                sets: &[&[], &["Vendor"]],
                metrics: &[
                    ("Count", Unit::Count, 3.0),
                    ("Latency", Unit::Milliseconds, 0.125),
                    ("Broken", Unit::None, f64::NAN),
                ],
            }],
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(v["Vendor"], "a\"b\\c\nd");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "ns \"quoted\""
        );
        assert_eq!(v["Count"], 3);
        assert_eq!(v["Latency"], 0.125);
        assert!(v["Broken"].is_null());
    }

    #[test]
    fn every_dimension_a_directive_names_has_a_value_at_the_root() {
        // CloudWatch drops a metric whose dimension has no value; the dimension sets `count`
        // builds only name dimensions it was given.
        let dims = [("Vendor", "stripe"), ("Status", "401")];
        let names = ["Vendor", "Status"];
        let line = emf_line(
            "n",
            1,
            &dims,
            &[Directive {
                sets: &[&[], &names[..1], &names],
                metrics: &[("WebhookRejected", Unit::Count, 1.0)],
            }],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for set in v["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
            .as_array()
            .unwrap()
        {
            for name in set.as_array().unwrap() {
                assert!(v[name.as_str().unwrap()].is_string(), "{name} has no value");
            }
        }
        assert_eq!(v["WebhookRejected"], 1);
    }
}
