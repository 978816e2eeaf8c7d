//! [`AuditSink`] over EventBridge: audit events on the Portcullis bus, source `portcullis.access`.
//!
//! Events are batched across messages: each `publish` waits for its own events to be accepted, but
//! the events of every handler that publishes within [`LINGER`] of the first go in one `PutEvents`
//! (up to its ten entries), so a busy worker makes a fraction of a call per message instead of one.
//! Each caller gets the outcome of its own entries: one rejected entry fails only its publisher.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use portcullis_domain::audit::SOURCE;
use portcullis_runtime::aws::{FailureKind, classify};
use tokio::sync::{mpsc, oneshot};

use crate::ports::{AuditError, AuditSink, PublishedEvent};

/// `PutEvents` takes at most ten entries.
const MAX_ENTRIES: usize = 10;
/// `PutEvents` takes at most 256 KB per call; keep well under it.
const MAX_BATCH_BYTES: usize = 192 * 1024;
/// How long the first events of a batch wait for others to share the call.
const LINGER: Duration = Duration::from_millis(20);

/// Puts audit events on one bus, batched across concurrent publishers.
#[derive(Debug, Clone)]
pub struct EventBridgeAudit {
    batches: mpsc::Sender<Pending>,
}

/// One caller's events and where its outcome goes.
#[derive(Debug)]
struct Pending {
    events: Vec<PublishedEvent>,
    done: oneshot::Sender<Result<(), AuditError>>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.events.iter().map(|e| e.detail.len() + e.detail_type.len() + SOURCE.len()).sum()
    }
}

#[derive(Debug)]
struct Bus {
    events: aws_sdk_eventbridge::Client,
    name: String,
}

impl EventBridgeAudit {
    /// Batches with [`LINGER`]. Spawns the batching task: call it inside a Tokio runtime.
    pub fn new(events: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self::with_linger(events, bus, LINGER)
    }

    /// Batches events published within `linger` of each other (zero: only what is already waiting).
    pub fn with_linger(events: aws_sdk_eventbridge::Client, bus: impl Into<String>, linger: Duration) -> Self {
        let (batches, rx) = mpsc::channel(1024);
        tokio::spawn(run_batcher(Arc::new(Bus { events, name: bus.into() }), rx, linger));
        Self { batches }
    }
}

#[async_trait]
impl AuditSink for EventBridgeAudit {
    async fn publish(&self, events: &[PublishedEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let stopped = || AuditError::new(FailureKind::Transient, "events:PutEvents: the audit batcher stopped");
        let (done, outcome) = oneshot::channel();
        self.batches.send(Pending { events: events.to_vec(), done }).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Collects publishers into batches of at most ten entries and sends each batch on its own task,
/// so collecting the next batch never waits for the previous call.
async fn run_batcher(bus: Arc<Bus>, mut rx: mpsc::Receiver<Pending>, linger: Duration) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut entries = first.events.len();
        let mut bytes = first.bytes();
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + linger;
        while entries < MAX_ENTRIES {
            let next = match rx.try_recv() {
                Ok(p) => Some(p),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => tokio::time::timeout_at(until, rx.recv()).await.ok().flatten(),
            };
            let Some(next) = next else { break };
            if entries + next.events.len() > MAX_ENTRIES || bytes + next.bytes() > MAX_BATCH_BYTES {
                carried = Some(next);
                break;
            }
            entries += next.events.len();
            bytes += next.bytes();
            batch.push(next);
        }
        tokio::spawn(bus.clone().send(batch));
    }
}

impl Bus {
    /// One `PutEvents` for the batch (a single publisher with more than ten events: one per ten),
    /// then each publisher's outcome from its own entries.
    async fn send(self: Arc<Self>, batch: Vec<Pending>) {
        if batch.len() == 1 && batch[0].events.len() > MAX_ENTRIES {
            let Some(one) = batch.into_iter().next() else { return };
            let mut outcome = Ok(());
            for chunk in one.events.chunks(MAX_ENTRIES) {
                if let Err(e) =
                    self.put(chunk).await.and_then(|(failed, entries)| judge(failed, chunk.len(), &entries, &entries))
                {
                    outcome = Err(e);
                    break;
                }
            }
            let _ = one.done.send(outcome);
            return;
        }
        let events: Vec<PublishedEvent> = batch.iter().flat_map(|p| p.events.iter().cloned()).collect();
        match self.put(&events).await {
            Ok((failed, results)) => {
                let mut from = 0;
                for pending in batch {
                    let to = from + pending.events.len();
                    let mine = results.get(from..to.min(results.len())).unwrap_or_default();
                    let outcome = judge(failed, events.len(), &results, mine);
                    let _ = pending.done.send(outcome);
                    from = to;
                }
            }
            Err(e) => {
                for pending in batch {
                    let _ = pending.done.send(Err(e.clone()));
                }
            }
        }
    }

    /// One `PutEvents` call: how many entries failed, and the result entries in the order of `events`.
    async fn put(&self, events: &[PublishedEvent]) -> Result<(i32, Vec<PutEventsResultEntry>), AuditError> {
        let entries: Vec<PutEventsRequestEntry> = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.name)
                    .source(SOURCE)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let out = self
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify(&e).context("events:PutEvents"))?;
        Ok((out.failed_entry_count, out.entries.unwrap_or_default()))
    }
}

/// The outcome for one publisher whose entries are `mine`, in a call of `sent` entries of which
/// `failed` failed, answered with `results`: a failure when any of its entries failed, or when
/// entries failed and the answer does not say which.
fn judge(
    failed: i32,
    sent: usize,
    results: &[PutEventsResultEntry],
    mine: &[PutEventsResultEntry],
) -> Result<(), AuditError> {
    if failed > 0 && results.len() < sent {
        return Err(AuditError::new(
            FailureKind::Transient,
            format!("events:PutEvents: {failed} entries failed, and the answer does not say which"),
        ));
    }
    if mine.iter().any(|e| e.error_code.is_some()) { Err(entry_failure(mine)) } else { Ok(()) }
}

/// The failure of a `PutEvents` whose entries failed: denied when an entry was denied (the bus's
/// resource policy, a KMS key), else worth retrying (EventBridge's `InternalFailure`,
/// `ThrottlingException`).
fn entry_failure(entries: &[PutEventsResultEntry]) -> AuditError {
    let codes: Vec<&str> = entries.iter().filter_map(|e| e.error_code.as_deref()).collect();
    let why: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            e.error_code.as_ref().map(|c| format!("{c}: {}", e.error_message.as_deref().unwrap_or_default()))
        })
        .collect();
    let kind = if codes.iter().any(|c| c.to_ascii_lowercase().contains("accessdenied")) {
        FailureKind::AccessDenied
    } else {
        FailureKind::Transient
    };
    AuditError::new(kind, format!("events:PutEvents: {}", why.join("; ")))
}
