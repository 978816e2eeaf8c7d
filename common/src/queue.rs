//! The SQS consumer runtime shared by every worker.
//!
//! - [`Queue`] is what a consumer needs from a queue (receive, extend visibility, delete in batches,
//!   dead-letter); [`SqsQueue`] implements it over SQS, and tests can implement it in memory.
//! - [`Handler`] turns one message into an [`Outcome`]: done, rejected (permanent: bad input or
//!   forbidden) or retry (a dependency failed).
//! - [`run_consumer`] long-polls in batches of up to 10 while at most `concurrency` messages are in
//!   flight, keeps each in-flight message invisible with a heartbeat, deletes finished messages in
//!   batches (checking every failed entry), sends rejected messages to the dead-letter queue with the
//!   error code and reason as message attributes *before* deleting them, and leaves retryable
//!   failures for redelivery after an exponential backoff (the queue's redrive policy moves a message
//!   that keeps failing to the dead-letter queue). On shutdown it stops receiving, lets in-flight
//!   messages finish within a grace period, flushes deletes and returns. A message is only ever
//!   deleted after its work is durable, so a worker killed at any point loses nothing: the message
//!   reappears and the (idempotent) handler runs again.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use futures::FutureExt;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::config::WorkerSettings;
use crate::store::aws_error_message;

/// Message attribute carrying the error code on a dead-lettered message.
pub const ATTR_ERROR_CODE: &str = "portcullis.error_code";
/// Message attribute carrying the error sentence on a dead-lettered message.
pub const ATTR_ERROR_REASON: &str = "portcullis.error_reason";
/// Message attribute naming the queue a dead-lettered message came from.
pub const ATTR_SOURCE_QUEUE: &str = "portcullis.source_queue";
/// Message attribute with the SQS message id at the source queue.
pub const ATTR_SOURCE_MESSAGE_ID: &str = "portcullis.source_message_id";
/// SQS allows at most 10 entries per batch call and per receive.
pub const MAX_BATCH: usize = 10;

/// A queue failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SQS {op} on {queue} failed: {message}")]
pub struct QueueError {
    pub op: &'static str,
    pub queue: String,
    pub message: String,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times SQS has handed this message out (1 on first delivery).
    pub receive_count: u32,
    /// The IAM principal that sent it (`SenderId`), when the queue reports it.
    pub sender_id: Option<String>,
    /// String message attributes.
    pub attributes: HashMap<String, String>,
}

/// What a consumer needs from a queue.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Queue name, for logs and metrics.
    fn name(&self) -> &str;
    /// The redrive policy's `maxReceiveCount`, if any.
    fn max_receive_count(&self) -> Option<u32>;
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError>;
    /// Delete up to 10 messages; returns the receipts that failed.
    async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<(String, String)>, QueueError>;
    /// Keep `message` in the dead-letter queue with its reason.
    async fn dead_letter(&self, message: &ReceivedMessage, code: &str, reason: &str) -> Result<(), QueueError>;
}

/// An SQS queue and its dead-letter queue (found through the redrive policy).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    name: String,
    url: String,
    dlq_url: Option<String>,
    max_receive_count: Option<u32>,
}

impl SqsQueue {
    /// Look the queue up by name and read its redrive policy.
    pub async fn connect(client: Client, name: &str) -> Result<Self, QueueError> {
        let err = |op: &'static str, message: String| QueueError { op, queue: name.to_owned(), message };
        let url = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| err("GetQueueUrl", aws_error_message(&e)))?
            .queue_url
            .ok_or_else(|| err("GetQueueUrl", "no URL returned".into()))?;
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| err("GetQueueAttributes", aws_error_message(&e)))?;
        let redrive = attrs
            .attributes
            .as_ref()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
        let mut dlq_url = None;
        let mut max_receive_count = None;
        if let Some(policy) = redrive {
            max_receive_count = match &policy["maxReceiveCount"] {
                serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            };
            if let Some(arn) = policy["deadLetterTargetArn"].as_str() {
                // arn:aws:sqs:region:account:name
                let parts: Vec<&str> = arn.split(':').collect();
                if parts.len() == 6 {
                    let out = client
                        .get_queue_url()
                        .queue_name(parts[5])
                        .queue_owner_aws_account_id(parts[4])
                        .send()
                        .await
                        .map_err(|e| err("GetQueueUrl", aws_error_message(&e)))?;
                    dlq_url = out.queue_url;
                }
            }
        }
        if dlq_url.is_none() {
            warn!(
                queue = name,
                "queue has no redrive policy: rejected messages cannot be dead-lettered and will stay in the queue"
            );
        }
        Ok(Self { client, name: name.to_owned(), url, dlq_url, max_receive_count })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dlq_url(&self) -> Option<&str> {
        self.dlq_url.as_deref()
    }

    fn err(&self, op: &'static str, message: String) -> QueueError {
        QueueError { op, queue: self.name.clone(), message }
    }
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn string_attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_receive_count(&self) -> Option<u32> {
        self.max_receive_count
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(secs_i32(wait).min(20))
            .visibility_timeout(secs_i32(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SenderId)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| self.err("ReceiveMessage", aws_error_message(&e)))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let system = m.attributes.unwrap_or_default();
                Some(ReceivedMessage {
                    message_id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count: system
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                    sender_id: system.get(&MessageSystemAttributeName::SenderId).cloned(),
                    attributes: m
                        .message_attributes
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                        .collect(),
                })
            })
            .collect())
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs_i32(timeout).min(43_200))
            .send()
            .await
            .map_err(|e| self.err("ChangeMessageVisibility", aws_error_message(&e)))?;
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<(String, String)>, QueueError> {
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err("DeleteMessageBatch", e.to_string()))?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.err("DeleteMessageBatch", aws_error_message(&e)))?;
        Ok(out
            .failed
            .into_iter()
            .filter_map(|f| {
                let receipt = receipts.get(f.id.parse::<usize>().ok()?)?.clone();
                Some((receipt, format!("{}: {}", f.code, f.message.unwrap_or_default())))
            })
            .collect())
    }

    async fn dead_letter(&self, message: &ReceivedMessage, code: &str, reason: &str) -> Result<(), QueueError> {
        let dlq = self
            .dlq_url
            .as_deref()
            .ok_or_else(|| self.err("SendMessage", "the queue has no dead-letter queue".into()))?;
        let reason: String = reason.chars().take(1024).collect();
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(if message.body.is_empty() { "<empty>" } else { &message.body })
            .message_attributes(ATTR_ERROR_CODE, string_attr(code))
            .message_attributes(ATTR_ERROR_REASON, string_attr(&reason))
            .message_attributes(ATTR_SOURCE_QUEUE, string_attr(&self.name))
            .message_attributes(ATTR_SOURCE_MESSAGE_ID, string_attr(&message.message_id))
            .send()
            .await
            .map_err(|e| self.err("SendMessage", aws_error_message(&e)))?;
        Ok(())
    }
}

/// Which delivery of a message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 on first delivery.
    pub number: u32,
    /// True when the redrive policy will dead-letter the message if this attempt fails too; a
    /// handler should then answer the requester instead of asking for another retry.
    pub is_last: bool,
}

/// What should happen to a handled message.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Work is durable: delete the message.
    Done,
    /// Permanent failure: keep it in the dead-letter queue with this code and reason, then delete it.
    Rejected { code: String, reason: String },
    /// Transient failure: leave it for redelivery after a backoff.
    Retry { reason: String },
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
    pub fn rejected(kind: impl Into<String>, code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { kind: kind.into(), disposition: Disposition::Rejected { code: code.into(), reason: reason.into() } }
    }
    pub fn retry(kind: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { kind: kind.into(), disposition: Disposition::Retry { reason: reason.into() } }
    }
    fn label(&self) -> &'static str {
        match self.disposition {
            Disposition::Done => "ok",
            Disposition::Rejected { .. } => "rejected",
            Disposition::Retry { .. } => "retry",
        }
    }
}

/// Handles one message.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome;

    /// The body to keep in the dead-letter queue instead of the one received, for example with a
    /// bearer token removed. `None` (the default) keeps the message verbatim.
    fn dead_letter_body(&self, _message: &ReceivedMessage) -> Option<String> {
        None
    }
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
            received: meter
                .u64_counter("portcullis_messages_received")
                .with_description("Messages received from a queue")
                .with_unit("{message}")
                .build(),
            processed: meter
                .u64_counter("portcullis_messages_processed")
                .with_description("Messages handled, by kind and outcome (ok, rejected, retry)")
                .with_unit("{message}")
                .build(),
            failed: meter
                .u64_counter("portcullis_messages_failed")
                .with_description("Messages that failed, by kind and error code")
                .with_unit("{message}")
                .build(),
            dead_lettered: meter
                .u64_counter("portcullis_messages_dead_lettered")
                .with_description("Messages moved to the dead-letter queue, by error code")
                .with_unit("{message}")
                .build(),
            queue_errors: meter
                .u64_counter("portcullis_queue_errors")
                .with_description("Failed SQS calls, by operation")
                .with_unit("{error}")
                .build(),
            duration: meter
                .f64_histogram("portcullis_handler_duration")
                .with_description("Time to handle one message")
                .with_unit("s")
                .with_boundaries(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
                .build(),
        }
    }

    fn queue_error(&self, queue: &str, op: &'static str) {
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
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let (delete_tx, delete_rx) = mpsc::channel::<String>(1024);
    let deleter = tokio::spawn(run_deleter(queue.clone(), delete_rx, metrics.clone()));
    let in_flight: InFlight = Arc::default();
    let mut tasks = JoinSet::new();
    let mut receive_failures = 0u32;
    // Shutdown's time budget: set when shutdown interrupts a long poll, else when the loop ends.
    let mut deadline = None;

    loop {
        while tasks.try_join_next().is_some() {}
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = semaphore.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match semaphore.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let receive = queue.receive(permits.len(), options.wait, options.visibility_timeout);
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
            let Some(permit) = permits.pop() else {
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
            };
            let span = info_span!("message", queue = %queue_name, message_id = %message.message_id, attempt = message.receive_count);
            tasks.spawn(
                async move {
                    ctx.process(message).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
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
}

/// Aborts the task when dropped, so a heartbeat never outlives its message's task.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<Q: Queue, H: Handler> MessageContext<Q, H> {
    async fn process(self, message: ReceivedMessage) {
        let attempt = Attempt {
            number: message.receive_count,
            is_last: self.queue.max_receive_count().is_some_and(|max| message.receive_count >= max),
        };
        let heartbeat = self.spawn_heartbeat();
        let started = Instant::now();
        let outcome = AssertUnwindSafe(self.handler.handle(&message, attempt))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Outcome::retry("unknown", "the handler panicked"));
        drop(heartbeat);
        let receipt = self.current_receipt(&message);
        let elapsed = started.elapsed().as_secs_f64();
        let queue_name = self.queue.name().to_owned();
        let labels = [
            KeyValue::new("queue", queue_name.clone()),
            KeyValue::new("kind", outcome.kind.clone()),
            KeyValue::new("outcome", outcome.label()),
        ];
        self.metrics.processed.add(1, &labels);
        self.metrics.duration.record(elapsed, &labels);

        match &outcome.disposition {
            Disposition::Done => {
                debug!(kind = %outcome.kind, elapsed, "message done");
                let _ = self.delete_tx.send(receipt.clone()).await;
            }
            Disposition::Rejected { code, reason } => {
                self.metrics
                    .failed
                    .add(1, &[labels[0].clone(), labels[1].clone(), KeyValue::new("code", code.clone())]);
                info!(kind = %outcome.kind, code = %code, reason = %reason, "message rejected");
                let kept = match self.handler.dead_letter_body(&message) {
                    Some(body) => ReceivedMessage { body, ..message.clone() },
                    None => message.clone(),
                };
                match self.queue.dead_letter(&kept, code, reason).await {
                    Ok(()) => {
                        self.metrics.dead_lettered.add(1, &[labels[0].clone(), KeyValue::new("code", code.clone())]);
                        let _ = self.delete_tx.send(receipt.clone()).await;
                    }
                    Err(e) => {
                        // Not deleted: it comes back and is rejected (and answered) again.
                        self.metrics.queue_error(&queue_name, e.op);
                        error!(error = %e, "could not dead-letter a rejected message; it stays in the queue");
                        let _ = self.queue.change_visibility(&receipt, self.options.backoff(attempt.number)).await;
                    }
                }
            }
            Disposition::Retry { reason } => {
                self.metrics.failed.add(1, &[labels[0].clone(), labels[1].clone(), KeyValue::new("code", "retry")]);
                let delay = self.options.backoff(attempt.number);
                warn!(kind = %outcome.kind, reason = %reason, retry_in = ?delay, "message will be retried");
                if let Err(e) = self.queue.change_visibility(&receipt, delay).await {
                    self.metrics.queue_error(&queue_name, e.op);
                    warn!(error = %e, "could not set the retry delay; the visibility timeout applies");
                }
            }
        }
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&message.message_id);
        }
    }

    fn current_receipt(&self, message: &ReceivedMessage) -> String {
        self.receipt.lock().map(|r| r.clone()).unwrap_or_else(|_| message.receipt_handle.clone())
    }

    fn spawn_heartbeat(&self) -> AbortOnDrop {
        let queue = self.queue.clone();
        let metrics = self.metrics.clone();
        let receipt = self.receipt.clone();
        let visibility = self.options.visibility_timeout;
        let every = (visibility / 3).max(Duration::from_secs(1));
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let current = match receipt.lock() {
                    Ok(r) => r.clone(),
                    Err(_) => return,
                };
                if let Err(e) = queue.change_visibility(&current, visibility).await {
                    metrics.queue_error(queue.name(), e.op);
                    warn!(error = %e, "visibility heartbeat failed");
                }
            }
        }))
    }
}

async fn run_deleter<Q: Queue>(queue: Arc<Q>, mut rx: mpsc::Receiver<String>, metrics: PipelineMetrics) {
    let mut pending: Vec<String> = Vec::with_capacity(MAX_BATCH);
    loop {
        let next = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
                Ok(r) => r,
                Err(_) => {
                    flush(&*queue, &mut pending, &metrics).await;
                    continue;
                }
            }
        };
        match next {
            Some(receipt) => {
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
    use opentelemetry::metrics::MeterProvider;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory queue recording what the runtime did.
    #[derive(Default)]
    struct MemoryQueue {
        ready: Mutex<Vec<ReceivedMessage>>,
        deleted: Mutex<Vec<String>>,
        dead: Mutex<Vec<(String, String)>>,
        visibility: Mutex<Vec<(String, Duration)>>,
        fail_deletes_once: Mutex<HashSet<String>>,
    }

    #[async_trait]
    impl Queue for MemoryQueue {
        fn name(&self) -> &str {
            "memory"
        }
        fn max_receive_count(&self) -> Option<u32> {
            Some(3)
        }
        async fn receive(
            &self,
            max: usize,
            _wait: Duration,
            _vis: Duration,
        ) -> Result<Vec<ReceivedMessage>, QueueError> {
            let batch: Vec<ReceivedMessage> = {
                let mut ready = self.ready.lock().unwrap();
                let n = max.min(ready.len());
                ready.drain(..n).collect()
            };
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(batch)
        }
        async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
            self.visibility.lock().unwrap().push((receipt.to_owned(), timeout));
            Ok(())
        }
        async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<(String, String)>, QueueError> {
            assert!(receipts.len() <= MAX_BATCH);
            let mut failed = Vec::new();
            for r in receipts {
                if self.fail_deletes_once.lock().unwrap().remove(r) {
                    failed.push((r.clone(), "InternalError".to_owned()));
                } else {
                    self.deleted.lock().unwrap().push(r.clone());
                }
            }
            Ok(failed)
        }
        async fn dead_letter(&self, m: &ReceivedMessage, code: &str, _reason: &str) -> Result<(), QueueError> {
            self.dead.lock().unwrap().push((m.message_id.clone(), code.to_owned()));
            Ok(())
        }
    }

    struct ScriptedHandler {
        running: AtomicUsize,
        max_running: AtomicUsize,
    }

    #[async_trait]
    impl Handler for ScriptedHandler {
        async fn handle(&self, m: &ReceivedMessage, _attempt: Attempt) -> Outcome {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            match m.body.as_str() {
                "bad" => Outcome::rejected("test", "bad_request", "not valid"),
                "flaky" => Outcome::retry("test", "dependency down"),
                "panic" => panic!("boom"),
                _ => Outcome::done("test"),
            }
        }
    }

    fn message(i: usize, body: &str) -> ReceivedMessage {
        ReceivedMessage {
            message_id: format!("m{i}"),
            receipt_handle: format!("r{i}"),
            body: body.to_owned(),
            receive_count: 1,
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

    /// Poll `done` until it holds, failing with `what` after `timeout`.
    async fn wait_for(timeout: Duration, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn run_until<F: Fn(&MemoryQueue) -> bool>(queue: Arc<MemoryQueue>, handler: Arc<ScriptedHandler>, done: F) {
        let (shutdown, task) = spawn_consumer(&queue, handler, options());
        wait_for(Duration::from_secs(10), "timed out", || done(&queue)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn done_rejected_retry_and_panic_are_dispatched() {
        let queue = Arc::new(MemoryQueue::default());
        *queue.ready.lock().unwrap() =
            vec![message(1, "ok"), message(2, "bad"), message(3, "flaky"), message(4, "panic"), message(5, "ok")];
        queue.fail_deletes_once.lock().unwrap().insert("r5".into());
        let handler = Arc::new(ScriptedHandler { running: AtomicUsize::new(0), max_running: AtomicUsize::new(0) });
        run_until(queue.clone(), handler, |q| {
            q.deleted.lock().unwrap().len() == 3 && q.visibility.lock().unwrap().len() >= 2
        })
        .await;
        let mut deleted = queue.deleted.lock().unwrap().clone();
        deleted.sort();
        // ok, rejected (after dead-lettering) and the ok whose first delete failed.
        assert_eq!(deleted, vec!["r1", "r2", "r5"]);
        assert_eq!(*queue.dead.lock().unwrap(), vec![("m2".to_owned(), "bad_request".to_owned())]);
        let vis = queue.visibility.lock().unwrap().clone();
        let retried: Vec<&str> = vis.iter().map(|(r, _)| r.as_str()).collect();
        assert!(retried.contains(&"r3") && retried.contains(&"r4"), "{vis:?}");
        for (_, d) in &vis {
            assert!(*d >= Duration::from_millis(1600) && *d <= Duration::from_millis(2400), "{d:?}");
        }
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let queue = Arc::new(MemoryQueue::default());
        *queue.ready.lock().unwrap() = (0..40).map(|i| message(i, "ok")).collect();
        let handler = Arc::new(ScriptedHandler { running: AtomicUsize::new(0), max_running: AtomicUsize::new(0) });
        run_until(queue.clone(), handler.clone(), |q| q.deleted.lock().unwrap().len() == 40).await;
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

    #[tokio::test]
    async fn shutdown_finishes_in_flight_messages_and_heartbeats_keep_them_invisible() {
        let queue = Arc::new(MemoryQueue::default());
        *queue.ready.lock().unwrap() = vec![message(1, "ok")];
        let handler = Arc::new(SlowHandler { delay: Duration::from_millis(2500), started: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(3);
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        wait_started(&handler).await;
        // Stop while the message is in flight: it must still finish and be deleted.
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops within the grace period").unwrap();
        assert_eq!(*queue.deleted.lock().unwrap(), vec!["r1"]);
        // Visibility was extended (every second for a 3 s timeout) while the 2.5 s handler ran.
        let beats: Vec<Duration> =
            queue.visibility.lock().unwrap().iter().filter(|(r, _)| r == "r1").map(|(_, d)| *d).collect();
        assert!(beats.len() >= 2, "{beats:?}");
        assert!(beats.iter().all(|d| *d == Duration::from_secs(3)), "{beats:?}");
    }

    #[tokio::test]
    async fn a_duplicate_delivery_in_flight_hands_its_receipt_to_the_running_handler() {
        let queue = Arc::new(MemoryQueue::default());
        *queue.ready.lock().unwrap() = vec![message(1, "ok")];
        let handler = Arc::new(SlowHandler { delay: Duration::from_millis(2500), started: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(3);
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        wait_started(&handler).await;
        // The visibility lapsed somewhere and SQS delivered the message again, with a new receipt.
        let mut again = message(1, "ok");
        again.receipt_handle = "r1-second".into();
        again.receive_count = 2;
        queue.ready.lock().unwrap().push(again);
        wait_for(Duration::from_secs(10), "never deleted", || !queue.deleted.lock().unwrap().is_empty()).await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(handler.started.load(Ordering::SeqCst), 1, "handled once");
        // Only the newest receipt can delete it (SQS ignores a delete with an older one).
        assert_eq!(*queue.deleted.lock().unwrap(), vec!["r1-second"]);
        let beats = queue.visibility.lock().unwrap().clone();
        assert!(beats.iter().any(|(r, _)| r == "r1-second"), "heartbeats use the newest receipt: {beats:?}");
    }

    #[tokio::test]
    async fn past_the_grace_period_unfinished_work_is_left_for_redelivery_and_heartbeats_stop() {
        let queue = Arc::new(MemoryQueue::default());
        *queue.ready.lock().unwrap() = vec![message(1, "ok")];
        let handler = Arc::new(SlowHandler { delay: Duration::from_secs(3600), started: AtomicUsize::new(0) });
        let mut opts = options();
        opts.visibility_timeout = Duration::from_secs(3);
        opts.shutdown_grace = Duration::from_millis(300);
        let (shutdown, task) = spawn_consumer(&queue, handler.clone(), opts);
        wait_started(&handler).await;
        let stopping = Instant::now();
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops after the grace period").unwrap();
        assert!(stopping.elapsed() < Duration::from_secs(2), "{:?}", stopping.elapsed());
        assert!(queue.deleted.lock().unwrap().is_empty(), "unfinished work is not deleted");
        let beats = queue.visibility.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(queue.visibility.lock().unwrap().len(), beats, "no heartbeat outlives its task");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let o = options();
        assert!(o.backoff(1) < Duration::from_millis(2500));
        assert!(o.backoff(3) >= Duration::from_millis(6400));
        assert!(o.backoff(30) <= Duration::from_secs(72));
    }
}
