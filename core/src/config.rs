//! Configuration from the environment (`docs/deploy.md`, "Configuration"): the same names are the infrastructure's
//! parameters.

use crate::timing::Timing;

/// Everything the handlers, the local runtime and the read path need to agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `LIVECOUNT_SESSIONS_TABLE`: the raw, TTL'd session rows.
    pub sessions_table: String,
    /// `LIVECOUNT_COUNTERS_TABLE`: one live counter item per stream, and its figures.
    pub counters_table: String,
    /// `LIVECOUNT_VIEWERS_TABLE`: the viewer markers that make unique viewers exact (one item
    /// per stream and `userId`, TTL'd; written by the aggregator, read by nothing else).
    pub viewers_table: String,
    /// `W`, `B`, `G`: how long a session counts and how expiries are grouped.
    pub timing: Timing,
    /// `LIVECOUNT_SESSION_SHARDS` (`S`): partition keys per stream in the sessions table.
    pub session_shards: u32,
    /// `LIVECOUNT_MAX_CONCURRENT_WRITES`: DynamoDB writes one invocation keeps in flight.
    pub max_concurrent_writes: usize,
    /// Where ingest finds the secret of signed sessions, if sessions must be signed.
    pub token_secret: Option<TokenSecretSource>,
    /// `LIVECOUNT_COUNTER_TTL_DAYS`: a stream's counter items expire (DynamoDB TTL) this many
    /// days after their last update (an hour item: after its hour ended); 62 by default, so last
    /// month's streams can still be reported on at the end of this one.
    pub counter_ttl_days: i64,
    /// `LIVECOUNT_DEAD_LETTER_QUEUE_URL`: where ingest sends an invalid message, once, with its
    /// reasons; unset, an invalid message is reported as failed and SQS moves it after
    /// `maxReceiveCount` receives.
    pub dead_letter_queue_url: Option<String>,
    /// `LIVECOUNT_BREAKDOWNS`: the dimensions streams are broken down by and the values listed
    /// for each (docs/design.md §3, "Breakdowns"); none by default.
    pub breakdowns: crate::breakdown::Breakdowns,
}

/// Where the signed-session secret comes from.
#[derive(Debug, Clone)]
pub enum TokenSecretSource {
    /// `LIVECOUNT_TOKEN_SECRET_ARN`: a Secrets Manager secret (ARN or name), read at start.
    SecretsManager(String),
    /// `LIVECOUNT_TOKEN_SECRET`: the secret itself, for `livecount dev` and tests only.
    Value(crate::token::TokenSecret),
}

impl PartialEq for TokenSecretSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::SecretsManager(a), Self::SecretsManager(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for TokenSecretSource {}

impl Default for Config {
    fn default() -> Self {
        Self {
            sessions_table: "livecount-sessions".to_owned(),
            counters_table: "livecount-counters".to_owned(),
            viewers_table: "livecount-viewers".to_owned(),
            timing: Timing::default(),
            session_shards: 8,
            max_concurrent_writes: 16,
            token_secret: None,
            counter_ttl_days: 62,
            dead_letter_queue_url: None,
            breakdowns: crate::breakdown::Breakdowns::default(),
        }
    }
}

/// A configuration variable that is set but unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}={value:?} is invalid: {rule}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub rule: std::borrow::Cow<'static, str>,
}

impl Config {
    /// When a counter item updated at `now` (epoch seconds) expires: `now + LIVECOUNT_COUNTER_TTL_DAYS`.
    pub fn counter_expiry(&self, now: i64) -> i64 {
        now + self.counter_ttl_days * 86_400
    }

    /// Reads the `LIVECOUNT_*` variables of the process environment; unset ones take defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let number = |variable, default, max| number(&lookup, variable, default, max);
        let config = Self {
            sessions_table: table(&lookup, "LIVECOUNT_SESSIONS_TABLE", defaults.sessions_table)?,
            counters_table: table(&lookup, "LIVECOUNT_COUNTERS_TABLE", defaults.counters_table)?,
            viewers_table: table(&lookup, "LIVECOUNT_VIEWERS_TABLE", defaults.viewers_table)?,
            timing: Timing {
                window_seconds: number(
                    "LIVECOUNT_WINDOW_SECONDS",
                    defaults.timing.window_seconds,
                    3600,
                )?,
                bucket_seconds: number(
                    "LIVECOUNT_BUCKET_SECONDS",
                    defaults.timing.bucket_seconds,
                    3600,
                )?,
                grace_seconds: number(
                    "LIVECOUNT_GRACE_SECONDS",
                    defaults.timing.grace_seconds,
                    68_400,
                )?,
            },
            session_shards: number(
                "LIVECOUNT_SESSION_SHARDS",
                defaults.session_shards.into(),
                4096,
            )? as u32,
            max_concurrent_writes: number(
                "LIVECOUNT_MAX_CONCURRENT_WRITES",
                defaults.max_concurrent_writes as i64,
                1024,
            )? as usize,
            token_secret: token_secret(&lookup)?,
            counter_ttl_days: number("LIVECOUNT_COUNTER_TTL_DAYS", defaults.counter_ttl_days, 365)?,
            dead_letter_queue_url: lookup("LIVECOUNT_DEAD_LETTER_QUEUE_URL")
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            breakdowns: match lookup("LIVECOUNT_BREAKDOWNS") {
                None => crate::breakdown::Breakdowns::default(),
                Some(text) => {
                    crate::breakdown::Breakdowns::parse(&text).map_err(|e| ConfigError {
                        variable: "LIVECOUNT_BREAKDOWNS",
                        value: text.clone(),
                        rule: e.to_string().into(),
                    })?
                }
            },
        };
        config.check_together()?;
        Ok(config)
    }

    /// The rules that bind several variables together.
    fn check_together(&self) -> Result<(), ConfigError> {
        if self.timing.live_buckets() > crate::timing::MAX_LIVE_BUCKETS {
            return Err(ConfigError {
                variable: "LIVECOUNT_GRACE_SECONDS",
                value: self.timing.grace_seconds.to_string(),
                rule:
                    "(W + B + G) / B may be at most 20, so the live counter item stays within 1 KB"
                        .into(),
            });
        }
        if self.sessions_table == self.counters_table {
            return Err(ConfigError {
                variable: "LIVECOUNT_COUNTERS_TABLE",
                value: self.counters_table.clone(),
                rule: "the counters table must differ from the sessions table".into(),
            });
        }
        if [&self.sessions_table, &self.counters_table].contains(&&self.viewers_table) {
            return Err(ConfigError {
                variable: "LIVECOUNT_VIEWERS_TABLE",
                value: self.viewers_table.clone(),
                rule: "the viewers table must differ from the sessions and counters tables".into(),
            });
        }
        Ok(())
    }
}

/// A table name variable, or its default.
fn table(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: String,
) -> Result<String, ConfigError> {
    match lookup(variable) {
        None => Ok(default),
        Some(value) if is_table_name(&value) => Ok(value),
        Some(value) => Err(ConfigError {
            variable,
            value,
            rule: "a table name is 3-255 characters of [A-Za-z0-9_.-]".into(),
        }),
    }
}

/// A whole-number variable from 1 to `max`, or its default.
fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    match lookup(variable) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError {
                variable,
                value,
                rule: format!("expected a whole number from 1 to {max}").into(),
            }),
        },
    }
}

fn token_secret(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TokenSecretSource>, ConfigError> {
    match (
        lookup("LIVECOUNT_TOKEN_SECRET_ARN"),
        lookup("LIVECOUNT_TOKEN_SECRET"),
    ) {
        (None, None) => Ok(None),
        (Some(arn), None) if !arn.trim().is_empty() => Ok(Some(TokenSecretSource::SecretsManager(
            arn.trim().to_owned(),
        ))),
        (None, Some(value)) => crate::token::TokenSecret::new(value)
            .map(|s| Some(TokenSecretSource::Value(s)))
            .ok_or(ConfigError {
                variable: "LIVECOUNT_TOKEN_SECRET",
                value: "(hidden)".to_owned(),
                rule: "a token secret is at least 16 bytes".into(),
            }),
        (Some(arn), _) => Err(ConfigError {
            variable: "LIVECOUNT_TOKEN_SECRET_ARN",
            value: arn,
            rule: "set a secret ARN or, for local use, LIVECOUNT_TOKEN_SECRET; not both, not empty"
                .into(),
        }),
    }
}

fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn unset_variables_take_the_documented_defaults() {
        let config = config(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.sessions_table, "livecount-sessions");
        assert_eq!(config.counters_table, "livecount-counters");
        assert_eq!(
            config.timing,
            Timing {
                window_seconds: 15,
                bucket_seconds: 5,
                grace_seconds: 60
            }
        );
        assert_eq!(config.session_shards, 8);
    }

    #[test]
    fn set_variables_override_defaults() {
        let config = config(&[
            ("LIVECOUNT_SESSIONS_TABLE", "s-1"),
            ("LIVECOUNT_COUNTERS_TABLE", "c-1"),
            ("LIVECOUNT_WINDOW_SECONDS", "30"),
            ("LIVECOUNT_BUCKET_SECONDS", "10"),
            ("LIVECOUNT_GRACE_SECONDS", "120"),
            ("LIVECOUNT_SESSION_SHARDS", "256"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.sessions_table, "s-1");
        assert_eq!(
            config.timing,
            Timing {
                window_seconds: 30,
                bucket_seconds: 10,
                grace_seconds: 120
            }
        );
        assert_eq!(config.session_shards, 256);
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_rule() {
        for (variable, value) in [
            ("LIVECOUNT_WINDOW_SECONDS", "fifteen"),
            ("LIVECOUNT_BUCKET_SECONDS", "0"),
            ("LIVECOUNT_GRACE_SECONDS", "-5"),
            ("LIVECOUNT_SESSION_SHARDS", "100000"),
            ("LIVECOUNT_SESSIONS_TABLE", "no spaces"),
            ("LIVECOUNT_COUNTERS_TABLE", "livecount-sessions"),
            ("LIVECOUNT_GRACE_SECONDS", "600"),
            ("LIVECOUNT_TOKEN_SECRET", "short"),
            ("LIVECOUNT_TOKEN_SECRET_ARN", " "),
        ] {
            let error = config(&[(variable, value)]).expect_err(variable);
            assert_eq!(error.variable, variable);
            if variable != "LIVECOUNT_TOKEN_SECRET" {
                assert!(error.to_string().contains(value), "{error}");
            } else {
                assert!(
                    !error.to_string().contains(value),
                    "a secret is never shown: {error}"
                );
            }
        }
    }

    /// Every variable of `infra/contract.json` with a range: its default is `Config`'s, both
    /// ends are accepted and one past each end is refused (the infrastructure checks the same).
    #[test]
    fn ranges_and_defaults_are_the_contracts() {
        let contract: serde_json::Value =
            serde_json::from_str(crate::contract::CONTRACT_JSON).expect("contract");
        let defaults = config(&[]).unwrap_or_else(|e| panic!("{e}"));
        let actual_default = |variable: &str| -> Option<i64> {
            Some(match variable {
                "LIVECOUNT_WINDOW_SECONDS" => defaults.timing.window_seconds,
                "LIVECOUNT_BUCKET_SECONDS" => defaults.timing.bucket_seconds,
                "LIVECOUNT_GRACE_SECONDS" => defaults.timing.grace_seconds,
                "LIVECOUNT_SESSION_SHARDS" => i64::from(defaults.session_shards),
                "LIVECOUNT_MAX_CONCURRENT_WRITES" => defaults.max_concurrent_writes as i64,
                "LIVECOUNT_COUNTER_TTL_DAYS" => defaults.counter_ttl_days,
                _ => return None,
            })
        };
        let mut checked = 0;
        for (variable, rule) in contract["environment"].as_object().expect("object") {
            let (Some(min), Some(max)) = (rule["min"].as_i64(), rule["max"].as_i64()) else {
                continue;
            };
            assert_eq!(
                actual_default(variable),
                rule["default"].as_i64(),
                "{variable}"
            );
            // W, B and G are also bound together: test each end with the others widened.
            let others: &[(&str, &str)] = match variable.as_str() {
                "LIVECOUNT_WINDOW_SECONDS" => &[("LIVECOUNT_BUCKET_SECONDS", "3600")],
                "LIVECOUNT_BUCKET_SECONDS" => &[("LIVECOUNT_GRACE_SECONDS", "1")],
                "LIVECOUNT_GRACE_SECONDS" => &[
                    ("LIVECOUNT_BUCKET_SECONDS", "3600"),
                    ("LIVECOUNT_WINDOW_SECONDS", "1"),
                ],
                _ => &[],
            };
            let with = |value: i64| {
                let value = value.to_string();
                let mut vars: Vec<(&str, &str)> = others.to_vec();
                vars.push((variable.as_str(), value.as_str()));
                config(&vars).map(|_| ())
            };
            assert_eq!(with(min), Ok(()), "{variable} = {min}");
            assert_eq!(with(max), Ok(()), "{variable} = {max}");
            assert!(with(min - 1).is_err(), "{variable} = {}", min - 1);
            assert!(with(max + 1).is_err(), "{variable} = {}", max + 1);
            checked += 1;
        }
        assert_eq!(checked, 6);
        assert_eq!(
            contract["environment"]["LIVECOUNT_SESSIONS_TABLE"]["default"],
            defaults.sessions_table.as_str()
        );
        assert_eq!(
            contract["environment"]["LIVECOUNT_COUNTERS_TABLE"]["default"],
            defaults.counters_table.as_str()
        );
        assert_eq!(
            contract["environment"]["LIVECOUNT_VIEWERS_TABLE"]["default"],
            defaults.viewers_table.as_str()
        );
    }
}
