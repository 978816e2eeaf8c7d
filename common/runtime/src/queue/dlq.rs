//! What an operator does with a queue's dead letters: list them (code, reason, where they came
//! from, the body with secrets redacted) and move chosen ones back to the queue they came from.
//!
//! SQS offers no way to read a queue without taking its messages for a while, so both operations
//! *sweep* the dead-letter queue: receive everything (each message hidden for [`SWEEP_HOLD`]), act,
//! and hand every message not moved back at once. A sweep that is interrupted leaves messages hidden
//! for at most that long; nothing is deleted before its copy is on the source queue.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};
use portcullis_domain::redact::redact_secrets;
use serde::Serialize;

use super::{ATTR_ERROR_CODE, ATTR_ERROR_REASON, ATTR_SOURCE_MESSAGE_ID, MAX_BATCH, Queue, QueueError, SqsQueue};
use crate::aws::error_message;

/// How long a sweep hides the messages it has received.
pub const SWEEP_HOLD: Duration = Duration::from_secs(60);

/// One dead letter, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterView {
    /// The message id in the dead-letter queue.
    pub message_id: String,
    /// The message id it had on the source queue (set when the consumer kept it).
    pub source_message_id: Option<String>,
    /// The error code the consumer kept it with; `None` when the redrive policy moved it.
    pub code: Option<String>,
    pub reason: Option<String>,
    /// When it was sent to the dead-letter queue (epoch milliseconds, as SQS reports).
    pub sent_at_ms: Option<u64>,
    /// The body, with secrets redacted.
    pub body: String,
}

impl DeadLetterView {
    /// The code to filter on: the kept code, or `none` for a message the redrive policy moved.
    pub fn code_or_none(&self) -> &str {
        self.code.as_deref().unwrap_or(NO_CODE)
    }
}

/// The code a filter uses for messages that carry none.
pub const NO_CODE: &str = "none";

/// Which dead letters to move back: every one that matches all the given lists (an empty list
/// matches everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveFilter {
    /// Error codes (`none` for messages without one).
    pub codes: Vec<String>,
    /// Message ids, in the dead-letter queue or at the source.
    pub ids: Vec<String>,
}

impl RedriveFilter {
    pub fn matches(&self, letter: &DeadLetterView) -> bool {
        let code_ok = self.codes.is_empty() || self.codes.iter().any(|c| c == letter.code_or_none());
        let id_ok = self.ids.is_empty()
            || self.ids.iter().any(|i| *i == letter.message_id || Some(i) == letter.source_message_id.as_ref());
        code_ok && id_ok
    }
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Dead-letter message ids moved back to the source queue.
    pub moved: Vec<String>,
    /// How many stayed in the dead-letter queue.
    pub kept: usize,
}

/// A source queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    client: Client,
    source: SqsQueue,
    dlq_url: String,
}

/// A dead letter held by a sweep: what the operator sees, and what moving it needs.
struct Held {
    view: DeadLetterView,
    receipt: String,
    raw_body: String,
}

impl DeadLetters {
    /// The dead-letter queue of the queue named `source` (found through its redrive policy).
    pub async fn connect(client: Client, source: &str) -> Result<Self, QueueError> {
        let queue = SqsQueue::connect(client.clone(), source).await?;
        let dlq_url = queue.dlq_url().map(str::to_owned).ok_or_else(|| QueueError {
            op: "GetQueueAttributes",
            queue: source.to_owned(),
            message: "the queue has no redrive policy, so it has no dead-letter queue".into(),
        })?;
        Ok(Self { client, source: queue, dlq_url })
    }

    fn err(&self, op: &'static str, message: String) -> QueueError {
        QueueError { op, queue: format!("{} (dead letters)", self.source.name()), message }
    }

    /// Every dead letter, oldest first; the queue is left as it was.
    pub async fn inspect(&self) -> Result<Vec<DeadLetterView>, QueueError> {
        let held = self.sweep().await?;
        self.release(held.iter().map(|h| h.receipt.as_str())).await?;
        Ok(held.into_iter().map(|h| h.view).collect())
    }

    /// Move the dead letters `filter` matches back to the source queue, body as kept (the consumer
    /// redacted secrets before keeping it, so a message whose token was redacted is refused again).
    /// Each is sent before it is deleted: a redrive interrupted in between leaves a duplicate, which
    /// the idempotent handlers absorb.
    pub async fn redrive(&self, filter: &RedriveFilter) -> Result<RedriveReport, QueueError> {
        let held = self.sweep().await?;
        let (chosen, others): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| filter.matches(&h.view));
        let mut report = RedriveReport { moved: Vec::new(), kept: others.len() };
        let mut moved_receipts = Vec::new();
        let mut failure = None;
        for letter in &chosen {
            let sent = self
                .client
                .send_message()
                .queue_url(self.source.url())
                .message_body(&letter.raw_body)
                .send()
                .await
                .map_err(|e| self.err("SendMessage", error_message(&e)));
            match sent {
                Ok(_) => {
                    report.moved.push(letter.view.message_id.clone());
                    moved_receipts.push(letter.receipt.clone());
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.delete(&moved_receipts).await?;
        let unmoved = chosen.iter().filter(|h| !moved_receipts.contains(&h.receipt)).chain(others.iter());
        self.release(unmoved.map(|h| h.receipt.as_str())).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Receive every message of the dead-letter queue, each once, hidden for [`SWEEP_HOLD`].
    async fn sweep(&self) -> Result<Vec<Held>, QueueError> {
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(MAX_BATCH as i32)
                .wait_time_seconds(1)
                .visibility_timeout(SWEEP_HOLD.as_secs() as i32)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(|e| self.err("ReceiveMessage", error_message(&e)))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let (Some(id), Some(receipt)) = (m.message_id.clone(), m.receipt_handle.clone()) else {
                    continue;
                };
                let attr = |name: &str| {
                    m.message_attributes.as_ref().and_then(|a| a.get(name)).and_then(|v| v.string_value.clone())
                };
                let raw_body = m.body.clone().unwrap_or_default();
                let view = DeadLetterView {
                    message_id: id.clone(),
                    source_message_id: attr(ATTR_SOURCE_MESSAGE_ID),
                    code: attr(ATTR_ERROR_CODE),
                    reason: attr(ATTR_ERROR_REASON).map(|r| redact_secrets(&r)),
                    sent_at_ms: m
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                        .and_then(|t| t.parse().ok()),
                    body: redact_secrets(&raw_body),
                };
                // A message received twice in one sweep (its hold lapsed): keep the newest receipt.
                held.insert(id, Held { view, receipt, raw_body });
            }
        }
        let mut all: Vec<Held> = held.into_values().collect();
        all.sort_by_key(|h| (h.view.sent_at_ms, h.view.message_id.clone()));
        Ok(all)
    }

    async fn release<'a>(&self, receipts: impl Iterator<Item = &'a str>) -> Result<(), QueueError> {
        let receipts: Vec<&str> = receipts.collect();
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*r)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.err("ChangeMessageVisibilityBatch", error_message(&e)))?;
            if !out.failed.is_empty() {
                // Not fatal: those come back by themselves when the sweep's hold lapses.
                tracing::warn!(count = out.failed.len(), hold = ?SWEEP_HOLD, "some dead letters stay hidden until the sweep's hold lapses");
            }
        }
        Ok(())
    }

    async fn delete(&self, receipts: &[String]) -> Result<(), QueueError> {
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.err("DeleteMessageBatch", error_message(&e)))?;
            if let Some(f) = out.failed.first() {
                return Err(self.err(
                    "DeleteMessageBatch",
                    format!(
                        "{} moved message(s) could not be deleted from the dead-letter queue (first: {}); they are now in both queues",
                        out.failed.len(),
                        f.message.clone().unwrap_or_else(|| f.code.clone())
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(id: &str, source: Option<&str>, code: Option<&str>) -> DeadLetterView {
        DeadLetterView {
            message_id: id.into(),
            source_message_id: source.map(Into::into),
            code: code.map(Into::into),
            reason: None,
            sent_at_ms: None,
            body: String::new(),
        }
    }

    #[test]
    fn a_filter_matches_by_code_and_by_either_id() {
        let kept = letter("d1", Some("s1"), Some("bad_request"));
        let moved = letter("d2", None, None);
        assert!(RedriveFilter::default().matches(&kept) && RedriveFilter::default().matches(&moved));
        let by_code = RedriveFilter { codes: vec!["bad_request".into()], ids: vec![] };
        assert!(by_code.matches(&kept) && !by_code.matches(&moved));
        let none = RedriveFilter { codes: vec![NO_CODE.into()], ids: vec![] };
        assert!(!none.matches(&kept) && none.matches(&moved));
        let by_source_id = RedriveFilter { codes: vec![], ids: vec!["s1".into()] };
        assert!(by_source_id.matches(&kept) && !by_source_id.matches(&moved));
        let both = RedriveFilter { codes: vec!["unauthorized".into()], ids: vec!["d1".into()] };
        assert!(!both.matches(&kept), "every list must match");
    }
}
