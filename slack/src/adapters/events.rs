//! Account links as events on the Portcullis bus (`PutEvents`), source `portcullis.slack`.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::ports::{AuditError, LinkAudit, LinkEvent};

/// The EventBridge `source` of the edge's events.
pub const SOURCE: &str = "portcullis.slack";

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
    async fn publish(&self, event: &LinkEvent) -> Result<(), AuditError> {
        let detail = serde_json::to_string(event).map_err(|e| AuditError(e.to_string()))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
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
