//! The queue seam: what a consumer needs from a queue, an SQS implementation, an in-memory one
//! for tests (feature `test-util`), and the operator's dead-letter tools ([`DeadLetters`]).

mod dlq;
#[cfg(any(test, feature = "test-util"))]
mod memory;
mod sqs;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_domain::ErrorCode;

pub use self::dlq::{DeadLetterView, DeadLetters, NO_CODE, RedriveFilter, RedriveReport, SWEEP_HOLD};
#[cfg(any(test, feature = "test-util"))]
pub use self::memory::{DeadLetter, MemoryQueue, VisibilityFault};
pub use self::sqs::SqsQueue;

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
    async fn dead_letter(&self, message: &ReceivedMessage, code: ErrorCode, reason: &str) -> Result<(), QueueError>;
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
