//! Socket Mode, for installs without a public URL: the edge opens a WebSocket to Slack
//! (`apps.connections.open` with the app-level token `xapp-…`, scope `connections:write`) and Slack
//! sends over it, in envelopes, the same payloads it would otherwise POST. Each envelope is handed
//! to the same handler as its HTTP route ([`Edge::command`], [`Edge::interaction`],
//! [`Edge::event`]) and acknowledged with what that route would answer (an ephemeral reply, a
//! form's errors, nothing).
//!
//! There is no request signature here: authenticity comes from the connection, which the edge
//! opened to Slack over TLS with its app token. The handlers still check the team and app ids of
//! every payload. An envelope Slack sends again (not acknowledged in time: `retry_attempt`) is
//! acknowledged again without being handled twice. Slack asks for a new connection now and then
//! (`disconnect`); the edge then reconnects at once, and after a failure with a growing pause.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::edge::{Edge, HttpAnswer};

/// How long an envelope id is remembered against Slack's retries.
const SEEN_FOR: Duration = Duration::from_secs(600);
/// The longest pause between failed connections.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Why a connection could not be opened or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("apps.connections.open: {0}")]
    Open(String),
    #[error("the Socket Mode connection: {0}")]
    Connection(#[from] tokio_tungstenite::tungstenite::Error),
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Shutdown,
    Reconnect,
}

/// Keep a Socket Mode connection open until `shutdown`, reconnecting when Slack asks or the
/// connection fails.
pub async fn run(edge: Arc<Edge>, app_token: String, shutdown: CancellationToken) {
    let http = reqwest::Client::new();
    let mut pause = Duration::from_secs(1);
    let mut seen = Seen::default();
    loop {
        match session(&edge, &http, &app_token, &mut seen, &shutdown).await {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::Reconnect) => {
                pause = Duration::from_secs(1);
                tracing::info!(target: "portcullis::slack", "Socket Mode: reconnecting as Slack asked");
            }
            Err(e) => {
                tracing::warn!(target: "portcullis::slack", "Socket Mode: {e}; reconnecting in {} s", pause.as_secs());
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// `apps.connections.open`: the WebSocket URL of a new connection.
async fn open(edge: &Edge, http: &reqwest::Client, app_token: &str) -> Result<String, SocketError> {
    let url = format!("{}/apps.connections.open", edge.settings().slack.api_base_url.trim_end_matches('/'));
    let answer: Value = http
        .post(&url)
        .bearer_auth(app_token)
        .json(&json!({}))
        .send()
        .await
        .map_err(|e| SocketError::Open(e.without_url().to_string()))?
        .json()
        .await
        .map_err(|e| SocketError::Open(e.without_url().to_string()))?;
    match (answer["ok"].as_bool(), answer["url"].as_str()) {
        (Some(true), Some(url)) => Ok(url.to_owned()),
        _ => Err(SocketError::Open(answer["error"].as_str().unwrap_or("no url in the answer").to_owned())),
    }
}

/// One connection: envelopes in, acknowledgements out, until Slack or `shutdown` ends it.
async fn session(
    edge: &Arc<Edge>,
    http: &reqwest::Client,
    app_token: &str,
    seen: &mut Seen,
    shutdown: &CancellationToken,
) -> Result<Ended, SocketError> {
    let url = open(edge, http, app_token).await?;
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let (mut outgoing, mut incoming) = socket.split();
    // Handlers run on their own tasks (a form may wait for Portcullis); their acknowledgements
    // come back here to be written.
    let (acks, mut ready) = mpsc::channel::<String>(64);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = outgoing.send(Message::Close(None)).await;
                return Ok(Ended::Shutdown);
            }
            Some(ack) = ready.recv() => outgoing.send(Message::text(ack)).await?,
            message = incoming.next() => match message {
                None | Some(Ok(Message::Close(_))) => return Ok(Ended::Reconnect),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Ping(p))) => outgoing.send(Message::Pong(p)).await?,
                Some(Ok(Message::Text(text))) => match read(text.as_str()) {
                    Incoming::Disconnect => return Ok(Ended::Reconnect),
                    Incoming::Hello | Incoming::Unknown => {}
                    Incoming::Envelope(envelope) => {
                        if seen.first_time(&envelope.id) {
                            let edge = Arc::clone(edge);
                            let acks = acks.clone();
                            tokio::spawn(async move {
                                let ack = handle(&edge, &envelope).await;
                                let _ = acks.send(ack.to_string()).await;
                            });
                        } else {
                            outgoing.send(Message::text(json!({"envelope_id": envelope.id}).to_string())).await?;
                        }
                    }
                },
                Some(Ok(_)) => {}
            },
        }
    }
}

/// An envelope: its id, its type and Slack's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub retry_attempt: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Incoming {
    Hello,
    Disconnect,
    Envelope(Envelope),
    Unknown,
}

fn read(text: &str) -> Incoming {
    let Ok(v) = serde_json::from_str::<Value>(text) else { return Incoming::Unknown };
    match (v["type"].as_str(), v["envelope_id"].as_str()) {
        (Some("hello"), _) => Incoming::Hello,
        (Some("disconnect"), _) => Incoming::Disconnect,
        (Some(kind), Some(id)) => Incoming::Envelope(Envelope {
            id: id.to_owned(),
            kind: kind.to_owned(),
            payload: v["payload"].clone(),
            retry_attempt: v["retry_attempt"].as_u64().unwrap_or(0),
        }),
        _ => Incoming::Unknown,
    }
}

/// Handle one envelope as its HTTP route would, and say what to acknowledge it with.
pub async fn handle(edge: &Arc<Edge>, envelope: &Envelope) -> Value {
    let answer = match envelope.kind.as_str() {
        // The same fields a slash command POSTs as a form.
        "slash_commands" => Some(edge.command(&form_body(&envelope.payload)).await),
        // An interaction POSTs `payload=<JSON>`.
        "interactive" => {
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &envelope.payload.to_string())
                .finish();
            Some(edge.interaction(body.as_bytes()).await)
        }
        "events_api" => Some(edge.event(envelope.payload.to_string().as_bytes(), envelope.retry_attempt > 0).await),
        other => {
            tracing::info!(target: "portcullis::slack", kind = other, "Socket Mode: an envelope the edge does not read");
            None
        }
    };
    let mut ack = json!({"envelope_id": envelope.id});
    if let Some(payload) = answer.as_ref().and_then(ack_payload) {
        ack["payload"] = payload;
    }
    ack
}

/// What an HTTP answer acknowledges with: its JSON body when it succeeded and has one (the
/// ephemeral reply, a `response_action`); a refusal is logged by the handler and acknowledged bare.
fn ack_payload(answer: &HttpAnswer) -> Option<Value> {
    if answer.status != 200 || answer.body.is_empty() {
        return None;
    }
    serde_json::from_str::<Value>(&answer.body).ok().filter(|v| v.is_object())
}

/// A slash command's JSON fields as the form Slack would POST.
fn form_body(payload: &Value) -> Vec<u8> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    if let Some(fields) = payload.as_object() {
        for (name, value) in fields {
            match value {
                Value::String(s) => form.append_pair(name, s),
                Value::Null => form.append_pair(name, ""),
                other => form.append_pair(name, &other.to_string()),
            };
        }
    }
    form.finish().into_bytes()
}

/// Envelope ids handled lately.
#[derive(Debug, Default)]
struct Seen(HashMap<String, Instant>);

impl Seen {
    fn first_time(&mut self, id: &str) -> bool {
        let now = Instant::now();
        self.0.retain(|_, at| now.duration_since(*at) < SEEN_FOR);
        self.0.insert(id.to_owned(), now).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_hello_and_disconnect_are_told_apart() {
        assert_eq!(read(r#"{"type":"hello","num_connections":1}"#), Incoming::Hello);
        assert_eq!(read(r#"{"type":"disconnect","reason":"refresh_requested"}"#), Incoming::Disconnect);
        assert_eq!(read("not json"), Incoming::Unknown);
        let Incoming::Envelope(e) =
            read(r#"{"envelope_id":"e-1","type":"slash_commands","payload":{"text":"list"},"retry_attempt":2}"#)
        else {
            panic!("an envelope")
        };
        assert_eq!((e.id.as_str(), e.kind.as_str(), e.retry_attempt), ("e-1", "slash_commands", 2));
    }

    #[test]
    fn a_command_payload_becomes_the_form_slack_would_post() {
        let body =
            form_body(&json!({"team_id": "T1", "text": "request a b=c --reason x&y", "is_enterprise_install": false}));
        let fields: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
        assert_eq!(fields["text"], "request a b=c --reason x&y");
        assert_eq!(fields["team_id"], "T1");
        assert_eq!(fields["is_enterprise_install"], "false");
    }

    #[test]
    fn a_retried_envelope_is_handled_once() {
        let mut seen = Seen::default();
        assert!(seen.first_time("e-1"));
        assert!(!seen.first_time("e-1"));
        assert!(seen.first_time("e-2"));
    }
}
