//! The access worker: templates, grants and credentials over the access-requests queue.
//!
//! One message goes through these steps, and the first that fails decides the answer:
//!
//! 1. producer (`SenderId` allowlist: an unlisted producer is never answered), then size, then the envelope, then the reply address (a reply
//!    only ever goes to an allowed queue: same endpoint and account as the request queue, and a name
//!    matching `access.reply_queue_names`);
//! 2. the identity token (the requester is who it says, never a name from the body);
//! 3. the body for its kind, then the kind's own checks and effect.
//!
//! A refused request is answered with a stable error code (when it has an allowed reply address) and
//! handed back to the runtime as `Rejected`, which keeps it in the dead-letter queue with that code.
//! A dependency failure is `Retry`; on the last delivery the requester is told `unavailable` instead.
//! Effects are idempotent on (requester, message id): a redelivered request gets the same reply and
//! acts once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::{Duration as ChronoDuration, Utc};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use portcullis_common::ErrorCode;
use portcullis_common::broker::{AssumeRequest, CredentialBroker, session_duration, sts_name_for};
use portcullis_common::config::Settings;
use portcullis_common::error::RequestError;
use portcullis_common::grant::Grant;
use portcullis_common::identity::{Identity, IdentityError, TokenVerifier};
use portcullis_common::messages::{
    CredentialsRequest, CredentialsResult, Envelope, GrantList, GrantListResult, GrantRequest, GrantRequestResult,
    Kind, Reply, Request, TemplateDelete, TemplateDeleteResult, TemplateGet, TemplateGetResult, TemplateListResult,
    TemplatePut, TemplatePutResult,
};
use portcullis_common::policy::compose_session_policy;
use portcullis_common::queue::{Attempt, Handler, Outcome, ReceivedMessage};
use portcullis_common::store::{GrantWrite, Recorded, RequestKey, Store, StoreError, aws_error_message};
use portcullis_common::template::{CompiledTemplate, Guardrails, StoredTemplate};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

/// Message attribute on every reply naming the request it answers.
pub const ATTR_IN_REPLY_TO: &str = "portcullis.in_reply_to";
/// Most compiled templates kept in memory.
const TEMPLATE_CACHE_SIZE: usize = 512;

/// Where replies may go.
#[derive(Debug, Clone)]
pub struct ReplyPolicy {
    endpoint: String,
    accounts: Vec<String>,
    name_patterns: Vec<String>,
}

impl ReplyPolicy {
    /// Replies may go to queues on the same endpoint as `request_queue_url`, in `accounts` (default:
    /// the request queue's account), whose name matches one of `name_patterns` (`*` globs).
    pub fn new(request_queue_url: &str, accounts: &[String], name_patterns: Vec<String>) -> Self {
        let (endpoint, account, _) = split_queue_url(request_queue_url).unwrap_or_default();
        let accounts = if accounts.is_empty() { vec![account] } else { accounts.to_vec() };
        Self { endpoint, accounts, name_patterns }
    }

    pub fn allows(&self, url: &str) -> bool {
        match split_queue_url(url) {
            Some((endpoint, account, name)) => {
                endpoint == self.endpoint
                    && self.accounts.contains(&account)
                    && self.name_patterns.iter().any(|p| glob_match(p.as_bytes(), name.as_bytes()))
            }
            None => false,
        }
    }
}

/// `scheme://host[:port]/account/name` → (scheme://host[:port], account, name).
fn split_queue_url(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let mut parts = rest.split('/');
    let host = parts.next()?;
    let account = parts.next()?;
    let name = parts.next()?;
    if parts.next().is_some() || host.is_empty() || host.contains(['@', '?', '#']) || name.contains(['?', '#']) {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((format!("{scheme}://{}", host.to_ascii_lowercase()), account.to_owned(), name.to_owned()))
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&p[1..], s) || (!s.is_empty() && glob_match(p, &s[1..])),
        (Some(a), Some(b)) if a == b => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Access pipeline metrics.
#[derive(Debug, Clone)]
pub struct AccessMetrics {
    credentials_issued: Counter<u64>,
    grants_created: Counter<u64>,
    policy_size: Histogram<u64>,
    packed_policy_size: Histogram<u64>,
}

impl AccessMetrics {
    pub fn new(meter: &Meter) -> Self {
        Self {
            credentials_issued: meter
                .u64_counter("portcullis_credentials_issued")
                .with_description("Temporary credentials issued, by account")
                .with_unit("{credential}")
                .build(),
            grants_created: meter
                .u64_counter("portcullis_grants_created")
                .with_description("Grants created, by account and template")
                .with_unit("{grant}")
                .build(),
            policy_size: meter
                .u64_histogram("portcullis_session_policy_chars")
                .with_description("Characters in composed session policies (STS accepts 2,048)")
                .with_unit("{char}")
                .with_boundaries(vec![256.0, 512.0, 1024.0, 1536.0, 1792.0, 2048.0])
                .build(),
            packed_policy_size: meter
                .u64_histogram("portcullis_packed_policy_size_percent")
                .with_description("STS PackedPolicySize: percent of the packed session policy and tags limit used")
                .with_unit("%")
                .with_boundaries(vec![10.0, 25.0, 50.0, 75.0, 90.0, 100.0])
                .build(),
        }
    }
}

/// The access worker's handler.
#[derive(Debug)]
pub struct AccessHandler {
    settings: Arc<Settings>,
    verifier: TokenVerifier,
    store: Store,
    broker: CredentialBroker,
    sqs: aws_sdk_sqs::Client,
    reply_policy: ReplyPolicy,
    guardrails: Guardrails,
    templates: Mutex<HashMap<(String, u32), Arc<CompiledTemplate>>>,
    metrics: AccessMetrics,
}

/// A refused request, or a failure to retry.
enum Failure {
    Refused(RequestError),
    Retry(String),
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        Failure::Refused(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            // DynamoDB refused the request itself: sending it again cannot help.
            StoreError::Invalid { .. } => Failure::Refused(RequestError::new(
                ErrorCode::BadRequest,
                format!("the request could not be stored ({e}); check its names and values"),
            )),
            e => Failure::Retry(e.to_string()),
        }
    }
}

/// What a successful request produced.
enum Success {
    /// A fresh result to reply with.
    Result(Value),
    /// The complete reply recorded when the same request was handled before.
    Replayed(Value),
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl AccessHandler {
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        broker: CredentialBroker,
        sqs: aws_sdk_sqs::Client,
        request_queue_url: &str,
        meter: &Meter,
    ) -> anyhow::Result<Self> {
        let verifier = TokenVerifier::new(settings.identity.clone())?;
        let guardrails = Guardrails::new(&settings.access.denied_actions).map_err(|e| anyhow::anyhow!(e.0))?;
        let reply_policy =
            ReplyPolicy::new(request_queue_url, &settings.access.reply_queue_accounts, settings.reply_queue_patterns());
        Ok(Self {
            verifier,
            store,
            broker,
            sqs,
            reply_policy,
            guardrails,
            templates: Mutex::new(HashMap::new()),
            metrics: AccessMetrics::new(meter),
            settings,
        })
    }

    async fn send_reply(&self, reply_to: &str, reply: &Value) -> Result<(), String> {
        let in_reply_to = reply.get("in_reply_to").and_then(Value::as_str).unwrap_or("-");
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(in_reply_to)
            .build()
            .map_err(|e| e.to_string())?;
        self.sqs
            .send_message()
            .queue_url(reply_to)
            .message_body(reply.to_string())
            .message_attributes(ATTR_IN_REPLY_TO, attr)
            .send()
            .await
            .map_err(|e| format!("could not send the reply: {}", aws_error_message(&e)))?;
        Ok(())
    }

    /// Answer (when allowed) and decide the outcome for a refused request.
    async fn refuse(
        &self,
        kind: &str,
        reply_to: Option<&str>,
        in_reply_to: Option<String>,
        error: RequestError,
    ) -> Outcome {
        let code = error.code.as_str().to_owned();
        let reason = error.message.clone();
        if let Some(to) = reply_to.filter(|to| self.reply_policy.allows(to)) {
            let reply = to_value(&Reply::error(in_reply_to, kind, error));
            if let Err(e) = self.send_reply(to, &reply).await {
                return Outcome::retry(kind, e);
            }
        }
        Outcome::rejected(kind, code, reason)
    }

    async fn handle_message(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome {
        let raw = message.body.as_str();
        let allowed = &self.settings.access.allowed_sender_ids;
        if !allowed.is_empty() && !message.sender_id.as_ref().is_some_and(|s| allowed.contains(s)) {
            // Never answer a producer that may not write here.
            let who = message.sender_id.as_deref().unwrap_or("unknown");
            return Outcome::rejected(
                "unknown",
                ErrorCode::SenderForbidden.as_str(),
                format!("sender {who} is not in access.allowed_sender_ids"),
            );
        }
        if raw.len() > self.settings.access.max_message_bytes {
            let (reply_to, id) = Envelope::salvage_reply_to(raw);
            let err = RequestError::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "the message is {} bytes; the limit is {}. Send less data (for example fewer parameters)",
                    raw.len(),
                    self.settings.access.max_message_bytes
                ),
            );
            return self.refuse("unknown", reply_to.as_deref(), id, err).await;
        }
        let envelope = match Envelope::parse(raw) {
            Ok(e) => e,
            Err(err) => {
                let (reply_to, id) = Envelope::salvage_reply_to(raw);
                return self.refuse("unknown", reply_to.as_deref(), id, err).await;
            }
        };
        let kind_label = Kind::parse(&envelope.kind).map(Kind::as_str).unwrap_or("unknown");
        let in_reply_to = Some(envelope.message_id.clone());
        if let Some(to) = &envelope.reply_to
            && !self.reply_policy.allows(to)
        {
            return Outcome::rejected(
                kind_label,
                ErrorCode::ReplyForbidden.as_str(),
                format!("reply_to {to} is not an allowed reply queue; nothing was sent there"),
            );
        }
        let reply_to = envelope.reply_to.as_deref();
        let kind = match Kind::parse(&envelope.kind) {
            Ok(k) => k,
            Err(err) => return self.refuse(kind_label, reply_to, in_reply_to, err).await,
        };
        let identity = match self.verifier.verify(envelope.identity_token.as_deref()).await {
            Ok(id) => id,
            Err(e @ IdentityError::Unauthenticated(_)) => {
                return self.refuse(kind_label, reply_to, in_reply_to, e.to_request_error()).await;
            }
            Err(e @ IdentityError::Unavailable(_)) => {
                if attempt.is_last {
                    return self.refuse(kind_label, reply_to, in_reply_to, e.to_request_error()).await;
                }
                return Outcome::retry(kind_label, e.to_string());
            }
        };
        let request = match Request::parse(kind, envelope.body) {
            Ok(r) => r,
            Err(err) => return self.refuse(kind_label, reply_to, in_reply_to, err).await,
        };
        let key = RequestKey { user: &identity.user, message_id: &envelope.message_id };
        let result = self.apply(request, &identity, &key).await;
        match result {
            Ok(Success::Result(value)) => {
                if let Some(to) = reply_to {
                    let reply = to_value(&Reply::ok(in_reply_to, kind_label, value));
                    if let Err(e) = self.send_reply(to, &reply).await {
                        return Outcome::retry(kind_label, e);
                    }
                }
                Outcome::done(kind_label)
            }
            Ok(Success::Replayed(reply)) => {
                info!(user = %identity.user, message_id = %envelope.message_id, "redelivered request: replaying the recorded reply");
                if let Some(to) = reply_to
                    && let Err(e) = self.send_reply(to, &reply).await
                {
                    return Outcome::retry(kind_label, e);
                }
                Outcome::done(kind_label)
            }
            Err(Failure::Refused(err)) => {
                info!(user = %identity.user, code = %err.code, "request refused");
                self.refuse(kind_label, reply_to, in_reply_to, err).await
            }
            Err(Failure::Retry(reason)) if attempt.is_last => {
                warn!(reason = %reason, "last delivery failed; answering unavailable");
                let err = RequestError::new(
                    ErrorCode::Unavailable,
                    "Portcullis could not complete the request after several tries; try again later",
                );
                self.refuse(kind_label, reply_to, in_reply_to, err).await
            }
            Err(Failure::Retry(reason)) => Outcome::retry(kind_label, reason),
        }
    }

    async fn apply(&self, request: Request, who: &Identity, key: &RequestKey<'_>) -> Result<Success, Failure> {
        match request {
            Request::TemplatePut(r) => self.template_put(r, who, key).await,
            Request::TemplateGet(r) => self.template_get(r).await,
            Request::TemplateList(_) => {
                let templates = self.store.list_templates().await?;
                Ok(Success::Result(to_value(&TemplateListResult { templates })))
            }
            Request::TemplateDelete(r) => self.template_delete(r, who, key).await,
            Request::GrantRequest(r) => self.grant_request(r, who, key).await,
            Request::GrantList(r) => self.grant_list(r, who).await,
            Request::CredentialsRequest(r) => self.credentials(r, who).await,
        }
    }

    fn require_admin(&self, who: &Identity, what: &str) -> Result<(), RequestError> {
        if who.in_any_group(&self.settings.access.admin_groups) {
            Ok(())
        } else {
            Err(RequestError::new(
                ErrorCode::Forbidden,
                format!(
                    "only members of {} may {what}; ask a Portcullis admin",
                    self.settings.access.admin_groups.join(" or ")
                ),
            ))
        }
    }

    fn reply_expiry(&self) -> i64 {
        Utc::now().timestamp() + i64::try_from(self.settings.access.idempotency_ttl_seconds).unwrap_or(i64::MAX / 2)
    }

    async fn template_put(&self, r: TemplatePut, who: &Identity, key: &RequestKey<'_>) -> Result<Success, Failure> {
        self.require_admin(who, "put templates")?;
        let compiled = CompiledTemplate::compile(r.template.clone()).map_err(RequestError::from)?;
        for statement in &r.template.statements {
            self.guardrails
                .check_literals(statement)
                .map_err(|g| RequestError::from(portcullis_common::template::RenderError::Guardrail(g)))?;
        }
        let name = compiled.spec().name.clone();
        let in_reply_to = key.message_id.to_owned();
        let reply_for = |version: u32| {
            to_value(&Reply::ok(
                Some(in_reply_to.clone()),
                Kind::TemplatePut.as_str(),
                to_value(&TemplatePutResult { name: name.clone(), version }),
            ))
        };
        // A concurrent put of the same name makes the version conditional fail: try again at once.
        for _ in 0..3 {
            match self
                .store
                .put_template(&r.template, &who.user, Utc::now(), key, &reply_for, self.reply_expiry())
                .await
            {
                Ok(Recorded::Applied(version)) => {
                    info!(template = %name, version, by = %who.user, "template stored");
                    return Ok(Success::Result(to_value(&TemplatePutResult { name, version })));
                }
                Ok(Recorded::Replayed(reply)) => return Ok(Success::Replayed(reply)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Failure::Retry(format!("template {name} kept changing concurrently")))
    }

    async fn template_get(&self, r: TemplateGet) -> Result<Success, Failure> {
        let template = self.load_template(&r.name, r.version).await?;
        Ok(Success::Result(to_value(&TemplateGetResult { template })))
    }

    async fn load_template(&self, name: &str, version: Option<u32>) -> Result<StoredTemplate, Failure> {
        self.store.get_template(name, version).await?.ok_or_else(|| {
            let which = version.map(|v| format!(" version {v}")).unwrap_or_default();
            Failure::Refused(RequestError::new(
                ErrorCode::TemplateNotFound,
                format!("there is no template `{name}`{which}; send template.list to see the templates"),
            ))
        })
    }

    async fn template_delete(
        &self,
        r: TemplateDelete,
        who: &Identity,
        key: &RequestKey<'_>,
    ) -> Result<Success, Failure> {
        self.require_admin(who, "delete templates")?;
        let result = TemplateDeleteResult { name: r.name.clone(), deleted: true };
        let reply =
            to_value(&Reply::ok(Some(key.message_id.to_owned()), Kind::TemplateDelete.as_str(), to_value(&result)));
        match self.store.delete_template(&r.name, key, &reply, self.reply_expiry()).await? {
            Recorded::Applied(true) => {
                info!(template = %r.name, by = %who.user, "template deleted");
                Ok(Success::Result(to_value(&result)))
            }
            Recorded::Applied(false) => Err(Failure::Refused(RequestError::new(
                ErrorCode::TemplateNotFound,
                format!("there is no template `{}` to delete", r.name),
            ))),
            Recorded::Replayed(reply) => Ok(Success::Replayed(reply)),
        }
    }

    fn compiled(&self, stored: &StoredTemplate) -> Result<Arc<CompiledTemplate>, Failure> {
        let cache_key = (stored.spec.name.clone(), stored.version);
        if let Some(t) = self.templates.lock().ok().and_then(|c| c.get(&cache_key).cloned()) {
            return Ok(t);
        }
        let compiled = Arc::new(CompiledTemplate::compile(stored.spec.clone()).map_err(RequestError::from)?);
        if let Ok(mut cache) = self.templates.lock() {
            if cache.len() >= TEMPLATE_CACHE_SIZE {
                cache.clear();
            }
            cache.insert(cache_key, compiled.clone());
        }
        Ok(compiled)
    }

    fn check_account(&self, account: &str) -> Result<(), RequestError> {
        if self.settings.accounts.contains_key(account) {
            return Ok(());
        }
        Err(RequestError::new(
            ErrorCode::AccountUnknown,
            format!(
                "account `{account}` is not configured in Portcullis; use one of {}",
                self.settings.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ))
    }

    async fn grant_request(&self, r: GrantRequest, who: &Identity, key: &RequestKey<'_>) -> Result<Success, Failure> {
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > 512 {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                "reason must be 1 to 512 characters: say why you need the access",
            )
            .into());
        }
        // A redelivered request finds the grant it made before, even if the template has changed or
        // gone since: the first answer stands.
        if let Some(existing) =
            self.store.grant(&who.user, &r.account, &Grant::id_for(&who.user, key.message_id)).await?
        {
            return Ok(Success::Result(to_value(&GrantRequestResult { grant: existing })));
        }
        let stored = self.load_template(&r.template, None).await?;
        self.check_account(&r.account)?;
        if let Some(allowed) = &stored.spec.allowed_accounts
            && !allowed.contains(&r.account)
        {
            return Err(RequestError::new(
                ErrorCode::AccountForbidden,
                format!(
                    "template `{}` may not be used in account {}; it allows {}",
                    r.template,
                    r.account,
                    allowed.join(", ")
                ),
            )
            .into());
        }
        if r.ttl < 60 {
            return Err(RequestError::new(ErrorCode::DurationInvalid, "ttl must be at least 60 seconds").into());
        }
        if r.ttl > stored.spec.max_ttl_seconds {
            return Err(RequestError::new(
                ErrorCode::TtlTooLong,
                format!(
                    "ttl {}s is above template `{}`'s maximum of {}s; ask for {}s or less",
                    r.ttl, r.template, stored.spec.max_ttl_seconds, stored.spec.max_ttl_seconds
                ),
            )
            .with_details(serde_json::json!({ "max_ttl_seconds": stored.spec.max_ttl_seconds }))
            .into());
        }
        let compiled = self.compiled(&stored)?;
        let statements = compiled.render(&r.params, &self.guardrails).map_err(RequestError::from)?;
        let now = Utc::now();
        let grant = Grant {
            id: Grant::id_for(&who.user, key.message_id),
            user: who.user.clone(),
            team: who.team.clone(),
            groups: who.groups.clone(),
            account: r.account.clone(),
            template: stored.spec.name.clone(),
            template_version: stored.version,
            params: r.params,
            statements,
            reason: reason.to_owned(),
            created_at: now,
            expires_at: now + ChronoDuration::seconds(i64::try_from(r.ttl).unwrap_or(i64::MAX / 2)),
            request_message_id: key.message_id.to_owned(),
        };
        let grant = match self.store.put_grant(&grant).await? {
            GrantWrite::Created => {
                self.metrics.grants_created.add(
                    1,
                    &[
                        KeyValue::new("cloud.account.id", grant.account.clone()),
                        KeyValue::new("template", grant.template.clone()),
                    ],
                );
                info!(grant = %grant.id, user = %grant.user, template = %grant.template, account = %grant.account,
                      expires_at = %grant.expires_at, reason = %grant.reason, "grant created");
                grant
            }
            GrantWrite::Existing(existing) => *existing,
        };
        Ok(Success::Result(to_value(&GrantRequestResult { grant })))
    }

    async fn grant_list(&self, r: GrantList, who: &Identity) -> Result<Success, Failure> {
        let grants = self.store.live_grants(&who.user, r.account.as_deref(), Utc::now()).await?;
        Ok(Success::Result(to_value(&GrantListResult { grants })))
    }

    async fn credentials(&self, r: CredentialsRequest, who: &Identity) -> Result<Success, Failure> {
        self.check_account(&r.account)?;
        let account = &self.settings.accounts[&r.account];
        let now = Utc::now();
        let grants = self.store.live_grants(&who.user, Some(&r.account), now).await?;
        let policy = compose_session_policy(&grants, now)?;
        let duration = session_duration(
            r.duration,
            now,
            policy.latest_expiry,
            account.max_session_duration_seconds,
            self.settings.access.max_credentials_seconds,
        )?;
        let name = sts_name_for(&who.user);
        let request = AssumeRequest {
            role_arn: account.role_arn.clone(),
            session_name: name.clone(),
            source_identity: name.clone(),
            policy: policy.json.clone(),
            duration_seconds: duration,
        };
        let issued = self.broker.assume(&request).await.map_err(|e| match e.permanent() {
            Some(refusal) => {
                warn!(error = %e, "STS refused the request");
                Failure::Refused(refusal)
            }
            None => Failure::Retry(e.to_string()),
        })?;
        let account_attr = [KeyValue::new("cloud.account.id", r.account.clone())];
        self.metrics.credentials_issued.add(1, &account_attr);
        self.metrics.policy_size.record(policy.size() as u64, &account_attr);
        if let Some(p) = issued.packed_policy_size {
            self.metrics.packed_policy_size.record(u64::try_from(p).unwrap_or(0), &account_attr);
        }
        info!(user = %who.user, account = %r.account, role = %account.role_arn, grants = ?policy.grant_ids,
              duration, policy_chars = policy.size(), packed_policy_size = ?issued.packed_policy_size,
              access_key_id = %issued.credentials.access_key_id, "credentials issued");
        Ok(Success::Result(to_value(&CredentialsResult {
            credentials: issued.credentials,
            account: r.account,
            role_arn: account.role_arn.clone(),
            session_name: name.clone(),
            source_identity: name,
            session_policy_size: policy.size(),
            packed_policy_size: issued.packed_policy_size,
            grant_ids: policy.grant_ids,
        })))
    }
}

#[async_trait]
impl Handler for AccessHandler {
    async fn handle(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome {
        self.handle_message(message, attempt).await
    }

    /// The identity token is a bearer credential: whoever reads the dead-letter queue must not be
    /// able to act as the requester with it. Everything else is kept as received.
    fn dead_letter_body(&self, message: &ReceivedMessage) -> Option<String> {
        redact_identity_token(&message.body)
    }
}

/// The body with `identity_token` replaced by `[redacted]`, or `None` when it has none.
fn redact_identity_token(body: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(body).ok()?;
    let token = v.as_object_mut()?.get_mut("identity_token")?;
    if token.is_null() {
        return None;
    }
    *token = Value::String("[redacted]".into());
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_policy_allows_only_matching_queues_on_the_same_endpoint() {
        let p = ReplyPolicy::new(
            "http://127.0.0.1:4566/123456789012/stack-access-requests",
            &[],
            vec!["stack-reply-*".into()],
        );
        assert!(p.allows("http://127.0.0.1:4566/123456789012/stack-reply-abc"));
        assert!(!p.allows("http://127.0.0.1:4566/123456789012/stack-access-requests"));
        assert!(!p.allows("http://127.0.0.1:4566/999999999999/stack-reply-abc"));
        assert!(!p.allows("http://evil.example:4566/123456789012/stack-reply-abc"));
        assert!(!p.allows("http://127.0.0.1:4566/123456789012/stack-reply-abc/extra"));
        assert!(!p.allows("ftp://127.0.0.1:4566/123456789012/stack-reply-abc"));
        assert!(!p.allows("http://user@127.0.0.1:4566/123456789012/stack-reply-abc"));
        assert!(!p.allows("not a url"));
    }

    #[test]
    fn dead_lettered_bodies_lose_their_identity_token() {
        let body = r#"{"version":1,"kind":"grant.list","identity_token":"eyJhbGciOi.secret.sig","body":{}}"#;
        let kept = redact_identity_token(body).unwrap();
        assert!(!kept.contains("secret"), "{kept}");
        assert!(kept.contains("\"identity_token\":\"[redacted]\"") && kept.contains("grant.list"), "{kept}");
        assert_eq!(redact_identity_token("not json"), None);
        assert_eq!(redact_identity_token(r#"{"identity_token":null}"#), None);
        assert_eq!(redact_identity_token("[1]"), None);
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"a-*", b"a-"));
        assert!(glob_match(b"a-*-z", b"a-123-z"));
        assert!(!glob_match(b"a-*", b"b-1"));
        assert!(glob_match(b"*", b"anything"));
    }
}
