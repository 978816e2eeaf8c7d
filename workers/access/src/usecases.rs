//! The access use cases, one per kind, over the ports. Each returns the exact reply text (for
//! changes: built first and recorded with the change, so a redelivery is answered byte for byte) or
//! a [`Failure`].

use chrono::TimeDelta;
use portcullis_domain::audit::{self, AuditEvent};
use portcullis_domain::grant::{Grant, Revocation};
use portcullis_domain::messages::{
    CredentialsRequest, CredentialsResult, GrantList, GrantListResult, GrantRequest, GrantRequestResult, GrantRevoke,
    GrantRevokeAll, Request, RevocationResult, TemplateDelete, TemplateDeleteResult, TemplateGet, TemplateGetResult,
    TemplateListResult, TemplatePut, TemplatePutResult,
};
use portcullis_domain::policy::compose_session_policy;
use portcullis_domain::session::{session_duration, sts_name_for};
use portcullis_domain::template::{CompiledTemplate, MIN_TEMPLATE_TTL_SECONDS, RenderError, StoredTemplate};
use portcullis_domain::{AccountId, ErrorCode, RequestError, TemplateName};
use tracing::info;

use crate::front::Failure;
use crate::handler::{AccessHandler, BrokeredAccount, Ctx};
use crate::ports::{AssumeRequest, BrokerError, NewRecord, PublishedEvent, Recorded, RequestRecord, StoreError};

/// Longest `reason`, in characters.
const MAX_REASON_CHARS: usize = 512;

impl AccessHandler {
    /// Step 3: the use case of `request`.
    pub(crate) async fn apply(&self, request: Request, ctx: &Ctx<'_>) -> Result<String, Failure> {
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

    /// The recorded reply when this request was handled before.
    async fn recorded_reply(&self, ctx: &Ctx<'_>) -> Result<Option<String>, Failure> {
        match self.ports.store.request_record(&ctx.key).await? {
            Some(record) => self.replay(record, ctx).await.map(Some),
            None => Ok(None),
        }
    }

    /// The recorded reply, if the record is of this very request (same kind and body), after
    /// publishing its audit events again (a crash may have come between the change and them).
    async fn replay(&self, record: RequestRecord, ctx: &Ctx<'_>) -> Result<String, Failure> {
        if record.digest != ctx.digest {
            return Err(RequestError::new(
                ErrorCode::MessageIdReused,
                format!(
                    "message_id {} was used before for a different request; nothing was done. Use a fresh \
                     message_id for every request",
                    ctx.key.message_id
                ),
            )
            .into());
        }
        info!(user = %ctx.who.user, message_id = %ctx.key.message_id, "redelivered request: replaying the recorded reply");
        self.publish(&record.events).await?;
        Ok(record.reply)
    }

    fn new_record<'a>(&self, ctx: &'a Ctx<'_>, reply: &str) -> Result<NewRecord<'a>, Failure> {
        self.new_record_with_events(ctx, reply, Vec::new())
    }

    fn new_record_with_events<'a>(
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
        let not_found = || {
            let which = version.map(|v| format!(" version {v}")).unwrap_or_default();
            Failure::Refused(RequestError::new(
                ErrorCode::TemplateNotFound,
                format!("there is no template `{name}`{which}; send template.list to see the templates"),
            ))
        };
        let index = self.ports.store.template_index(name).await?.filter(|i| !i.deleted).ok_or_else(not_found)?;
        let wanted = version.unwrap_or(index.latest_version);
        if wanted < 1 || wanted > index.latest_version {
            return Err(not_found());
        }
        self.ports.store.template_version(name, wanted).await?.ok_or_else(not_found)
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
        // A redelivered request finds the reply it got before, even if the template has changed or
        // gone since: the first answer stands.
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        let stored = self.load_template(&r.template, None).await?;
        self.account(&r.account)?;
        if let Some(allowed) = &stored.spec.allowed_accounts
            && !allowed.contains(&r.account)
        {
            let allowed: Vec<&str> = allowed.iter().map(AccountId::as_str).collect();
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
        if r.ttl < MIN_TEMPLATE_TTL_SECONDS {
            return Err(RequestError::new(ErrorCode::DurationInvalid, "ttl must be at least 60 seconds").into());
        }
        let max = stored.spec.max_ttl_seconds;
        if r.ttl > max {
            return Err(RequestError::new(
                ErrorCode::TtlTooLong,
                format!(
                    "ttl {}s is above template `{}`'s maximum of {max}s; ask for {max}s or less",
                    r.ttl, r.template
                ),
            )
            .with_details(serde_json::json!({ "max_ttl_seconds": max }))
            .into());
        }
        let compiled = self.compiled(&stored)?;
        let statements = compiled.render(&r.params, &self.config.guardrails).map_err(RequestError::from)?;
        let expires_at = TimeDelta::try_seconds(i64::try_from(r.ttl).unwrap_or(i64::MAX))
            .and_then(|d| ctx.now.checked_add_signed(d))
            .ok_or_else(|| RequestError::new(ErrorCode::DurationInvalid, "ttl is out of range"))?;
        let grant = Grant {
            id: Grant::id_for(&ctx.who.user, ctx.key.message_id),
            user: ctx.who.user.clone(),
            team: ctx.who.team.clone(),
            groups: ctx.who.groups.clone(),
            account: r.account,
            template: stored.spec.name.clone(),
            template_version: stored.version,
            params: r.params,
            statements,
            reason: reason.to_owned(),
            created_at: ctx.now,
            expires_at,
            request_message_id: ctx.key.message_id.clone(),
            via: ctx.who.via.clone(),
            revoked: None,
        };
        let reply = ctx.answer.ok_text(&GrantRequestResult { grant: grant.clone() })?;
        let created = AuditEvent::GrantCreated(audit::GrantCreated {
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
        });
        let events = vec![published(&created)?];
        match self.ports.store.put_grant(&grant, &self.new_record_with_events(ctx, &reply, events.clone())?).await? {
            Recorded::Applied(()) => {
                self.metrics.grant_created(&grant);
                info!(grant = %grant.id, user = %grant.user, template = %grant.template, account = %grant.account,
                      expires_at = %grant.expires_at, reason = %grant.reason, via = ?grant.via, "grant created");
                self.publish(&events).await?;
                Ok(reply)
            }
            Recorded::Replayed(record) => self.replay(record, ctx).await,
        }
    }

    async fn grant_list(&self, r: GrantList, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let grants = if r.include_revoked {
            let mut all = self.ports.store.unexpired_grants(&ctx.who.user, ctx.now).await?;
            all.retain(|g| r.account.as_ref().is_none_or(|a| &g.account == a));
            all
        } else {
            self.ports.store.live_grants(&ctx.who.user, r.account.as_ref(), ctx.now).await?
        };
        ctx.answer.ok_text(&GrantListResult { grants })
    }

    // ------------------------------------------------------------------ revocation

    fn check_reason(reason: &str) -> Result<&str, RequestError> {
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
        let grants = self.ports.store.live_grants(&r.user, None, ctx.now).await?;
        self.revoke_user(&r.user, grants, self.revoker.accounts(), reason, ctx).await
    }

    /// Revoke `grants` (all of one user) and kill that user's sessions in their accounts.
    async fn revoke(&self, grants: Vec<Grant>, reason: &str, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let Some(user) = grants.first().map(|g| g.user.clone()) else {
            return Err(RequestError::new(ErrorCode::GrantNotFound, "nothing to revoke").into());
        };
        let mut accounts: Vec<_> = grants.iter().filter(|g| g.is_live(ctx.now)).map(|g| g.account.clone()).collect();
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
        let revocation = Revocation { at: ctx.now, by: ctx.who.user.clone(), reason: reason.to_owned() };
        let live: Vec<Grant> = grants.into_iter().filter(|g| g.is_live(ctx.now)).collect();
        let revoked = self.revoker.revoke_grants(&live, &revocation).await?;
        let cutoff = self.revoker.kill_sessions(user, &accounts, ctx.now, ctx.now).await?;
        let mut events = Vec::new();
        for g in &revoked {
            events.push(published(&AuditEvent::GrantRevoked(audit::GrantRevoked {
                event_id: ctx.event_id(&format!("grant-revoked:{}", g.id)),
                at: ctx.now,
                actor: ctx.actor(),
                user: g.user.clone(),
                grant_id: g.id.clone(),
                account: g.account.clone(),
                template: g.template.clone(),
                reason: reason.to_owned(),
            }))?);
        }
        if !accounts.is_empty() {
            events.push(published(&AuditEvent::SessionsRevoked(audit::SessionsRevoked {
                event_id: ctx.event_id("sessions-revoked"),
                at: ctx.now,
                actor: ctx.actor(),
                user: user.to_owned(),
                session_name: sts_name_for(user),
                accounts: accounts.clone(),
                sessions_issued_before: cutoff,
                reason: reason.to_owned(),
            }))?);
        }
        let result = RevocationResult {
            grants: revoked.iter().map(|g| g.id.clone()).collect(),
            accounts,
            sessions_issued_before: cutoff,
        };
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

    // ------------------------------------------------------------------ credentials

    async fn credentials(&self, r: CredentialsRequest, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let account = self.account(&r.account)?;
        let grants = self.ports.store.live_grants(&ctx.who.user, Some(&r.account), ctx.now).await?;
        let policy = compose_session_policy(&grants, ctx.now)?;
        let duration = session_duration(
            r.duration,
            ctx.now,
            policy.latest_expiry,
            account.max_session_seconds,
            self.config.max_credentials_seconds,
        )?;
        let name = sts_name_for(&ctx.who.user);
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
        });
        self.publish(&[published(&event)?]).await?;
        info!(user = %ctx.who.user, account = %r.account, role = %account.role_arn, grants = ?policy.grant_ids,
              duration, policy_chars = policy.size(), packed_policy_size = ?issued.packed_policy_size,
              access_key_id = %issued.credentials.access_key_id, "credentials issued");
        ctx.answer.ok_text(&CredentialsResult {
            credentials: issued.credentials,
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

/// An audit event ready to publish (or record).
fn published(event: &AuditEvent) -> Result<PublishedEvent, Failure> {
    PublishedEvent::from_event(event).map_err(|e| {
        Failure::Refused(RequestError::new(
            ErrorCode::InternalError,
            format!("an audit event could not be encoded: {e}"),
        ))
    })
}
