//! [`Queue`] in memory, with SQS's delivery rules where a consumer can tell them apart: a received
//! message is invisible until its visibility timeout lapses and then comes back with a new receipt
//! and a higher receive count; past the redrive policy's `maxReceiveCount` SQS moves it, verbatim, to
//! the dead-letter queue ([`MemoryQueue::redriven`]); a delete or visibility change needs the
//! newest receipt. Time is tokio's, so tests can pause it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ErrorCode;
use tokio::time::Instant;

use super::{MAX_BATCH, Queue, QueueError, ReceivedMessage};

/// A message kept in the dead-letter queue by the consumer (with a code), as the queue saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub code: ErrorCode,
    pub reason: String,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<ReceivedMessage>,
    /// By receipt: the message and when it becomes visible again.
    in_flight: HashMap<String, (ReceivedMessage, Instant)>,
    deleted: Vec<String>,
    dead: Vec<DeadLetter>,
    redriven: Vec<ReceivedMessage>,
    visibility: Vec<(String, Duration)>,
    fail_deletes_once: HashSet<String>,
    visibility_fault: Option<VisibilityFault>,
    receives: Vec<usize>,
    delete_batches: Vec<usize>,
    next: u64,
}

/// How [`MemoryQueue::change_visibility`] misbehaves, when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFault {
    /// Every call fails at once.
    Fail,
    /// Every call hangs (never answers).
    Hang,
}

/// An in-memory queue that records what the consumer did with it.
#[derive(Debug)]
pub struct MemoryQueue {
    name: String,
    max_receive_count: Option<u32>,
    state: Mutex<State>,
}

impl MemoryQueue {
    /// A queue whose redrive policy moves a message after `max_receive_count` deliveries.
    pub fn new(name: &str, max_receive_count: Option<u32>) -> Self {
        Self { name: name.to_owned(), max_receive_count, state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send `body` (with no sender id); returns its message id.
    pub fn push(&self, body: &str) -> String {
        self.push_from(body, None)
    }

    /// Send `body` as `sender` would (SQS's `SenderId`); returns its message id.
    pub fn push_from(&self, body: &str, sender: Option<&str>) -> String {
        let mut state = self.state();
        state.next += 1;
        let id = format!("m{}", state.next);
        state.ready.push_back(ReceivedMessage {
            message_id: id.clone(),
            receipt_handle: format!("{id}-r1"),
            body: body.to_owned(),
            receive_count: 1,
            sender_id: sender.map(str::to_owned),
            attributes: HashMap::new(),
        });
        id
    }

    /// Make `message` receivable exactly as given (a duplicate delivery, a chosen receipt).
    pub fn push_message(&self, message: ReceivedMessage) {
        self.state().ready.push_back(message);
    }

    /// Fail the next delete of `receipt` (as a `DeleteMessageBatch` failed entry).
    pub fn fail_delete_once(&self, receipt: &str) {
        self.state().fail_deletes_once.insert(receipt.to_owned());
    }

    /// Make every later visibility change fail or hang (`None`: behave again).
    pub fn set_visibility_fault(&self, fault: Option<VisibilityFault>) {
        self.state().visibility_fault = fault;
    }

    /// How many messages each receive call returned, in order.
    pub fn receives(&self) -> Vec<usize> {
        self.state().receives.clone()
    }

    /// How many entries each `DeleteMessageBatch` carried, in order.
    pub fn delete_batches(&self) -> Vec<usize> {
        self.state().delete_batches.clone()
    }

    /// Receipts deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.state().deleted.clone()
    }

    /// Messages the consumer dead-lettered, with their codes.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.state().dead.clone()
    }

    /// Messages the redrive policy moved without a code (what the consumer should never let happen).
    pub fn redriven(&self) -> Vec<ReceivedMessage> {
        self.state().redriven.clone()
    }

    /// Every visibility change: (receipt, timeout).
    pub fn visibility_changes(&self) -> Vec<(String, Duration)> {
        self.state().visibility.clone()
    }

    /// Messages waiting or in flight.
    pub fn depth(&self) -> usize {
        let state = self.state();
        state.ready.len() + state.in_flight.len()
    }

    /// Whether `message_id` has left the queue (deleted, or dead-lettered and deleted).
    pub fn is_gone(&self, message_id: &str) -> bool {
        let state = self.state();
        !state.ready.iter().any(|m| m.message_id == message_id)
            && !state.in_flight.values().any(|(m, _)| m.message_id == message_id)
    }
}

#[async_trait]
impl Queue for MemoryQueue {
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
        let batch = {
            let mut state = self.state();
            let now = Instant::now();
            // Visibility lapsed: the message comes back with a new receipt, or is redriven.
            let lapsed: Vec<String> =
                state.in_flight.iter().filter(|(_, (_, at))| *at <= now).map(|(r, _)| r.clone()).collect();
            for receipt in lapsed {
                if let Some((mut m, _)) = state.in_flight.remove(&receipt) {
                    if self.max_receive_count.is_some_and(|max| m.receive_count >= max) {
                        state.redriven.push(m);
                        continue;
                    }
                    m.receive_count += 1;
                    m.receipt_handle = format!("{}-r{}", m.message_id, m.receive_count);
                    state.ready.push_back(m);
                }
            }
            let n = max.clamp(1, MAX_BATCH).min(state.ready.len());
            let batch: Vec<ReceivedMessage> = state.ready.drain(..n).collect();
            for m in &batch {
                state.in_flight.insert(m.receipt_handle.clone(), (m.clone(), now + visibility));
            }
            state.receives.push(batch.len());
            batch
        };
        if batch.is_empty() {
            tokio::time::sleep(wait.min(Duration::from_millis(20))).await;
        }
        Ok(batch)
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        let fault = self.state().visibility_fault;
        match fault {
            Some(VisibilityFault::Hang) => std::future::pending::<()>().await,
            Some(VisibilityFault::Fail) => {
                return Err(QueueError {
                    op: "ChangeMessageVisibility",
                    queue: self.name.clone(),
                    message: "injected failure".into(),
                });
            }
            None => {}
        }
        let mut state = self.state();
        state.visibility.push((receipt.to_owned(), timeout));
        if let Some((_, at)) = state.in_flight.get_mut(receipt) {
            *at = Instant::now() + timeout;
        }
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<(String, String)>, QueueError> {
        assert!(receipts.len() <= MAX_BATCH, "at most {MAX_BATCH} entries per batch");
        let mut state = self.state();
        state.delete_batches.push(receipts.len());
        let mut failed = Vec::new();
        for r in receipts {
            if state.fail_deletes_once.remove(r) {
                failed.push((r.clone(), "InternalError".to_owned()));
                continue;
            }
            // Every receipt of the message is gone with it (SQS ignores older ones, which the
            // consumer never sends).
            if let Some((m, _)) = state.in_flight.remove(r) {
                state.in_flight.retain(|_, (other, _)| other.message_id != m.message_id);
            }
            state.deleted.push(r.clone());
        }
        Ok(failed)
    }

    async fn dead_letter(&self, message: &ReceivedMessage, code: ErrorCode, reason: &str) -> Result<(), QueueError> {
        self.state().dead.push(DeadLetter {
            message_id: message.message_id.clone(),
            body: message.body.clone(),
            code,
            reason: reason.to_owned(),
        });
        Ok(())
    }
}
