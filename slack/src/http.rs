//! The HTTP shell: axum routes that hand the raw body and the signature headers to the edge
//! (verification before parsing), and send its answer back. Nothing here decides.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::edge::{Edge, HttpAnswer, LINK_COOKIE};
use crate::verify::Signed;

/// Slack's requests are small; anything bigger is not Slack.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every route of the edge.
pub fn router(edge: Arc<Edge>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .route("/link/start", get(link_start))
        .route("/link/callback", get(link_callback));
    // The redirect URI registered at the IdP may have another path (a native client's `/callback`).
    if let Ok(url) = url::Url::parse(&edge.settings().redirect_uri())
        && !matches!(url.path(), "/link/callback" | "/healthz" | "/link/start" | "/" | "")
        && !url.path().starts_with("/slack/")
    {
        router = router.route(url.path(), get(link_callback));
    }
    router.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(edge)
}

fn answer(a: HttpAnswer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, a.body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(a.content_type) {
        headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    for (name, value) in a.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            headers.append(n, v);
        }
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn signed(headers: &HeaderMap) -> Signed<'_> {
    Signed { timestamp: header(headers, "x-slack-request-timestamp"), signature: header(headers, "x-slack-signature") }
}

async fn commands(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = edge.verify(signed(&headers), &body) {
        return answer(refused);
    }
    answer(edge.command(&body).await)
}

async fn interactions(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = edge.verify(signed(&headers), &body) {
        return answer(refused);
    }
    answer(edge.interaction(&body).await)
}

async fn events(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = edge.verify(signed(&headers), &body) {
        return answer(refused);
    }
    let retry = header(&headers, "x-slack-retry-num").is_some();
    answer(edge.event(&body, retry).await)
}

#[derive(Deserialize)]
struct StartQuery {
    state: Option<String>,
}

async fn link_start(State(edge): State<Arc<Edge>>, Query(q): Query<StartQuery>) -> Response {
    answer(edge.link_start(q.state.as_deref().unwrap_or_default()).await)
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn link_callback(State(edge): State<Arc<Edge>>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let state = q.state.unwrap_or_default();
    answer(edge.link_callback(&state, q.code.as_deref(), q.error.as_deref(), cookie(&headers, LINK_COOKIE)).await)
}
