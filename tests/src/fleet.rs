//! Access workers as separate OS processes behind the fault proxy, for the fault and load tests.
//!
//! [`Fleet::start`] deploys a stack into a private emulator, starts a [`FaultProxy`] in front of it and
//! writes a settings file whose AWS endpoint is the proxy. [`Fleet::spawn`] runs the worker binary
//! (`CARGO_BIN_EXE_worker-under-test`: the shipped `portcullis-worker` main, see `tests/Cargo.toml`)
//! as `worker-under-test --config <file> access`, with its log in a file of its own; workers can be
//! SIGKILLed, SIGTERMed and restarted. The test's own client talks to the emulator directly, so
//! faults only ever hit the workers.
//!
//! The helpers send `grant.request`s in bulk, collect every reply (duplicates included), and read
//! back what the table holds, so a test can say: every request answered with one outcome, exactly
//! one grant each, nothing dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use futures::StreamExt;
use portcullis_access::adapters::DynamoStore;
use portcullis_access::ports::AccessStore;
use portcullis_client::AccessClient;
use portcullis_domain::messages::{Envelope, Kind, Reply, ReplyOutcome};
use serde_json::{Value, json};

use crate::proxy::FaultProxy;
use crate::{ACCOUNT, REPLY_TIMEOUT, TestStack, ok, settings_toml, workspace_root};

/// SQS takes at most ten messages per batch call.
const BATCH: usize = 10;

/// The fleet's redrive `maxReceiveCount`: the stack's default. A SIGKILLed worker takes the receive
/// of every message it held (in hand or received ahead, up to concurrency + 10) with it, so a message
/// can lose one delivery per kill; with the tests' usual 3, three kills that each caught the same
/// message would dead-letter it although nothing failed. Real SQS counts the same way: the redrive
/// count must exceed the kills (and heartbeat lapses) one message may meet.
pub const FLEET_MAX_RECEIVE_COUNT: u32 = 5;

/// One worker process.
#[derive(Debug)]
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

/// A deployed stack, the proxy in front of its emulator, and worker processes using the proxy.
#[derive(Debug)]
pub struct Fleet {
    pub proxy: FaultProxy,
    pub client: AccessClient,
    exe: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    workers: Vec<Option<WorkerProcess>>,
    spawned: usize,
    // Dropped after the workers (Drop kills them first): the config and logs, then the emulator.
    dir: tempfile::TempDir,
    pub stack: TestStack,
}

impl Fleet {
    /// Deploy a stack, start the proxy, and write the workers' settings. `overrides` are
    /// `PORTCULLIS__…` environment overrides for every worker (`("WORKER__CONCURRENCY", "8")`).
    pub async fn start(exe: &Path, overrides: &[(&str, &str)]) -> Fleet {
        let stack = TestStack::deploy_with("", "", FLEET_MAX_RECEIVE_COUNT).await;
        let proxy = FaultProxy::start(&stack.moto.endpoint).await;
        proxy.serialize("dynamodb:*");
        let dir = tempfile::tempdir().unwrap();
        let jwks = stack.settings.identity.jwks_file.clone().expect("the test issuer's JWKS file");
        let config = dir.path().join("worker.toml");
        std::fs::write(&config, settings_toml(stack.names.prefix(), &proxy.endpoint(), &jwks, "", "")).unwrap();
        let client = AccessClient::connect(aws_sdk_sqs::Client::new(&stack.sdk), &stack.names).await.unwrap();
        let env = overrides.iter().map(|(k, v)| (format!("PORTCULLIS__{k}"), (*v).to_owned())).collect();
        Fleet { proxy, client, exe: exe.to_owned(), config, env, workers: Vec::new(), spawned: 0, dir, stack }
    }

    /// Start one more worker process; returns its index.
    pub fn spawn(&mut self) -> usize {
        let index = self.workers.len();
        self.workers.push(None);
        self.restart(index);
        index
    }

    /// (Re)start worker `index` (a new process, a new log file).
    pub fn restart(&mut self, index: usize) {
        assert!(self.workers[index].is_none(), "worker {index} is still running");
        self.spawned += 1;
        let log = self.dir.path().join(format!("worker-{index}-{}.log", self.spawned));
        let mut command = Command::new(&self.exe);
        command
            .arg("--config")
            .arg(&self.config)
            .arg("access")
            .env_remove("PORTCULLIS_CONFIG")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", std::env::var("WORKER_LOG").unwrap_or_else(|_| "warn,portcullis=info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.exe.display()));
        self.workers[index] = Some(WorkerProcess { child, log });
    }

    /// SIGKILL worker `index` and reap it.
    pub fn kill(&mut self, index: usize) {
        let mut w = self.workers[index].take().expect("a running worker");
        w.child.kill().unwrap();
        w.child.wait().unwrap();
    }

    /// SIGTERM worker `index` and wait for it to exit (at most `timeout`): its exit status.
    pub async fn terminate(&mut self, index: usize, timeout: Duration) -> ExitStatus {
        let mut w = self.workers[index].take().expect("a running worker");
        let status = Command::new("kill").arg("-TERM").arg(w.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -TERM {}", w.child.id());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = w.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = w.child.kill();
                panic!("worker {index} did not exit within {timeout:?} of SIGTERM:\n{}", tail(&w.log));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The OS process id of worker `index`, while it runs (and has not exited by itself).
    pub fn pid(&mut self, index: usize) -> Option<u32> {
        let w = self.workers[index].as_mut()?;
        match w.child.try_wait().unwrap() {
            None => Some(w.child.id()),
            Some(status) => panic!("worker {index} exited by itself ({status}):\n{}", tail(&w.log)),
        }
    }

    /// Every worker log so far (for a failing assertion's message).
    pub fn logs(&self) -> String {
        let mut paths: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        paths.sort();
        paths.iter().map(|p| format!("== {}\n{}", p.display(), tail(p))).collect::<Vec<_>>().join("\n")
    }

    /// Wait until the workers have polled their queue `n` more times than `since` (they are up).
    pub async fn wait_polling(&self, n: u64) {
        let since = self.proxy.calls_to("sqs:ReceiveMessage");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.proxy.calls_to("sqs:ReceiveMessage") < since + n {
            assert!(Instant::now() < deadline, "the workers never polled:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An ID token from the test issuer.
    pub fn token(&self, user: &str) -> String {
        self.stack.token_with_ttl(user, Some("platform"), &[], Duration::from_secs(3600))
    }

    /// Put the example templates (needs a running worker).
    pub async fn put_example_templates(&self) {
        let admin =
            self.stack.token_with_ttl("admin", Some("security"), &["portcullis-admins"], Duration::from_secs(600));
        for name in ["bucketRead", "queueConsumer", "tableReader", "bucketWrite"] {
            let text =
                std::fs::read_to_string(workspace_root().join(format!("examples/templates/{name}.json"))).unwrap();
            let template: Value = serde_json::from_str(&text).unwrap();
            let reply = self
                .client
                .request(Kind::TemplatePut, json!({ "template": template }), Some(&admin), REPLY_TIMEOUT)
                .await
                .unwrap();
            ok(&reply);
        }
    }

    /// `n` `grant.request`s for `bucketRead` on buckets `<tag>-00000`…, spread over `users` requesters.
    pub fn grant_requests(&self, tag: &str, n: usize, users: usize) -> Vec<Envelope<Value>> {
        let tokens: Vec<String> = (0..users.max(1)).map(|u| self.token(&format!("{tag}-u{u:03}"))).collect();
        (0..n)
            .map(|i| {
                self.client.envelope(
                    Kind::GrantRequest,
                    json!({"template": "bucketRead", "params": {"bucketName": bucket(tag, i)},
                           "account": ACCOUNT, "ttl": 3600, "reason": "fault test"}),
                    Some(&tokens[i % tokens.len()]),
                )
            })
            .collect()
    }

    /// Put `envelopes` on the access queue, ten per `SendMessageBatch`, eight batches in flight.
    pub async fn send_all(&self, envelopes: &[Envelope<Value>]) {
        let bodies: Vec<String> = envelopes.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let url = self.client.request_queue_url().to_owned();
        futures::stream::iter(bodies.chunks(BATCH))
            .map(|chunk| {
                let (sqs, url) = (sqs.clone(), url.clone());
                async move {
                    let entries = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, body)| {
                            SendMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .message_body(body)
                                .build()
                                .unwrap()
                        })
                        .collect();
                    let out = sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();
                    assert!(out.failed.is_empty(), "SendMessageBatch failed entries: {:?}", out.failed);
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
    }

    /// Start collecting replies from this fleet's reply queue in the background.
    pub fn collect_replies(&self) -> ReplyCollector {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let url = self.client.reply_queue_url().to_owned();
        let replies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(receive_replies(sqs, url, replies.clone(), stop.clone()));
        ReplyCollector { replies, stop, task: Some(task) }
    }

    /// Messages visible or in flight on `queue` (by name).
    pub async fn depth(&self, queue: &str) -> u64 {
        use QueueAttributeName::*;
        self.approximate(
            queue,
            &[ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible, ApproximateNumberOfMessagesDelayed],
        )
        .await
    }

    /// Messages in flight (received and hidden) on `queue` (by name).
    pub async fn hidden(&self, queue: &str) -> u64 {
        self.approximate(queue, &[QueueAttributeName::ApproximateNumberOfMessagesNotVisible]).await
    }

    /// The sum of `counts` (approximate message counts) of `queue` (by name).
    async fn approximate(&self, queue: &str, counts: &[QueueAttributeName]) -> u64 {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let url = sqs.get_queue_url().queue_name(queue).send().await.unwrap().queue_url.unwrap();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(counts.to_vec()))
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        attrs.values().filter_map(|v| v.parse::<u64>().ok()).sum()
    }

    /// Messages waiting or in flight on the access queue.
    pub async fn access_depth(&self) -> u64 {
        self.depth(&self.stack.names.access_queue()).await
    }

    /// Messages in the access dead-letter queue.
    pub async fn dead_letter_count(&self) -> u64 {
        self.depth(&self.stack.names.access_dlq()).await
    }

    /// The access dead letters: (code, reason) of each.
    pub async fn dead_letters(&self) -> Vec<(String, Option<String>)> {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let dead =
            portcullis_runtime::queue::DeadLetters::connect(sqs, &self.stack.names.access_queue()).await.unwrap();
        dead.inspect().await.unwrap().into_iter().map(|l| (l.code_or_none().to_owned(), l.reason.clone())).collect()
    }

    /// Wait until the access queue is empty (every message deleted): `timeout` at most.
    pub async fn wait_drained(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.access_depth().await > 0 {
            assert!(Instant::now() < deadline, "the access queue never drained:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The `bucketName` of every live grant of `<tag>-u000`… (`users` of them), with how many grants
    /// name it.
    pub async fn grants_by_bucket(&self, tag: &str, users: usize) -> BTreeMap<String, usize> {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.stack.sdk), self.stack.names.table());
        let mut out = BTreeMap::new();
        for u in 0..users.max(1) {
            for grant in store.live_grants(&format!("{tag}-u{u:03}"), None, chrono::Utc::now()).await.unwrap() {
                let bucket = grant.params.get("bucketName").cloned().unwrap_or_default();
                *out.entry(bucket).or_default() += 1;
            }
        }
        out
    }

    /// Every grant of `envelopes` exactly once in the table, and no other: panics otherwise.
    pub async fn assert_one_grant_each(&self, tag: &str, n: usize, users: usize) {
        let grants = self.grants_by_bucket(tag, users).await;
        let missing: Vec<String> = (0..n).map(|i| bucket(tag, i)).filter(|b| !grants.contains_key(b)).collect();
        let duplicated: Vec<(&String, &usize)> = grants.iter().filter(|(_, c)| **c > 1).collect();
        let strangers: Vec<&String> = grants.keys().filter(|b| !b.starts_with(tag)).collect();
        assert!(
            missing.is_empty() && duplicated.is_empty() && strangers.is_empty() && grants.len() == n,
            "grants: {} of {n}; missing {missing:?}, duplicated {duplicated:?}, unknown {strangers:?}",
            grants.len()
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in self.workers.iter_mut().filter_map(Option::take) {
            let mut child = w.child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bucket of request `i` of a batch tagged `tag`.
pub fn bucket(tag: &str, i: usize) -> String {
    format!("{tag}-{i:05}")
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Replies as they arrived.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(Instant, Reply<Value>)>>>;

/// Replies received in the background (deleted from the queue as they come).
#[derive(Debug)]
pub struct ReplyCollector {
    replies: Received,
    stop: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What the replies to a set of requests say.
#[derive(Debug, Default)]
pub struct ReplyTally {
    /// Requests with at least one reply.
    pub answered: usize,
    /// Requests without a reply.
    pub unanswered: Vec<String>,
    /// Replies beyond the first (a redelivered request is answered again, byte for byte).
    pub repeated: usize,
    /// Requests whose replies disagree (a different outcome, a different grant).
    pub conflicting: Vec<String>,
    /// Replies to no request of the set.
    pub strangers: usize,
    /// Error codes of the (first) replies that are errors, with their counts.
    pub errors: BTreeMap<String, usize>,
    /// When the last first reply arrived.
    pub last: Option<Instant>,
}

impl ReplyCollector {
    /// How many replies to `ids` have arrived (each request counted once).
    pub fn answered(&self, ids: &BTreeSet<String>) -> usize {
        let replies = self.replies.lock().unwrap();
        replies
            .iter()
            .filter_map(|(_, r)| r.in_reply_to.as_ref().map(|m| m.as_str().to_owned()))
            .filter(|id| ids.contains(id))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Wait until every request of `ids` has a reply, or `timeout` passes.
    pub async fn wait_all(&self, ids: &BTreeSet<String>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.answered(ids) < ids.len() {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    /// Stop collecting (after a last receive) and tally the replies to `ids`.
    pub async fn finish(mut self, ids: &BTreeSet<String>) -> ReplyTally {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.tally(ids)
    }

    /// What the replies so far say about `ids`.
    pub fn tally(&self, ids: &BTreeSet<String>) -> ReplyTally {
        let replies = self.replies.lock().unwrap();
        let mut by_id: BTreeMap<String, Vec<(Instant, &Reply<Value>)>> = BTreeMap::new();
        let mut tally = ReplyTally::default();
        for (at, r) in replies.iter() {
            let id = r.in_reply_to.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default();
            if ids.contains(&id) {
                by_id.entry(id).or_default().push((*at, r));
            } else {
                tally.strangers += 1;
            }
        }
        for id in ids {
            let Some(rs) = by_id.get(id) else {
                tally.unanswered.push(id.clone());
                continue;
            };
            tally.answered += 1;
            tally.repeated += rs.len() - 1;
            tally.last = tally.last.max(Some(rs[0].0));
            let outcome = |r: &Reply<Value>| match &r.outcome {
                ReplyOutcome::Ok { result } => format!("ok {}", result["grant"]["id"]),
                ReplyOutcome::Error { error } => format!("error {}", error.code.as_str()),
            };
            let first = outcome(rs[0].1);
            if rs.iter().any(|(_, r)| outcome(r) != first) {
                tally.conflicting.push(id.clone());
            }
            if let ReplyOutcome::Error { error } = &rs[0].1.outcome {
                *tally.errors.entry(error.code.as_str().to_owned()).or_default() += 1;
            }
        }
        tally
    }
}

impl Drop for ReplyCollector {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive_replies(
    sqs: aws_sdk_sqs::Client,
    url: String,
    replies: Received,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        // One last receive after a stop, for replies already on their way.
        let last = stop.is_cancelled();
        let out = match sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(BATCH as i32)
            .wait_time_seconds(1)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => panic!("receiving replies: {e:?}"),
        };
        let messages = out.messages.unwrap_or_default();
        let now = Instant::now();
        if !messages.is_empty() {
            crate::delete_received(&sqs, &url, &messages).await;
            let mut all = replies.lock().unwrap();
            for m in messages {
                let body = m.body.unwrap_or_default();
                let reply: Reply<Value> =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("unreadable reply ({e}): {body:.300}"));
                all.push((now, reply));
            }
            continue;
        }
        if last {
            return;
        }
    }
}
