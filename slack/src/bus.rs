//! The bus's grant events, from the edge's queue (`<prefix>-slack-events`, filled by the stack's
//! EventBridge rule): each is applied to the grant's card and every Slack copy is updated. A
//! message is deleted once handled; one that fails stays and comes back (the queue's redrive
//! policy moves it to its dead-letter queue after a few tries). Events are deduplicated per grant
//! by `event_id` (EventBridge delivers at least once).

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::audit::{self, AuditEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::edge::Edge;

/// A queue message that is not an event the edge reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Portcullis grant event: {0}")]
pub struct NotAnEvent(pub String);

/// The audit event in an EventBridge message (`detail-type` + `detail`); `Ok(None)` for an
/// event the edge has nothing to do with.
pub fn parse_event(body: &str) -> Result<Option<AuditEvent>, NotAnEvent> {
    let v: Value = serde_json::from_str(body).map_err(|e| NotAnEvent(e.to_string()))?;
    if v.get("source").and_then(Value::as_str) != Some(audit::SOURCE) {
        return Ok(None);
    }
    let detail_type = v.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    let detail = v.get("detail").cloned().unwrap_or(Value::Null);
    fn read<T: DeserializeOwned>(d: Value) -> Result<T, NotAnEvent> {
        serde_json::from_value(d).map_err(|e| NotAnEvent(e.to_string()))
    }
    Ok(Some(match detail_type {
        "Grant Created" => AuditEvent::GrantCreated(read(detail)?),
        "Grant Pending Approval" => AuditEvent::GrantPendingApproval(read(detail)?),
        "Grant Approved" => AuditEvent::GrantApproved(read(detail)?),
        "Grant Activated" => AuditEvent::GrantActivated(read(detail)?),
        "Grant Denied" => AuditEvent::GrantDenied(read(detail)?),
        "Break Glass Used" => AuditEvent::BreakGlassUsed(read(detail)?),
        "Break Glass Reviewed" => AuditEvent::BreakGlassReviewed(read(detail)?),
        "Grant Revoked" => AuditEvent::GrantRevoked(read(detail)?),
        _ => return Ok(None),
    }))
}

/// Poll the events queue until `shutdown`.
pub async fn run(edge: Arc<Edge>, sqs: aws_sdk_sqs::Client, queue_url: String, shutdown: CancellationToken) {
    loop {
        let receive =
            sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).wait_time_seconds(10).send();
        let out = tokio::select! {
            _ = shutdown.cancelled() => return,
            out = receive => out,
        };
        let messages = match out {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(target: "portcullis::slack", "ReceiveMessage on the events queue: {}", portcullis_runtime::aws::error_message(&e));
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for m in messages {
            let done = match parse_event(m.body().unwrap_or_default()) {
                Ok(Some(event)) => match edge.on_audit_event(&event).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(target: "portcullis::slack", "a grant event is kept for a retry: {e}");
                        false
                    }
                },
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(target: "portcullis::slack", "dropped: {e}");
                    true
                }
            };
            if done && let Some(receipt) = m.receipt_handle() {
                let deleted = sqs.delete_message().queue_url(&queue_url).receipt_handle(receipt).send().await;
                if let Err(e) = deleted {
                    tracing::warn!(target: "portcullis::slack", "DeleteMessage: {}", portcullis_runtime::aws::error_message(&e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn eventbridge_messages_become_audit_events() {
        let body = r#"{"version":"0","id":"e-1","detail-type":"Grant Denied","source":"portcullis.access","account":"123456789012",
            "time":"2026-11-22T12:00:00Z","region":"us-east-1","resources":[],
            "detail":{"event_id":"ev-1","at":"2026-11-22T12:00:00Z","actor":{"user":"bob"},"user":"alice",
                      "grant_id":"g-0123456789abcdef0123456789abcdef","account":"123456789012","template":"bucketRead","reason":"no"}}"#;
        let Some(AuditEvent::GrantDenied(e)) = parse_event(body).unwrap() else { panic!() };
        assert_eq!(e.actor.user, "bob");
        let other = r#"{"detail-type":"Credentials Issued","source":"portcullis.access","detail":{}}"#;
        assert_eq!(parse_event(other).unwrap(), None);
        assert_eq!(parse_event(r#"{"source":"aws.guardduty"}"#).unwrap(), None);
        assert!(parse_event("nope").is_err());
    }
}
