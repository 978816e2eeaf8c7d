//! A fault-injecting HTTP proxy in front of the emulator, for the fault, load and latency tests.
//!
//! Workers under test are configured with the proxy as their AWS endpoint; the proxy forwards each
//! request to the emulator (rewriting `Host`, so the queue URLs the emulator hands out still name the
//! emulator, as the test's own clients see them) and, on the way:
//!
//! - **identifies every AWS call** as `service:Operation`, the way IAM spells actions: the service
//!   from the SigV4 credential scope, the operation from `X-Amz-Target` (the JSON protocols: SQS,
//!   DynamoDB, EventBridge), the form's `Action` (the query protocol: STS, IAM) or, for REST services
//!   (S3), the HTTP method. Calls are counted per operation and logged with their time;
//! - **delays** each request and each response by a fixed time (a delay line: 15 ms each way is a
//!   30 ms round trip);
//! - **injects faults** by rule ([`FaultRule`]): an operation pattern, the first N matching calls or a
//!   probability, and a fault answered in the error shape of the call's protocol ([`Fault`]), so the
//!   SDK reads it exactly as it would read AWS's own;
//! - **goes down** ([`FaultProxy::go_down`]): the listening socket is closed and every open
//!   connection dropped, so connections are refused, until [`FaultProxy::come_back`] listens on the
//!   same port again.
//!
//! Faulted calls never reach the emulator. Everything runs on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A fault answered instead of forwarding a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling error: `ThrottlingException` (JSON; SQS with its query-compatible
    /// code), `ProvisionedThroughputExceededException` (DynamoDB), `Throttling` (query XML),
    /// `SlowDown` (S3). HTTP 400 (S3: 503).
    Throttle,
    /// HTTP 500 `InternalFailure` (S3: `InternalError`).
    InternalError,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// The caller may not: `AccessDeniedException` (JSON, HTTP 400), `AccessDenied` (query XML and S3,
    /// HTTP 403).
    AccessDenied,
}

/// When a fault is injected: on calls whose operation matches `operation`, for the first `times`
/// matching calls (`None`: every one), each with `probability`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// `service:Operation` (`dynamodb:PutItem`), `service:*` or `*`.
    pub operation: String,
    pub fault: Fault,
    pub times: Option<u64>,
    pub probability: f64,
}

impl FaultRule {
    /// `fault` on every call matching `operation`.
    pub fn always(operation: &str, fault: Fault) -> Self {
        Self { operation: operation.to_owned(), fault, times: None, probability: 1.0 }
    }

    /// `fault` on the first `n` calls matching `operation`.
    pub fn first(n: u64, operation: &str, fault: Fault) -> Self {
        Self { times: Some(n), ..Self::always(operation, fault) }
    }

    /// `fault` on each call matching `operation` with probability `p`.
    pub fn sometimes(p: f64, operation: &str, fault: Fault) -> Self {
        Self { probability: p, ..Self::always(operation, fault) }
    }

    fn matches(&self, operation: &str) -> bool {
        match self.operation.strip_suffix('*') {
            Some(prefix) => operation.starts_with(prefix),
            None => operation == self.operation,
        }
    }
}

/// A rule the proxy holds, and what it did.
#[derive(Debug)]
struct ActiveRule {
    id: u64,
    rule: FaultRule,
    matched: u64,
    injected: u64,
}

/// One call that reached the proxy.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// Since the proxy started.
    pub at: Duration,
    /// `service:Operation`.
    pub operation: String,
    /// The fault answered instead of forwarding, if any.
    pub fault: Option<Fault>,
    /// The request body of a faulted call (to tell which message a retried call was for).
    pub body: Option<Bytes>,
    /// The HTTP status answered (`None`: the connection was dropped first, by an outage).
    pub status: Option<u16>,
}

/// How an AWS call is encoded, which decides the shape of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `awsJson1_0` / `awsJson1_1` (`X-Amz-Target`); `query_compatible` for SQS, whose errors also
    /// carry the query protocol's code in `x-amzn-query-error`.
    Json { query_compatible: bool },
    /// `awsQuery` (a form with `Action`): STS, IAM.
    Query,
    /// REST with XML errors (S3).
    RestXml,
}

/// An identified AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The SigV4 signing name (`dynamodb`, `sqs`, `sts`, `iam`, `events`, `s3`, ...).
    pub service: String,
    pub operation: String,
    pub protocol: Protocol,
}

impl Call {
    /// `service:Operation`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

/// Identify an AWS call from its headers, path and body.
pub fn identify(headers: &hyper::HeaderMap, method: &hyper::Method, body: &[u8]) -> Call {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // `Credential=AKID/20260101/us-east-1/sqs/aws4_request`
    let scope_service =
        header("authorization").split("Credential=").nth(1).and_then(|c| c.split(['/', ',']).nth(3)).map(str::to_owned);
    let target = header("x-amz-target");
    if let Some((prefix, operation)) = target.split_once('.') {
        let service = scope_service.unwrap_or_else(|| match prefix {
            "AmazonSQS" => "sqs".into(),
            "AWSEvents" => "events".into(),
            p if p.starts_with("DynamoDB") => "dynamodb".into(),
            p => p.to_ascii_lowercase(),
        });
        let query_compatible = service == "sqs";
        return Call { service, operation: operation.to_owned(), protocol: Protocol::Json { query_compatible } };
    }
    let form = header("content-type").starts_with("application/x-www-form-urlencoded");
    if form {
        let action = std::str::from_utf8(body)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned);
        if let Some(operation) = action {
            return Call {
                service: scope_service.unwrap_or_else(|| "unknown".into()),
                operation,
                protocol: Protocol::Query,
            };
        }
    }
    Call {
        service: scope_service.unwrap_or_else(|| "unknown".into()),
        operation: method.as_str().to_owned(),
        protocol: Protocol::RestXml,
    }
}

/// The response AWS would give for `fault` on `call`.
pub fn fault_response(call: &Call, fault: Fault) -> Response<Full<Bytes>> {
    let (status, json_type, query_code, rest_code) = match fault {
        Fault::Throttle => (
            StatusCode::BAD_REQUEST,
            if call.service == "dynamodb" {
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            } else {
                "ThrottlingException"
            },
            "Throttling",
            "SlowDown",
        ),
        Fault::InternalError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "InternalFailure", "InternalError")
        }
        Fault::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "ServiceUnavailable", "ServiceUnavailable")
        }
        Fault::AccessDenied => (StatusCode::BAD_REQUEST, "AccessDeniedException", "AccessDenied", "AccessDenied"),
    };
    let message = format!("injected by the test proxy: {fault:?} on {}", call.name());
    let request_id = uuid::Uuid::new_v4().to_string();
    let builder = Response::builder().header("x-amzn-requestid", &request_id);
    match call.protocol {
        Protocol::Json { query_compatible } => {
            let mut builder = builder.status(status).header("content-type", "application/x-amz-json-1.0");
            if query_compatible {
                // SQS: the query protocol's code ("AWS.SimpleQueueService.…" style), `;Sender|Receiver`.
                let code = match fault {
                    Fault::Throttle => "ThrottlingException",
                    Fault::AccessDenied => "AccessDenied",
                    _ => query_code,
                };
                let side = if status.is_server_error() { "Receiver" } else { "Sender" };
                builder = builder.header("x-amzn-query-error", format!("{code};{side}"));
            }
            let body = serde_json::json!({ "__type": json_type, "message": message }).to_string();
            builder.body(Full::new(Bytes::from(body))).unwrap()
        }
        Protocol::Query => {
            let status = if fault == Fault::AccessDenied { StatusCode::FORBIDDEN } else { status };
            let side = if status.is_server_error() { "Receiver" } else { "Sender" };
            let body = format!(
                "<ErrorResponse><Error><Type>{side}</Type><Code>{query_code}</Code><Message>{message}</Message>\
                 </Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            );
            builder.status(status).header("content-type", "text/xml").body(Full::new(Bytes::from(body))).unwrap()
        }
        Protocol::RestXml => {
            let status = match fault {
                Fault::AccessDenied => StatusCode::FORBIDDEN,
                Fault::Throttle => StatusCode::SERVICE_UNAVAILABLE,
                _ => status,
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{rest_code}</Code><Message>{message}</Message>\
                 <RequestId>{request_id}</RequestId></Error>"
            );
            builder.status(status).header("content-type", "application/xml").body(Full::new(Bytes::from(body))).unwrap()
        }
    }
}

/// What the proxy holds between calls.
#[derive(Debug)]
struct State {
    upstream: hyper::Uri,
    started: Instant,
    delay_each_way: Mutex<Duration>,
    rules: Mutex<Vec<ActiveRule>>,
    next_rule: Mutex<u64>,
    log: Mutex<Vec<CallRecord>>,
    /// `true` while the proxy is down.
    down: watch::Sender<bool>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Operations forwarded one at a time (see [`FaultProxy::serialize`]).
    serialized: Mutex<Vec<String>>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl State {
    /// The fault to answer `call` with, if a rule says so: the first matching rule, in the order they
    /// were added, that fires (has calls left and wins its draw) decides.
    fn decide(&self, operation: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        for active in rules.iter_mut().filter(|r| r.rule.matches(operation)) {
            if active.rule.times.is_some_and(|n| active.matched >= n) {
                continue;
            }
            active.matched += 1;
            if active.rule.probability >= 1.0 || rand::random_range(0.0..1.0) < active.rule.probability {
                active.injected += 1;
                return Some(active.rule.fault);
            }
        }
        None
    }
}

/// Identifies a rule added with [`FaultProxy::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(u64);

/// The proxy: forwards to the emulator until dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Listen on a random loopback port and forward to `upstream` (`http://127.0.0.1:port`).
    ///
    /// The proxy runs on a runtime of its own (two threads), so a test that blocks its own thread
    /// (waiting for a process to exit) never stalls the workers' calls.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (down, _) = watch::channel(false);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let client = {
            let _entered = runtime.enter();
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build(connector)
        };
        let state = Arc::new(State {
            upstream: upstream.parse().expect("an upstream URL"),
            started: Instant::now(),
            delay_each_way: Mutex::new(Duration::ZERO),
            rules: Mutex::new(Vec::new()),
            next_rule: Mutex::new(0),
            log: Mutex::new(Vec::new()),
            down,
            client,
            serialized: Mutex::new(Vec::new()),
            one_at_a_time: tokio::sync::Mutex::new(()),
        });
        let shutdown = CancellationToken::new();
        let (serving, stop) = (state.clone(), shutdown.clone());
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("a tokio listener");
            serve(listener, addr, serving, stop).await
        });
        FaultProxy { addr, state, shutdown, runtime: Some(runtime) }
    }

    /// The URL to configure as the AWS endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Delay every request and every response by `each_way` (a round trip costs twice that).
    pub fn set_delay(&self, each_way: Duration) {
        *self.state.delay_each_way.lock().unwrap() = each_way;
    }

    /// Add a fault rule; rules are tried in the order they were added.
    pub fn add(&self, rule: FaultRule) -> RuleId {
        let mut next = self.state.next_rule.lock().unwrap();
        *next += 1;
        self.state.rules.lock().unwrap().push(ActiveRule { id: *next, rule, matched: 0, injected: 0 });
        RuleId(*next)
    }

    /// Forward calls matching `operation` (as in [`FaultRule::operation`]) to the emulator one at a
    /// time. moto's `TransactWriteItems` is not safe under concurrency (its rollback copies the tables
    /// while another request thread uses them, and the call fails with an HTML 500; serialising the
    /// transactions alone is not enough): serialising DynamoDB keeps the emulator's own fault out of
    /// tests about the workers' faults.
    pub fn serialize(&self, operation: &str) {
        self.state.serialized.lock().unwrap().push(operation.to_owned());
    }

    /// Calls the emulator itself answered with a 5xx (not injected).
    pub fn emulator_errors(&self) -> u64 {
        let log = self.state.log.lock().unwrap();
        log.iter().filter(|c| c.fault.is_none() && c.status.is_some_and(|s| s >= 500)).count() as u64
    }

    /// Remove a rule.
    pub fn remove(&self, id: RuleId) {
        self.state.rules.lock().unwrap().retain(|r| r.id != id.0);
    }

    /// Remove every rule.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// How many faults a rule injected so far.
    pub fn injected(&self, id: RuleId) -> u64 {
        self.state.rules.lock().unwrap().iter().find(|r| r.id == id.0).map_or(0, |r| r.injected)
    }

    /// Calls per `service:Operation` so far, faulted ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in self.state.log.lock().unwrap().iter() {
            *out.entry(c.operation.clone()).or_default() += 1;
        }
        out
    }

    /// Calls to `operation` (`service:Operation`) so far.
    pub fn calls_to(&self, operation: &str) -> u64 {
        self.state.log.lock().unwrap().iter().filter(|c| c.operation == operation).count() as u64
    }

    /// Every call so far, in arrival order.
    pub fn log(&self) -> Vec<CallRecord> {
        self.state.log.lock().unwrap().clone()
    }

    /// Time since the proxy started, on the clock of [`CallRecord::at`].
    pub fn now(&self) -> Duration {
        self.state.started.elapsed()
    }

    /// Stop listening and drop every open connection: connections are refused until
    /// [`Self::come_back`].
    pub fn go_down(&self) {
        self.state.down.send_replace(true);
    }

    /// Listen again, on the same port.
    pub fn come_back(&self) {
        self.state.down.send_replace(false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime may block, which an async test's thread must not.
            runtime.shutdown_background();
        }
    }
}

/// Accept connections while up; while down, hold no socket at all.
async fn serve(listener: TcpListener, addr: SocketAddr, state: Arc<State>, shutdown: CancellationToken) {
    let mut listener = Some(listener);
    let mut down = state.down.subscribe();
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => match bind_again(addr, &shutdown).await {
                Some(l) => l,
                None => return,
            },
        };
        // Every connection of this up period ends when the proxy goes down.
        let connections = shutdown.child_token();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = down.wait_for(|d| *d) => {
                    if changed.is_err() { return; }
                    break;
                }
                accepted = current.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let stop = connections.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            _ = conn => {}
                            _ = stop.cancelled() => {}
                        }
                    });
                }
            }
        }
        drop(current);
        connections.cancel();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            up = down.wait_for(|d| !*d) => if up.is_err() { return },
        }
    }
}

/// Bind `addr` again after an outage (the port was ours a moment ago; retry briefly if the kernel
/// still holds it).
async fn bind_again(addr: SocketAddr, shutdown: &CancellationToken) -> Option<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "proxy: port not free yet");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            Err(e) => panic!("the proxy cannot listen on {addr} again: {e}"),
        }
    }
}

/// Hop-by-hop headers a proxy does not forward.
const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"];

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, format!("proxy: unreadable request body: {e}"))),
    };
    let call = identify(&parts.headers, &parts.method, &body);
    let operation = call.name();
    let fault = state.decide(&operation);
    let record =
        CallRecord { at: state.started.elapsed(), operation, fault, body: fault.map(|_| body.clone()), status: None };
    let index = {
        let mut log = state.log.lock().unwrap();
        log.push(record);
        log.len() - 1
    };
    let delay = *state.delay_each_way.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let serialized = {
        let patterns = state.serialized.lock().unwrap();
        patterns.iter().any(|p| FaultRule::always(p, Fault::Throttle).matches(&call.name()))
    };
    let response = match fault {
        Some(fault) => fault_response(&call, fault),
        None if serialized => {
            let _turn = state.one_at_a_time.lock().await;
            forward(&state, parts, body).await
        }
        None => forward(&state, parts, body).await,
    };
    if let Some(record) = state.log.lock().unwrap().get_mut(index) {
        record.status = Some(response.status().as_u16());
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(response)
}

async fn forward(state: &State, parts: hyper::http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = state.upstream.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
    let uri: hyper::Uri = format!("http://{authority}{path}").parse().unwrap();
    let mut upstream = Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        if name == hyper::header::HOST || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        upstream = upstream.header(name, value);
    }
    upstream = upstream.header(hyper::header::HOST, authority.as_str());
    let upstream = upstream.body(Full::new(body)).unwrap();
    let response = match state.client.request(upstream).await {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("proxy: the emulator did not answer: {e}")),
    };
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("proxy: the emulator's answer broke off: {e}")),
    };
    let mut out = Response::builder().status(parts.status);
    for (name, value) in &parts.headers {
        if HOP_BY_HOP.contains(&name.as_str()) || name == hyper::header::CONTENT_LENGTH {
            continue;
        }
        out = out.header(name, value);
    }
    out.body(Full::new(body)).unwrap()
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(HeaderName::from_static("content-type"), HeaderValue::from_static("text/plain"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::SdkConfig;
    use aws_config::retry::RetryConfig;
    use portcullis_runtime::aws::{FailureKind, classify};

    /// An upstream that answers every request with 200 and `{}` (enough for the calls below).
    async fn upstream() -> (String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a.unwrap(),
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let host = req.headers().get("host").cloned();
                        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
                        r.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
                        if let Some(h) = host {
                            r.headers_mut().insert("x-seen-host", h);
                        }
                        Ok::<_, Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), stop)
    }

    /// SDK configuration for `endpoint` with no SDK retries: each call is one attempt.
    async fn sdk(endpoint: &str) -> SdkConfig {
        let base = crate::sdk_config(endpoint).await;
        base.to_builder().retry_config(RetryConfig::disabled()).build()
    }

    #[tokio::test]
    async fn each_protocol_s_injected_faults_read_as_aws_s_own() {
        let (up, _stop) = upstream().await;
        let proxy = FaultProxy::start(&up).await;
        let sdk = sdk(&proxy.endpoint()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sts = aws_sdk_sts::Client::new(&sdk);
        let iam = aws_sdk_iam::Client::new(&sdk);

        proxy.add(FaultRule::first(1, "dynamodb:GetItem", Fault::Throttle));
        let e = dynamodb.get_item().table_name("t").key("pk", ddb_s("a")).send().await.unwrap_err();
        let f = classify(&e);
        assert_eq!(
            (f.kind, f.code.as_deref()),
            (FailureKind::Throttled, Some("ProvisionedThroughputExceededException"))
        );
        // The rule was for one call: the next goes through.
        dynamodb.get_item().table_name("t").key("pk", ddb_s("a")).send().await.unwrap();

        proxy.add(FaultRule::first(1, "sqs:SendMessage", Fault::Throttle));
        let e = sqs.send_message().queue_url("http://x/123456789012/q").message_body("b").send().await.unwrap_err();
        assert_eq!(classify(&e).kind, FailureKind::Throttled, "{e:?}");

        proxy.add(FaultRule::first(1, "sts:AssumeRole", Fault::Throttle));
        let e = sts.assume_role().role_arn("arn:aws:iam::123456789012:role/r").role_session_name("s").send().await;
        let f = classify(&e.unwrap_err());
        assert_eq!((f.kind, f.code.as_deref()), (FailureKind::Throttled, Some("Throttling")));

        proxy.add(FaultRule::first(1, "iam:PutRolePolicy", Fault::AccessDenied));
        let e = iam.put_role_policy().role_name("r").policy_name("p").policy_document("{}").send().await;
        let f = classify(&e.unwrap_err());
        assert_eq!((f.kind, f.code.as_deref()), (FailureKind::AccessDenied, Some("AccessDenied")));

        proxy.add(FaultRule::first(1, "dynamodb:PutItem", Fault::AccessDenied));
        let e = dynamodb.put_item().table_name("t").item("pk", ddb_s("a")).send().await.unwrap_err();
        let f = classify(&e);
        assert_eq!((f.kind, f.code.as_deref()), (FailureKind::AccessDenied, Some("AccessDeniedException")));

        for fault in [Fault::InternalError, Fault::Unavailable] {
            proxy.add(FaultRule::first(1, "dynamodb:*", fault));
            let e = dynamodb.get_item().table_name("t").key("pk", ddb_s("a")).send().await.unwrap_err();
            assert_eq!(classify(&e).kind, FailureKind::Transient, "{fault:?}");
            let status = e.raw_response().map(|r| r.status().as_u16());
            assert_eq!(status, Some(if fault == Fault::InternalError { 500 } else { 503 }));
        }

        let calls = proxy.calls();
        assert_eq!(calls["dynamodb:GetItem"], 4);
        assert_eq!(
            (calls["sqs:SendMessage"], calls["sts:AssumeRole"], calls["iam:PutRolePolicy"]),
            (1, 1, 1),
            "{calls:?}"
        );
        let faulted = proxy.log().iter().filter(|c| c.fault.is_some()).count();
        assert_eq!(faulted, 7);
    }

    #[tokio::test]
    async fn forwards_with_the_emulator_s_host_and_a_probability_decides_per_call() {
        let (up, _stop) = upstream().await;
        let proxy = FaultProxy::start(&up).await;
        let sdk = sdk(&proxy.endpoint()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let out = dynamodb.get_item().table_name("t").key("pk", ddb_s("a")).send().await.unwrap();
        assert!(out.item.is_none());
        // The emulator sees its own address, so the queue URLs it makes name it.
        let raw = reqwest::get(format!("{}/", proxy.endpoint())).await.unwrap();
        assert_eq!(raw.headers()["x-seen-host"], up.trim_start_matches("http://"));

        let rule = proxy.add(FaultRule::sometimes(0.5, "dynamodb:*", Fault::Unavailable));
        let mut failed = 0;
        for _ in 0..200 {
            if dynamodb.get_item().table_name("t").key("pk", ddb_s("a")).send().await.is_err() {
                failed += 1;
            }
        }
        assert_eq!(proxy.injected(rule), failed);
        assert!((60..=140).contains(&failed), "{failed} of 200 at p = 0.5");
    }

    #[tokio::test]
    async fn the_delay_line_and_an_outage() {
        let (up, _stop) = upstream().await;
        let proxy = FaultProxy::start(&up).await;
        let sdk = sdk(&proxy.endpoint()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let get = || dynamodb.get_item().table_name("t").key("pk", ddb_s("a")).send();
        get().await.unwrap();

        proxy.set_delay(Duration::from_millis(15));
        let started = Instant::now();
        for _ in 0..5 {
            get().await.unwrap();
        }
        let per_call = started.elapsed() / 5;
        assert!(per_call >= Duration::from_millis(30), "a 30 ms round trip: {per_call:?}");
        proxy.set_delay(Duration::ZERO);

        proxy.go_down();
        // Refused: nothing listens. (The open pooled connection is dropped too.)
        let refused = crate::eventually(Duration::from_secs(5), "the proxy refuses connections", || async {
            std::net::TcpStream::connect(proxy.addr).is_err().then_some(())
        });
        refused.await;
        let e = get().await.unwrap_err();
        assert_eq!(classify(&e).kind, FailureKind::Transient, "{e:?}");
        let before = proxy.calls_to("dynamodb:GetItem");
        proxy.come_back();
        crate::eventually(Duration::from_secs(5), "the proxy answers again", || async { get().await.ok() }).await;
        assert_eq!(proxy.calls_to("dynamodb:GetItem"), before + 1, "refused calls never reached the proxy");
    }

    fn ddb_s(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
        aws_sdk_dynamodb::types::AttributeValue::S(v.into())
    }
}
