//! A local fake of Slack: its Web API (`chat.postMessage`, `chat.update`, `views.open`,
//! `views.publish`, `views.update`, `users.info`, `apps.connections.open`) and `response_url`s, on
//! 127.0.0.1, recording every call; Socket Mode's WebSocket (envelopes pushed to the connected
//! edge, its acknowledgements recorded); and [`SlackSender`], which posts signed requests to an
//! edge as Slack does. The tests and `make run` point `slack.api_base_url` at
//! [`FakeSlack::api_base_url`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::fixtures::signature_headers;

/// One call Slack received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `chat.postMessage`, …, or `response_url`.
    pub method: String,
    pub body: Value,
    /// Whether the right bot token came with it.
    pub authorized: bool,
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<Call>,
    next_ts: u64,
}

#[derive(Debug, Clone)]
struct Shared {
    token: String,
    emails: BTreeMap<String, String>,
    recorded: Arc<Mutex<Recorded>>,
    /// Socket Mode: the app-level token `apps.connections.open` accepts, and the WebSocket URL it
    /// answers with.
    socket: Option<(String, String)>,
}

/// Socket Mode's side of the fake: the connected edge, and what it acknowledged.
#[derive(Debug, Default)]
struct Hub {
    to_edge: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    connections: u32,
    acks: Vec<Value>,
}

/// The fake, running.
#[derive(Debug)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Recorded>>,
    hub: Arc<Mutex<Hub>>,
    server: tokio::task::JoinHandle<()>,
    sockets: Option<tokio::task::JoinHandle<()>>,
}

impl FakeSlack {
    /// Start on a free loopback port, accepting `bot_token`; `emails`: user id → profile e-mail.
    pub async fn start(bot_token: &str, emails: BTreeMap<String, String>) -> std::io::Result<FakeSlack> {
        Self::start_with_socket(bot_token, emails, None).await
    }

    /// [`FakeSlack::start`], and with `app_token` Socket Mode too: `apps.connections.open` with that
    /// token answers with the URL of a WebSocket on another loopback port.
    pub async fn start_with_socket(
        bot_token: &str,
        emails: BTreeMap<String, String>,
        app_token: Option<&str>,
    ) -> std::io::Result<FakeSlack> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Recorded { calls: Vec::new(), next_ts: 1_795_834_632_000_100 }));
        let hub = Arc::new(Mutex::new(Hub::default()));
        let (socket, sockets) = match app_token {
            Some(token) => {
                let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!("ws://{}/link/?ticket=fake", ws.local_addr()?);
                (Some((token.to_owned(), url)), Some(tokio::spawn(serve_sockets(ws, hub.clone()))))
            }
            None => (None, None),
        };
        let shared = Shared { token: bot_token.to_owned(), emails, recorded: recorded.clone(), socket };
        let app =
            Router::new().route("/api/{method}", post(api)).route("/hooks/{*rest}", post(hook)).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeSlack { addr, recorded, hub, server, sockets })
    }

    /// Wait until the edge has opened `n` Socket Mode connections in all.
    pub async fn wait_socket_connections(&self, n: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.hub.lock().is_ok_and(|h| h.connections >= n && h.to_edge.is_some()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Send the connected edge an envelope (`slash_commands`, `interactive`, `events_api`) as
    /// Slack does; whether one was connected.
    pub fn push_envelope(&self, envelope_id: &str, kind: &str, payload: Value, retry_attempt: u32) -> bool {
        let envelope = json!({
            "envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api", "retry_attempt": retry_attempt,
        });
        self.send_to_edge(envelope.to_string())
    }

    /// Ask the edge to reconnect, as Slack does every few hours.
    pub fn ask_to_reconnect(&self) -> bool {
        self.send_to_edge(json!({"type": "disconnect", "reason": "refresh_requested"}).to_string())
    }

    fn send_to_edge(&self, text: String) -> bool {
        let sender = self.hub.lock().ok().and_then(|h| h.to_edge.clone());
        sender.is_some_and(|s| s.send(text).is_ok())
    }

    /// Every acknowledgement of `envelope_id` so far, after waiting for the first.
    pub async fn wait_acks(&self, envelope_id: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let acks: Vec<Value> = self
                .hub
                .lock()
                .map(|h| h.acks.iter().filter(|a| a["envelope_id"] == envelope_id).cloned().collect())
                .unwrap_or_default();
            if !acks.is_empty() || Instant::now() >= deadline {
                return acks;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `slack.api_base_url`.
    pub fn api_base_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    /// The `response_url` prefix.
    pub fn hooks_url(&self) -> String {
        format!("{}/hooks/", self.base_url())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.recorded.lock().map(|r| r.calls.clone()).unwrap_or_default()
    }

    /// Calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Wait (polling, with a deadline) until a call of `method` satisfies `check`.
    pub async fn wait_for(&self, method: &str, timeout: Duration, check: impl Fn(&Call) -> bool) -> Option<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.calls_of(method).into_iter().find(|c| check(c)) {
                return Some(c);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(s) = &self.sockets {
            s.abort();
        }
    }
}

/// Accept the edge's Socket Mode connections: `hello` first, then whatever the test pushes; every
/// text the edge sends back is recorded as an acknowledgement. A new connection replaces the old.
async fn serve_sockets(listener: tokio::net::TcpListener, hub: Arc<Mutex<Hub>>) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    while let Ok((stream, _)) = listener.accept().await {
        let Ok(socket) = tokio_tungstenite::accept_async(stream).await else { continue };
        let (mut outgoing, mut incoming) = socket.split();
        let (to_edge, mut queued) = tokio::sync::mpsc::unbounded_channel::<String>();
        if let Ok(mut h) = hub.lock() {
            h.connections += 1;
            h.to_edge = Some(to_edge);
        }
        let hello = json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": crate::fixtures::APP}});
        if outgoing.send(Message::text(hello.to_string())).await.is_err() {
            continue;
        }
        tokio::spawn(async move {
            while let Some(text) = queued.recv().await {
                if outgoing.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
        });
        let hub = hub.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = incoming.next().await {
                if let Message::Text(text) = message
                    && let Ok(ack) = serde_json::from_str::<Value>(text.as_str())
                    && let Ok(mut h) = hub.lock()
                {
                    h.acks.push(ack);
                }
            }
        });
    }
}

fn record(shared: &Shared, method: &str, body: Value, authorized: bool) -> u64 {
    let mut r = match shared.recorded.lock() {
        Ok(r) => r,
        Err(p) => p.into_inner(),
    };
    r.next_ts += 1;
    r.calls.push(Call { method: method.to_owned(), body, authorized });
    r.next_ts
}

async fn api(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if method == "apps.connections.open" {
        let open = shared.socket.as_ref().filter(|(token, _)| bearer == Some(token.as_str()));
        record(&shared, &method, body, open.is_some());
        return Json(match open {
            Some((_, url)) => json!({"ok": true, "url": url}),
            None => json!({"ok": false, "error": "invalid_auth"}),
        });
    }
    let authorized = bearer == Some(shared.token.as_str());
    let n = record(&shared, &method, body.clone(), authorized);
    if !authorized {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let ts = format!("{}.{:06}", n / 1_000_000, n % 1_000_000);
    Json(match method.as_str() {
        "chat.postMessage" => json!({"ok": true, "channel": body["channel"], "ts": ts, "message": {"ts": ts}}),
        "chat.update" => json!({"ok": true, "channel": body["channel"], "ts": body["ts"]}),
        "views.open" | "views.publish" | "views.update" => json!({"ok": true, "view": {"id": format!("V{n}")}}),
        "users.info" => {
            let user = body["user"].as_str().unwrap_or_default();
            match shared.emails.get(user) {
                Some(email) => json!({"ok": true, "user": {"id": user, "profile": {"email": email}}}),
                None => json!({"ok": true, "user": {"id": user, "profile": {}}}),
            }
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    })
}

async fn hook(State(shared): State<Shared>, Path(rest): Path<String>, Json(mut body): Json<Value>) -> &'static str {
    body["_hook"] = json!(rest);
    record(&shared, "response_url", body, true);
    "ok"
}

/// Posts to an edge as Slack does: signed with the app's signing secret.
#[derive(Debug, Clone)]
pub struct SlackSender {
    pub edge_url: String,
    secret: String,
    http: reqwest::Client,
}

/// What the edge answered.
#[derive(Debug, Clone)]
pub struct Answered {
    pub status: u16,
    pub body: String,
}

impl Answered {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl SlackSender {
    pub fn new(edge_url: impl Into<String>, signing_secret: impl Into<String>) -> Self {
        SlackSender { edge_url: edge_url.into(), secret: signing_secret.into(), http: reqwest::Client::new() }
    }

    /// POST `body` to `path`, signed at `timestamp` (now unless given), with extra headers.
    pub async fn post_at(&self, path: &str, body: Vec<u8>, timestamp: Option<i64>, extra: &[(&str, &str)]) -> Answered {
        let ts = timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp());
        let content_type =
            if path.ends_with("/events") { "application/json" } else { "application/x-www-form-urlencoded" };
        let mut request = self.http.post(format!("{}{path}", self.edge_url)).header("content-type", content_type);
        for (k, v) in signature_headers(&self.secret, ts, &body) {
            request = request.header(k, v);
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        match request.body(body).send().await {
            Ok(r) => Answered { status: r.status().as_u16(), body: r.text().await.unwrap_or_default() },
            Err(e) => Answered { status: 0, body: e.to_string() },
        }
    }

    pub async fn post(&self, path: &str, body: Vec<u8>) -> Answered {
        self.post_at(path, body, None, &[]).await
    }
}

/// Run the fake on 127.0.0.1:`port` until killed, printing each call as one JSON line.
pub async fn serve_printing(port: u16, token: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let recorded = Arc::new(Mutex::new(Recorded { calls: Vec::new(), next_ts: 1_795_834_632_000_100 }));
    let shared = Shared { token: token.to_owned(), emails: BTreeMap::new(), recorded: recorded.clone(), socket: None };
    let app = Router::new().route("/api/{method}", post(api)).route("/hooks/{*rest}", post(hook)).with_state(shared);
    let printer = tokio::spawn(async move {
        let mut seen = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let calls = recorded.lock().map(|r| r.calls.clone()).unwrap_or_default();
            for c in &calls[seen..] {
                println!("{}", json!({"method": c.method, "body": c.body}));
            }
            seen = calls.len();
        }
    });
    axum::serve(listener, app).await?;
    printer.abort();
    Ok(())
}

/// Fill, sign and post a fixture to an edge (the path from its name: `command_*` to
/// `/slack/commands`, `*_opened.json` to `/slack/events`, other JSON to `/slack/interactions`).
pub async fn send_fixture(edge: &str, secret: &str, fixture: &str, vars: &[String]) -> anyhow::Result<String> {
    let pairs: Vec<(&str, &str)> = vars.iter().filter_map(|v| v.split_once('=')).collect();
    let (path, body) = if fixture.starts_with("command_") {
        ("/slack/commands", crate::fixtures::command(fixture, &pairs))
    } else if fixture.ends_with("_opened.json") {
        ("/slack/events", crate::fixtures::event(fixture, &pairs))
    } else {
        ("/slack/interactions", crate::fixtures::interaction(fixture, &pairs))
    };
    let answered = SlackSender::new(edge, secret).post(path, body).await;
    Ok(format!("{} {}", answered.status, answered.body))
}
