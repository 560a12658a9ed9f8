//! The handlers' own counters, as CloudWatch Embedded Metric Format (EMF) log lines: one JSON
//! line per invocation on stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns
//! into metrics in the `livecount` namespace, dimensions `Deployment` (`LIVECOUNT_DEPLOYMENT`,
//! the stack name or prefix, so two deployments in one account keep their metrics apart) and
//! `Function`. The names are `infra/contract.json`'s, which the infrastructure alarms on.

use serde_json::{Map, Value, json};

/// The metric namespace.
pub const NAMESPACE: &str = "livecount";

/// The deployment a function belongs to when `LIVECOUNT_DEPLOYMENT` is not set.
pub const DEFAULT_DEPLOYMENT: &str = "livecount";

/// The EMF line for one invocation's counters.
pub fn emf_line(
    deployment: &str,
    function: &str,
    timestamp_ms: i64,
    counters: &[(&str, u64)],
) -> String {
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
                "Dimensions": [["Deployment", "Function"]],
                "Metrics": definitions
            }]
        }),
    );
    line.insert("Deployment".to_owned(), json!(deployment));
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
        let deployment =
            std::env::var("LIVECOUNT_DEPLOYMENT").unwrap_or_else(|_| DEFAULT_DEPLOYMENT.to_owned());
        println!(
            "{}",
            emf_line(
                &deployment,
                function,
                crate::Clock::system().now_ms(),
                counters
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_declares_each_counter_in_the_livecount_namespace() {
        let line = emf_line(
            "live-eu",
            "ingest",
            1_700_000_000_000,
            &[("EventsApplied", 3), ("MessagesInvalid", 1)],
        );
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["Function"], "ingest");
        assert_eq!(value["Deployment"], "live-eu");
        assert_eq!(value["EventsApplied"], 3);
        assert_eq!(value["MessagesInvalid"], 1);
        let metrics = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "livecount");
        assert_eq!(metrics["Dimensions"], json!([["Deployment", "Function"]]));
        assert_eq!(
            metrics["Metrics"][1],
            json!({"Name": "MessagesInvalid", "Unit": "Count"})
        );
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }
}

#[cfg(test)]
mod contract {
    use super::*;

    #[test]
    fn the_namespace_and_dimensions_are_the_contracts() {
        let contract: Value =
            serde_json::from_str(crate::contract::CONTRACT_JSON).expect("contract");
        assert_eq!(contract["metrics"]["namespace"], NAMESPACE);
        let line: Value = serde_json::from_str(&emf_line("d", "ingest", 0, &[])).expect("JSON");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            contract["metrics"]["dimensions"]
        );
        assert_eq!(
            contract["environment"]["LIVECOUNT_DEPLOYMENT"]["default"],
            DEFAULT_DEPLOYMENT
        );
    }
}
