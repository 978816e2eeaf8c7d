//! The AWS Lambda entry: the same handlers as on ECS, fed by an SQS event source mapping that reports
//! batch item failures (`FunctionResponseTypes: [ReportBatchItemFailures]`).
//!
//! One invocation is one batch. Each record is handled exactly as the consumer loop handles a message
//! ([`portcullis_runtime::consumer::process_batch`]): a rejection is kept in the dead-letter queue with
//! its code and counts as done, a retry gets its backoff (`ChangeMessageVisibility`) and is reported
//! as a failure, the last delivery's retry becomes an `unavailable` rejection, and work still running
//! near the invocation's deadline is stopped before it replies or deletes anything and reported as a
//! failure. Lambda deletes every record the response does not name.
//!
//! What runs on a timer on ECS (the directory's scheduled changes, the access worker's count of
//! owed break-glass reviews, the posture scan) runs here on an EventBridge schedule invoking the same
//! function with a `Scheduled Event`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::BoxFuture;
use portcullis_runtime::consumer::{ConsumerOptions, Handler, PipelineMetrics, lease_margin, process_batch};
use portcullis_runtime::queue::{Queue, ReceivedMessage};
use portcullis_runtime::telemetry::Flusher;
use serde_json::Value;

/// What a scheduled invocation does.
pub type OnSchedule = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// One worker as a Lambda function: its queue (for dead letters and retry delays), its handler, and
/// what it does on a schedule.
pub struct Function<Q, H> {
    queue: Arc<Q>,
    handler: Arc<H>,
    options: ConsumerOptions,
    metrics: PipelineMetrics,
    on_schedule: Option<OnSchedule>,
}

impl<Q, H> std::fmt::Debug for Function<Q, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function").field("options", &self.options).finish_non_exhaustive()
    }
}

/// Why an invocation failed as a whole (Lambda then retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("the event is neither an SQS batch nor a scheduled event: {0}")]
    UnknownEvent(String),
    #[error("a record comes from `{0}`, not from this function's queue `{1}`: check the event source mapping")]
    WrongQueue(String, String),
    #[error("a record has no {0}")]
    MissingField(&'static str),
    #[error("the scheduled work failed: {0}")]
    Scheduled(String),
}

impl<Q: Queue, H: Handler> Function<Q, H> {
    pub fn new(queue: Arc<Q>, handler: Arc<H>, options: ConsumerOptions, metrics: PipelineMetrics) -> Self {
        Self { queue, handler, options, metrics, on_schedule: None }
    }

    /// What a `Scheduled Event` invocation does (without one, such an event is refused).
    pub fn on_schedule(mut self, work: OnSchedule) -> Self {
        self.on_schedule = Some(work);
        self
    }

    /// Handle one invocation's payload; `deadline` is the invocation's (`Lambda-Runtime-Deadline-Ms`).
    /// An SQS batch answers with its `batchItemFailures`; a scheduled event answers `{}` once its
    /// work is done.
    pub async fn invoke(&self, payload: Value, deadline: SystemTime) -> Result<Value, InvocationError> {
        if payload.get("Records").is_some() {
            let event: SqsEvent =
                serde_json::from_value(payload).map_err(|e| InvocationError::UnknownEvent(e.to_string()))?;
            let response = self.batch(event, deadline).await?;
            return serde_json::to_value(response).map_err(|e| InvocationError::UnknownEvent(e.to_string()));
        }
        if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            let Some(work) = &self.on_schedule else {
                return Err(InvocationError::UnknownEvent("this worker has no scheduled work".into()));
            };
            work().await.map_err(|e| InvocationError::Scheduled(format!("{e:#}")))?;
            return Ok(Value::Object(Default::default()));
        }
        let shape = payload.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "));
        Err(InvocationError::UnknownEvent(format!("keys: {}", shape.unwrap_or_else(|| "none".into()))))
    }

    async fn batch(&self, event: SqsEvent, deadline: SystemTime) -> Result<SqsBatchResponse, InvocationError> {
        let messages = event.records.into_iter().map(|r| self.message(r)).collect::<Result<Vec<_>, _>>()?;
        let stop_at = stop_at(deadline);
        let report =
            process_batch(&*self.queue, &*self.handler, &self.options, &self.metrics, messages, Some(stop_at)).await;
        let mut response = SqsBatchResponse::default();
        response.set_failures(report.failed);
        Ok(response)
    }

    /// A Lambda SQS record as the consumer's message: the same id, receipt, body, receive count,
    /// sender and string attributes a `ReceiveMessage` call returns.
    fn message(&self, record: SqsMessage) -> Result<ReceivedMessage, InvocationError> {
        if let Some(arn) = &record.event_source_arn {
            let from = arn.rsplit(':').next().unwrap_or_default();
            if from != self.queue.name() {
                return Err(InvocationError::WrongQueue(from.to_owned(), self.queue.name().to_owned()));
            }
        }
        let message_id = record.message_id.ok_or(InvocationError::MissingField("messageId"))?;
        let receipt_handle = record.receipt_handle.ok_or(InvocationError::MissingField("receiptHandle"))?;
        let receive_count =
            record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1).max(1);
        let sender_id = record.attributes.get("SenderId").cloned();
        let attributes: HashMap<String, String> =
            record.message_attributes.into_iter().filter_map(|(name, a)| a.string_value.map(|v| (name, v))).collect();
        Ok(ReceivedMessage {
            message_id,
            receipt_handle,
            body: record.body.unwrap_or_default(),
            receive_count,
            sender_id,
            attributes,
        })
    }
}

/// Serve `function` on the Lambda runtime API (`AWS_LAMBDA_RUNTIME_API`) until the process ends,
/// exporting telemetry at the end of every invocation (the process is frozen between them).
pub async fn serve<Q: Queue, H: Handler>(function: Function<Q, H>, flusher: Flusher) -> anyhow::Result<()> {
    let function = Arc::new(function);
    let service = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let function = function.clone();
        let flusher = flusher.clone();
        async move {
            let result = function.invoke(event.payload, event.context.deadline()).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, request_id = %event.context.request_id, "invocation failed");
            }
            flusher.flush(FLUSH_TIMEOUT).await;
            result.map_err(|e| e.to_string())
        }
    });
    lambda_runtime::run(service).await.map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}

/// How long the end of an invocation waits for the telemetry export.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// When work on a batch stops: the deadline less the consumer's lease margin on the time left, so
/// that a stopped message has neither replied nor been deleted when Lambda ends the invocation.
fn stop_at(deadline: SystemTime) -> tokio::time::Instant {
    let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + left.saturating_sub(lease_margin(left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use opentelemetry::metrics::MeterProvider;
    use portcullis_domain::ErrorCode;
    use portcullis_runtime::consumer::Outcome;
    use portcullis_runtime::queue::{Attempt, MemoryQueue};
    use std::sync::Mutex;

    /// What the handler saw of one delivery: body, attempt number, last attempt, sender.
    type Seen = (String, u32, bool, Option<String>);

    /// A handler whose verdict is written in the body, recording what it saw.
    #[derive(Default)]
    struct Scripted {
        seen: Mutex<Vec<Seen>>,
    }

    #[async_trait]
    impl Handler for Scripted {
        async fn handle(&self, m: &ReceivedMessage, attempt: Attempt) -> Outcome {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push((m.body.clone(), attempt.number, attempt.is_last, m.sender_id.clone()));
            }
            match m.body.as_str() {
                "refuse" => Outcome::rejected("test", ErrorCode::BadRequest, "not valid: token=eyJhbGciOi.secret.sig"),
                "retry" => Outcome::retry("test", "dependency down"),
                "panic" => panic!("boom"),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Outcome::done("test")
                }
                _ => Outcome::done("test"),
            }
        }
    }

    fn options() -> ConsumerOptions {
        ConsumerOptions {
            concurrency: 4,
            wait: Duration::from_secs(1),
            visibility_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    fn function(queue: &Arc<MemoryQueue>) -> (Function<MemoryQueue, Scripted>, Arc<Scripted>) {
        let meter = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build().meter("test");
        let handler = Arc::new(Scripted::default());
        (Function::new(queue.clone(), handler.clone(), options(), PipelineMetrics::new(&meter)), handler)
    }

    /// A batch in the shape Lambda delivers it (recorded from an SQS event source mapping, ids and
    /// account replaced), one record per `(message id, body, receive count)`.
    fn recorded_batch(queue: &str, records: &[(&str, &str, u32)]) -> Value {
        let template: Value = serde_json::from_str(include_str!("../tests/events/sqs-batch.json")).expect("recorded");
        let record = template["Records"][0].clone();
        let records = records
            .iter()
            .map(|(id, body, count)| {
                let mut r = record.clone();
                r["messageId"] = Value::from(*id);
                r["receiptHandle"] = Value::from(format!("receipt-{id}"));
                r["body"] = Value::from(*body);
                r["attributes"]["ApproximateReceiveCount"] = Value::from(count.to_string());
                r["eventSourceARN"] = Value::from(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"));
                r
            })
            .collect::<Vec<_>>();
        serde_json::json!({ "Records": records })
    }

    fn failures(response: &Value) -> Vec<String> {
        let mut ids: Vec<String> = response["batchItemFailures"]
            .as_array()
            .expect("batchItemFailures")
            .iter()
            .map(|f| f["itemIdentifier"].as_str().expect("itemIdentifier").to_owned())
            .collect();
        ids.sort();
        ids
    }

    fn in_a_minute() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_batch_reports_retries_as_failures_and_keeps_refusals_as_dead_letters() {
        let queue = Arc::new(MemoryQueue::new("p-access-requests", Some(5)));
        let (f, handler) = function(&queue);
        let event = recorded_batch("p-access-requests", &[("m1", "ok", 1), ("m2", "refuse", 1), ("m3", "retry", 1)]);
        let response = f.invoke(event, in_a_minute()).await.expect("invoked");
        // Done and refused records are deleted by Lambda (not reported); the retry stays.
        assert_eq!(failures(&response), vec!["m3"]);
        let dead = queue.dead_letters();
        assert_eq!(dead.len(), 1, "the refusal is kept with its code");
        assert_eq!(dead[0].code, ErrorCode::BadRequest);
        assert!(!dead[0].reason.contains("eyJhbGciOi"), "the reason is redacted: {}", dead[0].reason);
        // The retry's backoff was set on its receipt, as on ECS.
        let delays = queue.visibility_changes();
        assert_eq!(delays.len(), 1);
        assert_eq!(delays[0].0, "receipt-m3");
        assert!(delays[0].1 >= Duration::from_secs(1), "a backoff, not an immediate redelivery");
        // Nothing is deleted by the function itself: Lambda does it.
        assert!(queue.deleted().is_empty());
        // The recorded record's sender reached the handler (trusted producers are checked on it).
        let seen = handler.seen.lock().expect("seen").clone();
        assert!(seen.iter().all(|(_, _, _, sender)| sender.as_deref() == Some("AIDAEXAMPLESENDER0001")));
    }

    #[tokio::test]
    async fn the_last_delivery_is_refused_with_a_code_instead_of_retried() {
        let queue = Arc::new(MemoryQueue::new("p-access-requests", Some(5)));
        let (f, handler) = function(&queue);
        let event = recorded_batch("p-access-requests", &[("m1", "retry", 5), ("m2", "panic", 5), ("m3", "panic", 2)]);
        let response = f.invoke(event, in_a_minute()).await.expect("invoked");
        assert_eq!(failures(&response), vec!["m3"], "only the panic before the last delivery is retried");
        let mut codes: Vec<_> = queue.dead_letters().iter().map(|d| d.code).collect();
        codes.sort_by_key(|c| c.as_str());
        assert_eq!(codes, vec![ErrorCode::InternalError, ErrorCode::Unavailable]);
        let seen = handler.seen.lock().expect("seen").clone();
        assert!(seen.iter().any(|(body, n, last, _)| body == "retry" && *n == 5 && *last));
    }

    #[tokio::test(start_paused = true)]
    async fn work_near_the_deadline_stops_and_is_left_for_redelivery() {
        let queue = Arc::new(MemoryQueue::new("p-access-requests", Some(5)));
        let (f, _) = function(&queue);
        let event = recorded_batch("p-access-requests", &[("m1", "ok", 1), ("m2", "slow", 1)]);
        let response = f.invoke(event, SystemTime::now() + Duration::from_secs(10)).await.expect("invoked");
        assert_eq!(failures(&response), vec!["m2"]);
        assert!(queue.dead_letters().is_empty());
        assert!(queue.visibility_changes().is_empty(), "a stopped message is left as it is");
    }

    #[tokio::test]
    async fn a_record_from_another_queue_fails_the_invocation() {
        let queue = Arc::new(MemoryQueue::new("p-access-requests", Some(5)));
        let (f, handler) = function(&queue);
        let event = recorded_batch("p-directory-events", &[("m1", "ok", 1)]);
        let err = f.invoke(event, in_a_minute()).await.expect_err("refused");
        assert!(matches!(err, InvocationError::WrongQueue(..)), "{err}");
        assert!(handler.seen.lock().expect("seen").is_empty(), "nothing was handled");
    }

    #[tokio::test]
    async fn a_scheduled_event_runs_the_workers_scheduled_work() {
        let queue = Arc::new(MemoryQueue::new("p-directory-events", Some(5)));
        let (f, _) = function(&queue);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = ran.clone();
        let f = f.on_schedule(Arc::new(move || {
            let counter = counter.clone();
            Box::pin(async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
        }));
        let event: Value =
            serde_json::from_str(include_str!("../tests/events/scheduled.json")).expect("recorded scheduled event");
        assert_eq!(f.invoke(event, in_a_minute()).await.expect("invoked"), serde_json::json!({}));
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
        let err = f.invoke(serde_json::json!({"hello": "world"}), in_a_minute()).await.expect_err("unknown");
        assert!(matches!(err, InvocationError::UnknownEvent(_)), "{err}");
    }
}
