//! The consumer loop every worker runs on.
//!
//! - A [`Handler`] turns one message into an [`Outcome`]: [`Disposition::Done`],
//!   [`Disposition::Reject`] (permanent: bad input or forbidden, with an [`ErrorCode`]) or
//!   [`Disposition::Retry`] (a dependency failed).
//! - [`run_consumer`] long-polls in batches of 10 and keeps up to one batch received ahead of the
//!   `concurrency` messages being handled, so a busy worker receives ten messages per call rather than
//!   one per freed slot. Every received message is kept invisible with a heartbeat, from the moment it
//!   is received until it is finished. The heartbeat has a deadline: when the lease can no longer be
//!   extended (the visibility change fails or hangs) before it lapses, the work on that message is
//!   stopped, before it replies or deletes anything, and the message is left to whoever receives it
//!   next (outcome `abandoned`). The consumer deletes finished messages in
//!   batches (checking every failed entry), sends rejected messages to the dead-letter queue with the
//!   error code and reason as message attributes *before* deleting them, and leaves retryable
//!   failures for redelivery after an exponential backoff. On shutdown it stops receiving, lets
//!   in-flight messages finish within a grace period, flushes deletes and returns. A message is only
//!   ever deleted after its work is durable, so a worker killed at any point loses nothing: the message
//!   reappears and the (idempotent) handler runs again.
//! - Nothing reaches a dead-letter queue without a code or with a secret: every kept body goes
//!   through [`redact_secrets`], and a message that would fail its last delivery (a retry, a panic) is
//!   dead-lettered here with `unavailable` or `internal_error` rather than left for the redrive policy
//!   to move verbatim.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::telemetry::instruments;
use async_trait::async_trait;
use futures::FutureExt;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use portcullis_domain::ErrorCode;
use portcullis_domain::metrics;
use portcullis_domain::redact::redact_secrets;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::config::WorkerSettings;
use crate::queue::{Attempt, MAX_BATCH, Queue, ReceivedMessage};

/// What should happen to a handled message.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Work is durable: delete the message.
    Done,
    /// Permanent failure: keep it in the dead-letter queue with this code and reason, then delete it.
    Reject { code: ErrorCode, reason: String },
    /// Transient failure: leave it for redelivery, after `after` or else the backoff for its attempt.
    Retry { reason: String, after: Option<Duration> },
}

/// A handler's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Message kind, for metrics and logs (`unknown` when unreadable).
    pub kind: String,
    pub disposition: Disposition,
}

impl Outcome {
    pub fn done(kind: impl Into<String>) -> Self {
        Self { kind: kind.into(), disposition: Disposition::Done }
    }
    pub fn rejected(kind: impl Into<String>, code: ErrorCode, reason: impl Into<String>) -> Self {
        Self { kind: kind.into(), disposition: Disposition::Reject { code, reason: reason.into() } }
    }
    pub fn retry(kind: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { kind: kind.into(), disposition: Disposition::Retry { reason: reason.into(), after: None } }
    }
    fn label(&self) -> &'static str {
        match self.disposition {
            Disposition::Done => "ok",
            Disposition::Reject { .. } => "rejected",
            Disposition::Retry { .. } => "retry",
        }
    }
}

/// Handles one message.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome;
}
/// Consumer tuning, usually from [`WorkerSettings`].
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub concurrency: usize,
    pub wait: Duration,
    pub visibility_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub shutdown_grace: Duration,
}

impl From<&WorkerSettings> for ConsumerOptions {
    fn from(w: &WorkerSettings) -> Self {
        Self {
            concurrency: w.concurrency,
            wait: Duration::from_secs(w.wait_seconds),
            visibility_timeout: w.visibility_timeout(),
            backoff_base: Duration::from_millis(w.retry_backoff_base_ms),
            backoff_max: Duration::from_secs(w.retry_backoff_max_seconds),
            shutdown_grace: w.shutdown_grace(),
        }
    }
}

impl ConsumerOptions {
    /// Delay before retry number `attempt + 1`: base · 2^(attempt−1), capped, with ±20 % jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.backoff_max);
        let jitter = rand::random_range(0.8..1.2);
        capped.mul_f64(jitter).max(Duration::from_secs(1))
    }
}

/// Pipeline metrics, recorded in one place.
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    received: Counter<u64>,
    processed: Counter<u64>,
    failed: Counter<u64>,
    dead_lettered: Counter<u64>,
    queue_errors: Counter<u64>,
    duration: Histogram<f64>,
}

impl PipelineMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            received: instruments::counter(meter, &metrics::MESSAGES_RECEIVED),
            processed: instruments::counter(meter, &metrics::MESSAGES_PROCESSED),
            failed: instruments::counter(meter, &metrics::MESSAGES_FAILED),
            dead_lettered: instruments::counter(meter, &metrics::MESSAGES_DEAD_LETTERED),
            queue_errors: instruments::counter(meter, &metrics::QUEUE_ERRORS),
            duration: instruments::histogram(
                meter,
                &metrics::HANDLER_DURATION,
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
        }
    }

    pub(crate) fn queue_error(&self, queue: &str, op: &'static str) {
        self.queue_errors.add(1, &[KeyValue::new("queue", queue.to_owned()), KeyValue::new("operation", op)]);
    }
}

/// Run a consumer until `shutdown` is cancelled.
pub async fn run_consumer<Q: Queue, H: Handler>(
    queue: Arc<Q>,
    handler: Arc<H>,
    options: ConsumerOptions,
    metrics: PipelineMetrics,
    shutdown: CancellationToken,
) {
    let queue_name = queue.name().to_owned();
    info!(queue = %queue_name, concurrency = options.concurrency, "consumer started");
    // Two bounds: `running` caps the handlers at work; `held` caps what is received and not yet
    // finished at `concurrency` plus one batch, so a receive is only issued once a whole batch fits.
    let concurrency = options.concurrency.max(1);
    let running = Arc::new(Semaphore::new(concurrency));
    let held = Arc::new(Semaphore::new(concurrency + MAX_BATCH));
    let (delete_tx, delete_rx) = mpsc::channel::<String>(1024);
    let deleter =
        tokio::spawn(run_deleter(queue.clone(), delete_rx, metrics.clone(), delete_linger(options.visibility_timeout)));
    let in_flight: InFlight = Arc::default();
    let mut tasks = JoinSet::new();
    let mut receive_failures = 0u32;
    // Shutdown's time budget: set when shutdown interrupts a long poll, else when the loop ends.
    let mut deadline = None;

    loop {
        while tasks.try_join_next().is_some() {}
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            slots = held.clone().acquire_many_owned(MAX_BATCH as u32) => match slots { Ok(p) => p, Err(_) => break },
        };
        // The lease of what this call receives starts no later than now.
        let leased_at = tokio::time::Instant::now();
        let receive = queue.receive(MAX_BATCH, options.wait, options.visibility_timeout);
        tokio::pin!(receive);
        let received = tokio::select! {
            r = &mut receive => r,
            _ = shutdown.cancelled() => {
                // Abandoning a long poll would let the queue hand its messages to a dead request and
                // hide them for a whole visibility timeout: finish the poll, within the shutdown
                // budget, and release whatever it got at once.
                let until = tokio::time::Instant::now() + options.shutdown_grace;
                deadline = Some(until);
                if let Ok(Ok(messages)) = tokio::time::timeout_at(until, receive).await {
                    for m in messages {
                        let _ = queue.change_visibility(&m.receipt_handle, Duration::ZERO).await;
                    }
                }
                break;
            }
        };
        let messages = match received {
            Ok(m) => {
                receive_failures = 0;
                m
            }
            Err(e) => {
                receive_failures += 1;
                metrics.queue_error(&queue_name, e.op);
                let delay = Duration::from_millis(500u64.saturating_mul(1 << receive_failures.min(6)));
                warn!(error = %e, retry_in = ?delay, "receive failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let mut batch = batch;
        for message in messages {
            metrics.received.add(1, &[KeyValue::new("queue", queue_name.clone())]);
            let receipt = Arc::new(Mutex::new(message.receipt_handle.clone()));
            let duplicate = in_flight.lock().ok().and_then(|mut map| match map.get(&message.message_id) {
                Some(current) => Some(current.clone()),
                None => {
                    map.insert(message.message_id.clone(), receipt.clone());
                    None
                }
            });
            if let Some(current) = duplicate {
                // Delivered again while still in flight here (visibility lapsed). The running handler
                // owns it, but only the newest receipt handle can extend or delete it: hand it over.
                if let Ok(mut r) = current.lock() {
                    *r = message.receipt_handle.clone();
                }
                debug!(message_id = %message.message_id, "duplicate delivery of an in-flight message: receipt handed over");
                continue;
            }
            // One buffer slot goes with the message; the slots of a short batch are freed below.
            let Some(slot) = batch.split(1) else {
                break;
            };
            let ctx = MessageContext {
                queue: queue.clone(),
                handler: handler.clone(),
                options: options.clone(),
                metrics: metrics.clone(),
                delete_tx: delete_tx.clone(),
                in_flight: in_flight.clone(),
                receipt,
                leased_at,
            };
            let running = running.clone();
            let shutdown = shutdown.clone();
            let span = info_span!("message", queue = %queue_name, message_id = %message.message_id, attempt = message.receive_count);
            tasks.spawn(
                async move {
                    ctx.process(message, running, shutdown).await;
                    drop(slot);
                }
                .instrument(span),
            );
        }
        drop(batch);
    }

    info!(queue = %queue_name, in_flight = tasks.len(), "consumer stopping: finishing in-flight messages");
    let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + options.shutdown_grace);
    let drained = tokio::time::timeout_at(deadline, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(queue = %queue_name, left = tasks.len(), "shutdown grace elapsed; unfinished messages will be redelivered");
        // Dropping a task drops its heartbeat guard too, so nothing keeps the messages hidden.
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    drop(delete_tx);
    let _ = deleter.await;
    info!(queue = %queue_name, "consumer stopped");
}

/// Messages being handled, by message id, with their newest receipt handle.
type InFlight = Arc<Mutex<HashMap<String, Arc<Mutex<String>>>>>;

struct MessageContext<Q, H> {
    queue: Arc<Q>,
    handler: Arc<H>,
    options: ConsumerOptions,
    metrics: PipelineMetrics,
    delete_tx: mpsc::Sender<String>,
    in_flight: InFlight,
    /// The newest receipt handle of the message (a duplicate delivery replaces it).
    receipt: Arc<Mutex<String>>,
    /// When the receive that delivered the message was issued: its lease runs from no later than this.
    leased_at: tokio::time::Instant,
}

/// Aborts the task when dropped, so a heartbeat never outlives its message's task.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<Q: Queue, H: Handler> MessageContext<Q, H> {
    async fn process(self, message: ReceivedMessage, running: Arc<Semaphore>, shutdown: CancellationToken) {
        let attempt = Attempt {
            number: message.receive_count,
            is_last: self.queue.max_receive_count().is_some_and(|max| message.receive_count >= max),
        };
        // The lease is kept from receipt, including while the message waits for a handler slot.
        let (heartbeat, lease_lost) = self.spawn_heartbeat();
        let _slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                // Received ahead but not started: hand it back at once rather than hide it until the
                // visibility timeout lapses.
                drop(heartbeat);
                let receipt = self.current_receipt(&message);
                let _ = self.queue.change_visibility(&receipt, Duration::ZERO).await;
                self.forget(&message);
                return;
            }
            _ = lease_lost.cancelled() => {
                self.abandon(&message, "unknown");
                return;
            }
            permit = running.acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let started = Instant::now();
        let outcome = tokio::select! {
            biased;
            _ = lease_lost.cancelled() => {
                // Another replica may hold the message now: stop here, before this one replies,
                // deletes or dead-letters anything (the dropped handler future ends at its next await).
                self.abandon(&message, "unknown");
                return;
            }
            outcome = handle_guarded(&*self.handler, &message, attempt) => outcome,
        };
        // The handler may have finished just as the lease lapsed: its work is durable but the
        // message is no longer ours to delete or answer for.
        if lease_lost.is_cancelled() {
            self.abandon(&message, &outcome.kind);
            return;
        }
        drop(heartbeat);
        let receipt = self.current_receipt(&message);
        match settle(&*self.queue, &self.options, &self.metrics, &message, attempt, &outcome, started.elapsed()).await {
            Settled::Delete => {
                let _ = self.delete_tx.send(receipt).await;
            }
            Settled::Redeliver { after } => self.redeliver_after(&receipt, after).await,
        }
        self.forget(&message);
    }

    /// Leave the message for redelivery `after` from now.
    async fn redeliver_after(&self, receipt: &str, after: Duration) {
        if let Err(e) = self.queue.change_visibility(receipt, after).await {
            self.metrics.queue_error(self.queue.name(), e.op);
            warn!(error = %e, "could not set the retry delay; the visibility timeout applies");
        }
    }

    fn current_receipt(&self, message: &ReceivedMessage) -> String {
        self.receipt.lock().map(|r| r.clone()).unwrap_or_else(|_| message.receipt_handle.clone())
    }

    fn forget(&self, message: &ReceivedMessage) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&message.message_id);
        }
    }

    /// The lease lapsed (or is about to) without an extension: the message is left as it is.
    fn abandon(&self, message: &ReceivedMessage, kind: &str) {
        let labels = [
            KeyValue::new("queue", self.queue.name().to_owned()),
            KeyValue::new("kind", kind.to_owned()),
            KeyValue::new("outcome", "abandoned"),
        ];
        self.metrics.processed.add(1, &labels);
        warn!(
            kind,
            "visibility lease could not be extended in time: work on this message stopped; it will be redelivered"
        );
        self.forget(message);
    }

    /// Keeps the message invisible: extends its visibility every third of the timeout. The returned
    /// token is cancelled when the lease could not be extended and is within [`lease_margin`] of
    /// lapsing (each extension is bounded by that deadline, so a hung call counts as a failure).
    fn spawn_heartbeat(&self) -> (AbortOnDrop, CancellationToken) {
        let queue = self.queue.clone();
        let metrics = self.metrics.clone();
        let receipt = self.receipt.clone();
        let visibility = self.options.visibility_timeout;
        let every = (visibility / 3).max(Duration::from_secs(1));
        let margin = lease_margin(visibility);
        let lost = CancellationToken::new();
        let signal = lost.clone();
        let leased_at = self.leased_at;
        let task = tokio::spawn(async move {
            let mut lease_until = leased_at + visibility;
            let mut next = leased_at + every;
            loop {
                let stop_at = lease_until.checked_sub(margin).unwrap_or(lease_until);
                tokio::time::sleep_until(next.min(stop_at)).await;
                if tokio::time::Instant::now() >= stop_at {
                    signal.cancel();
                    return;
                }
                let current = match receipt.lock() {
                    Ok(r) => r.clone(),
                    Err(_) => return,
                };
                let asked = tokio::time::Instant::now();
                match tokio::time::timeout_at(stop_at, queue.change_visibility(&current, visibility)).await {
                    Ok(Ok(())) => {
                        lease_until = asked + visibility;
                        next = asked + every;
                    }
                    Ok(Err(e)) => {
                        metrics.queue_error(queue.name(), e.op);
                        warn!(error = %e, "visibility heartbeat failed; retrying before the lease lapses");
                        next = tokio::time::Instant::now() + HEARTBEAT_RETRY.min(every);
                    }
                    Err(_) => {
                        metrics.queue_error(queue.name(), "ChangeMessageVisibility");
                        signal.cancel();
                        return;
                    }
                }
            }
        });
        (AbortOnDrop(task), lost)
    }
}

/// How long a failed heartbeat waits before trying again.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

/// How long before its lease lapses work on a message stops when the lease could not be extended:
/// a tenth of the visibility timeout, at least half a second, so that the work has stopped before SQS
/// may hand the message to another replica (the lease is counted from before the receive call, so
/// the clock difference with SQS only makes it earlier).
pub fn lease_margin(visibility: Duration) -> Duration {
    (visibility / 10).max(Duration::from_millis(500)).min(visibility / 2)
}

/// Run the handler on one message, as every runner (the consumer loop, a Lambda batch) does: a panic
/// is a retry, or `internal_error` on the last delivery; a retry on the last delivery becomes an
/// `unavailable` rejection, because the redrive policy would move the message verbatim and without a
/// code: it is kept here instead, redacted and coded.
pub async fn handle_guarded<H: Handler + ?Sized>(handler: &H, message: &ReceivedMessage, attempt: Attempt) -> Outcome {
    let outcome = match AssertUnwindSafe(handler.handle(message, attempt)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) if attempt.is_last => {
            Outcome::rejected("unknown", ErrorCode::InternalError, "the handler failed on every delivery")
        }
        Err(_) => Outcome::retry("unknown", "the handler panicked"),
    };
    match outcome.disposition {
        Disposition::Retry { reason, .. } if attempt.is_last => Outcome {
            kind: outcome.kind,
            disposition: Disposition::Reject {
                code: ErrorCode::Unavailable,
                reason: format!("gave up after the last delivery: {reason}"),
            },
        },
        other => Outcome { kind: outcome.kind, disposition: other },
    }
}

/// What becomes of a handled message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Its work is durable (done, or kept in the dead-letter queue): delete it.
    Delete,
    /// Leave it for redelivery after this delay.
    Redeliver { after: Duration },
}

/// Record a handled message's outcome and act on it the one way every runner does: metrics and logs,
/// a rejected message kept in the dead-letter queue (body and reason redacted, with its code) before
/// it may be deleted, a retry's delay. Deleting (or not) is the caller's: the consumer batches its
/// deletes; Lambda deletes what the function does not report as failed.
pub async fn settle<Q: Queue + ?Sized>(
    queue: &Q,
    options: &ConsumerOptions,
    metrics: &PipelineMetrics,
    message: &ReceivedMessage,
    attempt: Attempt,
    outcome: &Outcome,
    elapsed: Duration,
) -> Settled {
    let elapsed = elapsed.as_secs_f64();
    let queue_name = queue.name().to_owned();
    let labels = [
        KeyValue::new("queue", queue_name.clone()),
        KeyValue::new("kind", outcome.kind.clone()),
        KeyValue::new("outcome", outcome.label()),
    ];
    metrics.processed.add(1, &labels);
    metrics.duration.record(elapsed, &labels);
    match &outcome.disposition {
        Disposition::Done => {
            debug!(kind = %outcome.kind, elapsed, "message done");
            Settled::Delete
        }
        Disposition::Reject { code, reason } => {
            metrics.failed.add(1, &[labels[0].clone(), labels[1].clone(), KeyValue::new("code", code.as_str())]);
            info!(kind = %outcome.kind, code = %code, reason = %redact_secrets(reason), "message rejected");
            let kept = ReceivedMessage { body: redact_secrets(&message.body), ..message.clone() };
            match queue.dead_letter(&kept, *code, &redact_secrets(reason)).await {
                Ok(()) => {
                    metrics.dead_lettered.add(1, &[labels[0].clone(), KeyValue::new("code", code.as_str())]);
                    Settled::Delete
                }
                Err(e) => {
                    // Not deleted: it comes back and is rejected (and answered) again.
                    metrics.queue_error(&queue_name, e.op);
                    error!(error = %e, "could not dead-letter a rejected message; it stays in the queue");
                    Settled::Redeliver { after: options.backoff(attempt.number) }
                }
            }
        }
        Disposition::Retry { reason, after } => {
            metrics.failed.add(1, &[labels[0].clone(), labels[1].clone(), KeyValue::new("code", "retry")]);
            let delay = after.unwrap_or_else(|| options.backoff(attempt.number));
            warn!(kind = %outcome.kind, reason = %redact_secrets(reason), retry_in = ?delay, "message will be retried");
            Settled::Redeliver { after: delay }
        }
    }
}

/// What [`process_batch`] made of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Message ids to leave in the queue (retries, unfinished work, dead letters that could not be
    /// written): Lambda's `batchItemFailures`. Every other message may be deleted.
    pub failed: Vec<String>,
}

/// Handle a batch someone else received (an SQS event source mapping's Lambda invocation), with the
/// consumer's semantics: up to `concurrency` at once, rejections dead-lettered with their code,
/// retries left with their backoff. Work still running at `stop_at` (the invocation's deadline less a
/// margin) is stopped before it replies or deletes anything and reported as failed, like a lapsed
/// lease on ECS. Nothing here deletes: the caller (Lambda) deletes what is not reported.
pub async fn process_batch<Q: Queue, H: Handler>(
    queue: &Q,
    handler: &H,
    options: &ConsumerOptions,
    metrics: &PipelineMetrics,
    messages: Vec<ReceivedMessage>,
    stop_at: Option<tokio::time::Instant>,
) -> BatchReport {
    use futures::StreamExt;
    let one = |message: ReceivedMessage| async move {
        let attempt = Attempt {
            number: message.receive_count,
            is_last: queue.max_receive_count().is_some_and(|max| message.receive_count >= max),
        };
        metrics.received.add(1, &[KeyValue::new("queue", queue.name().to_owned())]);
        let started = Instant::now();
        let handled = handle_guarded(handler, &message, attempt);
        let outcome = match stop_at {
            Some(at) => match tokio::time::timeout_at(at, handled).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    metrics.processed.add(
                        1,
                        &[
                            KeyValue::new("queue", queue.name().to_owned()),
                            KeyValue::new("kind", "unknown"),
                            KeyValue::new("outcome", "abandoned"),
                        ],
                    );
                    warn!(message_id = %message.message_id, "the invocation's time ran out: work on this message stopped; it will be redelivered");
                    return Some(message.message_id);
                }
            },
            None => handled.await,
        };
        match settle(queue, options, metrics, &message, attempt, &outcome, started.elapsed()).await {
            Settled::Delete => None,
            Settled::Redeliver { after } => {
                if let Err(e) = queue.change_visibility(&message.receipt_handle, after).await {
                    metrics.queue_error(queue.name(), e.op);
                    warn!(error = %e, "could not set the retry delay; the visibility timeout applies");
                }
                Some(message.message_id)
            }
        }
    };
    let failed = futures::stream::iter(messages)
        .map(one)
        .buffer_unordered(options.concurrency.max(1))
        .filter_map(|failed| async move { failed })
        .collect::<Vec<_>>()
        .await;
    BatchReport { failed }
}

/// How long a finished message may wait for others to share its `DeleteMessageBatch`: a second, or a
/// tenth of the visibility timeout when that is shorter. Deleting late costs nothing but a little
/// visibility (the lease has about two thirds of the timeout left when the work ends); deleting one
/// at a time costs a call per message under load.
fn delete_linger(visibility: Duration) -> Duration {
    (visibility / 10).min(Duration::from_secs(1))
}

/// Deletes finished messages in batches of ten: a batch goes when it is full, when its oldest
/// receipt has waited `linger`, or at shutdown.
async fn run_deleter<Q: Queue>(
    queue: Arc<Q>,
    mut rx: mpsc::Receiver<String>,
    metrics: PipelineMetrics,
    linger: Duration,
) {
    let mut pending: Vec<String> = Vec::with_capacity(MAX_BATCH);
    let mut flush_at = tokio::time::Instant::now();
    loop {
        let next = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(flush_at, rx.recv()).await {
                Ok(r) => r,
                Err(_) => {
                    flush(&*queue, &mut pending, &metrics).await;
                    continue;
                }
            }
        };
        match next {
            Some(receipt) => {
                if pending.is_empty() {
                    flush_at = tokio::time::Instant::now() + linger;
                }
                pending.push(receipt);
                if pending.len() >= MAX_BATCH {
                    flush(&*queue, &mut pending, &metrics).await;
                }
            }
            None => {
                flush(&*queue, &mut pending, &metrics).await;
                return;
            }
        }
    }
}

async fn flush<Q: Queue>(queue: &Q, pending: &mut Vec<String>, metrics: &PipelineMetrics) {
    let mut batch = std::mem::take(pending);
    for attempt in 1..=3u64 {
        if batch.is_empty() {
            return;
        }
        match queue.delete_batch(&batch).await {
            Ok(failed) => {
                for (receipt, why) in &failed {
                    metrics.queue_error(queue.name(), "DeleteMessageBatch");
                    warn!(receipt = %short(receipt), reason = %why, attempt, "delete failed for one entry");
                }
                // Retry only the failed entries.
                batch = failed.into_iter().map(|(r, _)| r).collect();
            }
            Err(e) => {
                metrics.queue_error(queue.name(), e.op);
                warn!(error = %e, attempt, "delete batch failed");
            }
        }
        if !batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
        }
    }
    if !batch.is_empty() {
        warn!(count = batch.len(), "giving up deleting; those messages will be redelivered and handled idempotently");
    }
}

fn short(receipt: &str) -> &str {
    &receipt[..receipt.len().min(16)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{MemoryQueue, VisibilityFault};
    use opentelemetry::metrics::MeterProvider;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct ScriptedHandler {
        running: AtomicUsize,
        max_running: AtomicUsize,
    }

    impl ScriptedHandler {
        fn new() -> Arc<Self> {
            Arc::new(Self { running: AtomicUsize::new(0), max_running: AtomicUsize::new(0) })
        }
    }

    #[async_trait]
    impl Handler for ScriptedHandler {
        async fn handle(&self, m: &ReceivedMessage, _attempt: Attempt) -> Outcome {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            match m.body.as_str() {
                b if b.starts_with("bad") => Outcome::rejected("test", ErrorCode::BadRequest, "not valid"),
                "flaky" => Outcome::retry("test", "dependency down"),
                "panic" => panic!("boom"),
                _ => Outcome::done("test"),
            }
        }
    }

    fn message(id: &str, receipt: &str, body: &str, receive_count: u32) -> ReceivedMessage {
        ReceivedMessage {
            message_id: id.to_owned(),
            receipt_handle: receipt.to_owned(),
            body: body.to_owned(),
            receive_count,
            sender_id: None,
            attributes: HashMap::new(),
        }
    }

    fn options() -> ConsumerOptions {
        ConsumerOptions {
            concurrency: 4,
            wait: Duration::from_millis(10),
            visibility_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// Run a consumer over `queue` in the background; cancel the token to stop it.
    fn spawn_consumer<H: Handler>(
        queue: &Arc<MemoryQueue>,
        handler: Arc<H>,
        opts: ConsumerOptions,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let meter = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build().meter("test");
        let shutdown = CancellationToken::new();
        let task =
            tokio::spawn(run_consumer(queue.clone(), handler, opts, PipelineMetrics::new(&meter), shutdown.clone()));
        (shutdown, task)
    }

    /// Poll `done` until it holds, failing with `what` after `timeout` (of tokio time: paused in these
    /// tests, so waiting costs nothing).
    async fn wait_for(timeout: Duration, what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn run_until(queue: &Arc<MemoryQueue>, handler: Arc<ScriptedHandler>, done: impl Fn(&MemoryQueue) -> bool) {
        let (shutdown, task) = spawn_consumer(queue, handler, options());
        wait_for(Duration::from_secs(60), "timed out", || done(queue)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn done_rejected_retry_and_panic_are_dispatched_and_nothing_is_redriven_without_a_code() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        let ids: Vec<String> = ["ok", "bad", "flaky", "panic", "ok"].iter().map(|b| queue.push(b)).collect();
        queue.fail_delete_once(&format!("{}-r1", ids[4]));
        run_until(&queue, ScriptedHandler::new(), |q| q.depth() == 0).await;

        // ok, rejected (after dead-lettering), the ok whose first delete failed, and the two that
        // failed their third and last delivery.
        let mut deleted = queue.deleted();
        deleted.sort();
        let r = |i: usize, n: u32| format!("{}-r{n}", ids[i]);
        let mut expected = vec![r(0, 1), r(1, 1), r(2, 3), r(3, 3), r(4, 1)];
        expected.sort();
        assert_eq!(deleted, expected);
        let mut dead: Vec<(String, ErrorCode)> =
            queue.dead_letters().into_iter().map(|d| (d.message_id, d.code)).collect();
        dead.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            dead,
            vec![
                (ids[1].clone(), ErrorCode::BadRequest),
                (ids[2].clone(), ErrorCode::Unavailable),
                (ids[3].clone(), ErrorCode::InternalError)
            ]
        );
        assert!(queue.redriven().is_empty(), "the consumer keeps last failures itself, with a code");
        // Retries waited the backoff: 2 s ±20 % after the first delivery, 4 s ±20 % after the second.
        let vis = queue.visibility_changes();
        for (receipt, lo, hi) in [(r(2, 1), 1600, 2400), (r(2, 2), 3200, 4800), (r(3, 1), 1600, 2400)] {
            let d = vis
                .iter()
                .find(|(x, _)| *x == receipt)
                .map(|(_, d)| *d)
                .unwrap_or_else(|| panic!("{receipt}: {vis:?}"));
            assert!(d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi), "{receipt}: {d:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dead_lettered_bodies_and_reasons_hold_no_token() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        queue.push(&format!(r#"bad {{"identity_token":"{jwt}","x":["{jwt}"]}}"#));
        run_until(&queue, ScriptedHandler::new(), |q| q.depth() == 0).await;
        let dead = queue.dead_letters();
        assert_eq!(dead.len(), 1);
        assert!(!dead[0].body.contains("c2lnbmF0dXJl") && dead[0].body.contains("[redacted]"), "{}", dead[0].body);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        for _ in 0..40 {
            queue.push("ok");
        }
        let handler = ScriptedHandler::new();
        run_until(&queue, handler.clone(), |q| q.deleted().len() == 40).await;
        let max = handler.max_running.load(Ordering::SeqCst);
        assert!((2..=4).contains(&max), "max concurrent handlers {max}");
    }

    /// A handler that takes `delay` and records when it is running.
    struct SlowHandler {
        delay: Duration,
        started: AtomicUsize,
    }

    #[async_trait]
    impl Handler for SlowHandler {
        async fn handle(&self, _m: &ReceivedMessage, _attempt: Attempt) -> Outcome {
            self.started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Outcome::done("slow")
        }
    }

    async fn wait_started(handler: &SlowHandler) {
        wait_for(Duration::from_secs(5), "handler never started", || handler.started.load(Ordering::SeqCst) > 0).await;
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_finishes_in_flight_messages_and_heartbeats_keep_them_invisible() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        let id = queue.push("ok");
        let handler = Arc::new(SlowHandler { delay: Duration::from_millis(2500), started: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(3);
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        wait_started(&handler).await;
        // Stop while the message is in flight: it must still finish and be deleted.
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops within the grace period").unwrap();
        let receipt = format!("{id}-r1");
        assert_eq!(queue.deleted(), vec![receipt.clone()]);
        // Visibility was extended (every second for a 3 s timeout) while the 2.5 s handler ran.
        let beats: Vec<Duration> =
            queue.visibility_changes().into_iter().filter(|(r, _)| *r == receipt).map(|(_, d)| d).collect();
        assert_eq!(beats, vec![Duration::from_secs(3); 2], "a beat at 1 s and at 2 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_delivery_in_flight_hands_its_receipt_to_the_running_handler() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        queue.push_message(message("m1", "r1", "ok", 1));
        let handler = Arc::new(SlowHandler { delay: Duration::from_millis(2500), started: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(3);
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        wait_started(&handler).await;
        // The visibility lapsed somewhere and SQS delivered the message again, with a new receipt.
        queue.push_message(message("m1", "r1-second", "ok", 2));
        wait_for(Duration::from_secs(10), "never deleted", || !queue.deleted().is_empty()).await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(handler.started.load(Ordering::SeqCst), 1, "handled once");
        // Only the newest receipt can delete it (SQS ignores a delete with an older one).
        assert_eq!(queue.deleted(), vec!["r1-second"]);
        let beats = queue.visibility_changes();
        assert!(beats.iter().any(|(r, _)| r == "r1-second"), "heartbeats use the newest receipt: {beats:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_grace_period_unfinished_work_is_left_for_redelivery_and_heartbeats_stop() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        queue.push("ok");
        let handler = Arc::new(SlowHandler { delay: Duration::from_secs(3600), started: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(3);
        opts.shutdown_grace = Duration::from_millis(300);
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        wait_started(&handler).await;
        let stopping = tokio::time::Instant::now();
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops after the grace period").unwrap();
        assert_eq!(stopping.elapsed(), Duration::from_millis(300), "exactly the grace period");
        assert!(queue.deleted().is_empty(), "unfinished work is not deleted");
        let beats = queue.visibility_changes().len();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(queue.visibility_changes().len(), beats, "no heartbeat outlives its task");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_consumer_receives_in_tens() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        for _ in 0..100 {
            queue.push("ok");
        }
        let handler = ScriptedHandler::new();
        run_until(&queue, handler.clone(), |q| q.deleted().len() == 100).await;
        let receives: Vec<usize> = queue.receives().into_iter().filter(|n| *n > 0).collect();
        assert_eq!(receives, vec![10; 10], "ten receives of ten for 100 messages with 4 handlers");
        assert!(handler.max_running.load(Ordering::SeqCst) <= 4, "concurrency still bounds the handlers");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_consumer_deletes_in_tens() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        for _ in 0..100 {
            queue.push("ok");
        }
        // Four handlers of 50 ms each finish four messages every 50 ms: waiting up to the linger
        // for a full batch makes every delete carry ten.
        let handler = Arc::new(SlowHandler { delay: Duration::from_millis(50), started: AtomicUsize::new(0) });
        let (shutdown, task) = spawn_consumer(&queue, handler, options());
        wait_for(Duration::from_secs(60), "all deleted", || queue.deleted().len() == 100).await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(queue.delete_batches(), vec![10; 10], "deletes go in tens under load");
    }

    /// A handler that waits `delay`, then records that it reached the point where it would act.
    struct ActingHandler {
        delay: Duration,
        acted: AtomicUsize,
    }

    #[async_trait]
    impl Handler for ActingHandler {
        async fn handle(&self, _m: &ReceivedMessage, _attempt: Attempt) -> Outcome {
            tokio::time::sleep(self.delay).await;
            self.acted.fetch_add(1, Ordering::SeqCst);
            Outcome::done("acting")
        }
    }

    async fn run_with_visibility_fault(fault: VisibilityFault) -> (Arc<MemoryQueue>, Arc<ActingHandler>, Duration) {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        queue.push("ok");
        queue.set_visibility_fault(Some(fault));
        let handler = Arc::new(ActingHandler { delay: Duration::from_secs(60), acted: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(30);
        let started = tokio::time::Instant::now();
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        // The handler needs 60 s; the lease is 30 s and cannot be extended.
        tokio::time::sleep(Duration::from_secs(90)).await;
        shutdown.cancel();
        task.await.unwrap();
        (queue, handler, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_heartbeat_stops_the_work_before_the_lease_lapses() {
        let (queue, handler, _) = run_with_visibility_fault(VisibilityFault::Hang).await;
        assert_eq!(handler.acted.load(Ordering::SeqCst), 0, "the work stopped before it could act");
        assert!(queue.deleted().is_empty() && queue.dead_letters().is_empty(), "nothing deleted or kept");
        // The message came back after its visibility lapsed (30 s) and was received again: the second
        // delivery's work was stopped the same way, never acting.
        assert!(queue.receives().iter().filter(|n| **n > 0).count() >= 2, "{:?}", queue.receives());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_heartbeat_is_retried_then_stops_the_work() {
        let (queue, handler, _) = run_with_visibility_fault(VisibilityFault::Fail).await;
        assert_eq!(handler.acted.load(Ordering::SeqCst), 0);
        assert!(queue.deleted().is_empty() && queue.dead_letters().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_that_recovers_keeps_the_work_going() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        let id = queue.push("ok");
        queue.set_visibility_fault(Some(VisibilityFault::Fail));
        let handler = Arc::new(ActingHandler { delay: Duration::from_secs(60), acted: AtomicUsize::new(0) });
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), options());
        // The first beat (10 s) and its retries fail; SQS answers again before the lease's margin.
        tokio::time::sleep(Duration::from_secs(15)).await;
        queue.set_visibility_fault(None);
        wait_for(Duration::from_secs(120), "never deleted", || !queue.deleted().is_empty()).await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(handler.acted.load(Ordering::SeqCst), 1);
        assert_eq!(queue.deleted(), vec![format!("{id}-r1")], "handled once, on its first delivery");
    }

    #[tokio::test(start_paused = true)]
    async fn messages_received_ahead_are_handed_back_on_shutdown() {
        let queue = Arc::new(MemoryQueue::new("memory", Some(3)));
        for _ in 0..10 {
            queue.push("ok");
        }
        let handler = Arc::new(SlowHandler { delay: Duration::from_secs(2), started: AtomicUsize::new(0) });
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), options());
        wait_started(&handler).await;
        shutdown.cancel();
        task.await.unwrap();
        // Four were being handled and finished; the six waiting for a handler went back at once.
        assert_eq!(handler.started.load(Ordering::SeqCst), 4);
        assert_eq!(queue.deleted().len(), 4);
        let released = queue.visibility_changes().into_iter().filter(|(_, d)| d.is_zero()).count();
        assert_eq!(released, 6);
    }

    #[test]
    fn the_lease_margin_leaves_room_before_the_visibility_lapses() {
        assert_eq!(lease_margin(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(lease_margin(Duration::from_secs(3)), Duration::from_millis(500));
        assert_eq!(lease_margin(Duration::from_millis(600)), Duration::from_millis(300));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let o = options();
        assert!(o.backoff(1) < Duration::from_millis(2500));
        assert!(o.backoff(3) >= Duration::from_millis(6400));
        assert!(o.backoff(30) <= Duration::from_secs(72));
    }
}
