//! The access use cases, one per kind, over the ports. Each returns the exact reply text (for
//! changes: built first and recorded with the change, so a redelivery is answered byte for byte) or
//! a [`Failure`].

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_domain::audit::{self, AuditEvent};
use portcullis_domain::grant::{Asking, Grant, GrantRules, Revocation};
use portcullis_domain::messages::{
    CredentialsRequest, CredentialsResult, GrantList, GrantListResult, GrantRequest, GrantRequestResult, GrantRevoke,
    GrantRevokeAll, Request, RevocationResult, TemplateDelete, TemplateDeleteResult, TemplateGet, TemplateGetResult,
    TemplateListResult, TemplatePut, TemplatePutResult,
};
use portcullis_domain::policy::compose_session_policy;
use portcullis_domain::redact::redact_secrets;
use portcullis_domain::revocation::{SessionRevocation, revoked_until};
use portcullis_domain::sealed::{ReplyKey, SealError, seal_credentials};
use portcullis_domain::session::{session_duration, sts_name_for};
use portcullis_domain::template::{CompiledTemplate, RenderError, StoredTemplate};
use portcullis_domain::{AccountId, ErrorCode, GrantId, RequestError, TemplateName};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::front::Failure;
use crate::handler::{AccessHandler, BrokeredAccount, Ctx};
use crate::ports::{
    AssumeRequest, BrokerError, DecidedOn, NewRecord, PublishedEvent, Recorded, RequestRecord, StoreError,
    TemplateIndex,
};
use crate::revoke::Announcement;

/// Longest `reason`, in characters.
const MAX_REASON_CHARS: usize = 512;

impl AccessHandler {
    /// Step 3: the use case of `request`.
    pub(crate) async fn apply(&self, request: Request, ctx: &Ctx<'_>) -> Result<String, Failure> {
        self.claim_message_id(&request, ctx).await?;
        match request {
            Request::TemplatePut(r) => self.template_put(r, ctx).await,
            Request::TemplateGet(r) => self.template_get(r, ctx).await,
            Request::TemplateList(_) => {
                let templates = self.ports.store.list_templates().await?;
                ctx.answer.ok_text(&TemplateListResult { templates })
            }
            Request::TemplateDelete(r) => self.template_delete(r, ctx).await,
            Request::GrantRequest(r) => self.grant_request(r, ctx).await,
            Request::GrantList(r) => self.grant_list(r, ctx).await,
            Request::GrantRevoke(r) => self.grant_revoke(r, ctx).await,
            Request::GrantRevokeAll(r) => self.grant_revoke_all(r, ctx).await,
            Request::GrantApprove(r) => self.grant_approve(r, ctx).await,
            Request::GrantDeny(r) => self.grant_deny(r, ctx).await,
            Request::GrantPending(_) => self.grant_pending(ctx).await,
            Request::GrantReview(r) => self.grant_review(r, ctx).await,
            Request::CredentialsRequest(r) => self.credentials(r, ctx).await,
            Request::PostureStatus(r) => self.posture_status(r, ctx).await,
            // Admission keeps directory kinds off the access queue.
            Request::UserTeamChanged(_) | Request::UserOffboarded(_) | Request::UserGroupsChanged(_) => {
                Err(RequestError::new(ErrorCode::UnknownKind, "directory kinds go on the directory-events queue")
                    .into())
            }
        }
    }

    // ------------------------------------------------------------------ idempotency

    /// `message_id` is unique per requester across kinds. A change records its reply with the change
    /// and replays it (its use case checks); every other kind (reads, `credentials.request`) records
    /// its id here, without a reply, before acting: a reuse with another kind or body is refused
    /// with `message_id_reused` either way, and a repeat of the same request acts again (reads
    /// answer with the current state; credentials are issued afresh, never stored to be replayed).
    /// (`credentials.request` claims its id itself, beside its reads.)
    async fn claim_message_id(&self, request: &Request, ctx: &Ctx<'_>) -> Result<(), Failure> {
        let records_itself = matches!(
            request,
            Request::TemplatePut(_)
                | Request::TemplateDelete(_)
                | Request::GrantRequest(_)
                | Request::GrantRevoke(_)
                | Request::GrantRevokeAll(_)
                | Request::GrantApprove(_)
                | Request::GrantDeny(_)
                | Request::GrantReview(_)
                | Request::CredentialsRequest(_)
        );
        if records_itself {
            return Ok(());
        }
        self.record_message_id(ctx).await
    }

    /// Record this request's id (without a reply): `message_id_reused` when it was recorded for
    /// another request.
    async fn record_message_id(&self, ctx: &Ctx<'_>) -> Result<(), Failure> {
        match self.ports.store.put_request_record(&self.new_record(ctx, "")?).await? {
            Recorded::Applied(()) => Ok(()),
            Recorded::Replayed(record) if record.digest == ctx.digest => Ok(()),
            Recorded::Replayed(_) => Err(message_id_reused(ctx)),
        }
    }

    /// The recorded reply when this request was handled before.
    pub(crate) async fn recorded_reply(&self, ctx: &Ctx<'_>) -> Result<Option<String>, Failure> {
        match self.ports.store.request_record(&ctx.key).await? {
            Some(record) => self.replay(record, ctx).await.map(Some),
            None => Ok(None),
        }
    }

    /// The recorded reply, if the record is of this very request (same kind and body), after
    /// publishing its audit events again (a crash may have come between the change and them).
    pub(crate) async fn replay(&self, record: RequestRecord, ctx: &Ctx<'_>) -> Result<String, Failure> {
        if record.digest != ctx.digest {
            return Err(message_id_reused(ctx));
        }
        info!(user = %ctx.who.user, message_id = %ctx.key.message_id, "redelivered request: replaying the recorded reply");
        self.publish(&record.events).await?;
        Ok(record.reply)
    }

    pub(crate) fn new_record<'a>(&self, ctx: &'a Ctx<'_>, reply: &str) -> Result<NewRecord<'a>, Failure> {
        self.new_record_with_events(ctx, reply, Vec::new())
    }

    pub(crate) fn new_record_with_events<'a>(
        &self,
        ctx: &'a Ctx<'_>,
        reply: &str,
        events: Vec<PublishedEvent>,
    ) -> Result<NewRecord<'a>, Failure> {
        let keep = TimeDelta::try_seconds(i64::try_from(self.config.idempotency_ttl_seconds).unwrap_or(i64::MAX))
            .and_then(|d| ctx.now.checked_add_signed(d))
            .ok_or_else(|| {
                RequestError::new(ErrorCode::InternalError, "access.idempotency_ttl_seconds is too large")
            })?;
        Ok(NewRecord {
            key: ctx.key,
            record: RequestRecord { digest: ctx.digest.clone(), reply: reply.to_owned(), events },
            expires_at: keep.timestamp(),
        })
    }

    // ------------------------------------------------------------------ templates

    fn require_admin(&self, ctx: &Ctx<'_>, what: &str) -> Result<(), RequestError> {
        if ctx.who.in_any_group(&self.config.admin_groups) {
            return Ok(());
        }
        Err(RequestError::new(
            ErrorCode::Forbidden,
            format!("only members of {} may {what}; ask a Portcullis admin", self.config.admin_groups.join(" or ")),
        ))
    }

    async fn template_put(&self, r: TemplatePut, ctx: &Ctx<'_>) -> Result<String, Failure> {
        self.require_admin(ctx, "put templates")?;
        let compiled = CompiledTemplate::compile(r.template.clone()).map_err(RequestError::from)?;
        for statement in &r.template.statements {
            self.config
                .guardrails
                .check_literals(statement)
                .map_err(|g| RequestError::from(RenderError::Guardrail(g)))?;
        }
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        let name = compiled.spec().name.clone();
        // A concurrent put of the same name makes the version condition fail: read again and retry.
        for _ in 0..3 {
            let previous = self.ports.store.template_index(&name).await?.map(|i| i.latest_version);
            let version = previous
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| RequestError::new(ErrorCode::TemplateInvalid, "the template has too many versions"))?;
            let stored = StoredTemplate {
                spec: r.template.clone(),
                version,
                created_by: ctx.who.user.clone(),
                created_at: ctx.now,
            };
            let reply = ctx.answer.ok_text(&TemplatePutResult { name: name.clone(), version })?;
            match self.ports.store.put_template(&stored, previous, &self.new_record(ctx, &reply)?).await {
                Ok(Recorded::Applied(())) => {
                    info!(template = %name, version, by = %ctx.who.user, "template stored");
                    return Ok(reply);
                }
                Ok(Recorded::Replayed(record)) => return self.replay(record, ctx).await,
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Failure::Retry(format!("template {name} kept changing concurrently")))
    }

    async fn template_get(&self, r: TemplateGet, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let template = self.load_template(&r.name, r.version).await?;
        ctx.answer.ok_text(&TemplateGetResult { template })
    }

    /// A template by name: the latest version, or `version`. Deleted templates are not found.
    async fn load_template(&self, name: &TemplateName, version: Option<u32>) -> Result<StoredTemplate, Failure> {
        let index = self.ports.store.template_index(name).await?;
        self.load_template_at(name, version, index).await
    }

    /// [`Self::load_template`] with the template's index already read.
    async fn load_template_at(
        &self,
        name: &TemplateName,
        version: Option<u32>,
        index: Option<TemplateIndex>,
    ) -> Result<StoredTemplate, Failure> {
        let not_found = || {
            let which = version.map(|v| format!(" version {v}")).unwrap_or_default();
            Failure::Refused(RequestError::new(
                ErrorCode::TemplateNotFound,
                format!("there is no template `{name}`{which}; send template.list to see the templates"),
            ))
        };
        let index = index.filter(|i| !i.deleted).ok_or_else(not_found)?;
        let wanted = version.unwrap_or(index.latest_version);
        if wanted < 1 || wanted > index.latest_version {
            return Err(not_found());
        }
        // A stored version never changes (a put makes a new one, a delete marks the index): read once.
        if let Some(stored) = self.stored_template(name, wanted) {
            return Ok(stored);
        }
        let stored = self.ports.store.template_version(name, wanted).await?.ok_or_else(not_found)?;
        self.keep_stored_template(&stored);
        Ok(stored)
    }

    async fn template_delete(&self, r: TemplateDelete, ctx: &Ctx<'_>) -> Result<String, Failure> {
        self.require_admin(ctx, "delete templates")?;
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        let reply = ctx.answer.ok_text(&TemplateDeleteResult { name: r.name.clone(), deleted: true })?;
        match self.ports.store.delete_template(&r.name, &self.new_record(ctx, &reply)?).await? {
            Recorded::Applied(true) => {
                info!(template = %r.name, by = %ctx.who.user, "template deleted");
                Ok(reply)
            }
            Recorded::Applied(false) => Err(RequestError::new(
                ErrorCode::TemplateNotFound,
                format!("there is no template `{}` to delete", r.name),
            )
            .into()),
            Recorded::Replayed(record) => self.replay(record, ctx).await,
        }
    }

    // ------------------------------------------------------------------ grants

    fn account(&self, account: &AccountId) -> Result<&BrokeredAccount, RequestError> {
        self.config.accounts.get(account).ok_or_else(|| {
            let known: Vec<&str> = self.config.accounts.keys().map(AccountId::as_str).collect();
            RequestError::new(
                ErrorCode::AccountUnknown,
                format!("account `{account}` is not configured in Portcullis; use one of {}", known.join(", ")),
            )
        })
    }

    async fn grant_request(&self, r: GrantRequest, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                "reason must be 1 to 512 characters: say why you need the access",
            )
            .into());
        }
        // A redelivered request gets the reply it got before, even if the template has changed or
        // gone since: the first answer stands. The record is only read when needed: the grant's write
        // is conditional on it (a redelivery that gets that far replays it), and a refusal checks
        // for it before refusing.
        let grant = match self.new_grant(r, ctx).await {
            Ok(grant) => grant,
            Err(Failure::Refused(refusal)) if ctx.grant_reads.is_some_and(|r| r.kept) => {
                return Err(Failure::Stale(format!("refused on kept reads ({})", refusal.code)));
            }
            Err(Failure::Refused(refusal)) => {
                return match self.recorded_reply(ctx).await? {
                    Some(reply) => Ok(reply),
                    None => Err(Failure::Refused(refusal)),
                };
            }
            Err(retry) => return Err(retry),
        };
        let reply = ctx.answer.ok_text(&GrantRequestResult { grant: grant.clone() })?;
        let events = self.grant_request_events(&grant, ctx)?;
        let decided_on = match ctx.grant_reads {
            Some(reads) => DecidedOn { directory_revision: reads.directory_revision },
            None => DecidedOn {
                directory_revision: self.ports.store.directory_record(&ctx.who.user).await?.map(|(_, r)| r),
            },
        };
        let record = self.new_record_with_events(ctx, &reply, events.clone())?;
        match self.ports.store.put_grant(&grant, decided_on, &record).await? {
            Recorded::Applied(()) => {
                self.metrics.grant_created(&grant);
                info!(grant = %grant.id, user = %grant.user, template = %grant.template, account = %grant.account,
                      status = grant.status.as_str(), break_glass = grant.break_glass.is_some(),
                      expires_at = %grant.expires_at, reason = %redact_secrets(&grant.reason), via = ?grant.via, "grant created");
                self.publish(&events).await?;
                Ok(reply)
            }
            Recorded::Replayed(record) => self.replay(record, ctx).await,
        }
    }

    /// The grant `r` asks for (not stored yet), or why it is refused.
    async fn new_grant(&self, r: GrantRequest, ctx: &Ctx<'_>) -> Result<Grant, Failure> {
        let stored = match ctx.grant_reads {
            Some(reads) => self.load_template_at(&r.template, None, reads.template_index).await?,
            None => self.load_template(&r.template, None).await?,
        };
        self.account(&r.account)?;
        let compiled = self.compiled(&stored)?;
        let rules = GrantRules {
            guardrails: &self.config.guardrails,
            pending_ttl_seconds: self.config.pending_ttl_seconds,
            break_glass_review_seconds: self.config.break_glass_review_seconds,
        };
        let asking = Asking { who: ctx.who, message_id: ctx.key.message_id, now: ctx.now };
        Ok(Grant::decide(r, &compiled, stored.version, &rules, asking)?)
    }

    /// What a new grant announces: that it waits for approval, or that it exists (and broke the glass).
    fn grant_request_events(&self, grant: &Grant, ctx: &Ctx<'_>) -> Result<Vec<PublishedEvent>, Failure> {
        if let Some(approval) = &grant.approval {
            return Ok(vec![published(&AuditEvent::GrantPendingApproval(audit::GrantPendingApproval {
                event_id: ctx.event_id("grant-pending"),
                at: ctx.now,
                actor: ctx.actor(),
                grant_id: grant.id.clone(),
                account: grant.account.clone(),
                template: grant.template.clone(),
                template_version: grant.template_version,
                ttl_seconds: grant.ttl_seconds,
                reason: grant.reason.clone(),
                required: approval.required,
                approver_groups: approval.approver_groups.clone(),
                pending_until: approval.pending_until,
                request_message_id: grant.request_message_id.clone(),
            }))?]);
        }
        let mut events = vec![published(&AuditEvent::GrantCreated(audit::GrantCreated {
            event_id: ctx.event_id("grant-created"),
            at: ctx.now,
            actor: ctx.actor(),
            grant_id: grant.id.clone(),
            account: grant.account.clone(),
            template: grant.template.clone(),
            template_version: grant.template_version,
            expires_at: grant.expires_at,
            reason: grant.reason.clone(),
            request_message_id: grant.request_message_id.clone(),
        }))?];
        if let Some(duty) = &grant.break_glass {
            events.push(published(&AuditEvent::BreakGlassUsed(audit::BreakGlassUsed {
                event_id: ctx.event_id("break-glass"),
                at: ctx.now,
                actor: ctx.actor(),
                grant_id: grant.id.clone(),
                account: grant.account.clone(),
                template: grant.template.clone(),
                reason: grant.reason.clone(),
                expires_at: grant.expires_at,
                review_due: duty.review_due,
                reviewer_groups: duty.reviewer_groups.clone(),
            }))?);
        }
        Ok(events)
    }

    async fn grant_list(&self, r: GrantList, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let mut grants = self.ports.store.kept_grants(&ctx.who.user, ctx.now).await?;
        grants
            .retain(|g| r.account.as_ref().is_none_or(|a| &g.account == a) && (r.include_ended || g.is_open(ctx.now)));
        let grants = grants.into_iter().map(|g| g.observed(ctx.now)).collect();
        ctx.answer.ok_text(&GrantListResult { grants })
    }

    // ------------------------------------------------------------------ revocation

    pub(crate) fn check_reason(reason: &str) -> Result<&str, RequestError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(RequestError::new(ErrorCode::BadRequest, "reason must be 1 to 512 characters: say why"));
        }
        Ok(reason)
    }

    async fn grant_revoke(&self, r: GrantRevoke, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let reason = Self::check_reason(&r.reason)?;
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        let admin = ctx.who.in_any_group(&self.config.admin_groups);
        let grant =
            self.ports.store.grant_by_id(&r.grant_id).await?.filter(|g| admin || g.user == ctx.who.user).ok_or_else(
                || {
                    RequestError::new(
                        ErrorCode::GrantNotFound,
                        format!("there is no grant {} of yours; send grant.list to see your grants", r.grant_id),
                    )
                },
            )?;
        self.revoke(vec![grant], reason, ctx).await
    }

    async fn grant_revoke_all(&self, r: GrantRevokeAll, ctx: &Ctx<'_>) -> Result<String, Failure> {
        self.require_admin(ctx, "revoke all of a user's grants")?;
        let reason = Self::check_reason(&r.reason)?;
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        let mut grants = self.ports.store.kept_grants(&r.user, ctx.now).await?;
        grants.retain(|g| g.is_open(ctx.now) || g.revoked_for(&ctx.who.user, reason));
        self.revoke_user(&r.user, grants, self.revoker.accounts(), reason, ctx).await
    }

    /// Revoke `grants` (all of one user) and kill that user's sessions in their accounts.
    async fn revoke(&self, grants: Vec<Grant>, reason: &str, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let Some(user) = grants.first().map(|g| g.user.clone()) else {
            return Err(RequestError::new(ErrorCode::GrantNotFound, "nothing to revoke").into());
        };
        // Live grants, and the ones an earlier delivery of this revocation revoked already: a delivery
        // that failed after marking them revoked must not leave their sessions alive.
        let mut accounts: Vec<_> = grants
            .iter()
            .filter(|g| g.is_live(ctx.now) || (g.revoked_for(&ctx.who.user, reason) && g.was_activated()))
            .map(|g| g.account.clone())
            .collect();
        accounts.sort();
        accounts.dedup();
        self.revoke_user(&user, grants, accounts, reason, ctx).await
    }

    async fn revoke_user(
        &self,
        user: &str,
        grants: Vec<Grant>,
        accounts: Vec<portcullis_domain::AccountId>,
        reason: &str,
        ctx: &Ctx<'_>,
    ) -> Result<String, Failure> {
        let (result, events) = self.revoke_and_kill(user, grants, accounts, reason, ctx).await?;
        let reply = ctx.answer.ok_text(&result)?;
        // Recorded so a redelivery answers the same; the changes themselves are idempotent.
        match self.ports.store.put_request_record(&self.new_record_with_events(ctx, &reply, events.clone())?).await? {
            Recorded::Applied(()) => {
                self.publish(&events).await?;
                Ok(reply)
            }
            Recorded::Replayed(record) => self.replay(record, ctx).await,
        }
    }

    /// Revoke the open ones of `grants` (all of `user`'s) and kill the user's sessions in `accounts`;
    /// the result and the audit events (to record, then publish). Idempotent.
    pub(crate) async fn revoke_and_kill(
        &self,
        user: &str,
        grants: Vec<Grant>,
        accounts: Vec<portcullis_domain::AccountId>,
        reason: &str,
        ctx: &Ctx<'_>,
    ) -> Result<(RevocationResult, Vec<PublishedEvent>), Failure> {
        let revocation = Revocation { at: ctx.now, by: ctx.who.user.clone(), reason: reason.to_owned() };
        let revoked = self.revoker.revoke_covered(grants, |_| true, &revocation).await?;
        let cutoff = self.revoker.kill_sessions(user, &accounts, ctx.now, ctx.now).await?;
        let actor = ctx.actor();
        let announcement =
            Announcement { at: ctx.now, actor: &actor, user, reason, revoked: &revoked, accounts: &accounts, cutoff };
        let events = announcement.events(|what| ctx.event_id(what)).iter().map(published).collect::<Result<_, _>>()?;
        let result = RevocationResult {
            grants: revoked.iter().map(|g| g.id.clone()).collect(),
            accounts,
            sessions_issued_before: cutoff,
        };
        Ok((result, events))
    }

    // ------------------------------------------------------------------ credentials

    /// The key the credentials are sealed to: the request's `reply_key`, required unless the worker
    /// allows clear credentials. Checked (a usable point) before anything is issued.
    fn reply_key(&self, r: &CredentialsRequest) -> Result<Option<ReplyKey>, RequestError> {
        let Some(text) = &r.reply_key else {
            if self.config.require_sealed_credentials {
                return Err(RequestError::new(
                    ErrorCode::ReplyKeyRequired,
                    "credentials are only sent sealed: put a fresh X25519 public key in reply_key (see \
                     docs/messages.md, \"Sealed credentials\"; the portcullis CLI does this)",
                ));
            }
            return Ok(None);
        };
        let invalid = |e: SealError| {
            RequestError::new(ErrorCode::ReplyKeyInvalid, format!("{e}; send a fresh X25519 public key in reply_key"))
        };
        let key = ReplyKey::parse(text).map_err(invalid)?;
        seal_credentials(&key, "check", "check", b"").map_err(invalid)?;
        Ok(Some(key))
    }

    /// The account's session revocations (and their generation), after checking `name`'s against
    /// `issued_at` ([`refuse_if_revoked`]).
    async fn check_sessions_not_revoked(
        &self,
        account: &AccountId,
        name: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<(u64, Vec<SessionRevocation>), Failure> {
        let (generation, revocations) = self.ports.store.session_revocations(account).await?;
        refuse_if_revoked(account, &revocations, name, issued_at)?;
        Ok((generation, revocations))
    }

    /// After STS answered and before anything is sent: whether the requester is still entitled to
    /// the credentials, read again (every store read is strongly consistent). Refused with
    /// `access_revoked` when the user was offboarded (or their token went stale), when one of
    /// `grant_ids` is no longer live, or when their sessions in the account are revoked until after
    /// the session's issue time (`issued_at`, by STS's clock: expiration − duration).
    ///
    /// One read ([`crate::ports::AccessStore::entitlement`]): the directory record, the grants
    /// themselves and the account's revocation generation. The session revocations read before STS
    /// was asked (`known`, with their generation) are read again only when the generation moved: a
    /// revocation is stored together with a bump of it.
    ///
    /// Why this closes the race: a revocation stored before this read is seen here; one stored after
    /// it was stamped (by its worker's clock) after this read, so after STS issued the session, and
    /// its cutoff (that time + [`portcullis_domain::revocation::CLOCK_SKEW_ALLOWANCE`]) covers the
    /// session's issue time whenever STS's clock is at most that far ahead of the worker's.
    async fn check_still_entitled(
        &self,
        ctx: &Ctx<'_>,
        account: &AccountId,
        grant_ids: &[GrantId],
        issued_at: DateTime<Utc>,
        known: &(u64, Vec<SessionRevocation>),
    ) -> Result<(), Failure> {
        let checked_at = self.ports.clock.now();
        let revoked = |why: String| {
            Failure::Refused(RequestError::new(
                ErrorCode::AccessRevoked,
                format!("{why} while the credentials were being issued; they were not sent. Ask for access again"),
            ))
        };
        let now = self.ports.store.entitlement(&ctx.who.user, account, grant_ids).await?;
        if let Some((record, _)) = &now.directory
            && let Err(e) = record.check(ctx.who)
        {
            return Err(revoked(format!("the directory changed ({})", e.message)));
        }
        for (id, grant) in grant_ids.iter().zip(&now.grants) {
            if !grant.as_ref().is_some_and(|g| g.is_live(checked_at)) {
                return Err(revoked(format!("grant {id} was revoked or ended")));
            }
        }
        let session_name = sts_name_for(&ctx.who.user);
        let sessions = match now.revocation_generation == known.0 {
            true => refuse_if_revoked(account, &known.1, &session_name, issued_at),
            false => self.check_sessions_not_revoked(account, &session_name, issued_at).await.map(|_| ()),
        };
        match sessions {
            Err(Failure::Refused(_)) => Err(revoked(format!("your sessions in account {account} were revoked"))),
            other => other,
        }
    }

    async fn credentials(&self, r: CredentialsRequest, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let account = self.account(&r.account)?;
        let reply_key = self.reply_key(&r)?;
        // The directory check, the id claim and the two reads are independent: one round trip for
        // the four. Nothing is issued before the directory record is checked.
        let name = sts_name_for(&ctx.who.user);
        let directory = async {
            match ctx.directory_unchecked {
                true => self.ports.store.directory_record(&ctx.who.user).await.map(Some),
                false => Ok(None),
            }
        };
        let (record, claimed, grants, sessions) = tokio::join!(
            directory,
            self.record_message_id(ctx),
            self.ports.store.live_grants(&ctx.who.user, Some(&r.account), ctx.now),
            self.check_sessions_not_revoked(&r.account, &name, ctx.now),
        );
        let who = match record? {
            Some(Some((record, _))) => record.check(ctx.who)?,
            Some(None) | None => ctx.who.clone(),
        };
        let ctx = &Ctx { who: &who, digest: ctx.digest.clone(), directory_unchecked: false, ..*ctx };
        claimed?;
        let policy = compose_session_policy(&grants?, ctx.now)?;
        let sessions = sessions?;
        let duration = session_duration(
            r.duration,
            ctx.now,
            policy.latest_expiry,
            account.max_session_seconds,
            self.config.max_credentials_seconds,
        )?;
        let request = AssumeRequest {
            role_arn: account.role_arn.clone(),
            session_name: name.clone(),
            source_identity: name.clone(),
            policy: policy.json.clone(),
            duration_seconds: duration,
        };
        let issued = self.ports.broker.assume(&request).await.map_err(|e| match e {
            BrokerError::Refused(refusal) => Failure::Refused(refusal),
            BrokerError::Unavailable(why) => Failure::Retry(why),
        })?;
        // STS's clock: the session was issued at expiration − duration.
        let issued_at = issued
            .credentials
            .expiration
            .checked_sub_signed(TimeDelta::seconds(i64::try_from(duration).unwrap_or(i64::MAX)))
            .unwrap_or(ctx.now);
        if let Err(refusal) = self.check_still_entitled(ctx, &r.account, &policy.grant_ids, issued_at, &sessions).await
        {
            // Dropped here, unsent and unlogged (not even the access key id).
            drop(issued);
            warn!(user = %ctx.who.user, account = %r.account, "credentials issued but not sent: access was revoked meanwhile");
            return Err(refusal);
        }
        self.metrics.credentials_issued(&r.account, policy.size(), issued.packed_policy_size);
        let event = AuditEvent::CredentialsIssued(audit::CredentialsIssued {
            event_id: ctx.event_id(&format!("credentials:{}", issued.credentials.access_key_id)),
            at: ctx.now,
            actor: ctx.actor(),
            account: r.account.clone(),
            role_arn: account.role_arn.clone(),
            session_name: name.clone(),
            access_key_id: issued.credentials.access_key_id.clone(),
            expires_at: issued.credentials.expiration,
            grant_ids: policy.grant_ids.clone(),
            sealed: reply_key.is_some(),
        });
        self.publish(&[published(&event)?]).await?;
        info!(user = %ctx.who.user, account = %r.account, role = %account.role_arn, grants = ?policy.grant_ids,
              duration, policy_chars = policy.size(), packed_policy_size = ?issued.packed_policy_size,
              access_key_id = %issued.credentials.access_key_id, sealed = reply_key.is_some(), "credentials issued");
        let expires_at = issued.credentials.expiration;
        let (credentials, sealed_credentials) = match &reply_key {
            Some(key) => {
                let plaintext = Zeroizing::new(serde_json::to_vec(&issued.credentials).map_err(|e| {
                    RequestError::new(ErrorCode::InternalError, format!("the credentials could not be encoded: {e}"))
                })?);
                let sealed = seal_credentials(key, ctx.key.message_id.as_str(), r.account.as_str(), &plaintext)
                    .map_err(|e| {
                        RequestError::new(ErrorCode::InternalError, format!("the credentials could not be sealed: {e}"))
                    })?;
                (None, Some(sealed))
            }
            None => (Some(issued.credentials), None),
        };
        ctx.answer.ok_text(&CredentialsResult {
            credentials,
            sealed_credentials,
            expires_at,
            account: r.account,
            role_arn: account.role_arn.clone(),
            session_name: name.clone(),
            source_identity: name,
            session_policy_size: policy.size(),
            packed_policy_size: issued.packed_policy_size,
            grant_ids: policy.grant_ids,
        })
    }
}

/// Refused with `access_revoked` when `name`'s sessions in `account` are revoked until after
/// `issued_at` (a session issued then would be denied anyway).
fn refuse_if_revoked(
    account: &AccountId,
    revocations: &[SessionRevocation],
    name: &str,
    issued_at: DateTime<Utc>,
) -> Result<(), Failure> {
    match revoked_until(revocations, name) {
        Some(cutoff) if cutoff > issued_at => Err(RequestError::new(
            ErrorCode::AccessRevoked,
            format!(
                "your sessions in account {account} were revoked, and sessions issued before {} are denied; \
                 ask again after that time (with a live grant)",
                cutoff.to_rfc3339()
            ),
        )
        .into()),
        _ => Ok(()),
    }
}

/// An audit event ready to publish (or record).
pub(crate) fn published(event: &AuditEvent) -> Result<PublishedEvent, Failure> {
    PublishedEvent::from_event(event).map_err(|e| {
        Failure::Refused(RequestError::new(
            ErrorCode::InternalError,
            format!("an audit event could not be encoded: {e}"),
        ))
    })
}

/// The refusal of a `message_id` used before by the same requester for another request.
fn message_id_reused(ctx: &Ctx<'_>) -> Failure {
    Failure::Refused(RequestError::new(
        ErrorCode::MessageIdReused,
        format!(
            "message_id {} was used before for a different request; nothing was done. Use a fresh message_id for \
             every request",
            ctx.key.message_id
        ),
    ))
}
