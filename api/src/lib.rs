//! # livecount-api
//!
//! The HTTP face of livecount, one [`router`] for the local runtime (`livecount dev`) and the
//! read Lambda:
//!
//! - `GET /api/streams/{id}`: a stream's live count, from one `GetItem`;
//! - `GET /api/streams`: every stream with a counter, with its viewers (a `Scan`, for tools);
//! - `POST /api/events`: player events (a JSON object, a JSON array, or JSON lines), validated
//!   and enqueued, where the deployment has a queue to put them in;
//! - `POST /events`: the players' ingest endpoint, as the deployed API Gateway route has it: the
//!   body (`application/json` or `text/plain`, what `navigator.sendBeacon` sends) becomes one
//!   queue message as it is, with CORS for the configured origins;
//! - `GET /`: the dashboard; `GET /player`: a page with a `<video>` instrumented by the web
//!   client, served at `GET /clients/web/livecount.js` (all embedded, nothing from a CDN).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use livecount_core::event::{check_stream_id, parse_body};
use livecount_core::{Clock, LiveCount, Store, error_chain};
use serde::Serialize;
use std::sync::Arc;

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
    /// Origins allowed to `POST /events` from a browser (`*` for any).
    pub cors_origins: Vec<String>,
}

/// The routes of the API and dashboard.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/player", get(player))
        .route("/clients/web/livecount.js", get(web_client))
        .route("/api/streams", get(list_streams))
        .route("/api/streams/{id}", get(stream_count))
        .route("/api/events", axum::routing::post(post_events))
        .route(
            "/events",
            axum::routing::post(ingest_events).options(ingest_preflight),
        )
        .with_state(state)
}

/// The dashboard page.
pub const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");

/// The demo player page.
pub const PLAYER_HTML: &str = include_str!("../assets/player.html");

/// The web client module (`clients/web/livecount.js`).
pub const WEB_CLIENT_JS: &str = include_str!("../../clients/web/livecount.js");

/// The largest body `POST /events` takes: SQS's message limit.
pub const MAX_INGEST_BYTES: usize = 256 * 1024;

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

/// `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
fn allowed_origin(state: &ApiState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    if state.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    state
        .cors_origins
        .iter()
        .any(|o| o == text)
        .then(|| origin.clone())
}

fn with_cors(state: &ApiState, headers: &HeaderMap, mut response: Response) -> Response {
    if let Some(origin) = allowed_origin(state, headers) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// `OPTIONS /events`: the CORS preflight of a `fetch` with `content-type: application/json`.
async fn ingest_preflight(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if allowed_origin(&state, &headers).is_some() {
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    with_cors(&state, &headers, response)
}

/// `POST /events`: one queue message, the body as it is, as API Gateway's SQS-SendMessage
/// integration does (the ingest Lambda validates it, and reports an invalid one).
async fn ingest_events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let response = match &state.events {
        None => error(
            StatusCode::NOT_FOUND,
            "players post to the ingest endpoint of the deployment, not here",
        ),
        Some(_) if !is_event_content_type(&headers) => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send events as application/json or text/plain",
        ),
        Some(_) if body.trim().is_empty() => error(StatusCode::BAD_REQUEST, "the body is empty"),
        Some(_) if body.len() > MAX_INGEST_BYTES => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {} bytes; the limit is {MAX_INGEST_BYTES}",
                body.len()
            ),
        ),
        Some(sink) => {
            let message_id = sink.enqueue(body);
            Json(serde_json::json!({ "messageId": message_id })).into_response()
        }
    };
    with_cors(&state, &headers, response)
}

fn is_event_content_type(headers: &HeaderMap) -> bool {
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

/// An error body: `{"error": "..."}`.
#[derive(Debug, Serialize)]
struct ApiError {
    error: String,
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
    if let Err(reason) = check_stream_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid stream id: {reason}"),
        );
    }
    match livecount_core::live_count(&state.store, &id, state.clock.now_seconds()).await {
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

/// `GET /api/streams`.
#[derive(Debug, Serialize)]
struct StreamList {
    streams: Vec<LiveCount>,
}

async fn list_streams(State(state): State<ApiState>) -> Response {
    let now = state.clock.now_seconds();
    match livecount_core::all_live_counts(&state.store, now).await {
        Ok(mut streams) => {
            streams.sort_by(|a, b| {
                b.viewers
                    .cmp(&a.viewers)
                    .then_with(|| a.stream_id.cmp(&b.stream_id))
            });
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(StreamList { streams }),
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
