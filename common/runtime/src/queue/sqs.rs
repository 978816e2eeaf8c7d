//! [`Queue`] over SQS: long polls, visibility, batch deletes with their failed entries, and a
//! dead-letter queue found through the redrive policy.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use portcullis_domain::ErrorCode;
use tracing::warn;

use super::{
    ATTR_ERROR_CODE, ATTR_ERROR_REASON, ATTR_SOURCE_MESSAGE_ID, ATTR_SOURCE_QUEUE, MAX_BATCH, Queue, QueueError,
    ReceivedMessage,
};
use crate::aws::error_message;

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
            .map_err(|e| err("GetQueueUrl", error_message(&e)))?
            .queue_url
            .ok_or_else(|| err("GetQueueUrl", "no URL returned".into()))?;
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| err("GetQueueAttributes", error_message(&e)))?;
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
                        .map_err(|e| err("GetQueueUrl", error_message(&e)))?;
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
            .map_err(|e| self.err("ReceiveMessage", error_message(&e)))?;
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
            .map_err(|e| self.err("ChangeMessageVisibility", error_message(&e)))?;
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
            .map_err(|e| self.err("DeleteMessageBatch", error_message(&e)))?;
        Ok(out
            .failed
            .into_iter()
            .filter_map(|f| {
                let receipt = receipts.get(f.id.parse::<usize>().ok()?)?.clone();
                Some((receipt, format!("{}: {}", f.code, f.message.unwrap_or_default())))
            })
            .collect())
    }

    async fn dead_letter(&self, message: &ReceivedMessage, code: ErrorCode, reason: &str) -> Result<(), QueueError> {
        let dlq = self
            .dlq_url
            .as_deref()
            .ok_or_else(|| self.err("SendMessage", "the queue has no dead-letter queue".into()))?;
        let reason: String = reason.chars().take(1024).collect();
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(if message.body.is_empty() { "<empty>" } else { &message.body })
            .message_attributes(ATTR_ERROR_CODE, string_attr(code.as_str()))
            .message_attributes(ATTR_ERROR_REASON, string_attr(&reason))
            .message_attributes(ATTR_SOURCE_QUEUE, string_attr(&self.name))
            .message_attributes(ATTR_SOURCE_MESSAGE_ID, string_attr(&message.message_id))
            .send()
            .await
            .map_err(|e| self.err("SendMessage", error_message(&e)))?;
        Ok(())
    }
}
