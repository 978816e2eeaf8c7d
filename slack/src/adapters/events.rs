//! Account links as events on the Portcullis bus (`PutEvents`), with the source and detail-type
//! the domain's `audit_events!` gives them (`portcullis.slack`).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use portcullis_domain::audit::AuditEvent;

use crate::ports::{AuditError, LinkAudit};

/// Publishes to the stack's bus.
#[derive(Debug, Clone)]
pub struct EventBridgeLinkAudit {
    events: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeLinkAudit {
    pub fn new(events: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self { events, bus: bus.into() }
    }
}

#[async_trait]
impl LinkAudit for EventBridgeLinkAudit {
    async fn publish(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let detail = event.detail().map_err(|e| AuditError(e.to_string()))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(event.source())
            .detail_type(event.detail_type())
            .detail(detail)
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AuditError(portcullis_runtime::aws::error_message(&e)))?;
        if out.failed_entry_count > 0 {
            let why = out.entries().iter().filter_map(|e| e.error_message()).collect::<Vec<_>>().join("; ");
            return Err(AuditError(why));
        }
        Ok(())
    }
}
