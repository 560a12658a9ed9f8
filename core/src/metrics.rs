//! The handlers' own counters, as CloudWatch Embedded Metric Format (EMF) log lines: one JSON
//! line per invocation on stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns
//! into metrics in the `livecount` namespace, dimension `Function`.

use serde_json::{Map, Value, json};

/// The metric namespace.
pub const NAMESPACE: &str = "livecount";

/// The EMF line for one invocation's counters.
pub fn emf_line(function: &str, timestamp_ms: i64, counters: &[(&str, u64)]) -> String {
    let definitions: Vec<Value> = counters
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions
            }]
        }),
    );
    line.insert("Function".to_owned(), json!(function));
    for (name, value) in counters {
        line.insert((*name).to_owned(), json!(value));
    }
    Value::Object(line).to_string()
}

/// Prints the EMF line when running in Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set); elsewhere
/// (tests, `livecount dev`) the same counters are in the handler's `tracing` summary line.
pub fn emit(function: &str, counters: &[(&str, u64)]) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!(
            "{}",
            emf_line(function, crate::Clock::system().now_ms(), counters)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_declares_each_counter_in_the_livecount_namespace() {
        let line = emf_line(
            "ingest",
            1_700_000_000_000,
            &[("EventsApplied", 3), ("MessagesInvalid", 1)],
        );
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["Function"], "ingest");
        assert_eq!(value["EventsApplied"], 3);
        assert_eq!(value["MessagesInvalid"], 1);
        let metrics = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "livecount");
        assert_eq!(metrics["Dimensions"], json!([["Function"]]));
        assert_eq!(
            metrics["Metrics"][1],
            json!({"Name": "MessagesInvalid", "Unit": "Count"})
        );
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }
}
