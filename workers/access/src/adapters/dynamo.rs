//! [`AccessStore`] over DynamoDB, in the stack's single table (key layout:
//! [`portcullis_domain::table`]).
//!
//! Every write that must happen once is conditional (`attribute_not_exists`) and part of a
//! transaction with the request's record, so a redelivered message is recognised and answered with
//! the recorded reply instead of acting twice.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use portcullis_domain::directory::{DirectoryRecord, ScheduledChange};
use portcullis_domain::grant::{Grant, Revocation};
use portcullis_domain::messages::TemplateSummary;
use portcullis_domain::revocation::SessionRevocation;
use portcullis_domain::table::{Key, KeyPrefix, SCHEDULED, TTL_ATTRIBUTE};
use portcullis_domain::template::StoredTemplate;
use portcullis_domain::{AccountId, GrantId, TemplateName};
use portcullis_runtime::aws::{FailureKind, classify};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::{
    AccessStore, DecidedOn, Entitlement, NewRecord, PublishedEvent, Recorded, RequestKey, RequestRecord, StoreError,
    TemplateIndex,
};

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// A template index item.
fn template_index_of(item: &Item) -> Result<TemplateIndex, StoreError> {
    let latest = get_n(item, "latest_version")
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| StoreError::Corrupt { key: key_of(item), message: "no `latest_version`".into() })?;
    let deleted = item.get("deleted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    Ok(TemplateIndex { latest_version: latest, deleted })
}

/// A directory item: the record and its revision.
fn directory_record_of(item: &Item) -> Result<(DirectoryRecord, u64), StoreError> {
    let record: DirectoryRecord = decode(item, "doc")?;
    let rev = get_n(item, "rev")
        .and_then(|r| u64::try_from(r).ok())
        .ok_or_else(|| StoreError::Corrupt { key: key_of(item), message: "no `rev`".into() })?;
    Ok((record, rev))
}

fn key_of(item: &Item) -> String {
    format!("{}/{}", get_s(item, "pk").unwrap_or("?"), get_s(item, "sk").unwrap_or("?"))
}

/// A classified DynamoDB error as a store error: retryable ones may pass, the rest cannot.
pub(crate) fn store_error<E>(op: &'static str, e: &SdkError<E>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = classify(e);
    let message = format!("DynamoDB {op}: {}", failure.message);
    match failure.kind {
        FailureKind::Invalid => StoreError::Invalid(message),
        FailureKind::ConditionFailed => StoreError::Conflict(message),
        FailureKind::AccessDenied | FailureKind::NotFound | FailureKind::Unsupported => StoreError::Denied(message),
        FailureKind::Throttled | FailureKind::Transient => StoreError::Unavailable(message),
    }
}

fn decode<T: DeserializeOwned>(item: &Item, attr: &str) -> Result<T, StoreError> {
    let text =
        get_s(item, attr).ok_or_else(|| StoreError::Corrupt { key: key_of(item), message: format!("no `{attr}`") })?;
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { key: key_of(item), message: e.to_string() })
}

/// A grant item: its `doc` (rewritten, under the `rev` revision, by approvals and reviews), and the
/// `revoked` attribute once it was revoked (written on its own, so a revocation never races a
/// decision away).
fn decode_grant(item: &Item) -> Result<Grant, StoreError> {
    let mut grant: Grant = decode(item, "doc")?;
    grant.revoked = match item.contains_key("revoked") {
        true => Some(decode::<Revocation>(item, "revoked")?),
        false => None,
    };
    grant.revision = get_n(item, "rev").and_then(|r| u64::try_from(r).ok()).unwrap_or(0);
    Ok(grant)
}

/// The document stored for a grant: without the revocation (its own attribute).
fn grant_doc(key: &str, grant: &Grant) -> Result<String, StoreError> {
    encode(key, &Grant { revoked: None, ..grant.clone() })
}

fn encode<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt { key: what.to_owned(), message: e.to_string() })
}

fn build_err(what: &str) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> StoreError + '_ {
    move |e| StoreError::Invalid(format!("{what}: {e}"))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn put(&self, key: &Key) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder().table_name(&self.table).item("pk", s(&key.pk)).item("sk", s(&key.sk))
    }

    fn delete_item(&self, key: &Key) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .build()
            .map_err(build_err(&key.pk))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A grant's index entry: found by its id alone (approvals and revocations name only the id).
    fn grant_index_put(&self, grant: &Grant) -> Result<TransactWriteItem, StoreError> {
        let key = Key::grant_index(&grant.id);
        let put = self
            .put(&key)
            .item("user", s(&grant.user))
            .item("account", s(grant.account.as_str()))
            .item(TTL_ATTRIBUTE, n(grant.keep_until().timestamp()))
            .build()
            .map_err(build_err(&key.pk))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An entry of a list of grants (the approvers' or the reviewers'), kept until `until`.
    fn grant_list_put(&self, key: &Key, grant: &Grant, until: i64) -> Result<TransactWriteItem, StoreError> {
        let put = self
            .put(key)
            .item("user", s(&grant.user))
            .item("account", s(grant.account.as_str()))
            .item(TTL_ATTRIBUTE, n(until))
            .build()
            .map_err(build_err(&key.pk))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The grants a list (the approvers' or the reviewers') names, oldest first.
    async fn listed_grants(&self, list: &KeyPrefix, filter_now: Option<i64>) -> Result<Vec<Grant>, StoreError> {
        let mut grants = Vec::new();
        for entry in self.query(list, filter_now).await? {
            let (Some(user), Some(account), Some(id)) =
                (get_s(&entry, "user"), get_s(&entry, "account"), get_s(&entry, "sk"))
            else {
                return Err(StoreError::Corrupt {
                    key: key_of(&entry),
                    message: "no `user`, `account` or `sk`".into(),
                });
            };
            let corrupt = |e: String| StoreError::Corrupt { key: key_of(&entry), message: e };
            let account = AccountId::parse(account).map_err(|e| corrupt(e.to_string()))?;
            let id = GrantId::parse(id).map_err(|e| corrupt(e.to_string()))?;
            // The grant itself may be gone (its item expired first): then it is no longer listed.
            if let Some(grant) = self.grant(user, &account, &id).await? {
                grants.push(grant);
            }
        }
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
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
            .map_err(|e| store_error("GetItem", &e))?;
        Ok(out.item)
    }

    /// Items by key in strongly consistent `BatchGetItem`s (100 keys each; what one leaves
    /// unprocessed is read with `GetItem`), in the order of `keys`.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let request = chunk
                .iter()
                .fold(KeysAndAttributes::builder().consistent_read(true), |b, key| {
                    b.keys(HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))]))
                })
                .build()
                .map_err(build_err(chunk.first().map_or("", |k| k.pk.as_str())))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| store_error("BatchGetItem", &e))?;
            let mut found = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
            let unprocessed =
                out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            for key in chunk {
                let is_key = |item: &Item| {
                    get_s(item, "pk") == Some(key.pk.as_str()) && get_s(item, "sk") == Some(key.sk.as_str())
                };
                items.push(match found.iter().position(is_key) {
                    Some(i) => Some(found.swap_remove(i)),
                    None if unprocessed.iter().any(is_key) => self.get(key).await?,
                    None => None,
                });
            }
        }
        Ok(items)
    }

    async fn query(&self, prefix: &KeyPrefix, filter_now: Option<i64>) -> Result<Vec<Item>, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(&prefix.pk));
        q = if prefix.sk_prefix.is_empty() {
            q.key_condition_expression("pk = :pk")
        } else {
            q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(&prefix.sk_prefix))
        };
        if let Some(now) = filter_now {
            q = q
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":now", n(now));
        }
        let pages = q.into_paginator().items().send().collect::<Vec<_>>().await;
        pages.into_iter().map(|r| r.map_err(|e| store_error("Query", &e))).collect()
    }

    /// A request record's item, written only where none is (`attribute_not_exists(pk)`).
    fn record_item(new: &NewRecord<'_>) -> Result<Item, StoreError> {
        let key = Key::request(new.key.user, new.key.message_id);
        let events = encode(&key.pk, &new.record.events)?;
        Ok(HashMap::from([
            ("pk".to_owned(), s(&key.pk)),
            ("sk".to_owned(), s(&key.sk)),
            ("reply".to_owned(), s(&new.record.reply)),
            ("digest".to_owned(), s(&new.record.digest)),
            ("events".to_owned(), s(events)),
            (TTL_ATTRIBUTE.to_owned(), n(new.expires_at)),
        ]))
    }

    fn record_put(&self, new: &NewRecord<'_>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::record_item(new)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err(new.key.user))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Checks that what a new grant was decided on still holds: the directory item at its revision
    /// (or absent), the template index at the grant's version and not deleted.
    fn decided_on_checks(
        &self,
        grant: &Grant,
        decided_on: DecidedOn,
    ) -> Result<Vec<(TransactWriteItem, &'static str)>, StoreError> {
        let directory = Key::directory(&grant.user);
        let mut check =
            ConditionCheck::builder().table_name(&self.table).key("pk", s(&directory.pk)).key("sk", s(&directory.sk));
        check = match decided_on.directory_revision {
            Some(rev) => check.condition_expression("rev = :rev").expression_attribute_values(":rev", n(rev)),
            None => check.condition_expression("attribute_not_exists(pk)"),
        };
        let index = Key::template_index(&grant.template);
        let template = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(&index.pk))
            .key("sk", s(&index.sk))
            .condition_expression("latest_version = :v AND (attribute_not_exists(deleted) OR deleted = :no)")
            .expression_attribute_values(":v", n(grant.template_version))
            .expression_attribute_values(":no", AttributeValue::Bool(false));
        Ok(vec![
            (
                TransactWriteItem::builder().condition_check(check.build().map_err(build_err(&directory.pk))?).build(),
                "the requester's directory record",
            ),
            (
                TransactWriteItem::builder().condition_check(template.build().map_err(build_err(&index.pk))?).build(),
                "the template's index",
            ),
        ])
    }

    /// Run `items` and write the record in one transaction. When the record existed, nothing is
    /// written and the earlier record is returned; when another condition fails, `Conflict`.
    async fn transact_recorded(
        &self,
        items: Vec<TransactWriteItem>,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError> {
        self.transact_checked(Vec::new(), items, record).await
    }

    /// [`Self::transact_recorded`] after `checks` (condition checks of what the write was decided
    /// on): when one of them fails, `Stale`.
    async fn transact_checked(
        &self,
        checks: Vec<(TransactWriteItem, &'static str)>,
        items: Vec<TransactWriteItem>,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError> {
        let (checks, checked): (Vec<_>, Vec<_>) = checks.into_iter().unzip();
        let mut items: Vec<TransactWriteItem> = checks.into_iter().chain(items).collect();
        items.push(self.record_put(record)?);
        let record_index = items.len() - 1;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let err = match result {
            Ok(_) => return Ok(Recorded::Applied(())),
            Err(err) => err,
        };
        let reasons: Vec<Option<String>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                e.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
            }
            _ => return Err(store_error("TransactWriteItems", &err)),
        };
        let failed = |i: usize| reasons.get(i).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed");
        if failed(record_index) {
            return match self.request_record(&record.key).await? {
                Some(earlier) => Ok(Recorded::Replayed(earlier)),
                None => Err(StoreError::Conflict(Key::request(record.key.user, record.key.message_id).pk)),
            };
        }
        match (0..record_index).find(|i| failed(*i)) {
            Some(i) => Err(match checked.get(i) {
                Some(what) => StoreError::Stale((*what).to_owned()),
                None => StoreError::Conflict(format!("transaction item {i}")),
            }),
            None => Err(store_error("TransactWriteItems", &err)),
        }
    }
}

#[async_trait]
impl AccessStore for DynamoStore {
    async fn request_record(&self, key: &RequestKey<'_>) -> Result<Option<RequestRecord>, StoreError> {
        let Some(item) = self.get(&Key::request(key.user, key.message_id)).await? else { return Ok(None) };
        let field = |name: &str| {
            get_s(&item, name)
                .map(str::to_owned)
                .ok_or_else(|| StoreError::Corrupt { key: key_of(&item), message: format!("no `{name}`") })
        };
        let events: Vec<PublishedEvent> =
            if item.contains_key("events") { decode(&item, "events")? } else { Vec::new() };
        Ok(Some(RequestRecord { digest: field("digest")?, reply: field("reply")?, events }))
    }

    /// A record alone is one conditional `PutItem` (a transaction of one item costs twice the
    /// write capacity, and one more round trip inside the service).
    async fn put_request_record(&self, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError> {
        let key = Key::request(record.key.user, record.key.message_id);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::record_item(record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::Applied(())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                match self.request_record(&record.key).await? {
                    Some(earlier) => Ok(Recorded::Replayed(earlier)),
                    None => Err(StoreError::Conflict(key.pk)),
                }
            }
            Err(e) => Err(store_error("PutItem", &e)),
        }
    }

    async fn template_index(&self, name: &TemplateName) -> Result<Option<TemplateIndex>, StoreError> {
        self.get(&Key::template_index(name)).await?.map(|item| template_index_of(&item)).transpose()
    }

    async fn put_template(
        &self,
        template: &StoredTemplate,
        previous: Option<u32>,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError> {
        let name = &template.spec.name;
        let summary = TemplateSummary::of(template);
        let index_key = Key::template_index(name);
        let mut index_put = self
            .put(&index_key)
            .item("latest_version", n(template.version))
            .item("deleted", AttributeValue::Bool(false))
            .item("summary", s(encode(name.as_str(), &summary)?));
        index_put = match previous {
            Some(prev) => {
                index_put.condition_expression("latest_version = :prev").expression_attribute_values(":prev", n(prev))
            }
            None => index_put.condition_expression("attribute_not_exists(pk)"),
        };
        let version_key = Key::template_version(name, template.version);
        let version_put = self
            .put(&version_key)
            .item("doc", s(encode(name.as_str(), template)?))
            .condition_expression("attribute_not_exists(pk)");
        let items = vec![
            TransactWriteItem::builder().put(index_put.build().map_err(build_err(name.as_str()))?).build(),
            TransactWriteItem::builder().put(version_put.build().map_err(build_err(name.as_str()))?).build(),
        ];
        self.transact_recorded(items, record).await
    }

    async fn template_version(&self, name: &TemplateName, version: u32) -> Result<Option<StoredTemplate>, StoreError> {
        self.get(&Key::template_version(name, version)).await?.map(|item| decode(&item, "doc")).transpose()
    }

    async fn list_templates(&self) -> Result<Vec<TemplateSummary>, StoreError> {
        let mut out = Vec::new();
        for item in self.query(&KeyPrefix::templates(), None).await? {
            if item.get("deleted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false) {
                continue;
            }
            out.push(decode(&item, "summary")?);
        }
        Ok(out)
    }

    async fn delete_template(&self, name: &TemplateName, record: &NewRecord<'_>) -> Result<Recorded<bool>, StoreError> {
        let key = Key::template_index(name);
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .update_expression("SET deleted = :yes")
            .condition_expression("attribute_exists(pk) AND deleted = :no")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()
            .map_err(build_err(name.as_str()))?;
        match self.transact_recorded(vec![TransactWriteItem::builder().update(update).build()], record).await {
            Ok(Recorded::Applied(())) => Ok(Recorded::Applied(true)),
            Ok(Recorded::Replayed(r)) => Ok(Recorded::Replayed(r)),
            Err(StoreError::Conflict(_)) => Ok(Recorded::Applied(false)),
            Err(e) => Err(e),
        }
    }

    async fn grant(&self, user: &str, account: &AccountId, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        self.get(&Key::grant(user, account, id)).await?.map(|item| decode_grant(&item)).transpose()
    }

    async fn put_grant(
        &self,
        grant: &Grant,
        decided_on: DecidedOn,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError> {
        let key = Key::grant(&grant.user, &grant.account, &grant.id);
        let keep = grant.keep_until().timestamp();
        let put = self
            .put(&key)
            .item("doc", s(grant_doc(&key.sk, grant)?))
            .item("account", s(grant.account.as_str()))
            .item("template", s(grant.template.as_str()))
            .item("rev", n(0))
            .item(TTL_ATTRIBUTE, n(keep))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err(&key.sk))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build(), self.grant_index_put(grant)?];
        if let Some(until) = grant.awaiting_approval_until() {
            items.push(self.grant_list_put(&Key::pending_approval(&grant.id), grant, until.timestamp())?);
        }
        if grant.awaits_review() {
            items.push(self.grant_list_put(&Key::review_owed(&grant.id), grant, keep)?);
        }
        self.transact_checked(self.decided_on_checks(grant, decided_on)?, items, record).await
    }

    async fn update_grant(&self, grant: &Grant, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError> {
        let key = Key::grant(&grant.user, &grant.account, &grant.id);
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .update_expression("SET doc = :doc, rev = :next, #ttl = :keep")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":doc", s(grant_doc(&key.sk, grant)?))
            .expression_attribute_values(":next", n(grant.revision + 1))
            .expression_attribute_values(":keep", n(grant.keep_until().timestamp()))
            .expression_attribute_values(":rev", n(grant.revision));
        // Items written before revisions existed have none: they count as revision 0.
        update = match grant.revision {
            0 => update.condition_expression("attribute_exists(pk) AND (attribute_not_exists(rev) OR rev = :rev)"),
            _ => update.condition_expression("rev = :rev"),
        };
        let mut items = vec![
            TransactWriteItem::builder().update(update.build().map_err(build_err(&key.sk))?).build(),
            self.grant_index_put(grant)?,
        ];
        if grant.approval.is_some() && grant.awaiting_approval_until().is_none() {
            items.push(self.delete_item(&Key::pending_approval(&grant.id))?);
        }
        if grant.break_glass.is_some() && !grant.awaits_review() {
            items.push(self.delete_item(&Key::review_owed(&grant.id))?);
        }
        self.transact_recorded(items, record).await
    }

    async fn pending_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        self.listed_grants(&KeyPrefix::pending_approvals(), Some(now.timestamp())).await
    }

    async fn reviews_owed(&self) -> Result<Vec<Grant>, StoreError> {
        self.listed_grants(&KeyPrefix::reviews_owed(), None).await
    }

    async fn live_grants(
        &self,
        user: &str,
        account: Option<&AccountId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>, StoreError> {
        let mut grants = Vec::new();
        for item in self.query(&KeyPrefix::grants_of(user, account), Some(now.timestamp())).await? {
            let grant = decode_grant(&item)?;
            // TTL deletion is late and the filter is by whole seconds: check the grant itself.
            if grant.is_live(now) {
                grants.push(grant);
            }
        }
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }

    async fn kept_grants(&self, user: &str, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        let mut grants = Vec::new();
        for item in self.query(&KeyPrefix::grants_of(user, None), Some(now.timestamp())).await? {
            let grant = decode_grant(&item)?;
            if grant.keep_until() > now {
                grants.push(grant);
            }
        }
        grants.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(grants)
    }

    async fn grant_by_id(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        let Some(index) = self.get(&Key::grant_index(id)).await? else { return Ok(None) };
        let (Some(user), Some(account)) = (get_s(&index, "user"), get_s(&index, "account")) else {
            return Err(StoreError::Corrupt { key: key_of(&index), message: "no `user` or `account`".into() });
        };
        let account = AccountId::parse(account)
            .map_err(|e| StoreError::Corrupt { key: key_of(&index), message: e.to_string() })?;
        self.grant(user, &account, id).await
    }

    async fn revoke_grant(&self, grant: &Grant, revocation: &Revocation) -> Result<bool, StoreError> {
        let key = Key::grant(&grant.user, &grant.account, &grant.id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .update_expression("SET revoked = :r")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked)")
            .expression_attribute_values(":r", s(encode(&key.sk, revocation)?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", &e)),
        }
    }

    async fn directory_record(&self, user: &str) -> Result<Option<(DirectoryRecord, u64)>, StoreError> {
        self.get(&Key::directory(user)).await?.map(|item| directory_record_of(&item)).transpose()
    }

    async fn directory_record_and_template_index(
        &self,
        user: &str,
        template: &TemplateName,
    ) -> Result<(Option<(DirectoryRecord, u64)>, Option<TemplateIndex>), StoreError> {
        let mut items = self.get_many(&[Key::directory(user), Key::template_index(template)]).await?.into_iter();
        let (directory, index) = (items.next().flatten(), items.next().flatten());
        Ok((
            directory.map(|item| directory_record_of(&item)).transpose()?,
            index.map(|item| template_index_of(&item)).transpose()?,
        ))
    }

    async fn entitlement(&self, user: &str, account: &AccountId, ids: &[GrantId]) -> Result<Entitlement, StoreError> {
        let mut keys = vec![Key::directory(user), Key::revocation_generation(account)];
        keys.extend(ids.iter().map(|id| Key::grant(user, account, id)));
        let mut items = self.get_many(&keys).await?.into_iter();
        let directory = items.next().flatten().map(|item| directory_record_of(&item)).transpose()?;
        let revocation_generation = items
            .next()
            .flatten()
            .and_then(|item| get_n(&item, "generation"))
            .and_then(|g| u64::try_from(g).ok())
            .unwrap_or(0);
        let grants = items.map(|item| item.map(|item| decode_grant(&item)).transpose()).collect::<Result<_, _>>()?;
        Ok(Entitlement { directory, grants, revocation_generation })
    }

    async fn put_directory_record(&self, record: &DirectoryRecord, revision: Option<u64>) -> Result<(), StoreError> {
        let key = Key::directory(&record.user);
        let next = revision.map_or(1, |r| r.saturating_add(1));
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key.pk))
            .item("sk", s(&key.sk))
            .item("doc", s(encode(&key.pk, record)?))
            .item("rev", n(next));
        put = match revision {
            Some(r) => put.condition_expression("rev = :rev").expression_attribute_values(":rev", n(r)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict(key.pk))
            }
            Err(e) => Err(store_error("PutItem", &e)),
        }
    }

    async fn add_session_revocation(
        &self,
        account: &AccountId,
        revocation: &SessionRevocation,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        // Kept to the second (the key's form, and a policy's dates): a cutoff within a second is
        // rounded up, never down, so what is stored denies at least what was asked.
        let cutoff = portcullis_domain::revocation::cutoff_for(revocation.cutoff)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let key = Key::session_revocation(account, &cutoff, &revocation.source_identity);
        let entry = self
            .put(&key)
            .item(TTL_ATTRIBUTE, n(expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err(&key.sk))?;
        let generation_key = Key::revocation_generation(account);
        let bump = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&generation_key.pk))
            .key("sk", s(&generation_key.sk))
            .update_expression("ADD generation :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_err(&generation_key.pk))?;
        let items =
            vec![TransactWriteItem::builder().put(entry).build(), TransactWriteItem::builder().update(bump).build()];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let repeat = match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed"),
                    _ => false,
                };
                if repeat { Ok(()) } else { Err(store_error("TransactWriteItems", &err)) }
            }
        }
    }

    async fn session_revocations(&self, account: &AccountId) -> Result<(u64, Vec<SessionRevocation>), StoreError> {
        let mut generation = 0;
        let mut revocations = Vec::new();
        for item in self.query(&KeyPrefix::revocations(account), None).await? {
            let sk = get_s(&item, "sk").unwrap_or_default();
            if sk == "GENERATION" {
                generation = get_n(&item, "generation").and_then(|g| u64::try_from(g).ok()).unwrap_or(0);
                continue;
            }
            let parsed = sk.split_once('#').and_then(|(cutoff, user)| {
                let cutoff = DateTime::parse_from_rfc3339(cutoff).ok()?.with_timezone(&Utc);
                Some(SessionRevocation { source_identity: user.to_owned(), cutoff })
            });
            match parsed {
                Some(r) => revocations.push(r),
                None => {
                    return Err(StoreError::Corrupt { key: key_of(&item), message: "not a session revocation".into() });
                }
            }
        }
        Ok((generation, revocations))
    }

    async fn put_scheduled_change(&self, change: &ScheduledChange) -> Result<(), StoreError> {
        let key = scheduled_key(change);
        // Kept a while past its due time (a worker may be down then); deleted once applied.
        let keep_until = change.due.timestamp().saturating_add(SCHEDULED_KEEP_SECONDS);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key.pk))
            .item("sk", s(&key.sk))
            .item("doc", s(encode(&key.sk, change)?))
            .item(TTL_ATTRIBUTE, n(keep_until))
            .send()
            .await
            .map_err(|e| store_error("PutItem", &e))?;
        Ok(())
    }

    async fn due_scheduled_changes(&self, now: DateTime<Utc>) -> Result<Vec<ScheduledChange>, StoreError> {
        // Sort keys start with the due time (RFC 3339, whole seconds, `Z`), then `#`: everything
        // due at or before `now` sorts before `<now>$`.
        let bound = format!("{}$", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk < :bound")
            .expression_attribute_values(":pk", s(SCHEDULED))
            .expression_attribute_values(":bound", s(bound))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut due = Vec::new();
        for item in pages {
            let item = item.map_err(|e| store_error("Query", &e))?;
            let change: ScheduledChange = decode(&item, "doc")?;
            if change.due <= now {
                due.push(change);
            }
        }
        Ok(due)
    }

    async fn delete_scheduled_change(&self, change: &ScheduledChange) -> Result<(), StoreError> {
        let key = scheduled_key(change);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&key.pk))
            .key("sk", s(&key.sk))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", &e))?;
        Ok(())
    }
}

/// How long a scheduled change is kept past its due time if it is never applied: 30 days.
const SCHEDULED_KEEP_SECONDS: i64 = 30 * 86_400;

fn scheduled_key(change: &ScheduledChange) -> Key {
    Key::scheduled_change(
        &change.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        &change.message_id,
        &change.user,
    )
}
