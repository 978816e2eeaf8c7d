//! [`ReplySink`] over SQS: each reply is one message, tagged with the request it answers.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use portcullis_domain::{MessageId, QueueUrl};
use portcullis_runtime::aws::classify;

use crate::ports::{ReplyError, ReplySink};

/// Message attribute on every reply naming the request it answers.
pub const ATTR_IN_REPLY_TO: &str = "portcullis.in_reply_to";

/// Sends replies with SQS `SendMessage`.
#[derive(Debug, Clone)]
pub struct SqsReplySink {
    sqs: aws_sdk_sqs::Client,
}

impl SqsReplySink {
    pub fn new(sqs: aws_sdk_sqs::Client) -> Self {
        Self { sqs }
    }
}

#[async_trait]
impl ReplySink for SqsReplySink {
    async fn send(&self, to: &QueueUrl, in_reply_to: Option<&MessageId>, reply: &str) -> Result<(), ReplyError> {
        let mut send = self.sqs.send_message().queue_url(to.as_str()).message_body(reply);
        if let Some(id) = in_reply_to {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(id.as_str())
                .build()
                .map_err(|e| ReplyError::Undeliverable(e.to_string()))?;
            send = send.message_attributes(ATTR_IN_REPLY_TO, attr);
        }
        send.send().await.map_err(|e| {
            let failure = classify(&e);
            let why = format!("SendMessage to {to}: {}", failure.message);
            if failure.kind.is_retryable() { ReplyError::Unavailable(why) } else { ReplyError::Undeliverable(why) }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::send_message::{SendMessageError, SendMessageOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn sink_failing_with(code: &'static str) -> SqsReplySink {
        let rule = mock!(aws_sdk_sqs::Client::send_message).then_error(move || {
            SendMessageError::generic(aws_sdk_sqs::error::ErrorMetadata::builder().code(code).message("m").build())
        });
        SqsReplySink::new(mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&rule]))
    }

    #[tokio::test]
    async fn a_gone_or_refusing_queue_is_undeliverable_and_an_outage_is_not() {
        let to = QueueUrl::parse("http://127.0.0.1:1/123456789012/p-reply-x").unwrap();
        for (code, permanent) in [
            ("AWS.SimpleQueueService.NonExistentQueue", true),
            ("QueueDoesNotExist", true),
            ("MissingParameter", false),
            ("InvalidParameterValue", true),
            ("AccessDenied", true),
            ("ServiceUnavailable", false),
        ] {
            let err = sink_failing_with(code).send(&to, None, "{}").await.unwrap_err();
            assert_eq!(matches!(err, ReplyError::Undeliverable(_)), permanent, "{code}: {err}");
        }
        let ok = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(|r| {
                r.message_attributes().and_then(|a| a.get(ATTR_IN_REPLY_TO)).and_then(|v| v.string_value())
                    == Some("m-1")
            })
            .then_output(|| SendMessageOutput::builder().build());
        let sink = SqsReplySink::new(mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&ok]));
        sink.send(&to, Some(&MessageId::parse("m-1").unwrap()), "{}").await.unwrap();
    }
}
