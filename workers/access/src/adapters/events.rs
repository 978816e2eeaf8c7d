//! [`AuditSink`] over EventBridge: audit events on the Portcullis bus, source `portcullis.access`.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use portcullis_domain::audit::SOURCE;
use portcullis_runtime::aws::{FailureKind, classify};

use crate::ports::{AuditError, AuditSink, PublishedEvent};

/// Puts audit events on one bus.
#[derive(Debug, Clone)]
pub struct EventBridgeAudit {
    events: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeAudit {
    pub fn new(events: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self { events, bus: bus.into() }
    }
}

#[async_trait]
impl AuditSink for EventBridgeAudit {
    async fn publish(&self, events: &[PublishedEvent]) -> Result<(), AuditError> {
        for chunk in events.chunks(10) {
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
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
            if out.failed_entry_count > 0 {
                return Err(entry_failure(out.entries()));
            }
        }
        Ok(())
    }
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
