//! Access worker benchmark (`make bench-access`).
//!
//! Starts a private moto_server, deploys the stack, puts the example templates and runs one access
//! worker in-process whose every AWS client counts its calls ([`ApiCallCounter`]). Then:
//!
//! - **grant requests**: one requester puts N `grant.request` messages on the access queue as fast as
//!   it can (`SendMessageBatch`, several batches in flight) and waits for the N replies: throughput
//!   from the first send to the last reply, AWS calls per message by operation, and checks that
//!   every reply is ok, answers one request, and that exactly N grants exist.
//! - **the floor**, in the same run, on the same emulator, with the same SDK and the worker's
//!   concurrency: N messages pre-filled on a queue of their own, read by a minimal loop doing only
//!   the unavoidable work per request: `ReceiveMessage` (10 at a time), one `TransactWriteItems`
//!   (grant, grant index and request record: the worker's three items, of similar sizes), one
//!   `SendMessage` reply, and one `DeleteMessageBatch` per batch.
//! - **credentials latency**: M `credentials.request` one at a time (request sent to reply opened),
//!   beside a floor round trip (send, receive, `AssumeRole`, reply, receive).
//! - **four workers**: the N grant requests again, on a new emulator and stack, through four access
//!   workers in this process (each its own clients, handler and consumer loop, as four processes
//!   would have), beside a floor of four floor loops on one queue.
//!
//! On moto, `TransactWriteItems` deep-copies the table once per item it writes, so a write costs in
//! proportion to the table's size: the credentials and revocation runs (few writes) come before the
//! grant runs, each floor writes to a fresh table of its own, and the stacks keep the stack's
//! redrive count (5) rather than the tests' 3, as moto's occasional 500 under concurrent
//! transactions is retried.
//! - **revocation latency**: 2R users, each with a grant, offboarded one at a time (`user.offboarded`
//!   on the directory queue, the directory worker running in-process): for R, from the event sent
//!   until the broker role's revocation policy denies the user (`GetRolePolicy` polled); for the
//!   other R, until a `credentials.request` (sent one after the other meanwhile) is refused. The
//!   floor: the message received and one `PutRolePolicy` of a deny statement, observed the same way.
//! - **worker memory**: the shipped worker main (`worker-under-test`, built beside this binary) as
//!   its own process on an emulator of its own, behind the pass-through proxy ([`fleet::Fleet`]):
//!   `VmRSS` and `VmHWM` idle (polling), and the peak (`VmHWM`) after N grant requests.
//!
//! Prints one table (each figure beside its floor and the target of issue 17) and writes the
//! figures as JSON under `bench/results/access-<unix time>.json`. `--requests N` (or
//! `BENCH_REQUESTS`, default 200), `--credentials M` (or `BENCH_CREDENTIALS`, default 500; 0 skips
//! the latency run), `--revocations R` (or `BENCH_REVOCATIONS`, default 25; 0 skips) and
//! `--memory-requests L` (or `BENCH_MEMORY_REQUESTS`, default 200: the peak comes within the first
//! batches; 0 skips). Exits non-zero when a check fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use futures::StreamExt;
use portcullis_access::adapters::DynamoStore;
use portcullis_access::ports::AccessStore;
use portcullis_tests::bench::{mib, ms, p50_p99_json, percentile, proc_status_kib, write_results};
use portcullis_tests::fleet::Fleet;
use portcullis_tests::portcullis_domain::messages::{Kind, Reply, ReplyOutcome};
use portcullis_tests::portcullis_domain::revocation::POLICY_NAME;
use portcullis_tests::portcullis_domain::session::sts_name_for;
use portcullis_tests::portcullis_runtime::aws::ApiCallCounter;
use portcullis_tests::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// 200: on moto a grant costs in proportion to the table's size (see `main`), so longer runs measure
/// moto's copying more than the worker.
const DEFAULT_REQUESTS: usize = 200;
const DEFAULT_CREDENTIALS: usize = 500;
const DEFAULT_REVOCATIONS: usize = 25;
const DEFAULT_MEMORY_REQUESTS: usize = 200;
/// The access workers of the second throughput run.
const WORKERS: usize = 4;
/// SQS takes at most ten messages per receive, send batch and delete batch.
const BATCH: usize = 10;
/// Send batches in flight at once from the requester.
const SENDERS: usize = 8;
/// Give up when no reply has come for this long.
const QUIET: Duration = Duration::from_secs(60);
/// How long one revocation may take to show before it counts as failed.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the broker role's policy is read while waiting for a deny.
const POLL: Duration = Duration::from_millis(20);
/// The floor's inline policy on the broker role (beside the worker's `PortcullisRevocations`).
const FLOOR_POLICY: &str = "BenchFloorRevocations";

#[tokio::main]
async fn main() {
    let Counts { requests, credentials, revocations, memory_requests } = args();
    let mut problems = Vec::new();
    // moto's TransactWriteItems deep-copies the table once per item, so on moto a write costs in
    // proportion to the table's size: each run below starts on a stack of its own (and each floor on a
    // fresh table), so that no run pays for another's writes.
    // The latency runs, with the directory worker running too (for the revocations).
    let mut app = bench_app().await;
    app.start_directory();
    let worker_calls = counted_worker(&mut app).await;
    let concurrency = app.settings.worker.concurrency;
    let wait_seconds = app.settings.worker.wait_seconds;
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let emulator = match app.stack.moto.kind() {
        EmulatorKind::Moto => "moto",
        EmulatorKind::LocalStack => "localstack",
    };
    let latency = if credentials > 0 {
        eprintln!("credentials: {credentials} credentials.request, one at a time ...");
        Some(credentials_latency(&app, credentials, &worker_calls, &mut problems).await)
    } else {
        None
    };
    let revocation = if revocations > 0 {
        eprintln!("revocation: {revocations} + {revocations} users offboarded, one at a time ...");
        Some(revocation_latency(&app, revocations, &mut problems).await)
    } else {
        None
    };
    app.stop_worker().await;
    drop(app);

    eprintln!("worker: {requests} grant.request (a new emulator) ...");
    let mut app = bench_app().await;
    let worker_calls = counted_worker(&mut app).await;
    let worker = grant_requests(&app, requests, "bench", &worker_calls, &mut problems).await;
    eprintln!("floor: {requests} messages ...");
    let floor = floor_grants(&app, requests, &worker.sample, 1, &mut problems).await;
    app.stop_worker().await;
    drop(app);

    eprintln!("{WORKERS} workers: {requests} grant.request (a new emulator), then the floor with {WORKERS} loops ...");
    let mut app = bench_app().await;
    app.stop_worker().await;
    let (workers4, floor4) = four_workers(&app, requests, &worker.sample, &mut problems).await;
    // The worker process gets an emulator of its own.
    drop(app);
    let memory = if memory_requests > 0 {
        eprintln!("memory: one worker process, idle, then {memory_requests} grant.request ...");
        worker_memory(memory_requests, &mut problems).await
    } else {
        None
    };

    let figures = Figures {
        requests,
        credentials,
        concurrency,
        wait_seconds,
        profile,
        emulator,
        worker: &worker,
        floor: &floor,
        latency: &latency,
        workers4: &workers4,
        floor4: &floor4,
        revocation: &revocation,
        memory: &memory,
    };
    println!("{}", table(&figures));
    let path = write_results(
        "access",
        &json!({
            "benchmark": "access",
            "unix_time": bench::unix_time(),
            "profile": profile,
            "emulator": emulator,
            "requests": requests,
            "credentials_requests": credentials,
            "worker_concurrency": concurrency,
            "worker_wait_seconds": wait_seconds,
            "grant_request": {
                "worker": worker.figures(),
                "floor": floor.figures(),
                "ratio_worker_to_floor": worker.per_second() / floor.per_second(),
                "grants_found": worker.grants_found,
            },
            "credentials": latency.as_ref().map(Latency::figures),
            "grant_request_four_workers": {
                "workers": format!("{WORKERS} in-process access workers (consumers), one process"),
                "worker": workers4.figures(),
                "floor": floor4.figures(),
                "floor_loops": WORKERS,
                "ratio_worker_to_floor": workers4.per_second() / floor4.per_second(),
                "grants_found": workers4.grants_found,
            },
            "revocation": revocation.as_ref().map(Revocations::figures),
            "worker_memory": memory.as_ref().map(Memory::figures),
            "problems": problems,
        }),
    );
    println!("figures written to {}", path.display());
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("CHECK FAILED: {p}");
        }
        std::process::exit(1);
    }
}

/// How many of each the run sends.
#[derive(Debug)]
struct Counts {
    requests: usize,
    credentials: usize,
    revocations: usize,
    memory_requests: usize,
}

/// The stack's default redrive count (`MaxReceiveCount` in infra/cloudformation/portcullis.yaml): a
/// message moto answers with a 500 a few times in a row is retried as it would be in a deployment.
const STACK_MAX_RECEIVE_COUNT: u32 = 5;

/// A stack (the stack's redrive count) with the access worker running and the example templates put;
/// every message comes from moto's one sender id, and that producer may send every kind.
async fn bench_app() -> TestApp {
    let app = spawn_app_on(TestStack::deploy_with("", &trusted_everything(), STACK_MAX_RECEIVE_COUNT).await).await;
    app.put_example_templates().await;
    app
}

/// Restart `app`'s access worker with its AWS clients counting (the templates' puts and the start-up
/// calls are not the benchmark's); returns the counter once the worker polls.
async fn counted_worker(app: &mut TestApp) -> ApiCallCounter {
    app.stop_worker().await;
    let calls = ApiCallCounter::new();
    app.start_worker_counted(Some(calls.clone()));
    eventually(Duration::from_secs(30), "the worker polls its queue", || async {
        calls.snapshot().contains_key("SQS.ReceiveMessage").then_some(())
    })
    .await;
    calls
}

/// `--requests N` / `BENCH_REQUESTS`, `--credentials M` / `BENCH_CREDENTIALS`, `--revocations R` /
/// `BENCH_REVOCATIONS` and `--memory-requests L` / `BENCH_MEMORY_REQUESTS`.
fn args() -> Counts {
    use portcullis_tests::bench::count_from_env;
    let mut requests = count_from_env("BENCH_REQUESTS", DEFAULT_REQUESTS);
    let mut credentials = count_from_env("BENCH_CREDENTIALS", DEFAULT_CREDENTIALS);
    let mut revocations = count_from_env("BENCH_REVOCATIONS", DEFAULT_REVOCATIONS);
    let mut memory_requests = count_from_env("BENCH_MEMORY_REQUESTS", DEFAULT_MEMORY_REQUESTS);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            let v = args.next().unwrap_or_else(|| panic!("{name} needs a count"));
            v.parse::<usize>().unwrap_or_else(|_| panic!("{name} {v}: not a count"))
        };
        match arg.as_str() {
            "--requests" => requests = value("--requests"),
            "--credentials" => credentials = value("--credentials"),
            "--revocations" => revocations = value("--revocations"),
            "--memory-requests" => memory_requests = value("--memory-requests"),
            other => panic!(
                "unknown argument {other}: expected --requests N, --credentials M, --revocations R or \
                 --memory-requests L"
            ),
        }
    }
    assert!(requests > 0, "--requests must be at least 1");
    Counts { requests, credentials, revocations, memory_requests }
}

/// One run of N messages: the worker's or the floor's.
#[derive(Debug, Default)]
struct Run {
    messages: usize,
    wall: Duration,
    /// Calls per `Service.Operation` during the run.
    calls: BTreeMap<String, u64>,
    /// Messages the consumer took per `ReceiveMessage` that returned any (`None`: not measured).
    received_per_nonempty_receive: Option<f64>,
    /// One ok reply's grant and the reply's text (sizes for the floor's items).
    sample: Sample,
    grants_found: usize,
    /// Replies beyond the first to one request.
    repeated_replies: usize,
}

#[derive(Debug, Default, Clone)]
struct Sample {
    grant: String,
    reply: String,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64()
    }
    fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
    fn per_message(&self, op: &str) -> f64 {
        self.calls.get(op).copied().unwrap_or(0) as f64 / self.messages as f64
    }
    /// Messages per call of `op`: how well a batch call is filled.
    fn messages_per(&self, op: &str) -> f64 {
        let calls = self.calls.get(op).copied().unwrap_or(0);
        if calls == 0 { 0.0 } else { self.messages as f64 / calls as f64 }
    }
    fn figures(&self) -> Value {
        json!({
            "messages": self.messages,
            "wall_seconds": self.wall.as_secs_f64(),
            "messages_per_second": self.per_second(),
            "calls_total": self.total_calls(),
            "calls_per_message": self.total_calls() as f64 / self.messages as f64,
            "calls_by_operation": self.calls,
            "messages_per_receive": self.messages_per("SQS.ReceiveMessage"),
            "messages_per_nonempty_receive": self.received_per_nonempty_receive,
            "messages_per_delete_batch": self.messages_per("SQS.DeleteMessageBatch"),
            "repeated_replies": self.repeated_replies,
        })
    }
}

/// N `grant.request` from one `requester` through the running worker(s).
async fn grant_requests(
    app: &TestApp,
    n: usize,
    requester: &str,
    counter: &ApiCallCounter,
    problems: &mut Vec<String>,
) -> Run {
    let token = app.token(requester, Some("platform"), &[]);
    let envelopes: Vec<_> = (0..n)
        .map(|i| {
            app.client.envelope(
                Kind::GrantRequest,
                json!({"template": "bucketRead", "params": {"bucketName": format!("bench-{i:05}")},
                       "account": ACCOUNT, "ttl": 3600, "reason": "benchmark"}),
                Some(&token),
            )
        })
        .collect();
    let ids: BTreeSet<String> = envelopes.iter().map(|e| e.message_id.as_str().to_owned()).collect();
    let bodies: Vec<String> = envelopes.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let sqs = app.sqs();

    counter.reset();
    let started = Instant::now();
    let collector = tokio::spawn(collect_replies(sqs.clone(), app.client.reply_queue_url().to_owned(), ids.clone()));
    send_all(&sqs, app.client.request_queue_url(), &bodies).await;
    let sent = started.elapsed();
    let (replies, last) = collector.await.unwrap();
    let calls = counter.snapshot();
    let wall = last.map_or(started.elapsed(), |t| t.duration_since(started));
    eprintln!("  sent in {:.2} s, {} replies in {:.2} s", sent.as_secs_f64(), replies.len(), wall.as_secs_f64());

    let mut answered = BTreeMap::<String, usize>::new();
    let mut grant_ids = BTreeSet::new();
    let mut sample = Sample::default();
    let mut user = None;
    for text in &replies {
        let reply: Reply<Value> = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("unreadable reply ({e}): {text:.200}"));
                continue;
            }
        };
        let to = reply.in_reply_to.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default();
        *answered.entry(to).or_default() += 1;
        match reply.outcome {
            ReplyOutcome::Ok { result } => {
                let grant = &result["grant"];
                grant_ids.insert(grant["id"].as_str().unwrap_or_default().to_owned());
                user = grant["user"].as_str().map(str::to_owned);
                if sample.grant.is_empty() {
                    sample = Sample { grant: grant.to_string(), reply: text.clone() };
                }
            }
            ReplyOutcome::Error { error } => {
                problems.push(format!("grant.request refused: {}: {}", error.code, error.message))
            }
        }
    }
    let unanswered = ids.iter().filter(|id| !answered.contains_key(*id)).count();
    // A request handled again (its first attempt failed after replying) is answered again, with the
    // same grant: counted, not a failure. Two grants for one request would show below.
    let repeated_replies = answered.values().map(|c| c - 1).sum();
    let strangers = answered.keys().filter(|id| !ids.contains(*id)).count();
    if unanswered + strangers > 0 {
        problems.push(format!("replies: {unanswered} requests unanswered, {strangers} replies to unknown requests"));
    }
    if grant_ids.len() != n {
        problems.push(format!("{} distinct grant ids in the replies, expected {n}", grant_ids.len()));
    }
    // The store itself: exactly N live grants for the requester.
    let store = DynamoStore::new(app.dynamodb(), app.names.table());
    let grants_found = match user {
        Some(user) => store.live_grants(&user, None, chrono::Utc::now()).await.unwrap().len(),
        None => 0,
    };
    if grants_found != n {
        problems.push(format!("{grants_found} live grants in the table, expected {n}"));
    }
    Run { messages: n, wall, calls, received_per_nonempty_receive: None, sample, grants_found, repeated_replies }
}

/// Put `bodies` on `queue_url`, ten per `SendMessageBatch`, [`SENDERS`] batches in flight.
async fn send_all(sqs: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) {
    futures::stream::iter(bodies.chunks(BATCH))
        .map(|chunk| async move {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().unwrap()
                })
                .collect();
            let out = sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await.unwrap();
            assert!(out.failed.is_empty(), "SendMessageBatch failed entries: {:?}", out.failed);
        })
        .buffer_unordered(SENDERS)
        .collect::<Vec<()>>()
        .await;
}

/// Receive (and delete) replies from `url` until every request of `ids` has one or none came for
/// [`QUIET`]: their texts (a request handled again after a retry is answered again: repeats
/// included; replies to other requests too) and when the last arrived.
async fn collect_replies(
    sqs: aws_sdk_sqs::Client,
    url: String,
    ids: BTreeSet<String>,
) -> (Vec<String>, Option<Instant>) {
    let mut replies = Vec::with_capacity(ids.len());
    let mut answered = BTreeSet::new();
    let mut last = None;
    let mut last_new = Instant::now();
    while answered.len() < ids.len() && last_new.elapsed() < QUIET {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(BATCH as i32)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let now = Instant::now();
        last = Some(now);
        last_new = now;
        delete_received(&sqs, &url, &messages).await;
        for body in messages.into_iter().filter_map(|m| m.body) {
            let reply: Value = serde_json::from_str(&body).unwrap_or_default();
            let to = reply["in_reply_to"].as_str().unwrap_or_default();
            if ids.contains(to) {
                answered.insert(to.to_owned());
            }
            replies.push(body);
        }
    }
    (replies, last)
}

/// An SDK client from `sdk` whose calls `counter` counts.
macro_rules! counted {
    ($krate:ident, $sdk:expr, $counter:expr) => {
        $krate::Client::from_conf($krate::config::Builder::from($sdk).interceptor($counter.clone()).build())
    };
}

/// The floor for `grant.request`: N messages like the worker's, pre-filled on a queue of their own,
/// through `loops` loops (one per worker) that make only the unavoidable calls, each with the
/// worker's concurrency.
async fn floor_grants(app: &TestApp, n: usize, sample: &Sample, loops: usize, problems: &mut Vec<String>) -> Run {
    let sqs = app.sqs();
    let prefix = app.names.prefix();
    let queue = create_queue(&sqs, &format!("{prefix}-bench-floor-{loops}")).await;
    let replies_url = create_queue(&sqs, &format!("{prefix}-bench-floor-{loops}-replies")).await;
    let token = app.token("bench-floor", Some("platform"), &[]);
    let envelopes: Vec<_> = (0..n)
        .map(|i| {
            app.client.envelope(
                Kind::GrantRequest,
                json!({"template": "bucketRead", "params": {"bucketName": format!("bench-{i:05}")},
                       "account": ACCOUNT, "ttl": 3600, "reason": "benchmark"}),
                Some(&token),
            )
        })
        .collect();
    let ids: BTreeSet<String> = envelopes.iter().map(|e| e.message_id.as_str().to_owned()).collect();
    let bodies: Vec<String> = envelopes.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    send_all(&sqs, &queue, &bodies).await;

    // A fresh table, as the worker's was at its run's start (moto's transactions cost in proportion
    // to the table's size).
    let table = format!("{prefix}-bench-floor-{loops}-state");
    create_table(&app.dynamodb(), &table).await;
    let counter = ApiCallCounter::new();
    let floor_sqs = counted!(aws_sdk_sqs, &app.sdk, counter);
    let dynamodb = counted!(aws_sdk_dynamodb, &app.sdk, counter);
    let concurrency = app.settings.worker.concurrency;
    let wait = i32::try_from(app.settings.worker.wait_seconds).unwrap();
    let visibility = i32::try_from(app.settings.worker.visibility_timeout_seconds).unwrap();

    let started = Instant::now();
    let collector = tokio::spawn(collect_replies(sqs.clone(), replies_url.clone(), ids));
    let (processed, nonempty_receives) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let last_new = std::sync::Mutex::new(Instant::now());
    let floor_loop = || async {
        while processed.load(Ordering::Relaxed) < n && last_new.lock().unwrap().elapsed() < QUIET {
            let out = floor_sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(BATCH as i32)
                .wait_time_seconds(wait)
                .visibility_timeout(visibility)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                continue;
            }
            nonempty_receives.fetch_add(1, Ordering::Relaxed);
            *last_new.lock().unwrap() = Instant::now();
            futures::stream::iter(&messages)
                .map(|m| floor_one(&floor_sqs, &dynamodb, &table, &replies_url, m.body.as_deref().unwrap(), sample))
                .buffer_unordered(concurrency)
                .collect::<Vec<()>>()
                .await;
            let out = delete_received(&floor_sqs, &queue, &messages).await;
            assert!(out.failed.is_empty(), "DeleteMessageBatch failed entries: {:?}", out.failed);
            processed.fetch_add(messages.len(), Ordering::Relaxed);
        }
    };
    futures::future::join_all((0..loops).map(|_| floor_loop())).await;
    let (replies, last) = collector.await.unwrap();
    let calls = counter.snapshot();
    let wall = last.map_or(started.elapsed(), |t| t.duration_since(started));
    if replies.len() != n {
        problems.push(format!("floor: {} replies, expected {n}", replies.len()));
    }
    Run {
        messages: n,
        wall,
        calls,
        received_per_nonempty_receive: Some(
            processed.load(Ordering::Relaxed) as f64 / nonempty_receives.load(Ordering::Relaxed).max(1) as f64,
        ),
        sample: sample.clone(),
        grants_found: 0,
        repeated_replies: 0,
    }
}

/// The floor's work for one request: the worker's transaction (grant, grant index, request record)
/// and its reply.
async fn floor_one(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    replies_url: &str,
    body: &str,
    sample: &Sample,
) {
    let envelope: Value = serde_json::from_str(body).unwrap();
    let message_id = envelope["message_id"].as_str().unwrap();
    let grant_id = uuid::Uuid::new_v4().simple().to_string();
    let keep = chrono::Utc::now().timestamp() + 3600 + 7 * 86_400;
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let put = |pk: String, sk: String, attrs: Vec<(&str, AttributeValue)>| {
        let mut put = Put::builder()
            .table_name(table)
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk))
            .item("expires_at", AttributeValue::N(keep.to_string()))
            .condition_expression("attribute_not_exists(pk)");
        for (k, v) in attrs {
            put = put.item(k, v);
        }
        TransactWriteItem::builder().put(put.build().unwrap()).build()
    };
    let items = vec![
        put(
            "FLOOR#USER#bench-floor".into(),
            format!("GRANT#{ACCOUNT}#{grant_id}"),
            vec![
                ("doc", s(&sample.grant)),
                ("account", s(ACCOUNT)),
                ("template", s("bucketRead")),
                ("rev", AttributeValue::N("0".into())),
            ],
        ),
        put(
            format!("FLOOR#GRANTID#{grant_id}"),
            "GRANTID".into(),
            vec![("user", s("bench-floor")), ("account", s(ACCOUNT))],
        ),
        put(
            format!("FLOOR#REQ#bench-floor#{message_id}"),
            "REQ".into(),
            vec![("reply", s(&sample.reply)), ("digest", s(&"0".repeat(64))), ("events", s("[]"))],
        ),
    ];
    // moto answers concurrent transactions with an occasional 500 (its rollback copies the tables
    // while another thread writes them); the worker meets the same and retries through its consumer.
    // Every attempt is counted.
    for attempt in 1.. {
        match dynamodb.transact_write_items().set_transact_items(Some(items.clone())).send().await {
            Ok(_) => break,
            Err(e) if attempt < 10 => eprintln!("  floor: TransactWriteItems attempt {attempt}: {e:?}"),
            Err(e) => panic!("floor: TransactWriteItems failed 10 times: {e:?}"),
        }
    }
    let reply = json!({"in_reply_to": message_id, "kind": "grant.result", "result": {"grant": sample.grant}});
    sqs.send_message().queue_url(replies_url).message_body(reply.to_string()).send().await.unwrap();
}

/// A table keyed as the stack's (`pk`, `sk`, on demand).
async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let mut create = dynamodb.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for (key, kind) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(kind).build().unwrap());
    }
    create.send().await.unwrap();
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

/// Credentials latency through the worker and through a floor responder, one request at a time.
#[derive(Debug)]
struct Latency {
    worker: Vec<Duration>,
    floor: Vec<Duration>,
    /// The worker's calls per `credentials.request`, by operation.
    worker_calls: BTreeMap<String, f64>,
    floor_calls: BTreeMap<String, f64>,
}

impl Latency {
    fn figures(&self) -> Value {
        json!({
            "requests": self.worker.len(),
            "worker_ms": {"p50": ms(percentile(&self.worker, 50)), "p99": ms(percentile(&self.worker, 99))},
            "floor_ms": {"p50": ms(percentile(&self.floor, 50)), "p99": ms(percentile(&self.floor, 99))},
            "worker_calls_per_request": self.worker_calls,
            "floor_calls_per_request": self.floor_calls,
        })
    }
}

async fn credentials_latency(
    app: &TestApp,
    m: usize,
    worker_calls: &ApiCallCounter,
    problems: &mut Vec<String>,
) -> Latency {
    // A requester of their own with one live grant: the benchmark's N grants would make a session
    // policy too large to issue.
    let token = app.token("bench-creds", Some("platform"), &[]);
    app.grant_bucket(&token, "bench-creds", 3600).await;

    worker_calls.reset();
    let mut worker = Vec::with_capacity(m);
    for _ in 0..m {
        let started = Instant::now();
        let reply = app
            .client
            .request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), Some(&token), REPLY_TIMEOUT)
            .await;
        worker.push(started.elapsed());
        match reply {
            Ok(Reply { outcome: ReplyOutcome::Ok { .. }, .. }) => {}
            Ok(Reply { outcome: ReplyOutcome::Error { error }, .. }) => {
                problems.push(format!("credentials.request refused: {}: {}", error.code, error.message))
            }
            Err(e) => problems.push(format!("credentials.request: {e}")),
        }
    }
    let worker_calls = per_request(&worker_calls.snapshot(), m);

    // The floor: a responder that receives, assumes the broker role with a session policy and replies.
    let sqs = app.sqs();
    let prefix = app.names.prefix();
    let requests = create_queue(&sqs, &format!("{prefix}-bench-floor-creds")).await;
    let replies = create_queue(&sqs, &format!("{prefix}-bench-floor-creds-replies")).await;
    let counter = ApiCallCounter::new();
    let role_arn = app.settings.accounts.values().next().unwrap().role_arn.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let responder = tokio::spawn(floor_responder(
        app.sdk.clone(),
        counter.clone(),
        requests.clone(),
        FloorWork::Credentials { role_arn, replies: replies.clone() },
        i32::try_from(app.settings.worker.wait_seconds).unwrap(),
        stop.clone(),
    ));
    let mut floor = Vec::with_capacity(m);
    for i in 0..m {
        let id = format!("floor-{i}");
        let started = Instant::now();
        sqs.send_message().queue_url(&requests).message_body(&id).send().await.unwrap();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&replies)
                .max_number_of_messages(BATCH as i32)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let Some(reply) = out.messages.unwrap_or_default().into_iter().next() else { continue };
            sqs.delete_message()
                .queue_url(&replies)
                .receipt_handle(reply.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(reply.body.as_deref(), Some(id.as_str()), "floor replies come in order");
            break;
        }
        floor.push(started.elapsed());
    }
    stop.cancel();
    responder.await.unwrap();
    Latency { worker, floor, worker_calls, floor_calls: per_request(&counter.snapshot(), m) }
}

/// What the floor responder does with each message it receives, before deleting it.
#[derive(Debug)]
enum FloorWork {
    /// `AssumeRole` on `role_arn` with a session policy, then a reply carrying the message's body on
    /// `replies`.
    Credentials { role_arn: String, replies: String },
    /// `PutRolePolicy` on `role`, as [`FLOOR_POLICY`], of a deny statement for the session name the
    /// message's body holds.
    Deny { role: String },
}

/// Do `work` for each message on `requests` until `stop`.
async fn floor_responder(
    sdk: SdkConfig,
    counter: ApiCallCounter,
    requests: String,
    work: FloorWork,
    wait: i32,
    stop: CancellationToken,
) {
    let sqs = counted!(aws_sdk_sqs, &sdk, counter);
    let sts = counted!(aws_sdk_sts, &sdk, counter);
    let iam = counted!(aws_sdk_iam, &sdk, counter);
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "arn:aws:s3:::bench-creds/*"}]})
    .to_string();
    while !stop.is_cancelled() {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = sqs.receive_message().queue_url(&requests).max_number_of_messages(BATCH as i32).wait_time_seconds(wait).send() => r.unwrap(),
        };
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let mut entries = Vec::new();
        for (i, m) in messages.into_iter().enumerate() {
            let body = m.body.unwrap_or_default();
            match &work {
                FloorWork::Credentials { role_arn, replies } => {
                    let creds = sts
                        .assume_role()
                        .role_arn(role_arn)
                        .role_session_name("bench-creds")
                        .policy(&policy)
                        .duration_seconds(3600)
                        .send()
                        .await
                        .unwrap();
                    assert!(creds.credentials.is_some());
                    sqs.send_message().queue_url(replies).message_body(body).send().await.unwrap();
                }
                FloorWork::Deny { role } => {
                    let cutoff = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*",
                        "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff},
                        "StringEquals": {"aws:SourceIdentity": [body]}}}]});
                    iam.put_role_policy()
                        .role_name(role)
                        .policy_name(FLOOR_POLICY)
                        .policy_document(deny.to_string())
                        .send()
                        .await
                        .unwrap();
                }
            }
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.unwrap())
                    .build()
                    .unwrap(),
            );
        }
        sqs.delete_message_batch().queue_url(&requests).set_entries(Some(entries)).send().await.unwrap();
    }
}

fn per_request(calls: &BTreeMap<String, u64>, m: usize) -> BTreeMap<String, f64> {
    calls.iter().map(|(op, n)| (op.clone(), *n as f64 / m as f64)).collect()
}

/// The N grant requests through [`WORKERS`] access workers in this process (each its own clients,
/// handler and consumer loop, counting into one counter), then the floor with as many loops.
async fn four_workers(app: &TestApp, n: usize, sample: &Sample, problems: &mut Vec<String>) -> (Run, Run) {
    let counter = ApiCallCounter::new();
    let stop = CancellationToken::new();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (settings, sdk, meter) = (app.settings.clone(), app.sdk.clone(), app.metrics.meter());
            let (stop, counter) = (stop.clone(), counter.clone());
            tokio::spawn(async move {
                portcullis_worker::app::run_access_counted(settings, &sdk, &meter, stop, Some(counter)).await
            })
        })
        .collect();
    eventually(Duration::from_secs(30), "the workers poll their queue", || async {
        let polls = counter.snapshot().get("SQS.ReceiveMessage").copied().unwrap_or(0);
        (polls >= 2 * WORKERS as u64).then_some(())
    })
    .await;
    let run = grant_requests(app, n, "bench-4w", &counter, problems).await;
    stop.cancel();
    for w in workers {
        w.await.unwrap().unwrap();
    }
    let floor = floor_grants(app, n, sample, WORKERS, problems).await;
    (run, floor)
}

/// Revocation latencies, each from the directory event sent.
#[derive(Debug, Default)]
struct Revocations {
    /// Until the broker role's revocation policy denies the user.
    denied: Vec<Duration>,
    /// Until a `credentials.request` is refused.
    refused: Vec<Duration>,
    /// The refusals' error codes.
    refusal_codes: BTreeMap<String, usize>,
    /// The floor: until the floor's deny statement is on the role.
    floor_denied: Vec<Duration>,
}

impl Revocations {
    fn figures(&self) -> Value {
        json!({
            "event_to_deny_on_role": p50_p99_json(&self.denied),
            "event_to_credentials_refused": p50_p99_json(&self.refused),
            "refusal_codes": self.refusal_codes,
            "floor_event_to_deny_on_role": p50_p99_json(&self.floor_denied),
            "poll_interval_ms": ms(POLL),
        })
    }
}

/// `2k` users, each with a grant, offboarded one at a time: for the first `k`, the time until the
/// deny is on the role (nothing else running); for the next `k`, until a credentials request is
/// refused (requests sent one after the other, which load the emulator the deny is written to, so
/// the two are measured apart). Then the floor for `k`.
async fn revocation_latency(app: &TestApp, k: usize, problems: &mut Vec<String>) -> Revocations {
    let iam = aws_sdk_iam::Client::new(&app.sdk);
    let role = format!("{}-broker", app.names.prefix());
    let mut out = Revocations::default();
    for i in 0..2 * k {
        let user = format!("bench-rev-{i:03}");
        let token = app.token(&user, Some("platform"), &[]);
        app.grant_bucket(&token, "bench-rev", 3600).await;
        let started = Instant::now();
        app.send_directory(Kind::UserOffboarded, json!({"user": user, "effective_at": chrono::Utc::now()})).await;
        if i < k {
            match wait_denied(&iam, &role, POLICY_NAME, &sts_name_for(&user), started).await {
                Some(d) => out.denied.push(d),
                None => problems.push(format!("revocation: no deny for {user} on {role} after {REVOKE_TIMEOUT:?}")),
            }
        } else {
            match first_refusal(app, &token, started).await {
                Ok((d, code)) => {
                    out.refused.push(d);
                    *out.refusal_codes.entry(code).or_default() += 1;
                }
                Err(e) => problems.push(format!("revocation of {user}: {e}")),
            }
        }
    }

    // The floor: a message received and one PutRolePolicy, observed the same way.
    let sqs = app.sqs();
    let requests = create_queue(&sqs, &format!("{}-bench-floor-revoke", app.names.prefix())).await;
    let stop = CancellationToken::new();
    let responder = tokio::spawn(floor_responder(
        app.sdk.clone(),
        ApiCallCounter::new(),
        requests.clone(),
        FloorWork::Deny { role: role.clone() },
        i32::try_from(app.settings.worker.wait_seconds).unwrap(),
        stop.clone(),
    ));
    for i in 0..k {
        let name = format!("bench-floor-rev-{i:03}");
        let started = Instant::now();
        sqs.send_message().queue_url(&requests).message_body(&name).send().await.unwrap();
        match wait_denied(&iam, &role, FLOOR_POLICY, &name, started).await {
            Some(d) => out.floor_denied.push(d),
            None => problems.push(format!("revocation floor: no deny for {name} after {REVOKE_TIMEOUT:?}")),
        }
    }
    stop.cancel();
    responder.await.unwrap();
    out
}

/// `credentials.request`s with `token`, one after the other, until one is refused: how long after
/// `started`, and the refusal's code.
async fn first_refusal(app: &TestApp, token: &str, started: Instant) -> Result<(Duration, String), String> {
    while started.elapsed() < REVOKE_TIMEOUT {
        let body = json!({"account": ACCOUNT});
        match app.client.request(Kind::CredentialsRequest, body, Some(token), REPLY_TIMEOUT).await {
            Ok(Reply { outcome: ReplyOutcome::Error { error }, .. }) => {
                return Ok((started.elapsed(), error.code.as_str().to_owned()));
            }
            Ok(_) => continue,
            Err(e) => return Err(format!("credentials.request: {e}")),
        }
    }
    Err(format!("still issued credentials {REVOKE_TIMEOUT:?} after the event"))
}

/// Read `policy` on `role` every [`POLL`] until it denies `source_identity`: how long after `started`.
async fn wait_denied(
    iam: &aws_sdk_iam::Client,
    role: &str,
    policy: &str,
    source_identity: &str,
    started: Instant,
) -> Option<Duration> {
    while started.elapsed() < REVOKE_TIMEOUT {
        if let Ok(out) = iam.get_role_policy().role_name(role).policy_name(policy).send().await
            && denies(&policy_document(&out.policy_document), source_identity)
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

/// Whether a deny statement of `policy` names `source_identity`.
fn denies(policy: &Value, source_identity: &str) -> bool {
    policy["Statement"].as_array().into_iter().flatten().any(|s| {
        s["Effect"] == "Deny"
            && match &s["Condition"]["StringEquals"]["aws:SourceIdentity"] {
                Value::String(u) => u == source_identity,
                Value::Array(us) => us.iter().any(|u| u == source_identity),
                _ => false,
            }
    })
}

/// The worker process's memory, in KiB.
#[derive(Debug)]
struct Memory {
    /// Resident and peak resident after start-up, polling an empty queue.
    idle_rss: u64,
    idle_hwm: u64,
    /// Peak resident once the load was through.
    load_hwm: u64,
    requests: usize,
    wall: Duration,
}

impl Memory {
    fn figures(&self) -> Value {
        json!({
            "process": "worker-under-test access (the shipped main), through the pass-through proxy",
            "idle_vmrss_mib": mib(self.idle_rss),
            "idle_vmhwm_mib": mib(self.idle_hwm),
            "load_vmhwm_mib": mib(self.load_hwm),
            "load_requests": self.requests,
            "load_wall_seconds": self.wall.as_secs_f64(),
        })
    }
}

/// One worker process ([`Fleet`]): idle, then `n` grant requests from ten requesters.
async fn worker_memory(n: usize, problems: &mut Vec<String>) -> Option<Memory> {
    let exe = std::env::current_exe().unwrap().with_file_name("worker-under-test");
    if !exe.exists() {
        problems.push(format!(
            "{} not found: `cargo build --release -p portcullis-tests --bins` builds it (make bench-access does)",
            exe.display()
        ));
        return None;
    }
    let mut fleet = Fleet::start(&exe, &[]).await;
    let worker = fleet.spawn();
    // Idle: up, and a few empty polls later.
    fleet.wait_polling(3).await;
    let pid = fleet.pid(worker).unwrap();
    let idle_rss = proc_status_kib(pid, "VmRSS").unwrap_or(0);
    let idle_hwm = proc_status_kib(pid, "VmHWM").unwrap_or(0);

    fleet.put_example_templates().await;
    let envelopes = fleet.grant_requests("rss", n, 10);
    let ids: BTreeSet<String> = envelopes.iter().map(|e| e.message_id.as_str().to_owned()).collect();
    let replies = fleet.collect_replies();
    let started = Instant::now();
    fleet.send_all(&envelopes).await;
    if !replies.wait_all(&ids, QUIET + Duration::from_millis(100) * u32::try_from(n).unwrap()).await {
        problems.push(format!("memory run: {} of {n} answered", replies.answered(&ids)));
    }
    let load_hwm = proc_status_kib(fleet.pid(worker).unwrap(), "VmHWM").unwrap_or(0);
    let tally = replies.finish(&ids).await;
    if !tally.errors.is_empty() {
        problems.push(format!("memory run: refused {:?}", tally.errors));
    }
    let wall = tally.last.map_or(started.elapsed(), |t| t.duration_since(started));
    Some(Memory { idle_rss, idle_hwm, load_hwm, requests: n, wall })
}

/// Everything the table shows.
#[derive(Debug)]
struct Figures<'a> {
    requests: usize,
    credentials: usize,
    concurrency: usize,
    wait_seconds: u64,
    profile: &'a str,
    emulator: &'a str,
    worker: &'a Run,
    floor: &'a Run,
    latency: &'a Option<Latency>,
    workers4: &'a Run,
    floor4: &'a Run,
    revocation: &'a Option<Revocations>,
    memory: &'a Option<Memory>,
}

/// The target for worker memory under load (issue 17).
const MEMORY_TARGET_MIB: f64 = 40.0;

/// The table: each figure beside its floor and the target.
fn table(f: &Figures) -> String {
    let requests = f.requests;
    let mut out = String::new();
    let mut row = |figure: &str, w: String, fl: String, target: String, verdict: String| {
        out.push_str(&format!("  {figure:<46} {w:>10} {fl:>10}   {target:<28} {verdict}\n"));
    };
    let yes_no = |ok: bool| if ok { "met".to_owned() } else { "MISSED".to_owned() };
    row("figure", "worker".into(), "floor".into(), "target (issue 17)".into(), "".into());
    for (label, worker, floor) in [("1 worker", f.worker, f.floor), ("4 workers", f.workers4, f.floor4)] {
        throughput_rows(&mut row, label, requests, worker, floor);
    }
    match f.latency {
        Some(l) => {
            let credentials = f.credentials;
            let (w50, w99, f50, f99) = (
                ms(percentile(&l.worker, 50)),
                ms(percentile(&l.worker, 99)),
                ms(percentile(&l.floor, 50)),
                ms(percentile(&l.floor, 99)),
            );
            row(
                &format!("credentials p50, ms ({credentials} req.)"),
                format!("{w50:.0}"),
                format!("{f50:.0}"),
                "".into(),
                "".into(),
            );
            row(
                &format!("credentials p99, ms ({credentials} req.)"),
                format!("{w99:.0}"),
                format!("{f99:.0}"),
                format!("<= 1.5 x floor = {:.0}", 1.5 * f99),
                format!("{} ({:.2} x floor)", yes_no(w99 <= 1.5 * f99), w99 / f99),
            );
            let (wt, ft): (f64, f64) = (l.worker_calls.values().sum(), l.floor_calls.values().sum());
            row("AWS calls per credentials.request", format!("{wt:.2}"), format!("{ft:.2}"), "".into(), "".into());
            let ops: BTreeSet<&String> = l.worker_calls.keys().chain(l.floor_calls.keys()).collect();
            for op in ops {
                let get = |m: &BTreeMap<String, f64>| m.get(op).copied().unwrap_or(0.0);
                row(
                    &format!("  {op}"),
                    format!("{:.2}", get(&l.worker_calls)),
                    format!("{:.2}", get(&l.floor_calls)),
                    "".into(),
                    "".into(),
                );
            }
        }
        None => row("credentials latency", "skipped".into(), "".into(), "".into(), "".into()),
    }
    match f.revocation {
        Some(r) => {
            let n = r.denied.len();
            for p in [50, 99] {
                row(
                    &format!("offboarded -> deny on role p{p}, ms ({n})"),
                    format!("{:.0}", ms(percentile(&r.denied, p))),
                    format!("{:.0}", ms(percentile(&r.floor_denied, p))),
                    "(reported)".into(),
                    "".into(),
                );
            }
            for p in [50, 99] {
                row(
                    &format!("offboarded -> credentials refused p{p}, ms ({})", r.refused.len()),
                    format!("{:.0}", ms(percentile(&r.refused, p))),
                    "".into(),
                    "(reported)".into(),
                    format!("{:?}", r.refusal_codes),
                );
            }
        }
        None => row("revocation latency", "skipped".into(), "".into(), "".into(), "".into()),
    }
    match f.memory {
        Some(m) => {
            row(
                "worker process RSS idle, MiB (VmRSS/VmHWM)",
                format!("{:.1}/{:.1}", mib(m.idle_rss), mib(m.idle_hwm)),
                "".into(),
                "".into(),
                "".into(),
            );
            row(
                &format!("worker process peak RSS, {} req., MiB", m.requests),
                format!("{:.1}", mib(m.load_hwm)),
                "".into(),
                format!("<= {MEMORY_TARGET_MIB:.0} MiB"),
                yes_no(mib(m.load_hwm) <= MEMORY_TARGET_MIB),
            );
        }
        None => row("worker process memory", "skipped".into(), "".into(), "".into(), "".into()),
    }
    let memory_note = f.memory.as_ref().map_or(String::new(), |m| {
        format!(
            "; memory: worker-under-test as its own process behind the pass-through proxy, {} grant.request at \
             {:.1}/s",
            m.requests,
            m.requests as f64 / m.wall.as_secs_f64()
        )
    });
    format!(
        "access benchmark: {requests} grant.request through one access worker, then through {WORKERS} access \
         workers (in-process consumers, one process, a fresh emulator) (concurrency {} each, wait {} s), {}, {} \
         build; floor: the unavoidable calls only, same run, own table ({WORKERS} loops beside {WORKERS} \
         workers){memory_note}\n{out}",
        f.concurrency, f.wait_seconds, f.emulator, f.profile
    )
}

/// Throughput, calls per message and batch fill of one grant-request run beside its floor.
fn throughput_rows(
    row: &mut impl FnMut(&str, String, String, String, String),
    label: &str,
    requests: usize,
    worker: &Run,
    floor: &Run,
) {
    let yes_no = |ok: bool| if ok { "met".to_owned() } else { "MISSED".to_owned() };
    let (wr, fr) = (worker.per_second(), floor.per_second());
    row(
        &format!("grant.request per second, {label}"),
        format!("{wr:.1}"),
        format!("{fr:.1}"),
        format!(">= 0.9 x floor = {:.1}", 0.9 * fr),
        format!("{} ({:.2} x floor)", yes_no(wr >= 0.9 * fr), wr / fr),
    );
    let (wc, fc) = (worker.total_calls() as f64 / requests as f64, floor.total_calls() as f64 / requests as f64);
    row(
        &format!("AWS calls per grant.request, {label}"),
        format!("{wc:.2}"),
        format!("{fc:.2}"),
        format!("<= floor + 1 = {:.2}", fc + 1.0),
        format!("{} ({:+.2} over floor)", yes_no(wc <= fc + 1.0), wc - fc),
    );
    let ops: BTreeSet<&String> = worker.calls.keys().chain(floor.calls.keys()).collect();
    for op in ops {
        row(
            &format!("  {op}"),
            format!("{:.2}", worker.per_message(op)),
            format!("{:.2}", floor.per_message(op)),
            "".into(),
            "".into(),
        );
    }
    row("AWS calls in total", worker.total_calls().to_string(), floor.total_calls().to_string(), "".into(), "".into());
    let receive = |r: &Run| r.messages_per("SQS.ReceiveMessage");
    row(
        "messages per ReceiveMessage",
        format!("{:.2}", receive(worker)),
        format!("{:.2}", receive(floor)),
        "in tens (~10) under load".into(),
        yes_no(receive(worker) >= 9.0),
    );
    let delete = |r: &Run| r.messages_per("SQS.DeleteMessageBatch");
    row(
        "messages per DeleteMessageBatch",
        format!("{:.2}", delete(worker)),
        format!("{:.2}", delete(floor)),
        "in tens (~10) under load".into(),
        yes_no(delete(worker) >= 9.0),
    );
    row(
        "wall time, s",
        format!("{:.1}", worker.wall.as_secs_f64()),
        format!("{:.1}", floor.wall.as_secs_f64()),
        "".into(),
        "".into(),
    );
    row(
        "grants in the table",
        worker.grants_found.to_string(),
        "".into(),
        format!("= {requests}"),
        format!("{} ({} repeated replies)", yes_no(worker.grants_found == requests), worker.repeated_replies),
    );
}
