//! DynamoDB persistence: templates, grants and recorded replies, in the stack's single table.
//!
//! Item layout (partition key `pk`, sort key `sk`, TTL attribute `expires_at` in epoch seconds):
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | template index | `TEMPLATES` | `<name>` | `latest_version`, `deleted`, `summary` |
//! | template version | `TEMPLATE#<name>` | `V#<version, 8 digits>` | `doc`: the stored template as JSON |
//! | grant | `GRANTS#<user>` | `GRANT#<account>#<grant id>` | `doc`, `expires_at` |
//! | recorded reply | `REQUEST#<user>#<message id>` | `REPLY` | `reply`, `expires_at` |
//! | posture evidence / leases | `POSTURE#...` / `LEASE#...` | | see the posture worker |
//!
//! Every write that must happen once is conditional (`attribute_not_exists`) or part of a
//! transaction with the request's recorded reply, so a redelivered message is recognised and answered
//! with the same reply instead of acting twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::grant::Grant;
use crate::messages::TemplateSummary;
use crate::template::{StoredTemplate, TemplateSpec};

/// A storage failure. Retryable from the requester's point of view, except `Invalid`: DynamoDB
/// refused the request itself (a `ValidationException`, for example a key over its size limit), and
/// sending it again cannot help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB call {op} failed: {message}")]
    Unavailable { op: &'static str, message: String },
    #[error("stored item {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    #[error("concurrent update of {0}; retry")]
    Conflict(String),
    #[error("DynamoDB refused {op} as invalid: {message}")]
    Invalid { op: &'static str, message: String },
}

fn unavailable<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &'static str,
) -> impl FnOnce(SdkError<E>) -> StoreError {
    move |e| {
        let message = aws_error_message(&e);
        match e.code() {
            Some("ValidationException") => StoreError::Invalid { op, message },
            _ => StoreError::Unavailable { op, message },
        }
    }
}

/// A readable one-line message from an SDK error (code and message when the service sent them).
pub fn aws_error_message<E: std::error::Error + 'static>(e: &SdkError<E>) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// Partition key of a user's grants.
fn grant_pk(user: &str) -> String {
    format!("GRANTS#{user}")
}

/// Sort key of one grant.
fn grant_sk(account: &str, id: &str) -> String {
    format!("GRANT#{account}#{id}")
}

fn decode<T: serde::de::DeserializeOwned>(item: &HashMap<String, AttributeValue>, attr: &str) -> Result<T, StoreError> {
    let key = format!("{}/{}", get_s(item, "pk").unwrap_or("?"), get_s(item, "sk").unwrap_or("?"));
    let text =
        get_s(item, attr).ok_or_else(|| StoreError::Corrupt { key: key.clone(), message: format!("no `{attr}`") })?;
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { key, message: e.to_string() })
}

/// Identifies a request for idempotency: (requester, message id). Scoping by requester means nobody
/// can replay someone else's reply by reusing their message id.
#[derive(Debug, Clone)]
pub struct RequestKey<'a> {
    pub user: &'a str,
    pub message_id: &'a str,
}

impl RequestKey<'_> {
    fn pk(&self) -> String {
        format!("REQUEST#{}#{}", self.user, self.message_id)
    }
}

/// Outcome of a write guarded by a recorded reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded<T> {
    /// The write happened now.
    Applied(T),
    /// The same request was handled before; this is the reply recorded then.
    Replayed(Value),
}

/// Outcome of writing a grant.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantWrite {
    Created,
    /// A grant with this id exists already (a redelivered request); here it is.
    Existing(Box<Grant>),
}

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The reply recorded for a request, if it was handled before.
    pub async fn recorded_reply(&self, key: &RequestKey<'_>) -> Result<Option<Value>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key.pk()))
            .key("sk", s("REPLY"))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem"))?;
        match out.item {
            Some(item) => Ok(Some(decode(&item, "reply")?)),
            None => Ok(None),
        }
    }

    fn reply_put(&self, key: &RequestKey<'_>, reply: &Value, expires_at: i64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(key.pk()))
            .item("sk", s("REPLY"))
            .item("reply", s(reply.to_string()))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Corrupt { key: key.pk(), message: e.to_string() })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Run `items` and record `reply` for `key` in one transaction. When the reply was recorded
    /// before, nothing is written and the earlier reply is returned. When another condition fails,
    /// `Conflict` names the item.
    async fn transact_recorded(
        &self,
        mut items: Vec<TransactWriteItem>,
        key: &RequestKey<'_>,
        reply: &Value,
        reply_expires_at: i64,
    ) -> Result<Recorded<()>, StoreError> {
        items.push(self.reply_put(key, reply, reply_expires_at)?);
        let reply_index = items.len() - 1;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(Recorded::Applied(())),
            Err(err) => {
                let reasons: Vec<Option<String>> = match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                        e.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
                    }
                    _ => Vec::new(),
                };
                if reasons.is_empty() {
                    return Err(unavailable("TransactWriteItems")(err));
                }
                let failed = |i: usize| reasons.get(i).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed");
                if failed(reply_index) {
                    return match self.recorded_reply(key).await? {
                        Some(reply) => Ok(Recorded::Replayed(reply)),
                        None => Err(StoreError::Conflict(key.pk())),
                    };
                }
                match (0..reply_index).find(|i| failed(*i)) {
                    Some(i) => Err(StoreError::Conflict(format!("transaction item {i}"))),
                    None => Err(unavailable("TransactWriteItems")(err)),
                }
            }
        }
    }

    async fn template_index(&self, name: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("TEMPLATES"))
            .key("sk", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem"))?;
        Ok(out.item)
    }

    /// Store `spec` as the next version of its name, recording `reply_for(version)` for `key`.
    pub async fn put_template(
        &self,
        spec: &TemplateSpec,
        created_by: &str,
        now: DateTime<Utc>,
        key: &RequestKey<'_>,
        reply_for: impl Fn(u32) -> Value,
        reply_expires_at: i64,
    ) -> Result<Recorded<u32>, StoreError> {
        let index = self.template_index(&spec.name).await?;
        let previous = index.as_ref().and_then(|i| get_n(i, "latest_version")).unwrap_or(0);
        let version = u32::try_from(previous + 1).map_err(|_| StoreError::Conflict(spec.name.clone()))?;
        let stored = StoredTemplate { spec: spec.clone(), version, created_by: created_by.to_owned(), created_at: now };
        let summary = TemplateSummary {
            name: spec.name.clone(),
            description: spec.description.clone(),
            latest_version: version,
            max_ttl_seconds: spec.max_ttl_seconds,
            parameters: spec.parameters.iter().map(|p| p.name.clone()).collect(),
        };
        let build_err = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Corrupt {
            key: spec.name.clone(),
            message: e.to_string(),
        };
        let mut index_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s("TEMPLATES"))
            .item("sk", s(&spec.name))
            .item("latest_version", n(version))
            .item("deleted", AttributeValue::Bool(false))
            .item("summary", s(to_json(&summary)));
        index_put = if index.is_some() {
            index_put.condition_expression("latest_version = :prev").expression_attribute_values(":prev", n(previous))
        } else {
            index_put.condition_expression("attribute_not_exists(pk)")
        };
        let version_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("TEMPLATE#{}", spec.name)))
            .item("sk", s(format!("V#{version:08}")))
            .item("doc", s(to_json(&stored)))
            .condition_expression("attribute_not_exists(pk)");
        let items = vec![
            TransactWriteItem::builder().put(index_put.build().map_err(build_err)?).build(),
            TransactWriteItem::builder().put(version_put.build().map_err(build_err)?).build(),
        ];
        Ok(match self.transact_recorded(items, key, &reply_for(version), reply_expires_at).await? {
            Recorded::Applied(()) => Recorded::Applied(version),
            Recorded::Replayed(r) => Recorded::Replayed(r),
        })
    }

    /// A template by name: the latest version, or `version`. Deleted templates are not found.
    pub async fn get_template(&self, name: &str, version: Option<u32>) -> Result<Option<StoredTemplate>, StoreError> {
        let Some(index) = self.template_index(name).await? else {
            return Ok(None);
        };
        if index.get("deleted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false) {
            return Ok(None);
        }
        let latest = get_n(&index, "latest_version").unwrap_or(0);
        let wanted = version.map(i64::from).unwrap_or(latest);
        if wanted < 1 || wanted > latest {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("TEMPLATE#{name}")))
            .key("sk", s(format!("V#{wanted:08}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem"))?;
        out.item.map(|item| decode(&item, "doc")).transpose()
    }

    /// Every template that is not deleted.
    pub async fn list_templates(&self) -> Result<Vec<TemplateSummary>, StoreError> {
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("TEMPLATES"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut out = Vec::new();
        for item in items {
            let item = item.map_err(unavailable("Query"))?;
            if item.get("deleted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false) {
                continue;
            }
            out.push(decode(&item, "summary")?);
        }
        Ok(out)
    }

    /// Mark a template deleted, recording `reply` for `key`. `Ok(Recorded::Applied(false))` when there
    /// is no such (undeleted) template.
    pub async fn delete_template(
        &self,
        name: &str,
        key: &RequestKey<'_>,
        reply: &Value,
        reply_expires_at: i64,
    ) -> Result<Recorded<bool>, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s("TEMPLATES"))
            .key("sk", s(name))
            .update_expression("SET deleted = :yes")
            .condition_expression("attribute_exists(pk) AND deleted = :no")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()
            .map_err(|e| StoreError::Corrupt { key: name.to_owned(), message: e.to_string() })?;
        let items = vec![TransactWriteItem::builder().update(update).build()];
        match self.transact_recorded(items, key, reply, reply_expires_at).await {
            Ok(Recorded::Applied(())) => Ok(Recorded::Applied(true)),
            Ok(Recorded::Replayed(r)) => Ok(Recorded::Replayed(r)),
            Err(StoreError::Conflict(_)) => Ok(Recorded::Applied(false)),
            Err(e) => Err(e),
        }
    }

    /// The grant with this id, live or not, if it is still stored.
    pub async fn grant(&self, user: &str, account: &str, id: &str) -> Result<Option<Grant>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(grant_pk(user)))
            .key("sk", s(grant_sk(account, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem"))?;
        out.item.map(|item| decode(&item, "doc")).transpose()
    }

    /// Write a grant once. A redelivered request finds the grant it created before.
    pub async fn put_grant(&self, grant: &Grant) -> Result<GrantWrite, StoreError> {
        let pk = grant_pk(&grant.user);
        let sk = grant_sk(&grant.account, &grant.id);
        let doc = serde_json::to_string(grant)
            .map_err(|e| StoreError::Corrupt { key: sk.clone(), message: e.to_string() })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(&sk))
            .item("doc", s(doc))
            .item("account", s(&grant.account))
            .item("template", s(&grant.template))
            .item("expires_at", n(grant.expires_at.timestamp()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(GrantWrite::Created),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                let existing = self.grant(&grant.user, &grant.account, &grant.id).await?;
                Ok(GrantWrite::Existing(Box::new(existing.ok_or(StoreError::Conflict(sk))?)))
            }
            Err(e) => Err(unavailable("PutItem")(e)),
        }
    }

    /// The user's grants that are live at `now`, for one account or all. Expired items that DynamoDB
    /// has not deleted yet are filtered out here.
    pub async fn live_grants(
        &self,
        user: &str,
        account: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>, StoreError> {
        let prefix = match account {
            Some(a) => format!("GRANT#{a}#"),
            None => "GRANT#".to_owned(),
        };
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .filter_expression("expires_at > :now")
            .expression_attribute_values(":pk", s(grant_pk(user)))
            .expression_attribute_values(":prefix", s(prefix))
            .expression_attribute_values(":now", n(now.timestamp()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut grants = Vec::new();
        for item in items {
            let grant: Grant = decode(&item.map_err(unavailable("Query"))?, "doc")?;
            if grant.is_live(now) {
                grants.push(grant);
            }
        }
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }
}

/// JSON text of one of our own types (which always serialize).
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
