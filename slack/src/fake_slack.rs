//! A local fake of Slack: its Web API (`chat.postMessage`, `chat.update`, `views.open`,
//! `views.publish`, `views.update`, `users.info`) and `response_url`s, on 127.0.0.1, recording
//! every call; and [`SlackSender`], which posts signed requests to an edge as Slack does. The
//! tests and `make run` point `slack.api_base_url` at [`FakeSlack::api_base_url`].

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
}

/// The fake, running.
#[derive(Debug)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Recorded>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeSlack {
    /// Start on a free loopback port, accepting `bot_token`; `emails`: user id → profile e-mail.
    pub async fn start(bot_token: &str, emails: BTreeMap<String, String>) -> std::io::Result<FakeSlack> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Recorded { calls: Vec::new(), next_ts: 1_795_834_632_000_100 }));
        let shared = Shared { token: bot_token.to_owned(), emails, recorded: recorded.clone() };
        let app =
            Router::new().route("/api/{method}", post(api)).route("/hooks/{*rest}", post(hook)).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeSlack { addr, recorded, server })
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
    let shared = Shared { token: token.to_owned(), emails: BTreeMap::new(), recorded: recorded.clone() };
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
