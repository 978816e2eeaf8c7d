//! The second person: `grant.approve`, `grant.deny`, `grant.pending` and `grant.review`.
//!
//! Who may decide and what a decision does is the domain's ([`Grant::approve`], [`Grant::deny`],
//! [`Grant::review`]); here a decision is read, made, and written under the grant's revision with the
//! request's record, so two approvers at once both count (the loser of the race reads again) and a
//! redelivered decision answers the same without acting twice.

use portcullis_domain::audit::{self, AuditEvent};
use portcullis_domain::grant::{Approved, Grant, GrantStatus, Verdict};
use portcullis_domain::messages::{
    GrantApprove, GrantDecisionResult, GrantDeny, GrantPendingResult, GrantReview, RevocationResult,
};
use portcullis_domain::{ErrorCode, GrantId, RequestError};
use tracing::info;

use crate::front::Failure;
use crate::handler::{AccessHandler, Ctx};
use crate::ports::{PublishedEvent, Recorded, StoreError};
use crate::usecases::published;

/// How many times a decision is re-read and re-made when another decision on the same grant won.
const DECISION_TRIES: usize = 5;

/// What a decision changed.
enum Decided {
    /// The grant changed: write it, with these events.
    Changed(Vec<PublishedEvent>),
    /// Nothing to write (an approver approving again): answer with the grant as it is.
    Unchanged,
}

/// Break-glass grants whose review is owed, as counted by [`AccessHandler::count_reviews_owed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewsOwed {
    pub all: u64,
    /// Those past their `review_due`.
    pub overdue: u64,
}

impl AccessHandler {
    /// Count the break-glass grants whose review is owed into `portcullis_break_glass_unreviewed_grants`
    /// (every replica counts the same table; the alert takes the maximum).
    pub async fn count_reviews_owed(&self) -> Result<ReviewsOwed, StoreError> {
        let now = self.ports.clock.now();
        let owed: Vec<Grant> =
            self.ports.store.reviews_owed().await?.into_iter().filter(Grant::awaits_review).collect();
        let overdue = owed.iter().filter(|g| g.break_glass.as_ref().is_some_and(|b| now > b.review_due)).count();
        let counted = ReviewsOwed {
            all: u64::try_from(owed.len()).unwrap_or(u64::MAX),
            overdue: u64::try_from(overdue).unwrap_or(u64::MAX),
        };
        self.metrics.reviews_owed(counted.all, counted.overdue);
        Ok(counted)
    }

    /// The grant a decision is about. A grant nobody decides on (no approval rule, no break glass) is
    /// not revealed to anyone but its owner, as `grant.revoke` does.
    async fn decision_grant(&self, id: &GrantId, ctx: &Ctx<'_>) -> Result<Grant, Failure> {
        let not_found = || {
            Failure::Refused(RequestError::new(
                ErrorCode::GrantNotFound,
                format!("there is no grant {id} for you to decide on; send grant.pending to see what waits for you"),
            ))
        };
        let grant = self.ports.store.grant_by_id(id).await?.ok_or_else(not_found)?;
        let decided_on = grant.approval.is_some() || grant.break_glass.is_some();
        if !decided_on && grant.user != ctx.who.user {
            return Err(not_found());
        }
        Ok(grant)
    }

    /// Read the grant, `decide` on it, and write it with the request's record; again when another
    /// decision on the same grant was written meanwhile.
    async fn decide<F>(&self, id: &GrantId, ctx: &Ctx<'_>, mut decide: F) -> Result<String, Failure>
    where
        F: FnMut(&mut Grant) -> Result<Decided, Failure>,
    {
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        for _ in 0..DECISION_TRIES {
            let mut grant = self.decision_grant(id, ctx).await?;
            let decided = decide(&mut grant)?;
            let reply = ctx.answer.ok_text(&GrantDecisionResult { grant: grant.clone().observed(ctx.now) })?;
            let events = match decided {
                Decided::Changed(events) => events,
                Decided::Unchanged => {
                    // Recorded too, so a redelivery answers byte for byte.
                    return match self.ports.store.put_request_record(&self.new_record(ctx, &reply)?).await? {
                        Recorded::Applied(()) => Ok(reply),
                        Recorded::Replayed(record) => self.replay(record, ctx).await,
                    };
                }
            };
            match self
                .ports
                .store
                .update_grant(&grant, &self.new_record_with_events(ctx, &reply, events.clone())?)
                .await
            {
                Ok(Recorded::Applied(())) => {
                    info!(grant = %grant.id, user = %grant.user, by = %ctx.who.user,
                          status = grant.status_at(ctx.now).as_str(), kind = ctx.answer.kind, "grant decided");
                    self.publish(&events).await?;
                    return Ok(reply);
                }
                Ok(Recorded::Replayed(record)) => return self.replay(record, ctx).await,
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Failure::Retry(format!("grant {id} kept changing concurrently")))
    }

    pub(crate) async fn grant_approve(&self, r: GrantApprove, ctx: &Ctx<'_>) -> Result<String, Failure> {
        self.decide(&r.grant_id, ctx, |grant| {
            let approved = grant.approve(ctx.who, ctx.now)?;
            let Some(approval) = &grant.approval else { return Ok(Decided::Unchanged) };
            if approved == Approved::AlreadyCounted {
                return Ok(Decided::Unchanged);
            }
            let count = u32::try_from(approval.approvals.len()).unwrap_or(u32::MAX);
            let mut events = vec![published(&AuditEvent::GrantApproved(audit::GrantApproved {
                event_id: ctx.event_id(&format!("grant-approved:{}", grant.id)),
                at: ctx.now,
                actor: ctx.actor(),
                user: grant.user.clone(),
                user_display_name: grant.user_display_name.clone(),
                grant_id: grant.id.clone(),
                account: grant.account.clone(),
                template: grant.template.clone(),
                approvals: count,
                required: approval.required,
            }))?];
            if approved == Approved::Activated {
                events.push(published(&AuditEvent::GrantActivated(audit::GrantActivated {
                    event_id: ctx.event_id(&format!("grant-activated:{}", grant.id)),
                    at: ctx.now,
                    actor: ctx.actor(),
                    user: grant.user.clone(),
                    user_display_name: grant.user_display_name.clone(),
                    grant_id: grant.id.clone(),
                    account: grant.account.clone(),
                    template: grant.template.clone(),
                    approved_by: approval.approvals.iter().map(|a| a.by.clone()).collect(),
                    expires_at: grant.expires_at,
                }))?);
            }
            Ok(Decided::Changed(events))
        })
        .await
    }

    pub(crate) async fn grant_deny(&self, r: GrantDeny, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let reason = Self::check_reason(&r.reason)?;
        self.decide(&r.grant_id, ctx, |grant| {
            grant.deny(ctx.who, reason, ctx.now)?;
            Ok(Decided::Changed(vec![published(&AuditEvent::GrantDenied(audit::GrantDenied {
                event_id: ctx.event_id(&format!("grant-denied:{}", grant.id)),
                at: ctx.now,
                actor: ctx.actor(),
                user: grant.user.clone(),
                user_display_name: grant.user_display_name.clone(),
                grant_id: grant.id.clone(),
                account: grant.account.clone(),
                template: grant.template.clone(),
                reason: reason.to_owned(),
            }))?]))
        })
        .await
    }

    /// A review; an `unjustified` verdict on a grant still active revokes it and kills its sessions
    /// first (idempotent), so a crash between the two never leaves a recorded verdict without its
    /// revocation.
    pub(crate) async fn grant_review(&self, r: GrantReview, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let note = Self::check_reason(&r.note)?;
        if let Some(reply) = self.recorded_reply(ctx).await? {
            return Ok(reply);
        }
        let mut revocation: Option<(RevocationResult, Vec<PublishedEvent>)> = None;
        if r.verdict == Verdict::Unjustified {
            let grant = self.decision_grant(&r.grant_id, ctx).await?;
            // Refused here (own grant, not a reviewer, nothing to review) before anything is revoked.
            grant.clone().review(ctx.who, r.verdict, note, ctx.now)?;
            let reason = format!("break-glass review: unjustified: {note}");
            // Live, or revoked by an earlier delivery of this review that did not finish.
            if grant.is_live(ctx.now) || grant.revoked_for(&ctx.who.user, &reason) {
                let account = vec![grant.account.clone()];
                revocation = Some(self.revoke_and_kill(&grant.user.clone(), vec![grant], account, &reason, ctx).await?);
            }
        }
        self.decide(&r.grant_id, ctx, |grant| {
            grant.review(ctx.who, r.verdict, note, ctx.now)?;
            let due = grant.break_glass.as_ref().map(|b| b.review_due);
            let mut events = vec![published(&AuditEvent::BreakGlassReviewed(audit::BreakGlassReviewed {
                event_id: ctx.event_id(&format!("break-glass-reviewed:{}", grant.id)),
                at: ctx.now,
                actor: ctx.actor(),
                user: grant.user.clone(),
                user_display_name: grant.user_display_name.clone(),
                grant_id: grant.id.clone(),
                account: grant.account.clone(),
                template: grant.template.clone(),
                verdict: r.verdict,
                note: note.to_owned(),
                overdue: due.is_some_and(|d| ctx.now > d),
            }))?];
            if let Some((_, revoked)) = &revocation {
                events.extend(revoked.iter().cloned());
            }
            Ok(Decided::Changed(events))
        })
        .await
    }

    /// What waits for the requester: pending grants they may approve, break-glass grants they may
    /// review (never their own).
    pub(crate) async fn grant_pending(&self, ctx: &Ctx<'_>) -> Result<String, Failure> {
        let mine = |g: &Grant| g.user == ctx.who.user;
        let approvals = self
            .ports
            .store
            .pending_approvals(ctx.now)
            .await?
            .into_iter()
            .filter(|g| {
                g.status_at(ctx.now) == GrantStatus::Pending
                    && !mine(g)
                    && g.approval.as_ref().is_some_and(|a| ctx.who.in_any_group(&a.approver_groups))
            })
            .map(|g| g.observed(ctx.now))
            .collect();
        let reviews = self
            .ports
            .store
            .reviews_owed()
            .await?
            .into_iter()
            .filter(|g| {
                g.awaits_review()
                    && !mine(g)
                    && g.break_glass.as_ref().is_some_and(|b| ctx.who.in_any_group(&b.reviewer_groups))
            })
            .map(|g| g.observed(ctx.now))
            .collect();
        ctx.answer.ok_text(&GrantPendingResult { approvals, reviews })
    }
}
