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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::audit::{self, Actor};
use portcullis_domain::directory::DirectoryRecord;
use portcullis_domain::identity::{Identity, sanitize_display_name};
use portcullis_domain::messages::{QueueRole, Request};
use portcullis_domain::template::{CompiledTemplate, StoredTemplate};
use portcullis_domain::{ErrorCode, RequestError, TemplateName};
use portcullis_runtime::consumer::{Handler, Outcome};
use portcullis_runtime::queue::{Attempt, ReceivedMessage};
use tracing::info;

pub use crate::config::{AccessConfig, BrokeredAccount};
use crate::front::{Admitted, Answer, Failure, Front};
use crate::metrics::AccessMetrics;
pub use crate::ports::Ports;
use crate::ports::{IdentityError, PublishedEvent, RequestKey, TemplateIndex};
use crate::revoke::Revoker;

/// Most compiled templates kept in memory.
const TEMPLATE_CACHE_SIZE: usize = 512;

/// Most requesters whose directory record is kept in memory for their next grant request.
const DECIDED_ON_CACHE_SIZE: usize = 4096;

/// What a `grant.request` is decided on, besides its body: the requester's directory record and
/// revision, and the template's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrantReads {
    /// The directory record's revision (`None`: there is none).
    pub directory_revision: Option<u64>,
    /// `None`: there is no such template.
    pub template_index: Option<TemplateIndex>,
    /// Kept from an earlier grant request rather than read for this one: a refusal decided on them
    /// is [`Failure::Stale`] (decide again on fresh reads), never final.
    pub kept: bool,
}

/// When and how [`AccessHandler::authenticate`] reads the requester's directory record.
#[derive(Debug, Clone, Copy)]
enum DirectoryRead<'a> {
    /// Read it now, alone.
    Now,
    /// With the index of a grant request's template, in one round trip; or both as kept from an
    /// earlier grant request (`kept`), when they are.
    WithTemplate { name: &'a TemplateName, kept: bool },
    /// Not here: the use case reads it beside its own first reads, and checks it before acting.
    InUseCase,
}

/// Directory records and template indexes read for grant requests, kept to decide the next grant
/// request of the same requester or template without reading them again. Safe because the grant's
/// write checks they still hold ([`crate::ports::DecidedOn`]); when they do not, or a decision made
/// on them is a refusal, the request is served again on fresh reads.
#[derive(Debug, Default)]
struct DecidedOnCache {
    directory: HashMap<String, Option<(DirectoryRecord, u64)>>,
    templates: HashMap<TemplateName, TemplateIndex>,
}

/// What a use case knows about the request it serves.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    /// The requester, as the directory lets them act.
    pub who: &'a Identity,
    pub key: RequestKey<'a>,
    /// The request's digest (kind and body), recorded with changes.
    pub digest: String,
    pub answer: &'a Answer,
    pub now: DateTime<Utc>,
    /// What a `grant.request` is decided on (`None` for other kinds).
    pub grant_reads: Option<GrantReads>,
    /// `who` is as the token says, not yet checked against the directory: the use case reads the
    /// record with its own first reads and checks it before acting (`credentials.request`).
    pub directory_unchecked: bool,
}

impl Ctx<'_> {
    /// Who is acting, for audit events.
    pub(crate) fn actor(&self) -> Actor {
        Actor::of(self.who)
    }

    /// A deterministic audit event id for this request and `what`.
    pub(crate) fn event_id(&self, what: &str) -> String {
        audit::event_id(&[&self.who.user, self.key.message_id.as_str(), what])
    }
}

/// The access worker's handler.
#[derive(Debug)]
pub struct AccessHandler {
    pub(crate) config: AccessConfig,
    pub(crate) ports: Ports,
    pub(crate) metrics: AccessMetrics,
    pub(crate) revoker: Revoker,
    pub(crate) front: Front,
    templates: Mutex<HashMap<(TemplateName, u32), Arc<CompiledTemplate>>>,
    /// Stored template versions read so far (immutable: a put makes a new version).
    stored_templates: Mutex<HashMap<(TemplateName, u32), StoredTemplate>>,
    decided_on: Mutex<DecidedOnCache>,
    /// `posture.status`: where evidence is read, and who may read it (none: refused).
    pub(crate) posture: Option<crate::posture_status::PostureReading>,
}

impl AccessHandler {
    pub fn new(config: AccessConfig, ports: Ports, metrics: AccessMetrics) -> Self {
        let revoker = Revoker::for_config(&config, &ports);
        let front = Front::new(QueueRole::Access, &config, &ports);
        Self {
            config,
            ports,
            metrics,
            revoker,
            front,
            templates: Mutex::new(HashMap::new()),
            stored_templates: Mutex::new(HashMap::new()),
            decided_on: Mutex::new(DecidedOnCache::default()),
            posture: None,
        }
    }

    /// Serve `posture.status` from `reading` (without it, the kind is refused as unavailable here).
    pub fn with_posture_reading(mut self, reading: crate::posture_status::PostureReading) -> Self {
        self.posture = Some(reading);
        self
    }

    /// Publish audit events.
    pub(crate) async fn publish(&self, events: &[PublishedEvent]) -> Result<(), Failure> {
        self.front.publish(events).await
    }

    /// Step 2: the verified requester (from the ID token, or from a trusted producer acting for
    /// them), as the directory lets them act.
    /// With `template` (a `grant.request`'s), that template's index too, read with the directory
    /// record in one round trip; with `cached`, both as kept from an earlier grant request when
    /// they were (the second value says whether they were).
    async fn authenticate(
        &self,
        admitted: &Admitted,
        now: DateTime<Utc>,
        reads: DirectoryRead<'_>,
    ) -> Result<(Identity, Option<GrantReads>, bool), Failure> {
        let envelope = &admitted.envelope;
        let identity = match (&envelope.on_behalf_of, &admitted.producer) {
            (Some(person), Some(producer)) => {
                if envelope.identity_token.is_some() {
                    return Err(RequestError::new(
                        ErrorCode::BadRequest,
                        "send either identity_token or on_behalf_of, not both",
                    )
                    .into());
                }
                Identity {
                    issuer: format!("producer:{}", producer.name),
                    subject: person.user.clone(),
                    user: person.user.clone(),
                    team: person.team.clone(),
                    groups: person.groups.clone(),
                    issued_at: now,
                    via: Some(producer.name.clone()),
                    // Never a name from the message: the user the producer is trusted to name.
                    display_name: sanitize_display_name(&person.user).unwrap_or_else(|| person.user.clone()),
                }
            }
            _ => self.ports.identity.verify(envelope.identity_token.as_deref(), now).await.map_err(|e| match e {
                IdentityError::Unauthenticated(why) => Failure::Refused(RequestError::new(
                    ErrorCode::Unauthenticated,
                    format!("{why}; send a current ID token from the configured issuer in identity_token"),
                )),
                IdentityError::Unavailable(why) => Failure::Retry(format!("identity keys unavailable: {why}")),
            })?,
        };
        if identity.user.is_empty() || identity.user.len() > 256 || identity.user.chars().any(char::is_control) {
            return Err(RequestError::new(ErrorCode::Unauthenticated, "the user is not a usable name").into());
        }
        let (template, cached) = match reads {
            DirectoryRead::InUseCase => return Ok((identity, None, false)),
            DirectoryRead::Now => (None, false),
            DirectoryRead::WithTemplate { name, kept } => (Some(name), kept),
        };
        let kept = match template {
            Some(name) if cached => self.kept_reads(&identity.user, name),
            _ => None,
        };
        let used_cache = kept.is_some();
        let (record, reads) = match (template, kept) {
            (_, Some((record, index))) => (record, Some(Some(index))),
            (Some(name), None) => {
                let (record, index) =
                    self.ports.store.directory_record_and_template_index(&identity.user, name).await?;
                self.keep_reads(&identity.user, name, &record, index);
                (record, Some(index))
            }
            (None, None) => (self.ports.store.directory_record(&identity.user).await?, None),
        };
        let grant_reads = reads.map(|template_index| GrantReads {
            directory_revision: record.as_ref().map(|(_, revision)| *revision),
            template_index,
            kept: used_cache,
        });
        match record {
            Some((record, _)) => match record.check(&identity) {
                Ok(identity) => Ok((identity, grant_reads, used_cache)),
                Err(refusal) if used_cache => {
                    Err(Failure::Stale(format!("refused on a kept record ({})", refusal.code)))
                }
                Err(refusal) => Err(refusal.into()),
            },
            None => Ok((identity, grant_reads, used_cache)),
        }
    }

    /// The directory record of `user` and the index of `template` as kept from earlier grant
    /// requests, when both are.
    fn kept_reads(
        &self,
        user: &str,
        template: &TemplateName,
    ) -> Option<(Option<(DirectoryRecord, u64)>, TemplateIndex)> {
        let cache = self.decided_on.lock().ok()?;
        Some((cache.directory.get(user)?.clone(), *cache.templates.get(template)?))
    }

    /// Keep what a grant request read (a missing template is not kept: it is read again).
    fn keep_reads(
        &self,
        user: &str,
        template: &TemplateName,
        record: &Option<(DirectoryRecord, u64)>,
        index: Option<TemplateIndex>,
    ) {
        let Ok(mut cache) = self.decided_on.lock() else { return };
        if cache.directory.len() >= DECIDED_ON_CACHE_SIZE {
            cache.directory.clear();
        }
        if cache.templates.len() >= TEMPLATE_CACHE_SIZE {
            cache.templates.clear();
        }
        cache.directory.insert(user.to_owned(), record.clone());
        match index {
            Some(index) => cache.templates.insert(template.clone(), index),
            None => cache.templates.remove(template),
        };
    }

    /// Steps 2 and 3: the requester (when authenticated) and the reply text for an admitted request.
    /// A grant request is first decided on the reads kept from earlier ones; when they no longer
    /// hold, or the decision is a refusal, it is served again on fresh reads (nothing was written:
    /// the write checks them, and a refusal on them is decided before any write).
    async fn serve(&self, admitted: &Admitted, now: DateTime<Utc>) -> (Option<Identity>, Result<String, Failure>) {
        let (who, result, used_cache) = self.serve_with(admitted, now, true).await;
        let (who, result) = match result {
            Err(Failure::Stale(why)) if used_cache => {
                info!(reason = %why, "decided on kept reads that no longer hold; deciding again on fresh ones");
                let (who, result, _) = self.serve_with(admitted, now, false).await;
                (who, result)
            }
            result => (who, result),
        };
        if let (Some(who), Err(Failure::Refused(err))) = (&who, &result) {
            info!(user = %who.user, code = %err.code, "request refused");
        }
        // Stale on fresh reads: something changed meanwhile; a retry decides again.
        (
            who,
            result.map_err(|e| match e {
                Failure::Stale(why) => Failure::Retry(why),
                e => e,
            }),
        )
    }

    /// [`Self::serve`] once, on kept reads (`cached`) or fresh ones; the third value says whether
    /// kept reads were used.
    async fn serve_with(
        &self,
        admitted: &Admitted,
        now: DateTime<Utc>,
        cached: bool,
    ) -> (Option<Identity>, Result<String, Failure>, bool) {
        // Parsed first (it is pure) so that a grant request's template is read with the directory
        // record; a parse error is still only reported to an authenticated requester.
        let parsed = Request::parse(admitted.kind, admitted.envelope.body.clone());
        let reads = match &parsed {
            Ok(Request::GrantRequest(r)) => DirectoryRead::WithTemplate { name: &r.template, kept: cached },
            Ok(Request::CredentialsRequest(_)) => DirectoryRead::InUseCase,
            _ => DirectoryRead::Now,
        };
        let directory_unchecked = matches!(reads, DirectoryRead::InUseCase);
        let (who, grant_reads, used_cache) = match self.authenticate(admitted, now, reads).await {
            Ok(found) => found,
            Err(e) => {
                let kept = matches!(e, Failure::Stale(_));
                return (None, Err(e), kept);
            }
        };
        let request = match parsed {
            Ok(r) => r,
            Err(e) => return (Some(who), Err(e.into()), used_cache),
        };
        // The reply queue must be the requester's own (bound to the token's `sub`), or nothing is
        // sent. A trusted producer acting for someone answers on its own queue.
        if let Some(to) = &admitted.answer.reply_to
            && who.via.is_none()
            && let Err(e) = self.config.reply_policy.check_owner(to, &who.subject)
        {
            return (Some(who), Err(e.into()), used_cache);
        }
        let ctx = Ctx {
            who: &who,
            key: RequestKey { user: &who.user, message_id: &admitted.envelope.message_id },
            digest: admitted.envelope.digest(),
            answer: &admitted.answer,
            now,
            grant_reads,
            directory_unchecked,
        };
        let result = self.apply(request, &ctx).await;
        (Some(who), result, used_cache)
    }

    /// A template version read before, if it is still cached.
    pub(crate) fn stored_template(&self, name: &TemplateName, version: u32) -> Option<StoredTemplate> {
        self.stored_templates.lock().ok().and_then(|c| c.get(&(name.clone(), version)).cloned())
    }

    /// Keep a template version read from the store (bounded like the compiled ones).
    pub(crate) fn keep_stored_template(&self, stored: &StoredTemplate) {
        if let Ok(mut cache) = self.stored_templates.lock() {
            if cache.len() >= TEMPLATE_CACHE_SIZE {
                cache.clear();
            }
            cache.insert((stored.spec.name.clone(), stored.version), stored.clone());
        }
    }

    /// The compiled form of a stored template version (cached).
    pub(crate) fn compiled(&self, stored: &StoredTemplate) -> Result<Arc<CompiledTemplate>, Failure> {
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
        match self.front.admit(message, now) {
            Ok(admitted) => {
                let (who, result) = self.serve(&admitted, now).await;
                let sender = admitted.sender_id.as_deref();
                if let Err(Failure::Refused(e)) = &result
                    && e.code == ErrorCode::ReplyForbidden
                {
                    // Somebody else's queue: audited, kept in the dead-letter queue, never answered there.
                    let unanswered = Answer { reply_to: None, ..admitted.answer.clone() };
                    return self.front.answer(&unanswered, result, attempt, who.as_ref(), sender).await;
                }
                self.front.answer(&admitted.answer, result, attempt, who.as_ref(), sender).await
            }
            Err(stop) => self.front.stopped(stop, attempt, message.sender_id.as_deref(), now).await,
        }
    }
}
