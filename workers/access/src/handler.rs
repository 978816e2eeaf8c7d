//! The access handler: one message in, one [`Outcome`] out, in four steps.
//!
//! 1. **admit**: producer (`SenderId` allowlist: an unlisted producer is never answered), size, the
//!    envelope, the reply address (a reply only ever goes to an allowed queue; a forbidden address
//!    is never answered), the kind;
//! 2. **authenticate**: the identity token (the requester is who it says, never a name in the body);
//! 3. **apply**: the body for its kind, then the kind's use case over the ports
//!    ([`crate::usecases`]);
//! 4. **answer**: the reply (when there is an address), and the disposition: done, retry, or reject
//!    with the stable code (the runtime then keeps the message, redacted, in the dead-letter queue).
//!
//! A dependency failure is a retry; on the last delivery the requester is told `unavailable`
//! instead. Changes are idempotent on (requester, message id): a redelivered request gets the
//! recorded reply byte for byte and acts once, and a reused id with another body is refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::guardrails::Guardrails;
use portcullis_domain::identity::Identity;
use portcullis_domain::messages::{Envelope, Kind, Reply, ReplyStamp};
use portcullis_domain::naming::StackNames;
use portcullis_domain::reply_policy::ReplyPolicy;
use portcullis_domain::template::CompiledTemplate;
use portcullis_domain::{AccountId, ErrorCode, MessageId, QueueUrl, RequestError, TemplateName};
use portcullis_runtime::clock::Clock;
use portcullis_runtime::config::Settings;
use portcullis_runtime::consumer::{Handler, Outcome};
use portcullis_runtime::queue::{Attempt, ReceivedMessage};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::metrics::AccessMetrics;
use crate::ports::{
    AccessStore, CredentialBroker, IdentityError, IdentityVerifier, ReplyError, ReplySink, RequestKey, StoreError,
};

/// Most compiled templates kept in memory.
const TEMPLATE_CACHE_SIZE: usize = 512;

/// One brokered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokeredAccount {
    pub role_arn: String,
    pub max_session_seconds: u64,
}

/// The access rules, from the settings, checked at start-up.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub admin_groups: Vec<String>,
    pub allowed_sender_ids: Vec<String>,
    pub max_message_bytes: usize,
    pub guardrails: Guardrails,
    pub reply_policy: ReplyPolicy,
    pub accounts: BTreeMap<AccountId, BrokeredAccount>,
    pub max_credentials_seconds: u64,
    pub idempotency_ttl_seconds: u64,
}

impl AccessConfig {
    /// The rules of `settings` for a worker whose request queue is `request_queue`.
    pub fn from_settings(settings: &Settings, request_queue: &QueueUrl) -> anyhow::Result<Self> {
        let access = &settings.access;
        let guardrails =
            Guardrails::new(&access.denied_actions).map_err(|e| anyhow::anyhow!("access.denied_actions: {e}"))?;
        Ok(Self {
            admin_groups: access.admin_groups.clone(),
            allowed_sender_ids: access.allowed_sender_ids.clone(),
            max_message_bytes: access.max_message_bytes,
            guardrails,
            reply_policy: {
                let policy =
                    ReplyPolicy::new(request_queue, &access.reply_queue_accounts, settings.reply_queue_patterns());
                match access.bind_reply_queue_to_subject {
                    true => policy.bound_to_subject(StackNames::new(&settings.stack.prefix).reply_queue_prefix()),
                    false => policy,
                }
            },
            accounts: settings
                .accounts
                .iter()
                .map(|(id, a)| {
                    (
                        id.clone(),
                        BrokeredAccount {
                            role_arn: a.role_arn.clone(),
                            max_session_seconds: a.max_session_duration_seconds,
                        },
                    )
                })
                .collect(),
            max_credentials_seconds: access.max_credentials_seconds,
            idempotency_ttl_seconds: access.idempotency_ttl_seconds,
        })
    }
}

/// Everything the access use cases talk to.
#[derive(Debug, Clone)]
pub struct Ports {
    pub store: Arc<dyn AccessStore>,
    pub broker: Arc<dyn CredentialBroker>,
    pub replies: Arc<dyn ReplySink>,
    pub identity: Arc<dyn IdentityVerifier>,
    pub clock: Arc<dyn Clock>,
}

/// A refused request, or a failure worth retrying.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
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
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Failure::Retry(e.to_string()),
            StoreError::Invalid(_) => Failure::Refused(RequestError::new(
                ErrorCode::BadRequest,
                format!("the request could not be stored ({e}); check its names and values"),
            )),
            StoreError::Corrupt { .. } => Failure::Refused(RequestError::new(
                ErrorCode::StoredDataInvalid,
                format!("{e}; a Portcullis admin must repair or remove the record"),
            )),
        }
    }
}

/// Where and how to answer one request.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub kind: &'static str,
    pub reply_to: Option<QueueUrl>,
    pub in_reply_to: Option<MessageId>,
    pub stamp: ReplyStamp,
}

impl Answer {
    /// The exact text of an ok reply carrying `result`.
    pub(crate) fn ok_text<T: Serialize>(&self, result: &T) -> Result<String, Failure> {
        let value = serde_json::to_value(result).map_err(encoding_failure)?;
        let reply = Reply::ok(self.stamp.clone(), self.in_reply_to.clone(), self.kind, value);
        serde_json::to_string(&reply).map_err(encoding_failure)
    }

    fn error_text(&self, error: RequestError) -> Result<String, Failure> {
        let reply = Reply::error(self.stamp.clone(), self.in_reply_to.clone(), self.kind, error);
        serde_json::to_string(&reply).map_err(encoding_failure)
    }
}

fn encoding_failure(e: serde_json::Error) -> Failure {
    Failure::Refused(RequestError::new(ErrorCode::InternalError, format!("the reply could not be encoded: {e}")))
}

/// What a use case knows about the request it serves.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub who: &'a Identity,
    pub key: RequestKey<'a>,
    /// The request's digest (kind and body), recorded with changes.
    pub digest: String,
    pub answer: &'a Answer,
    pub now: DateTime<Utc>,
}

/// A message that passed admission.
#[derive(Debug)]
struct Admitted {
    envelope: Envelope<Value>,
    kind: Kind,
    answer: Answer,
}

/// Why admission stopped.
enum Stop {
    /// Decided without answering anyone (an unlisted producer, a forbidden reply address).
    Silent(Outcome),
    /// Answer with this refusal.
    Refuse(Box<(Answer, RequestError)>),
}

/// The access worker's handler.
#[derive(Debug)]
pub struct AccessHandler {
    pub(crate) config: AccessConfig,
    pub(crate) ports: Ports,
    pub(crate) metrics: AccessMetrics,
    templates: Mutex<HashMap<(TemplateName, u32), Arc<CompiledTemplate>>>,
    /// `posture.status`: where evidence is read, and who may read it (none: refused).
    pub(crate) posture: Option<crate::posture_status::PostureReading>,
}

impl AccessHandler {
    pub fn new(config: AccessConfig, ports: Ports, metrics: AccessMetrics) -> Self {
        Self { config, ports, metrics, templates: Mutex::new(HashMap::new()), posture: None }
    }

    /// Serve `posture.status` from `reading` (without it, the kind is refused as unavailable here).
    pub fn with_posture_reading(mut self, reading: crate::posture_status::PostureReading) -> Self {
        self.posture = Some(reading);
        self
    }

    fn stamp(&self, now: DateTime<Utc>) -> ReplyStamp {
        ReplyStamp { message_id: uuid::Uuid::new_v4().to_string(), sent_at: now }
    }

    /// The answer to a message that could not be fully read: its reply address, only if allowed.
    fn salvaged_answer(&self, raw: &str, now: DateTime<Utc>) -> Answer {
        let (reply_to, in_reply_to) = Envelope::salvage_reply_to(raw);
        Answer {
            kind: "unknown",
            reply_to: reply_to.and_then(|to| self.config.reply_policy.allows(&to)),
            in_reply_to,
            stamp: self.stamp(now),
        }
    }

    /// Step 1: who sent it, its size, its envelope, where the answer goes, its kind.
    fn admit(&self, message: &ReceivedMessage, now: DateTime<Utc>) -> Result<Admitted, Stop> {
        let raw = message.body.as_str();
        let allowed = &self.config.allowed_sender_ids;
        if !allowed.is_empty() && !message.sender_id.as_ref().is_some_and(|s| allowed.contains(s)) {
            let who = message.sender_id.as_deref().unwrap_or("unknown");
            return Err(Stop::Silent(Outcome::rejected(
                "unknown",
                ErrorCode::SenderForbidden,
                format!("sender {who} is not in access.allowed_sender_ids"),
            )));
        }
        if raw.len() > self.config.max_message_bytes {
            let err = RequestError::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "the message is {} bytes; the limit is {}. Send less data (for example fewer parameters)",
                    raw.len(),
                    self.config.max_message_bytes
                ),
            );
            return Err(Stop::Refuse(Box::new((self.salvaged_answer(raw, now), err))));
        }
        let envelope =
            Envelope::parse(raw).map_err(|err| Stop::Refuse(Box::new((self.salvaged_answer(raw, now), err))))?;
        let kind = Kind::parse(&envelope.kind);
        let label = kind.as_ref().map_or("unknown", |k| k.as_str());
        let reply_to = match &envelope.reply_to {
            None => None,
            Some(to) => match self.config.reply_policy.allows(to) {
                Some(queue) => Some(queue),
                None => {
                    let shown: String = to.chars().take(200).collect();
                    return Err(Stop::Silent(Outcome::rejected(
                        label,
                        ErrorCode::ReplyForbidden,
                        format!("reply_to {shown} is not an allowed reply queue; nothing was sent there"),
                    )));
                }
            },
        };
        let answer =
            Answer { kind: label, reply_to, in_reply_to: Some(envelope.message_id.clone()), stamp: self.stamp(now) };
        match kind {
            Ok(kind) => Ok(Admitted { envelope, kind, answer }),
            Err(err) => Err(Stop::Refuse(Box::new((answer, err)))),
        }
    }

    /// Step 2: the verified requester.
    async fn authenticate(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<Identity, Failure> {
        self.ports.identity.verify(token, now).await.map_err(|e| match e {
            IdentityError::Unauthenticated(why) => Failure::Refused(RequestError::new(
                ErrorCode::Unauthenticated,
                format!("{why}; send a current ID token from the configured issuer in identity_token"),
            )),
            IdentityError::Unavailable(why) => Failure::Retry(format!("identity keys unavailable: {why}")),
        })
    }

    /// Steps 2 and 3: the reply text for an admitted request.
    async fn serve(&self, admitted: &Admitted, now: DateTime<Utc>) -> Result<String, Failure> {
        let who = self.authenticate(admitted.envelope.identity_token.as_deref(), now).await?;
        // The reply queue must be the requester's own (bound to the token's `sub`), or nothing is sent.
        if let Some(to) = &admitted.answer.reply_to {
            self.config.reply_policy.check_owner(to, &who.subject)?;
        }
        let request = portcullis_domain::messages::Request::parse(admitted.kind, admitted.envelope.body.clone())?;
        let ctx = Ctx {
            who: &who,
            key: RequestKey { user: &who.user, message_id: &admitted.envelope.message_id },
            digest: admitted.envelope.digest(),
            answer: &admitted.answer,
            now,
        };
        let result = self.apply(request, &ctx).await;
        if let Err(Failure::Refused(err)) = &result {
            info!(user = %who.user, code = %err.code, "request refused");
        }
        result
    }

    /// Step 4: send the reply (when there is somewhere to send it) and decide what becomes of the
    /// message.
    async fn answer(&self, answer: &Answer, result: Result<String, Failure>, attempt: Attempt) -> Outcome {
        let kind = answer.kind;
        let (text, refusal) = match result {
            Ok(text) => (Ok(text), None),
            Err(Failure::Retry(reason)) if !attempt.is_last => return Outcome::retry(kind, reason),
            Err(Failure::Retry(reason)) => {
                warn!(reason = %reason, "last delivery failed; answering unavailable");
                let err = RequestError::new(
                    ErrorCode::Unavailable,
                    "Portcullis could not complete the request after several tries; try again later",
                );
                (answer.error_text(err), Some((ErrorCode::Unavailable, reason)))
            }
            Err(Failure::Refused(err)) => {
                let refusal = (err.code, err.message.clone());
                (answer.error_text(err), Some(refusal))
            }
        };
        let text = match text {
            Ok(text) => text,
            Err(Failure::Refused(e)) => return Outcome::rejected(kind, e.code, e.message),
            Err(Failure::Retry(reason)) => return Outcome::retry(kind, reason),
        };
        if let Some(to) = &answer.reply_to {
            match self.ports.replies.send(to, answer.in_reply_to.as_ref(), &text).await {
                Ok(()) => {}
                Err(ReplyError::Unavailable(why)) if !attempt.is_last => return Outcome::retry(kind, why),
                Err(e) => {
                    warn!(error = %e, "the reply could not be delivered");
                    return match refusal {
                        Some((code, reason)) => {
                            Outcome::rejected(kind, code, format!("{reason}; the reply could not be delivered: {e}"))
                        }
                        None => Outcome::rejected(kind, ErrorCode::ReplyUndeliverable, e.to_string()),
                    };
                }
            }
        }
        match refusal {
            None => Outcome::done(kind),
            Some((code, reason)) => Outcome::rejected(kind, code, reason),
        }
    }

    /// The compiled form of a stored template version (cached).
    pub(crate) fn compiled(
        &self,
        stored: &portcullis_domain::template::StoredTemplate,
    ) -> Result<Arc<CompiledTemplate>, Failure> {
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
}

#[async_trait]
impl Handler for AccessHandler {
    async fn handle(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome {
        let now = self.ports.clock.now();
        match self.admit(message, now) {
            Ok(admitted) => {
                let result = self.serve(&admitted, now).await;
                if let Err(Failure::Refused(e)) = &result
                    && e.code == ErrorCode::ReplyForbidden
                {
                    // Somebody else's queue: never answered there.
                    return Outcome::rejected(admitted.answer.kind, e.code, e.message.clone());
                }
                self.answer(&admitted.answer, result, attempt).await
            }
            Err(Stop::Silent(outcome)) => outcome,
            Err(Stop::Refuse(refusal)) => {
                let (answer, err) = *refusal;
                self.answer(&answer, Err(Failure::Refused(err)), attempt).await
            }
        }
    }
}
