//! Taking access away: grants marked revoked, and the user's live sessions killed through the
//! revocation policy on each account's broker role. Used by `grant.revoke`, `grant.revoke_all` and the
//! directory worker.
//!
//! Every step is idempotent: a grant revoked already stays as it was; a session revocation is kept
//! once per (account, cutoff, user); the policy is rendered from everything stored and written until
//! the role holds a generation no older than the stored one, so concurrent writers converge.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use portcullis_domain::AccountId;
use portcullis_domain::audit::{self, Actor, AuditEvent};
use portcullis_domain::grant::{Grant, Revocation};
use portcullis_domain::revocation::{SessionRevocation, generation_of, render, revocation_cutoff};
use portcullis_domain::session::sts_name_for;
use tracing::{info, warn};

use crate::config::BrokeredAccount;
use crate::failure::Failure;
use crate::ports::{AccessStore, FailureKind, SdkFailure, SessionRevoker, StoreError};

/// How many times to re-render when other writers keep adding revocations meanwhile.
const CONVERGE_TRIES: usize = 5;

/// Why sessions could not be revoked: the store's or IAM's classified failure (retried or refused by
/// [`crate::front::Failure`]'s conversion).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RevokeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sessions could not be revoked: {0}")]
    Sessions(SdkFailure),
}

/// Revokes grants and sessions.
#[derive(Debug, Clone)]
pub struct Revoker {
    store: Arc<dyn AccessStore>,
    sessions: Arc<dyn SessionRevoker>,
    accounts: BTreeMap<AccountId, BrokeredAccount>,
    budget_chars: usize,
}

impl Revoker {
    pub fn new(
        store: Arc<dyn AccessStore>,
        sessions: Arc<dyn SessionRevoker>,
        accounts: BTreeMap<AccountId, BrokeredAccount>,
        budget_chars: usize,
    ) -> Self {
        Self { store, sessions, accounts, budget_chars }
    }

    /// The revoker of `config`'s accounts over `ports`.
    pub fn for_config(config: &crate::handler::AccessConfig, ports: &crate::handler::Ports) -> Self {
        Self::new(
            ports.store.clone(),
            ports.sessions.clone(),
            config.accounts.clone(),
            config.revocation_policy_max_chars,
        )
    }

    /// Every configured account.
    pub fn accounts(&self) -> Vec<AccountId> {
        self.accounts.keys().cloned().collect()
    }

    /// Mark `grants` revoked; returns the ones this call revoked (the others were revoked already).
    pub async fn revoke_grants(&self, grants: &[Grant], revocation: &Revocation) -> Result<Vec<Grant>, StoreError> {
        let mut revoked = Vec::new();
        for grant in grants {
            if self.store.revoke_grant(grant, revocation).await? {
                info!(grant = %grant.id, user = %grant.user, account = %grant.account, by = %revocation.by,
                      reason = %portcullis_domain::redact::redact_secrets(&revocation.reason), "grant revoked");
                let mut g = grant.clone();
                g.revoked = Some(revocation.clone());
                revoked.push(g);
            }
        }
        Ok(revoked)
    }

    /// Revoke the open ones of `grants` (a user's, as read before) that `covered` selects, by
    /// `revocation`. Returns them with the ones an earlier delivery of this same revocation revoked
    /// (same author and reason), sorted by id: those are reported and announced again, with the same
    /// event ids, so a delivery that failed after revoking them loses nothing.
    pub async fn revoke_covered(
        &self,
        grants: Vec<Grant>,
        covered: impl Fn(&Grant) -> bool,
        revocation: &Revocation,
    ) -> Result<Vec<Grant>, StoreError> {
        let open: Vec<Grant> = grants.iter().filter(|g| g.is_open(revocation.at) && covered(g)).cloned().collect();
        let mut revoked = self.revoke_grants(&open, revocation).await?;
        for g in grants {
            if g.revoked_for(&revocation.by, &revocation.reason) && !revoked.iter().any(|r| r.id == g.id) {
                revoked.push(g);
            }
        }
        revoked.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(revoked)
    }

    /// Kill `user`'s sessions issued before `at` in `accounts` (as of `now`); returns the cutoff used:
    /// `at` plus the clock-skew allowance, rounded up to the next whole second
    /// ([`revocation_cutoff`]), so a session STS stamps with a clock ahead of ours, issued while this
    /// revocation happens, is denied too.
    pub async fn kill_sessions(
        &self,
        user: &str,
        accounts: &[AccountId],
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, RevokeError> {
        let cutoff = revocation_cutoff(at);
        let source_identity = sts_name_for(user);
        for account in accounts {
            let Some(brokered) = self.accounts.get(account) else { continue };
            let max_session = Duration::seconds(i64::try_from(brokered.max_session_seconds).unwrap_or(43_200));
            let revocation = SessionRevocation { source_identity: source_identity.clone(), cutoff };
            let keep_until = cutoff.checked_add_signed(max_session).unwrap_or(cutoff).timestamp();
            self.store.add_session_revocation(account, &revocation, keep_until).await?;
            self.write_policy(account, now, max_session).await?;
            info!(user, session_name = %source_identity, account = %account, cutoff = %cutoff, "sessions revoked");
        }
        Ok(cutoff)
    }

    /// Render the account's revocations and write them to the broker role, until the role holds a
    /// generation no older than the stored one.
    async fn write_policy(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
        max_session: Duration,
    ) -> Result<(), RevokeError> {
        for _ in 0..CONVERGE_TRIES {
            let (generation, revocations) = self.store.session_revocations(account).await?;
            let policy = render(&revocations, generation, now, max_session, self.budget_chars);
            if policy.merged {
                warn!(account = %account, users = policy.users, "revocations merged to fit the inline-policy budget");
            }
            self.sessions.put_policy(account, &policy.document).await.map_err(RevokeError::Sessions)?;
            let (stored, _) = self.store.session_revocations(account).await?;
            if stored == generation {
                return Ok(());
            }
            // Someone added a revocation meanwhile: done if the role already holds theirs.
            let on_role = self
                .sessions
                .get_policy(account)
                .await
                .map_err(RevokeError::Sessions)?
                .as_deref()
                .and_then(generation_of);
            if on_role.is_some_and(|g| g >= stored) {
                return Ok(());
            }
        }
        Err(RevokeError::Sessions(SdkFailure::new(
            FailureKind::Transient,
            format!("the revocation policy of {account} kept changing; will retry"),
        )))
    }
}

impl From<RevokeError> for Failure {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::Store(e) => e.into(),
            RevokeError::Sessions(failure) => failure.into(),
        }
    }
}

/// A revocation as it is announced: who did it and why, the grants it revoked, and the accounts
/// whose sessions of `user` it cut at `cutoff`.
#[derive(Debug)]
pub struct Announcement<'a> {
    pub at: DateTime<Utc>,
    pub actor: &'a Actor,
    pub user: &'a str,
    pub reason: &'a str,
    pub revoked: &'a [Grant],
    pub accounts: &'a [AccountId],
    pub cutoff: DateTime<Utc>,
}

impl Announcement<'_> {
    /// One `Grant Revoked` per revoked grant and, when sessions were cut, one `Sessions Revoked`;
    /// `event_id` names each after its cause (`grant-revoked:<id>`, `sessions-revoked`), so a
    /// redelivery announces the same events again.
    pub fn events(&self, event_id: impl Fn(&str) -> String) -> Vec<AuditEvent> {
        let mut events: Vec<AuditEvent> = self
            .revoked
            .iter()
            .map(|g| {
                AuditEvent::GrantRevoked(audit::GrantRevoked {
                    event_id: event_id(&format!("grant-revoked:{}", g.id)),
                    at: self.at,
                    actor: self.actor.clone(),
                    user: g.user.clone(),
                    user_display_name: g.user_display_name.clone(),
                    grant_id: g.id.clone(),
                    account: g.account.clone(),
                    template: g.template.clone(),
                    reason: self.reason.to_owned(),
                })
            })
            .collect();
        if !self.accounts.is_empty() {
            events.push(AuditEvent::SessionsRevoked(audit::SessionsRevoked {
                event_id: event_id("sessions-revoked"),
                at: self.at,
                actor: self.actor.clone(),
                user: self.user.to_owned(),
                session_name: sts_name_for(self.user),
                accounts: self.accounts.to_vec(),
                sessions_issued_before: self.cutoff,
                reason: self.reason.to_owned(),
            }));
        }
        events
    }
}
