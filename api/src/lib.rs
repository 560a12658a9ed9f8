//! # livecount-api
//!
//! The HTTP face of livecount, one [`router`] for the local runtime (`livecount dev`) and the
//! read Lambda:
//!
//! - `GET /api/streams/{id}`: a stream's live count and peak, from two `GetItem`s;
//! - `GET /api/streams/{id}/summary`: its figures over its whole life (peak, watch time,
//!   average viewers), from the same two `GetItem`s;
//! - `GET /api/streams/{id}/history?from=&to=&format=`: its minutes from `from` to `to`
//!   (epoch seconds or RFC 3339; the last hour by default), from one `Query` of its hour items
//!   and the two `GetItem`s; JSON, or CSV with `format=csv` or `Accept: text/csv`;
//! - `GET /api/streams?limit=&after=`: a page of the streams with a counter, with their viewers
//!   (one `Scan` request per page, for tools; `next` is the following page's `after`);
//! - `POST /api/events`: player events (a JSON object, a JSON array, or JSON lines), validated
//!   and enqueued, where the deployment has a queue to put them in;
//! - `GET /api/streams/{id}/viewers`: the audience's count (the badge): one `GetItem` of the
//!   live counter, a small body, cacheable by a CDN for a second, with a weak `ETag` (a `304`
//!   when it is unchanged) and CORS for any origin;
//! - `GET /`: the dashboard; `GET /player`: a page with a `<video>` instrumented by the web
//!   client, served at `GET /clients/web/livecount.js` (all embedded, nothing from a CDN).
//!
//! A request carrying [`PUBLIC_HEADER`] (the CDN in front of the read function adds it to every
//! request it forwards) may only get the badge: everything else answers 404 to it.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use livecount_core::breakdown::{Breakdowns, Dimension};
use livecount_core::event::parse_body;
use livecount_core::ids::{InvalidId, StreamId};
use livecount_core::read::MinuteRow;
use livecount_core::store::MAX_LIST_PAGE;
use livecount_core::{Clock, LiveCount, Store, StoreError, error_chain};
use serde::Serialize;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Where `POST /api/events` puts accepted message bodies (the local queue, or SQS).
pub trait EventSink: Send + Sync {
    /// Enqueues one message body; returns its message id.
    fn enqueue(&self, body: String) -> String;
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub clock: Clock,
    pub events: Option<Arc<dyn EventSink>>,
    /// What streams are broken down by (`LIVECOUNT_BREAKDOWNS`, the aggregator's).
    pub breakdowns: Breakdowns,
}

/// The header the CDN adds to each request it forwards to the read function: such a request is
/// the public's, and may only read the badge.
pub const PUBLIC_HEADER: &str = "x-livecount-public";

/// How long a CDN (and a browser) may keep a badge answer, in seconds.
pub const BADGE_MAX_AGE_SECONDS: u64 = 1;

/// The routes of the API and dashboard.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/player", get(player))
        .route("/clients/web/livecount.js", get(web_client))
        .route("/api/streams", get(list_streams))
        .route("/api/streams/{id}", get(stream_count))
        .route("/api/streams/{id}/summary", get(stream_summary))
        .route("/api/streams/{id}/history", get(stream_history))
        .route("/api/streams/{id}/breakdown", get(stream_breakdown))
        .route("/api/events", axum::routing::post(post_events))
        .with_state(state.clone())
        .layer(middleware::from_fn(public_only_badge))
        .merge(
            Router::new()
                .route("/api/streams/{id}/viewers", get(badge))
                .layer(
                    CorsLayer::new()
                        .allow_origin(AllowOrigin::any())
                        .allow_methods([Method::GET])
                        .expose_headers([header::ETAG]),
                )
                .with_state(state),
        )
}

/// A request with [`PUBLIC_HEADER`] that is not for the badge: 404.
async fn public_only_badge(request: Request, next: Next) -> Response {
    if request.headers().contains_key(PUBLIC_HEADER) {
        return error(StatusCode::NOT_FOUND, "only the viewer count is public");
    }
    next.run(request).await
}

/// `GET /api/streams/{id}/viewers`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Badge {
    viewers: u64,
    /// The second the count is for (epoch seconds).
    as_of: i64,
}

async fn badge(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let stream = match StreamId::parse(&id) {
        Ok(stream) => stream,
        Err(reason) => return invalid_stream(reason),
    };
    let now = state.clock.now_seconds();
    let viewers = match livecount_core::viewers_now(&state.store, &stream, now).await {
        Ok(viewers) => viewers,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "badge read failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the count could not be read; try again",
            );
        }
    };
    let etag = format!("W/\"{viewers}\"");
    let cache = format!("public, max-age={BADGE_MAX_AGE_SECONDS}");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let headers = [(header::CACHE_CONTROL, cache), (header::ETAG, etag)];
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        Json(Badge {
            viewers,
            as_of: now,
        }),
    )
        .into_response()
}

/// The dashboard page.
pub const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");

/// The demo player page.
pub const PLAYER_HTML: &str = include_str!("../assets/player.html");

/// The web client module (`clients/web/livecount.js`).
pub const WEB_CLIENT_JS: &str = include_str!("../../clients/web/livecount.js");

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD_HTML)
}

async fn player() -> Html<&'static str> {
    Html(PLAYER_HTML)
}

async fn web_client() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        WEB_CLIENT_JS,
    )
        .into_response()
}

/// An error body: `{"error": "..."}`.
#[derive(Debug, Serialize)]
struct ApiError {
    error: String,
}

/// The 400 that refuses a path's `{id}` that is not a stream id.
fn invalid_stream(reason: InvalidId) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("invalid stream id: {reason}"),
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

async fn stream_count(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let stream = match StreamId::parse(&id) {
        Ok(stream) => stream,
        Err(reason) => return invalid_stream(reason),
    };
    match livecount_core::live_count(&state.store, &stream, state.clock.now_seconds()).await {
        Ok(count) => ([(header::CACHE_CONTROL, "no-store")], Json(count)).into_response(),
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "read failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the counter could not be read; try again",
            )
        }
    }
}

/// What a `format` query parameter or an `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

impl Format {
    /// What `format` (or, without it, `Accept`) asks for; the error names a bad `format`.
    fn of(format: Option<&str>, headers: &HeaderMap) -> Result<Self, String> {
        match format {
            Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some(other) => Err(format!("format is {other:?}; it is json or csv")),
            None => {
                let accept = headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                Ok(if accept.contains("text/csv") {
                    Self::Csv
                } else {
                    Self::Json
                })
            }
        }
    }
}

/// `?format=` of the summary.
#[derive(Debug, serde::Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

/// An RFC 3339 time for CSV cells.
fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Rows as CSV (`text/csv`), or a 500 naming what failed.
fn csv_response<R: Serialize>(rows: impl IntoIterator<Item = R>, name: &str) -> Response {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        if let Err(e) = writer.serialize(row) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, format!("CSV: {e}"));
        }
    }
    match writer.into_inner() {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.csv\""),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("CSV: {e}")),
    }
}

/// The 503 of a read that failed.
fn read_failed(e: &StoreError, what: &str) -> Response {
    tracing::error!(error = %error_chain(e), "{what} read failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the {what} could not be read; try again"),
    )
}

/// A summary as one CSV row.
#[derive(Serialize)]
struct SummaryRow {
    stream_id: String,
    through: String,
    peak: u64,
    peak_at: String,
    viewer_seconds: u64,
    viewer_minutes: f64,
    average_viewers: f64,
    sessions_started: u64,
    unique_viewers: u64,
    first_at: String,
    last_at: String,
    missed_seconds: u64,
}

async fn stream_summary(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<FormatQuery>,
    headers: HeaderMap,
) -> Response {
    let stream = match StreamId::parse(&id) {
        Ok(stream) => stream,
        Err(reason) => return invalid_stream(reason),
    };
    let format = match Format::of(query.format.as_deref(), &headers) {
        Ok(format) => format,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let now = state.clock.now_seconds();
    match livecount_core::read::summary(&state.store, &stream, now).await {
        Ok(summary) if format == Format::Csv => {
            let time = |t: Option<i64>| t.map(rfc3339).unwrap_or_default();
            let row = SummaryRow {
                stream_id: summary.stream_id.clone(),
                through: rfc3339(summary.through),
                peak: summary.peak,
                peak_at: time(summary.peak_at),
                viewer_seconds: summary.viewer_seconds,
                viewer_minutes: summary.viewer_minutes,
                average_viewers: summary.average_viewers,
                sessions_started: summary.sessions_started,
                unique_viewers: summary.unique_viewers,
                first_at: time(summary.first_at),
                last_at: time(summary.last_at),
                missed_seconds: summary.missed_seconds,
            };
            csv_response([row], &format!("{stream}-summary"))
        }
        Ok(summary) => ([(header::CACHE_CONTROL, "no-store")], Json(summary)).into_response(),
        Err(e) => read_failed(&e, "summary"),
    }
}

/// `GET /api/streams/{id}/breakdown`: every dimension's values, their viewers now and figures.
async fn stream_breakdown(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let stream = match StreamId::parse(&id) {
        Ok(stream) => stream,
        Err(reason) => return invalid_stream(reason),
    };
    let now = state.clock.now_seconds();
    match livecount_core::read::breakdown(&state.store, &state.breakdowns, &stream, now).await {
        Ok(breakdown) => ([(header::CACHE_CONTROL, "no-store")], Json(breakdown)).into_response(),
        Err(e) => read_failed(&e, "breakdown"),
    }
}

/// `?from=&to=&format=` of the history, and `dimension=&value=` for one value's.
#[derive(Debug, serde::Deserialize)]
struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    dimension: Option<String>,
    value: Option<String>,
}

/// A time parameter: epoch seconds or RFC 3339; the error names it.
fn time_parameter(name: &str, text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| {
            format!("{name} is {text:?}: neither epoch seconds nor an RFC 3339 time ({e})")
        })
}

impl HistoryQuery {
    /// The format and the minutes `from .. to` asked for at `now` (the hour before `to`, and
    /// `to` the next second, unless given), checked.
    fn range(&self, headers: &HeaderMap, now: i64) -> Result<(Format, i64, i64), String> {
        let format = Format::of(self.format.as_deref(), headers)?;
        let to = match self.to.as_deref() {
            Some(text) => time_parameter("to", text)?,
            None => now + 1,
        };
        let from = match self.from.as_deref() {
            Some(text) => time_parameter("from", text)?,
            None => to - 3600,
        };
        livecount_core::read::check_history_range(from, to).map_err(|e| e.to_string())?;
        Ok((format, from, to))
    }

    /// The stream whose history is asked for: `stream`, or one of its values' streams.
    fn stream(&self, stream: StreamId, breakdowns: &Breakdowns) -> Result<StreamId, String> {
        let (name, value) = match (self.dimension.as_deref(), self.value.as_deref()) {
            (None, None) => return Ok(stream),
            (Some(name), Some(value)) => (name, value),
            _ => return Err("dimension and value go together".to_owned()),
        };
        let dimension = Dimension::parse(name)
            .filter(|d| breakdowns.dimensions().any(|b| b == *d))
            .ok_or_else(|| {
                let names: Vec<&str> = breakdowns.dimensions().map(|d| d.name()).collect();
                format!(
                    "dimension is {name:?}; streams are broken down by: {}",
                    names.join(", ")
                )
            })?;
        let values = breakdowns.values(dimension);
        if !values.contains(&value) {
            return Err(format!(
                "value is {value:?}; the values of {dimension} are {}",
                values.join(", ")
            ));
        }
        Ok(stream.value_stream(dimension, value))
    }
}

/// `GET /api/streams/{id}/history`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct History {
    stream_id: String,
    from: i64,
    to: i64,
    minutes: Vec<MinuteRow>,
}

/// A minute as a CSV row.
#[derive(Serialize)]
struct MinuteCsv {
    minute: String,
    highest: u64,
    average: f64,
    viewer_seconds: u64,
    viewer_minutes: f64,
    seconds: u64,
    sessions_started: u64,
}

async fn stream_history(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    let stream = match StreamId::parse(&id) {
        Ok(stream) => stream,
        Err(reason) => return invalid_stream(reason),
    };
    let now = state.clock.now_seconds();
    let (format, from, to) = match query.range(&headers, now) {
        Ok(range) => range,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let stream = match query.stream(stream, &state.breakdowns) {
        Ok(stream) => stream,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    match livecount_core::read::history(&state.store, &stream, from, to, now).await {
        Ok(minutes) if format == Format::Csv => csv_response(
            minutes.iter().map(|m| MinuteCsv {
                minute: rfc3339(m.minute),
                highest: m.highest,
                average: m.average,
                viewer_seconds: m.viewer_seconds,
                viewer_minutes: m.viewer_minutes,
                seconds: m.seconds,
                sessions_started: m.sessions_started,
            }),
            &format!("{stream}-history"),
        ),
        Ok(minutes) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(History {
                stream_id: stream.to_string(),
                from,
                to,
                minutes,
            }),
        )
            .into_response(),
        Err(e) => read_failed(&e, "history"),
    }
}

/// `GET /api/streams`.
#[derive(Debug, Serialize)]
struct StreamList {
    streams: Vec<LiveCount>,
    /// The `after` of the next page, if there may be more.
    next: Option<String>,
}

/// `GET /api/streams?limit=&after=`.
#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// Streams per page of `GET /api/streams` unless `limit` says otherwise.
pub const DEFAULT_LIST_PAGE: usize = 50;

async fn list_streams(State(state): State<ApiState>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_PAGE);
    if !(1..=MAX_LIST_PAGE).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit is {limit}; a page holds 1 to {MAX_LIST_PAGE} streams"),
        );
    }
    let after = match query.after.as_deref().map(StreamId::parse).transpose() {
        Ok(after) => after,
        Err(reason) => {
            return error(StatusCode::BAD_REQUEST, format!("invalid after: {reason}"));
        }
    };
    let now = state.clock.now_seconds();
    match livecount_core::live_counts_page(&state.store, now, limit, after.as_ref()).await {
        Ok((mut streams, next)) => {
            streams.sort_by(|a, b| {
                b.viewers
                    .cmp(&a.viewers)
                    .then_with(|| a.stream_id.cmp(&b.stream_id))
            });
            (
                [(header::CACHE_CONTROL, "private, max-age=5")],
                Json(StreamList {
                    streams,
                    next: next.map(|n| n.to_string()),
                }),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "listing failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the counters could not be listed; try again",
            )
        }
    }
}

/// `POST /api/events` answer.
#[derive(Debug, Serialize)]
struct Accepted {
    accepted: usize,
    #[serde(rename = "messageIds")]
    message_ids: Vec<String>,
}

async fn post_events(State(state): State<ApiState>, body: String) -> Response {
    let Some(sink) = state.events else {
        return error(
            StatusCode::NOT_FOUND,
            "this deployment takes events through SQS, not HTTP",
        );
    };
    match split_messages(&body) {
        Ok(messages) => {
            let message_ids = messages
                .into_iter()
                .map(|m| sink.enqueue(m))
                .collect::<Vec<_>>();
            (
                StatusCode::ACCEPTED,
                Json(Accepted {
                    accepted: message_ids.len(),
                    message_ids,
                }),
            )
                .into_response()
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

/// Splits a body of events into message bodies and validates every event: a JSON object or
/// array is one message; otherwise each non-empty line is one message (JSON lines). The error
/// names the line and the rule broken; nothing is accepted from a body with an error.
pub fn split_messages(body: &str) -> Result<Vec<String>, String> {
    let trimmed = body.trim();
    let whole = (trimmed.starts_with('[') || trimmed.starts_with('{'))
        && serde_json::from_str::<serde_json::Value>(trimmed).is_ok();
    let messages: Vec<(usize, &str)> = if whole {
        vec![(1, trimmed)]
    } else {
        body.lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty())
            .collect()
    };
    if messages.is_empty() {
        return Err("no events: expected a JSON object, a JSON array, or JSON lines".to_owned());
    }
    for (line, message) in &messages {
        check_message(*line, message)?;
    }
    Ok(messages.into_iter().map(|(_, m)| m.to_owned()).collect())
}

/// Every event of one message is valid; the error names the line, the event and the rule.
fn check_message(line: usize, message: &str) -> Result<(), String> {
    let parsed = parse_body(message).map_err(|e| format!("line {line}: {}", error_chain(&e)))?;
    for (index, event) in parsed.events.into_iter().enumerate() {
        if let Err(reason) = event {
            let place = if parsed.is_array {
                format!("line {line}, event {index}")
            } else {
                format!("line {line}")
            };
            return Err(format!("{place}: {reason}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_messages_or_name_the_bad_line() {
        let event = r#"{"streamId":"s","sessionId":"a","type":"start","ts":1}"#;
        assert_eq!(split_messages(event), Ok(vec![event.to_owned()]));
        let array = format!("[{event}, {event}]");
        assert_eq!(split_messages(&array).map(|m| m.len()), Ok(1));
        let lines = format!("{event}\n\n{event}\n");
        assert_eq!(split_messages(&lines).map(|m| m.len()), Ok(2));

        let bad = format!("{event}\n{{\"streamId\":\"s\"}}\n");
        assert_eq!(
            split_messages(&bad),
            Err("line 2: `sessionId` is missing".to_owned())
        );
        let bad_json = format!("{event}\nnot json");
        assert!(
            split_messages(&bad_json)
                .is_err_and(|e| e.starts_with("line 2: body is not valid JSON"))
        );
        assert!(split_messages("  \n").is_err());
    }
}
