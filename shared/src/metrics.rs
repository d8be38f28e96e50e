//! Counters as CloudWatch Embedded Metric Format lines: Lambda ships stdout to CloudWatch Logs,
//! which turns each line into a metric with no API call in the request path.

use std::io::Write;

pub const NAMESPACE: &str = "Switchboard";

/// The EMF document for one count of `name` with `dimensions`.
pub fn emf_line(name: &str, dimensions: &[(&str, &str)], timestamp_ms: i64) -> String {
    let mut doc = serde_json::Map::new();
    let dim_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dim_names],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), (*v).into());
    }
    doc.insert(name.into(), 1.into());
    serde_json::Value::Object(doc).to_string()
}

pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    let ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let line = emf_line(name, dimensions, ms);
    // One write per line so concurrent log lines never interleave inside it.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_line("WebhookRejected", &[("Vendor", "stripe")], 7)).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Vendor"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "WebhookRejected"
        );
        assert_eq!(v["Vendor"], "stripe");
        assert_eq!(v["WebhookRejected"], 1);
        assert_eq!(v["_aws"]["Timestamp"], 7);
    }
}
