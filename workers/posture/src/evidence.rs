//! Durable side of a scan: evidence in DynamoDB, `Posture Violation` events on the Portcullis bus,
//! and the scan leases that make many replicas scan each account and region once per interval.
//!
//! Items (in the stack's table, keys from [`portcullis_domain::table`]):
//! - evidence: `status`, `failing_count`, `failing_resources` (JSON, first 100), `reason`,
//!   `error_code`, `checked_at` (RFC 3339), `checked_at_epoch`, `measured_at_ms` (when the measuring
//!   scan started, epoch ms), `trigger`; GuardDuty.1 also `findings_status` (`counted` with
//!   `findings_high`/`findings_critical`, or `unknown` with `findings_error_code`/`findings_reason`);
//! - lease: `owner`, `lease_until` (epoch s), `expires_at` (TTL);
//! - IAM user read: `read` (the [`UserRead`] as JSON), `read_at_ms`, `expires_at` (TTL, once no
//!   credential report can be older than the read).
//!
//! A violation is published *before* the evidence that records the new status is written, so a
//! worker killed in between publishes it again (a duplicate, never a miss).
//!
//! A result is neither written nor announced when the stored one was measured by a scan that started
//! later (a slow scheduled scan finishing after a quick event-driven rescan). The check rides on the
//! read that fetches the previous statuses, so it costs no extra call; two scans of the same control
//! finishing within the same few milliseconds can still race, and the next scan settles it.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, SecondsFormat, Utc};
use portcullis_domain::AccountId;
use portcullis_domain::posture::controls::CREDENTIAL_REPORT_MAX_AGE;
use portcullis_domain::posture::{ControlId, ControlResult, Findings, ScanReport, Scope, Status, UserRead};
use portcullis_domain::table::{Key, KeyPrefix, TTL_ATTRIBUTE};
use portcullis_runtime::aws::error_message;
use serde::Serialize;
use serde_json::json;

use crate::ports::{EvidenceError, PostureStore, UserReadStore};

/// Most failing resources kept per evidence item (the count is always exact).
pub const MAX_STORED_RESOURCES: usize = 100;
/// EventBridge `source` of violation events.
pub const VIOLATION_SOURCE: &str = "portcullis.posture";
/// EventBridge `detail-type` of violation events.
pub const VIOLATION_DETAIL_TYPE: &str = "Posture Violation";

/// The `detail` of a `Posture Violation` event (documented in docs/posture.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViolationDetail {
    pub control_id: String,
    pub title: String,
    pub status: String,
    /// `pass`, `unknown`, or null when the control had never been measured.
    pub previous_status: Option<String>,
    pub account_id: String,
    pub region: String,
    pub failing_resource_count: usize,
    /// At most 20, the rest are in the evidence table.
    pub failing_resources: Vec<String>,
    pub reason: Option<String>,
    pub checked_at: String,
    /// `scheduled`, `once` or `event:<EventName>`.
    pub trigger: String,
}

/// Evidence, violations and leases.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    events: aws_sdk_eventbridge::Client,
    bus: String,
    publish: bool,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn evidence_key(account: &str, region: &str, control: ControlId) -> HashMap<String, AttributeValue> {
    let key = Key::evidence(account, region, control);
    HashMap::from([("pk".to_owned(), s(key.pk)), ("sk".to_owned(), s(key.sk))])
}

impl EvidenceStore {
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        events: aws_sdk_eventbridge::Client,
        bus: impl Into<String>,
        publish: bool,
    ) -> Self {
        Self { ddb, table: table.into(), events, bus: bus.into(), publish }
    }
}

#[async_trait]
impl PostureStore for EvidenceStore {
    async fn record(&self, report: &ScanReport) -> Result<Vec<(String, ControlId)>, EvidenceError> {
        if report.results.is_empty() {
            return Ok(Vec::new());
        }
        let previous = self.previous_statuses(report.scope.account_id.as_str(), &report.results).await?;
        let measured_at = report.started_at.timestamp_millis();
        let newer_stored = |region: &str, control: ControlId| {
            previous
                .get(&(region.to_owned(), control))
                .and_then(|(_, at)| *at)
                .is_some_and(|stored_at| stored_at > measured_at)
        };
        let current: Vec<&(String, ControlResult)> =
            report.results.iter().filter(|(region, r)| !newer_stored(region, r.control)).collect();
        let mut violations = Vec::new();
        for (region, r) in &current {
            let before = previous.get(&(region.clone(), r.control)).map(|(st, _)| *st);
            if r.status == Status::Fail && before != Some(Status::Fail) {
                violations.push((region.clone(), r, before));
            }
        }
        let mut published = Vec::new();
        if self.publish && !violations.is_empty() {
            for chunk in violations.chunks(10) {
                let entries: Vec<PutEventsRequestEntry> = chunk
                    .iter()
                    .map(|(region, r, before)| {
                        let detail =
                            violation_detail(&report.scope, region, r, *before, report.finished_at, &report.trigger);
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus)
                            .source(VIOLATION_SOURCE)
                            .detail_type(VIOLATION_DETAIL_TYPE)
                            .resources(format!("arn:aws:::{}:control/{}", report.scope.account_id, r.control.as_str()))
                            .detail(json!(detail).to_string())
                            .build()
                    })
                    .collect();
                let out = self
                    .events
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| EvidenceError { op: "events:PutEvents", message: error_message(&e) })?;
                if out.failed_entry_count > 0 {
                    let why: Vec<String> = out
                        .entries()
                        .iter()
                        .filter_map(|e| {
                            e.error_code
                                .clone()
                                .map(|c| format!("{c}: {}", e.error_message.clone().unwrap_or_default()))
                        })
                        .collect();
                    return Err(EvidenceError { op: "events:PutEvents", message: why.join("; ") });
                }
                published.extend(chunk.iter().map(|(region, r, _)| (region.clone(), r.control)));
            }
        }
        self.write(report, &current).await?;
        Ok(published)
    }

    async fn try_lease(
        &self,
        scope: &Scope,
        owner: &str,
        lease_for: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, EvidenceError> {
        let until = now.timestamp().saturating_add(i64::try_from(lease_for.as_secs()).unwrap_or(3600));
        let key = Key::scan_lease(scope.account_id.as_str(), &scope.region);
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key.pk))
            .item("sk", s(key.sk))
            .item("owner", s(owner))
            .item("lease_until", AttributeValue::N(until.to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(until.saturating_add(86_400).to_string()))
            .condition_expression("attribute_not_exists(pk) OR lease_until <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(EvidenceError { op: "dynamodb:PutItem", message: error_message(&e) }),
        }
    }
}

#[async_trait]
impl UserReadStore for EvidenceStore {
    async fn user_reads(&self, account: &AccountId) -> Result<Vec<UserRead>, EvidenceError> {
        let prefix = KeyPrefix::iam_user_reads(account);
        let mut reads = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                .expression_attribute_values(":pk", s(prefix.pk.clone()))
                .expression_attribute_values(":sk", s(prefix.sk_prefix.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| EvidenceError { op: "dynamodb:Query", message: error_message(&e) })?;
            for item in page.items.unwrap_or_default() {
                let Some(text) = item.get("read").and_then(|v| v.as_s().ok()) else { continue };
                match serde_json::from_str::<UserRead>(text) {
                    Ok(read) => reads.push(read),
                    // Written by another version: ignore it (the report, or the next event, decides).
                    Err(e) => tracing::warn!(error = %e, "an IAM user read in the table cannot be parsed"),
                }
            }
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(reads),
            }
        }
    }

    async fn put_user_read(&self, account: &AccountId, read: &UserRead) -> Result<(), EvidenceError> {
        let key = Key::iam_user_read(account, &read.user);
        let doc = serde_json::to_string(read)
            .map_err(|e| EvidenceError { op: "dynamodb:PutItem", message: e.to_string() })?;
        let expires = (read.read_at + CREDENTIAL_REPORT_MAX_AGE).timestamp().saturating_add(3600);
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key.pk))
            .item("sk", s(key.sk))
            .item("read", s(doc))
            .item("read_at_ms", AttributeValue::N(read.read_at.timestamp_millis().to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires.to_string()))
            // An older read arriving late (a slow rescan) never replaces a newer one.
            .condition_expression("attribute_not_exists(pk) OR read_at_ms <= :at")
            .expression_attribute_values(":at", AttributeValue::N(read.read_at.timestamp_millis().to_string()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match e.as_service_error() {
                Some(s) if s.is_conditional_check_failed_exception() => Ok(()),
                _ => Err(EvidenceError { op: "dynamodb:PutItem", message: error_message(&e) }),
            })
    }
}

impl EvidenceStore {
    async fn previous_statuses(
        &self,
        account: &str,
        results: &[(String, ControlResult)],
    ) -> Result<HashMap<(String, ControlId), (Status, Option<i64>)>, EvidenceError> {
        let mut keys =
            KeysAndAttributes::builder().consistent_read(true).projection_expression("pk, sk, #s, measured_at_ms");
        keys = keys.expression_attribute_names("#s", "status");
        for (region, r) in results {
            keys = keys.keys(evidence_key(account, region, r.control));
        }
        let keys = keys.build().map_err(|e| EvidenceError { op: "dynamodb:BatchGetItem", message: e.to_string() })?;
        let mut request = HashMap::from([(self.table.clone(), keys)]);
        let mut out = HashMap::new();
        for _ in 0..5 {
            let resp = self
                .ddb
                .batch_get_item()
                .set_request_items(Some(request.clone()))
                .send()
                .await
                .map_err(|e| EvidenceError { op: "dynamodb:BatchGetItem", message: error_message(&e) })?;
            for item in resp.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let parsed = Key::parse_evidence(&text("pk"), &text("sk"));
                let (region, control) = match parsed {
                    Some((region, control)) => (region, Some(control)),
                    None => (String::new(), None),
                };
                let status = item.get("status").and_then(|v| v.as_s().ok()).and_then(|st| match st.as_str() {
                    "pass" => Some(Status::Pass),
                    "fail" => Some(Status::Fail),
                    "unknown" => Some(Status::Unknown),
                    _ => None,
                });
                let measured_at =
                    item.get("measured_at_ms").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
                if let (Some(c), Some(st)) = (control, status) {
                    out.insert((region, c), (st, measured_at));
                }
            }
            match resp.unprocessed_keys.filter(|u| !u.is_empty()) {
                Some(rest) => {
                    request = rest;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => return Ok(out),
            }
        }
        Err(EvidenceError { op: "dynamodb:BatchGetItem", message: "keys left unprocessed after 5 tries".into() })
    }

    async fn write(&self, report: &ScanReport, results: &[&(String, ControlResult)]) -> Result<(), EvidenceError> {
        let checked = report.finished_at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut writes: Vec<WriteRequest> = Vec::new();
        for (region, r) in results.iter().map(|x| (&x.0, &x.1)) {
            let mut item = evidence_key(report.scope.account_id.as_str(), region, r.control);
            let stored: Vec<&String> = r.failing_resources.iter().take(MAX_STORED_RESOURCES).collect();
            item.insert("status".into(), s(r.status.as_str()));
            item.insert("title".into(), s(r.control.title()));
            item.insert("failing_count".into(), AttributeValue::N(r.failing_resources.len().to_string()));
            item.insert("failing_resources".into(), s(json!(stored).to_string()));
            if let Some(reason) = &r.reason {
                item.insert("reason".into(), s(reason.clone()));
            }
            if let Some(code) = r.error_code {
                item.insert("error_code".into(), s(code.as_str()));
            }
            item.insert("checked_at".into(), s(checked.clone()));
            item.insert("checked_at_epoch".into(), AttributeValue::N(report.finished_at.timestamp().to_string()));
            item.insert("measured_at_ms".into(), AttributeValue::N(report.started_at.timestamp_millis().to_string()));
            item.insert("trigger".into(), s(report.trigger.clone()));
            if r.control == ControlId::GuardDuty1 {
                match &report.findings {
                    Some(Findings::Counted(f)) => {
                        item.insert("findings_status".into(), s("counted"));
                        item.insert("findings_high".into(), AttributeValue::N(f.high.to_string()));
                        item.insert("findings_critical".into(), AttributeValue::N(f.critical.to_string()));
                    }
                    Some(Findings::Unknown { error_code, reason }) => {
                        item.insert("findings_status".into(), s("unknown"));
                        item.insert("findings_error_code".into(), s(error_code.as_str()));
                        item.insert("findings_reason".into(), s(reason.clone()));
                    }
                    None => {}
                }
            }
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| EvidenceError { op: "dynamodb:BatchWriteItem", message: e.to_string() })?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in writes.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            for attempt in 0..5u64 {
                let out = self
                    .ddb
                    .batch_write_item()
                    .set_request_items(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| EvidenceError { op: "dynamodb:BatchWriteItem", message: error_message(&e) })?;
                match out.unprocessed_items.filter(|u| u.values().any(|v| !v.is_empty())) {
                    Some(rest) => {
                        pending = rest;
                        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                    }
                    None => break,
                }
                if attempt == 4 {
                    return Err(EvidenceError {
                        op: "dynamodb:BatchWriteItem",
                        message: "items left unprocessed".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn violation_detail(
    scope: &Scope,
    region: &str,
    r: &ControlResult,
    before: Option<Status>,
    at: DateTime<Utc>,
    trigger: &str,
) -> ViolationDetail {
    ViolationDetail {
        control_id: r.control.as_str().to_owned(),
        title: r.control.title().to_owned(),
        status: r.status.as_str().to_owned(),
        previous_status: before.map(|b| b.as_str().to_owned()),
        account_id: scope.account_id.to_string(),
        region: region.to_owned(),
        failing_resource_count: r.failing_resources.len(),
        failing_resources: r.failing_resources.iter().take(20).cloned().collect(),
        reason: r.reason.clone(),
        checked_at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        trigger: trigger.to_owned(),
    }
}

/// Example violation detail, for the documentation test.
pub fn example_violation() -> serde_json::Value {
    json!(violation_detail(
        &Scope {
            account_id: portcullis_domain::AccountId::parse("123456789012").expect("valid"),
            region: "us-east-1".into()
        },
        "us-east-1",
        &ControlResult::fail(
            ControlId::CloudTrail1,
            vec!["arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into()],
            "no healthy multi-region trail (arn:aws:cloudtrail:us-east-1:123456789012:trail/main: not logging)",
        ),
        Some(Status::Pass),
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").map(|d| d.with_timezone(&Utc)).unwrap_or_default(),
        "event:StopLogging",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/posture.md shows the violation detail exactly as the code builds it.
    #[test]
    fn documented_violation_detail_matches_the_code() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/posture.md")).unwrap();
        let start = doc.find("```json\n{\n  \"control_id\"").expect("the example in docs/posture.md");
        let text = &doc[start + 8..];
        let text = &text[..text.find("```").unwrap()];
        let documented: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut expected = example_violation();
        // The doc shortens the trail name.
        expected["failing_resources"] = json!(["arn:aws:cloudtrail:us-east-1:123456789012:trail/main"]);
        assert_eq!(documented, expected);
    }
}
