//! [`AuditSink`] over EventBridge: audit events on the Portcullis bus, source `portcullis.access`.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use portcullis_domain::audit::SOURCE;
use portcullis_runtime::aws::classify;

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
                .map_err(|e| AuditError(format!("events:PutEvents: {}", classify(&e).message)))?;
            if out.failed_entry_count > 0 {
                let why: Vec<String> = out
                    .entries()
                    .iter()
                    .filter_map(|e| {
                        e.error_code.clone().map(|c| format!("{c}: {}", e.error_message.clone().unwrap_or_default()))
                    })
                    .collect();
                return Err(AuditError(format!("events:PutEvents: {}", why.join("; "))));
            }
        }
        Ok(())
    }
}
