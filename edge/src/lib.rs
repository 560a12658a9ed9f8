//! # livecount-edge
//!
//! The public edge (`docs/design.md`, "The public edge"): the one door the internet has into
//! livecount, `POST /events`, served by the edge Lambda behind a Function URL and by
//! `livecount dev` at the same path. One request is what one player sends
//! ([`livecount_core::edge::check_player_request`]): the events of one session, a few at most,
//! each with a valid token when sessions are signed (the deployments' default). A refused request
//! costs no write and no queue message; it is answered with its reason and counted under it. An
//! accepted one is written to the sessions table at once, with the one conditional write ingest
//! makes ([`livecount_ingest::Ingest::write_player_events`]), and answered with the stream's
//! viewers, so a player can show the count without a request of its own.
//!
//! The answer's count comes from [`Counts`]: one `GetItem` per stream per second per instance
//! at most, whatever the audience on that instance.

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use livecount_core::edge::{
    COUNT_MAX_AGE_MS, MAX_PLAYER_BODY_BYTES, REFUSAL_METRICS, Refusal, VIEWER_COUNTRY_HEADER,
    check_player_request, viewer_country,
};
use livecount_core::ids::StreamId;
use livecount_core::store::SessionWrite;
use livecount_core::token::VerifyToken;
use livecount_core::{Clock, Store, error_chain, viewers_now};
use livecount_ingest::Ingest;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The edge's own counters (`infra/contract.json`, `metrics.edge`): the refusals by reason,
/// then what the accepted requests did.
pub const EDGE_METRICS: [&str; 11] = [
    REFUSAL_METRICS[0],
    REFUSAL_METRICS[1],
    REFUSAL_METRICS[2],
    REFUSAL_METRICS[3],
    REFUSAL_METRICS[4],
    REFUSAL_METRICS[5],
    REFUSAL_METRICS[6],
    "EventsApplied",
    "EventsStale",
    "WritesFailed",
    "CountReads",
];

/// How often an instance prints its counters as one EMF line (one line per request would cost
/// more in CloudWatch Logs than the request itself).
pub const METRICS_INTERVAL: Duration = Duration::from_secs(60);

/// The counters of one instance since it last printed them. Clones share them.
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    inner: Arc<Mutex<(BTreeMap<&'static str, u64>, Instant)>>,
    /// Whether to print them (in Lambda; `livecount dev` and tests read them instead).
    emit: bool,
}

impl EdgeMetrics {
    /// Counters printed as EMF every [`METRICS_INTERVAL`] when `emit`.
    pub fn new(emit: bool) -> Self {
        let zero = EDGE_METRICS.iter().map(|&name| (name, 0)).collect();
        Self {
            inner: Arc::new(Mutex::new((zero, Instant::now()))),
            emit,
        }
    }

    /// Adds one to `name` (one of [`EDGE_METRICS`]); prints and resets them when due.
    pub fn add(&self, name: &'static str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.0.entry(name).or_default() += 1;
        if self.emit && inner.1.elapsed() >= METRICS_INTERVAL {
            let counters: Vec<(&str, u64)> = inner.0.iter().map(|(&n, &v)| (n, v)).collect();
            livecount_core::metrics::emit("edge", &counters);
            inner.0.values_mut().for_each(|v| *v = 0);
            inner.1 = Instant::now();
        }
    }

    /// The counters since they were last printed (all of them when they are never printed).
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }
}

/// The viewers of each stream an instance answered for, each read at most once per
/// [`COUNT_MAX_AGE_MS`]: concurrent requests for one stream wait for one read.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    streams: Arc<Mutex<HashMap<StreamId, HeldCount>>>,
}

/// One stream's count and when it was read (epoch ms), once it has been; its lock is held while
/// it is read again.
type HeldCount = Arc<tokio::sync::Mutex<Option<(i64, u64)>>>;

/// Most streams whose counts one instance keeps (then it starts again).
const MAX_CACHED_STREAMS: usize = 10_000;

impl Counts {
    /// `stream`'s viewers at `now_ms`, read again if the one held is older than
    /// [`COUNT_MAX_AGE_MS`]; `None` if it could not be read.
    pub async fn viewers(
        &self,
        store: &Store,
        metrics: &EdgeMetrics,
        stream: &StreamId,
        now_ms: i64,
    ) -> Option<u64> {
        let entry = {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            if streams.len() >= MAX_CACHED_STREAMS && !streams.contains_key(stream) {
                streams.clear();
            }
            streams.entry(stream.clone()).or_default().clone()
        };
        let mut held = entry.lock().await;
        if let Some((read_ms, viewers)) = *held
            && now_ms - read_ms < COUNT_MAX_AGE_MS
        {
            return Some(viewers);
        }
        metrics.add("CountReads");
        match viewers_now(store, stream, now_ms.div_euclid(1000)).await {
            Ok(viewers) => {
                *held = Some((now_ms, viewers));
                Some(viewers)
            }
            Err(e) => {
                tracing::warn!(stream = %stream, error = %error_chain(&e), "count read failed");
                None
            }
        }
    }
}

/// The edge's own settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSettings {
    /// `LIVECOUNT_CORS_ORIGINS`: origins allowed to post from a browser, comma-separated
    /// (default `*`, any: a page cannot add a viewer without a token the backend issued).
    pub cors_origins: Vec<String>,
    /// `LIVECOUNT_UNSIGNED=allow`: count sessions without tokens. Without it, an edge with no
    /// token secret refuses to start.
    pub unsigned: bool,
    /// `LIVECOUNT_ORIGIN_SECRET_ARN`: with the flood shield (a CDN with a WAF in front of the
    /// edge), the secret the CDN sends in [`ORIGIN_HEADER`]; a request without it is refused.
    pub origin_secret_arn: Option<String>,
}

/// The header the shield adds to each request it forwards to the edge.
pub const ORIGIN_HEADER: &str = "x-livecount-origin";

/// Why the edge will not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EdgeSettingsError {
    #[error(
        "no token secret is configured (LIVECOUNT_TOKEN_SECRET_ARN): the public edge only counts signed sessions unless LIVECOUNT_UNSIGNED=allow says otherwise"
    )]
    Unsigned,
    #[error("LIVECOUNT_UNSIGNED={0:?} is invalid: the only value is `allow`")]
    UnsignedValue(String),
    #[error("cannot read the origin secret {arn}: {reason}")]
    OriginSecret { arn: String, reason: String },
}

impl EdgeSettings {
    /// Reads the settings with `lookup` (`std::env::var`, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EdgeSettingsError> {
        let unsigned = match lookup("LIVECOUNT_UNSIGNED").as_deref() {
            None | Some("") => false,
            Some("allow") => true,
            Some(other) => return Err(EdgeSettingsError::UnsignedValue(other.to_owned())),
        };
        let cors_origins = lookup("LIVECOUNT_CORS_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| vec!["*".to_owned()]);
        let origin_secret_arn = lookup("LIVECOUNT_ORIGIN_SECRET_ARN").filter(|a| !a.is_empty());
        Ok(Self {
            cors_origins,
            unsigned,
            origin_secret_arn,
        })
    }

    /// Whether an edge with (or without) token secrets may start with these settings.
    pub fn check_signing(&self, signed: bool) -> Result<(), EdgeSettingsError> {
        if signed || self.unsigned {
            Ok(())
        } else {
            Err(EdgeSettingsError::Unsigned)
        }
    }
}

/// What the edge's handlers share.
#[derive(Clone)]
pub struct Edge {
    /// The session write, the token secrets (`None`: unsigned sessions count) and the clock.
    pub ingest: Arc<Ingest>,
    pub counts: Counts,
    pub metrics: EdgeMetrics,
    /// Origins allowed to post from a browser (`*` for any).
    pub cors_origins: Vec<String>,
    /// Serve the counters at `GET /events/metrics` (`livecount dev` only: the deployed edge is
    /// public, its counters go to CloudWatch).
    pub serve_metrics: bool,
    /// With the flood shield: what [`ORIGIN_HEADER`] must say.
    pub origin_secret: Option<String>,
}

impl Edge {
    /// The edge for `ingest`, its counters printed in Lambda only.
    pub fn new(ingest: Ingest, cors_origins: Vec<String>) -> Self {
        Self {
            ingest: Arc::new(ingest),
            counts: Counts::default(),
            metrics: EdgeMetrics::new(std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()),
            cors_origins,
            serve_metrics: false,
            origin_secret: None,
        }
    }

    fn clock(&self) -> &Clock {
        &self.ingest.clock
    }
}

/// The edge's routes: `POST /events` (and its CORS preflight), and with
/// [`Edge::serve_metrics`] `GET /events/metrics`.
pub fn router(edge: Edge) -> Router {
    let mut router = Router::new().route("/events", post(post_events));
    if edge.serve_metrics {
        router = router.route("/events/metrics", get(metrics));
    }
    let cors = cors(&edge.cors_origins);
    router.layer(cors).with_state(edge)
}

/// CORS for `origins` (`*` for any): `POST` with `content-type`, preflight cached 10 minutes.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// The answer to an accepted request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    /// The stream's viewers (at most [`COUNT_MAX_AGE_MS`] old), if they could be read.
    viewers: Option<u64>,
    /// The second the count is for (epoch seconds).
    as_of: i64,
}

/// The answer to a refused request.
#[derive(Debug, Serialize)]
struct Refused {
    error: String,
    /// The metric it is counted under.
    reason: &'static str,
}

fn refuse(edge: &Edge, status: StatusCode, reason: &'static str, error: String) -> Response {
    edge.metrics.add(reason);
    (status, Json(Refused { error, reason })).into_response()
}

async fn post_events(State(edge): State<Edge>, headers: HeaderMap, body: Body) -> Response {
    if !came_through_the_shield(&edge, &headers) {
        let refusal = Refusal::Bypass;
        return refuse(
            &edge,
            StatusCode::FORBIDDEN,
            refusal.metric(),
            refusal.to_string(),
        );
    }
    if !is_event_content_type(&headers) {
        return refuse(
            &edge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "RefusedInvalid",
            "send events as application/json or text/plain".to_owned(),
        );
    }
    let Ok(bytes) = to_bytes(body, MAX_PLAYER_BODY_BYTES).await else {
        let refusal = Refusal::TooLarge {
            bytes: MAX_PLAYER_BODY_BYTES + 1,
        };
        return refuse(
            &edge,
            StatusCode::PAYLOAD_TOO_LARGE,
            refusal.metric(),
            format!("the body is larger than {MAX_PLAYER_BODY_BYTES} bytes, one player's limit"),
        );
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return refuse(
            &edge,
            StatusCode::BAD_REQUEST,
            "RefusedInvalid",
            "the body is not UTF-8".to_owned(),
        );
    };
    let now_ms = edge.clock().now_ms();
    let tokens = edge.ingest.tokens.as_ref().map(|t| t as &dyn VerifyToken);
    if let Some(tokens) = &edge.ingest.tokens {
        tokens.refresh_if_due().await;
    }
    let mut events = match check_player_request(text, tokens, now_ms.div_euclid(1000)) {
        Ok(events) => events,
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return refuse(&edge, status, refusal.metric(), refusal.to_string());
        }
    };
    // A player does not say where it is: `country` is the edge's to set (docs/design.md §3,
    // "Breakdowns"), from the shield's viewer-country header. Without a shield anyone can name
    // any header, so there is no country.
    let country = edge
        .origin_secret
        .as_ref()
        .and_then(|_| viewer_country(headers.get(VIEWER_COUNTRY_HEADER).map(|v| v.as_bytes())));
    for event in &mut events {
        event.dimensions.country.clone_from(&country);
    }
    let stream = events[0].stream_id.clone();
    match edge.ingest.write_player_events(events, now_ms).await {
        Some(Ok(SessionWrite::Applied)) => edge.metrics.add("EventsApplied"),
        Some(Ok(SessionWrite::Stale)) | None => edge.metrics.add("EventsStale"),
        Some(Err(e)) => {
            edge.metrics.add("WritesFailed");
            tracing::error!(error = %error_chain(&e), "session write failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "the event could not be written; send it again"})),
            )
                .into_response();
        }
    }
    let viewers = edge
        .counts
        .viewers(&edge.ingest.store, &edge.metrics, &stream, now_ms)
        .await;
    (
        StatusCode::ACCEPTED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(Accepted {
            viewers,
            as_of: now_ms.div_euclid(1000),
        }),
    )
        .into_response()
}

async fn metrics(State(edge): State<Edge>) -> Response {
    Json(edge.metrics.snapshot()).into_response()
}

/// Whether the request carries the shield's [`ORIGIN_HEADER`] (always, without a shield). The
/// comparison takes the same time wherever the two differ.
fn came_through_the_shield(edge: &Edge, headers: &HeaderMap) -> bool {
    let Some(secret) = &edge.origin_secret else {
        return true;
    };
    let given = headers
        .get(ORIGIN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    given.len() == secret.len()
        && given
            .iter()
            .zip(secret.as_bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Reads a Secrets Manager secret's current string (the shield's origin secret).
pub async fn read_secret(arn: &str) -> Result<String, EdgeSettingsError> {
    let sdk = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let failed = |reason: String| EdgeSettingsError::OriginSecret {
        arn: arn.to_owned(),
        reason,
    };
    let value = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| failed(error_chain(&aws_sdk_secretsmanager::Error::from(e))))?;
    value
        .secret_string
        .filter(|s| !s.is_empty())
        .ok_or_else(|| failed("it has no SecretString".to_owned()))
}

/// `application/json`, `text/plain` (what `navigator.sendBeacon` sends with a string), or none.
pub fn is_event_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(essence.as_str(), "application/json" | "text/plain")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_are_the_contracts() {
        let contract: serde_json::Value =
            serde_json::from_str(livecount_core::contract::CONTRACT_JSON).expect("contract");
        assert_eq!(serde_json::json!(EDGE_METRICS), contract["metrics"]["edge"]);
    }

    #[test]
    fn unsigned_needs_saying_so() {
        let settings = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            EdgeSettings::from_lookup(|k| map.get(k).cloned())
        };
        let default = settings(&[]).expect("defaults");
        assert_eq!(default.cors_origins, ["*"]);
        assert_eq!(default.check_signing(true), Ok(()));
        assert_eq!(
            default.check_signing(false),
            Err(EdgeSettingsError::Unsigned)
        );
        let unsigned = settings(&[("LIVECOUNT_UNSIGNED", "allow")]).expect("allow");
        assert_eq!(unsigned.check_signing(false), Ok(()));
        assert_eq!(
            settings(&[("LIVECOUNT_UNSIGNED", "true")]),
            Err(EdgeSettingsError::UnsignedValue("true".to_owned()))
        );
        let origins = settings(&[(
            "LIVECOUNT_CORS_ORIGINS",
            "https://a.example, https://b.example",
        )])
        .expect("origins");
        assert_eq!(
            origins.cors_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn counters_add_up_and_start_at_zero() {
        let metrics = EdgeMetrics::new(false);
        metrics.add("RefusedForged");
        metrics.add("RefusedForged");
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot["RefusedForged"], 2);
        assert_eq!(snapshot["EventsApplied"], 0);
        assert_eq!(snapshot.len(), EDGE_METRICS.len());
    }
}
