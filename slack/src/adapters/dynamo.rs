//! The edge's records in the stack's DynamoDB table, under the keys `portcullis_domain::table`
//! builds (`SLACK#…`, `SLACKLINK#…`, `SLACKMSG#…`): each item's `doc` is JSON; links and
//! messages carry the TTL attribute and are filtered on it when read.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use portcullis_access::ports::AccessStore;
use portcullis_domain::GrantId;
use portcullis_domain::directory::DirectoryRecord;
use portcullis_domain::table::{Key, KeyPrefix, TTL_ATTRIBUTE, slack_expiry_sk};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::card::GrantCard;
use crate::ports::{Binding, EdgeStore, LinkState, MessageRef, StoreError};

/// How long a grant's card and message copies are kept (grants live at most 7 days; a pending
/// one a day; a break-glass review up to 90 days).
const MESSAGE_RETENTION_DAYS: i64 = 100;

/// The stack's table.
#[derive(Debug, Clone)]
pub struct DynamoEdgeStore {
    client: Client,
    table: String,
    /// The access worker's adapter over the same table, for the directory records it reads.
    access: portcullis_access::adapters::DynamoStore,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn doc<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let text = item.get("doc").and_then(|v| v.as_s().ok()).ok_or_else(|| StoreError("an item has no doc".into()))?;
    serde_json::from_str(text).map_err(|e| StoreError(format!("a stored record cannot be read: {e}")))
}

fn expired(item: &Item, now: DateTime<Utc>) -> bool {
    item.get(TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .is_some_and(|t| t <= now.timestamp())
}

fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
    op: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError {
    move |e| StoreError(format!("DynamoDB {op}: {}", portcullis_runtime::aws::error_message(&e)))
}

impl DynamoEdgeStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        let access = portcullis_access::adapters::DynamoStore::new(client.clone(), table.clone());
        Self { client, table, access }
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        Ok(out.item)
    }

    async fn put<T: Serialize + Sync>(&self, key: &Key, value: &T, expires_at: Option<i64>) -> Result<(), StoreError> {
        let text = serde_json::to_string(value).map_err(|e| StoreError(e.to_string()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key.pk))
            .item("sk", s(&key.sk))
            .item("doc", s(&text));
        if let Some(t) = expires_at {
            put = put.item(TTL_ATTRIBUTE, AttributeValue::N(t.to_string()));
        }
        put.send().await.map_err(failed("PutItem"))?;
        Ok(())
    }

    async fn delete(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(failed("DeleteItem"))?;
        Ok(out.attributes)
    }

    fn retention() -> i64 {
        (Utc::now() + chrono::Duration::days(MESSAGE_RETENTION_DAYS)).timestamp()
    }
}

/// The card of a grant: the message partition's `CARD` item; the notification claim: `NOTIFIED`.
fn card_key(grant: &GrantId) -> Key {
    Key::slack_message(grant, "CARD", "0")
}

fn notified_key(grant: &GrantId) -> Key {
    Key::slack_message(grant, "NOTIFIED", "0")
}

#[async_trait]
impl EdgeStore for DynamoEdgeStore {
    async fn binding(&self, team_id: &str, user_id: &str) -> Result<Option<Binding>, StoreError> {
        self.get(&Key::slack_binding(team_id, user_id)).await?.map(|i| doc(&i)).transpose()
    }

    async fn put_binding(&self, team_id: &str, user_id: &str, binding: &Binding) -> Result<(), StoreError> {
        self.put(&Key::slack_binding(team_id, user_id), binding, None).await
    }

    async fn delete_binding(&self, team_id: &str, user_id: &str) -> Result<bool, StoreError> {
        Ok(self.delete(&Key::slack_binding(team_id, user_id)).await?.is_some())
    }

    async fn put_link(&self, state: &str, link: &LinkState) -> Result<(), StoreError> {
        self.put(&Key::slack_link_state(state), link, Some(link.expires_at.timestamp())).await
    }

    async fn link(&self, state: &str, now: DateTime<Utc>) -> Result<Option<LinkState>, StoreError> {
        match self.get(&Key::slack_link_state(state)).await? {
            Some(item) if !expired(&item, now) => doc(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn take_link(&self, state: &str, now: DateTime<Utc>) -> Result<Option<LinkState>, StoreError> {
        // DeleteItem returns the old item to exactly one of two racing callers.
        match self.delete(&Key::slack_link_state(state)).await? {
            Some(item) if !expired(&item, now) => doc(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn card(&self, grant: &GrantId) -> Result<Option<GrantCard>, StoreError> {
        self.get(&card_key(grant)).await?.map(|i| doc(&i)).transpose()
    }

    async fn put_card(&self, card: &GrantCard) -> Result<bool, StoreError> {
        let key = card_key(&card.grant_id);
        let mut next = card.clone();
        next.version += 1;
        let text = serde_json::to_string(&next).map_err(|e| StoreError(e.to_string()))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key.pk))
            .item("sk", s(&key.sk))
            .item("doc", s(&text))
            .item("ver", AttributeValue::N(next.version.to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(Self::retention().to_string()));
        let put = match card.version {
            0 => put.condition_expression("attribute_not_exists(pk)"),
            v => put
                .condition_expression("ver = :read")
                .expression_attribute_values(":read", AttributeValue::N(v.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(failed("PutItem")(e)),
        }
    }

    async fn add_message(&self, grant: &GrantId, message: &MessageRef) -> Result<(), StoreError> {
        self.put(&Key::slack_message(grant, &message.channel, &message.ts), message, Some(Self::retention())).await
    }

    async fn messages(&self, grant: &GrantId) -> Result<Vec<MessageRef>, StoreError> {
        let prefix = KeyPrefix::slack_messages(grant);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&prefix.pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(failed("Query"))?;
            for item in page.items() {
                let sk = item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default();
                if sk.starts_with("CARD#") || sk.starts_with("NOTIFIED#") || expired(item, Utc::now()) {
                    continue;
                }
                out.push(doc(item)?);
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(out)
    }

    async fn claim_notification(&self, grant: &GrantId) -> Result<bool, StoreError> {
        let key = notified_key(grant);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key.pk))
            .item("sk", s(&key.sk))
            .item(TTL_ATTRIBUTE, AttributeValue::N(Self::retention().to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(failed("PutItem")(e)),
        }
    }

    async fn schedule_expiry(&self, grant: &GrantId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let kept = (at + chrono::Duration::days(2)).timestamp();
        self.put(&Key::slack_expiry(at, grant), &(grant, at), Some(kept)).await
    }

    async fn due_expiries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(GrantId, DateTime<Utc>)>, StoreError> {
        let mut due = Vec::new();
        for day in [now - chrono::Duration::days(1), now] {
            let prefix = KeyPrefix::slack_expiries(day);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk <= :due")
                .expression_attribute_values(":pk", s(&prefix.pk))
                .expression_attribute_values(":due", s(&slack_expiry_sk(now, "~")))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(failed("Query"))?;
            for item in page.items() {
                due.push(doc::<(GrantId, DateTime<Utc>)>(item)?);
            }
        }
        due.truncate(limit);
        Ok(due)
    }

    async fn clear_expiry(&self, grant: &GrantId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.delete(&Key::slack_expiry(at, grant)).await.map(|_| ())
    }

    async fn directory_record(&self, subject: &str) -> Result<Option<DirectoryRecord>, StoreError> {
        let record = self.access.directory_record(subject).await.map_err(|e| StoreError(e.to_string()))?;
        Ok(record.map(|(record, _revision)| record))
    }
}
