//! [`EvidenceReader`] over DynamoDB: the posture worker's evidence items (key layout:
//! [`portcullis_domain::table`]), fetched by key with `BatchGetItem`, 100 keys a call.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use portcullis_domain::AccountId;
use portcullis_domain::messages::ControlEvidence;
use portcullis_domain::posture::ControlId;
use portcullis_domain::table::Key;

use crate::ports::{EvidenceReader, StoreError};

type Item = HashMap<String, AttributeValue>;

/// Reads evidence from the stack's table.
#[derive(Debug, Clone)]
pub struct DynamoEvidenceReader {
    client: Client,
    table: String,
}

impl DynamoEvidenceReader {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn text(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

/// One evidence item as the reply shows it; `None` when it is not an evidence item.
fn evidence_of(item: &Item) -> Option<ControlEvidence> {
    let (pk, sk) = (text(item, "pk")?, text(item, "sk")?);
    let (region, control) = Key::parse_evidence(&pk, &sk)?;
    let account = AccountId::parse(pk.strip_prefix("POSTURE#")?.split('#').next()?).ok()?;
    Some(ControlEvidence {
        account,
        region,
        control_id: control.as_str().to_owned(),
        title: text(item, "title").unwrap_or_else(|| control.title().to_owned()),
        status: text(item, "status").unwrap_or_else(|| "unknown".into()),
        failing_count: item.get("failing_count").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0),
        failing_resources: text(item, "failing_resources")
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        reason: text(item, "reason"),
        error_code: text(item, "error_code"),
        checked_at: text(item, "checked_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
        trigger: text(item, "trigger"),
    })
}

#[async_trait]
impl EvidenceReader for DynamoEvidenceReader {
    async fn latest_evidence(
        &self,
        accounts: &[AccountId],
        regions: &[String],
    ) -> Result<Vec<ControlEvidence>, StoreError> {
        let mut keys: Vec<Item> = Vec::new();
        for account in accounts {
            for region in regions {
                for &control in ControlId::ALL {
                    let key = Key::evidence(account.as_str(), region, control);
                    keys.push(HashMap::from([
                        ("pk".to_owned(), AttributeValue::S(key.pk)),
                        ("sk".to_owned(), AttributeValue::S(key.sk)),
                    ]));
                }
            }
        }
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .build()
                .map_err(|e| StoreError::Invalid(format!("DynamoDB BatchGetItem: {e}")))?;
            let mut pending = HashMap::from([(self.table.clone(), request)]);
            for attempt in 0..5u64 {
                let resp = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| super::dynamo::store_error("BatchGetItem", &e))?;
                for item in resp.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    out.extend(evidence_of(&item));
                }
                match resp.unprocessed_keys.filter(|u| u.values().any(|k| !k.keys.is_empty())) {
                    Some(rest) if attempt < 4 => {
                        pending = rest;
                        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                    }
                    Some(_) => {
                        return Err(StoreError::Unavailable("DynamoDB BatchGetItem left keys unprocessed".into()));
                    }
                    None => break,
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_items_are_read_back() {
        let key = Key::evidence("123456789012", "eu-west-1", ControlId::CloudTrail1);
        let item: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.pk)),
            ("sk".to_owned(), AttributeValue::S(key.sk)),
            ("status".to_owned(), AttributeValue::S("fail".into())),
            ("failing_count".to_owned(), AttributeValue::N("2".into())),
            ("failing_resources".to_owned(), AttributeValue::S(r#"["a","b"]"#.into())),
            ("checked_at".to_owned(), AttributeValue::S("2026-11-22T12:00:03Z".into())),
        ]);
        let e = evidence_of(&item).unwrap();
        assert_eq!(
            (e.account.as_str(), e.region.as_str(), e.control_id.as_str()),
            ("123456789012", "eu-west-1", "CloudTrail.1")
        );
        assert_eq!((e.status.as_str(), e.failing_count, e.failing_resources.len()), ("fail", 2, 2));
        assert!(e.checked_at.is_some());
        let lease: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("LEASE#posture#123456789012#eu-west-1".into())),
            ("sk".to_owned(), AttributeValue::S("LEASE".into())),
        ]);
        assert!(evidence_of(&lease).is_none());
    }
}
