//! What a Slack message about one grant shows, kept per grant and advanced by the bus's audit
//! events: every copy (the approvers' channel, the requester's DM) is re-rendered from it, so a
//! decision made anywhere (Slack, the CLI, a directory change) shows on each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use portcullis_domain::audit::AuditEvent;
use portcullis_domain::grant::{Grant, GrantStatus, Verdict};
use portcullis_domain::{AccountId, GrantId, TemplateName};
use serde::{Deserialize, Serialize};

/// Where the grant stands, as Slack shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    Pending,
    Active,
    Denied,
    Expired,
    Revoked,
}

impl CardState {
    fn of(status: GrantStatus) -> Self {
        match status {
            GrantStatus::Pending => CardState::Pending,
            GrantStatus::Active => CardState::Active,
            GrantStatus::Denied => CardState::Denied,
            GrantStatus::Expired => CardState::Expired,
            GrantStatus::Revoked => CardState::Revoked,
        }
    }

    /// Ended for good: later events (out of order on the bus) cannot bring it back.
    pub fn is_final(self) -> bool {
        matches!(self, CardState::Denied | CardState::Expired | CardState::Revoked)
    }
}

/// One line of the grant's story, once per audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardLine {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub text: String,
}

/// The grant as its Slack messages show it. Holds no statement and no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantCard {
    pub grant_id: GrantId,
    pub user: String,
    #[serde(default)]
    pub user_display_name: Option<String>,
    pub template: TemplateName,
    pub account: AccountId,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub reason: String,
    pub ttl_seconds: u64,
    pub state: CardState,
    /// When it ends (active), or lapses unless approved (pending).
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub approver_groups: Vec<String>,
    #[serde(default)]
    pub required: u32,
    #[serde(default)]
    pub approvals: u32,
    #[serde(default)]
    pub break_glass: bool,
    /// A break-glass review is still owed.
    #[serde(default)]
    pub review_owed: bool,
    #[serde(default)]
    pub history: Vec<CardLine>,
    /// The stored revision this card was read at (0: not stored yet): a card is written only over
    /// the revision it was read at, so two replicas applying two events to one grant lose neither.
    #[serde(default)]
    pub version: u64,
}

impl GrantCard {
    /// From a grant Portcullis returned.
    pub fn of(grant: &Grant) -> Self {
        let approval = grant.approval.as_ref();
        GrantCard {
            grant_id: grant.id.clone(),
            user: grant.user.clone(),
            user_display_name: grant.user_display_name.clone(),
            template: grant.template.clone(),
            account: grant.account.clone(),
            params: grant.params.clone(),
            reason: grant.reason.clone(),
            ttl_seconds: grant.ttl_seconds,
            state: CardState::of(grant.status),
            expires_at: grant.expires_at,
            approver_groups: approval.map(|a| a.approver_groups.clone()).unwrap_or_default(),
            required: approval.map_or(0, |a| a.required),
            approvals: approval.map_or(0, |a| u32::try_from(a.approvals.len()).unwrap_or(u32::MAX)),
            break_glass: grant.break_glass.is_some(),
            review_owed: grant.break_glass.as_ref().is_some_and(|b| b.review.is_none()),
            history: Vec::new(),
            version: 0,
        }
    }

    /// A card from the first event that announces a grant, when Slack has not seen it yet (a
    /// request made from the CLI that needs approval, a break-glass use).
    pub fn from_event(event: &AuditEvent) -> Option<Self> {
        let mut card = match event {
            AuditEvent::GrantPendingApproval(e) => GrantCard {
                grant_id: e.grant_id.clone(),
                user: e.actor.user.clone(),
                user_display_name: e.actor.display_name.clone(),
                template: e.template.clone(),
                account: e.account.clone(),
                params: BTreeMap::new(),
                reason: e.reason.clone(),
                ttl_seconds: e.ttl_seconds,
                state: CardState::Pending,
                expires_at: e.pending_until,
                approver_groups: e.approver_groups.clone(),
                required: e.required,
                approvals: 0,
                break_glass: false,
                review_owed: false,
                history: Vec::new(),
                version: 0,
            },
            AuditEvent::BreakGlassUsed(e) => GrantCard {
                grant_id: e.grant_id.clone(),
                user: e.actor.user.clone(),
                user_display_name: e.actor.display_name.clone(),
                template: e.template.clone(),
                account: e.account.clone(),
                params: BTreeMap::new(),
                reason: e.reason.clone(),
                ttl_seconds: 0,
                state: CardState::Active,
                expires_at: e.expires_at,
                approver_groups: e.reviewer_groups.clone(),
                required: 0,
                approvals: 0,
                break_glass: true,
                review_owed: true,
                history: Vec::new(),
                version: 0,
            },
            _ => return None,
        };
        card.apply(event);
        Some(card)
    }

    /// Advance the card by one audit event about its grant; `false` when it changed nothing (a
    /// duplicate delivery, another grant's event).
    pub fn apply(&mut self, event: &AuditEvent) -> bool {
        if self.history.iter().any(|l| l.event_id == event.event_id()) {
            return false;
        }
        let (grant, at, line) = match event {
            AuditEvent::GrantPendingApproval(e) => (
                &e.grant_id,
                e.at,
                format!(
                    "requested by {}: waiting for {} approval(s) from {}",
                    who(&e.actor.user, e.actor.display_name.as_deref()),
                    e.required,
                    e.approver_groups.join(", ")
                ),
            ),
            AuditEvent::GrantApproved(e) => {
                self.approvals = self.approvals.max(e.approvals);
                (
                    &e.grant_id,
                    e.at,
                    format!(
                        "approved by {} ({}/{})",
                        who(&e.actor.user, e.actor.display_name.as_deref()),
                        e.approvals,
                        e.required
                    ),
                )
            }
            AuditEvent::GrantActivated(e) => {
                self.set_state(CardState::Active);
                self.expires_at = e.expires_at;
                (&e.grant_id, e.at, format!("active until {}", e.expires_at.format("%Y-%m-%d %H:%M UTC")))
            }
            AuditEvent::GrantDenied(e) => {
                self.set_state(CardState::Denied);
                (
                    &e.grant_id,
                    e.at,
                    format!("denied by {}: {}", who(&e.actor.user, e.actor.display_name.as_deref()), e.reason),
                )
            }
            AuditEvent::BreakGlassUsed(e) => {
                self.set_state(CardState::Active);
                self.break_glass = true;
                self.review_owed = true;
                (
                    &e.grant_id,
                    e.at,
                    format!(
                        "break glass used by {}: review due {}",
                        who(&e.actor.user, e.actor.display_name.as_deref()),
                        e.review_due.format("%Y-%m-%d %H:%M UTC")
                    ),
                )
            }
            AuditEvent::BreakGlassReviewed(e) => {
                self.review_owed = false;
                let verdict = match e.verdict {
                    Verdict::Justified => "justified",
                    Verdict::Unjustified => "unjustified",
                };
                (
                    &e.grant_id,
                    e.at,
                    format!(
                        "reviewed by {}: {verdict}. {}",
                        who(&e.actor.user, e.actor.display_name.as_deref()),
                        e.note
                    ),
                )
            }
            AuditEvent::GrantRevoked(e) => {
                self.set_state(CardState::Revoked);
                (
                    &e.grant_id,
                    e.at,
                    format!("revoked by {}: {}", who(&e.actor.user, e.actor.display_name.as_deref()), e.reason),
                )
            }
            AuditEvent::GrantCreated(e) => {
                (&e.grant_id, e.at, format!("requested by {}", who(&e.actor.user, e.actor.display_name.as_deref())))
            }
            _ => return false,
        };
        if grant != &self.grant_id {
            return false;
        }
        self.history.push(CardLine { event_id: event.event_id().to_owned(), at, text: line });
        self.history.sort_by_key(|l| l.at);
        true
    }

    /// The card after a decision Portcullis answered with (the grant as it now stands).
    pub fn refresh(&mut self, grant: &Grant) {
        let history = std::mem::take(&mut self.history);
        let (state, version) = (self.state, self.version);
        *self = GrantCard::of(grant);
        self.history = history;
        self.version = version;
        if state.is_final() && !self.state.is_final() {
            self.state = state;
        }
    }

    fn set_state(&mut self, next: CardState) {
        if !self.state.is_final() {
            self.state = next;
        }
    }

    /// Mark an active or pending grant past its end as expired (once): whether it changed.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        if self.state_at(now) != CardState::Expired || self.state == CardState::Expired {
            return false;
        }
        self.state = CardState::Expired;
        self.history.push(CardLine {
            event_id: format!("expired-{}", self.expires_at.timestamp()),
            at: self.expires_at,
            text: "Ended by itself (its lifetime or approval window ran out).".to_owned(),
        });
        true
    }

    /// The state as of `now`: an active or pending grant past its end has expired (Portcullis
    /// publishes no event for that).
    pub fn state_at(&self, now: DateTime<Utc>) -> CardState {
        match self.state {
            CardState::Active | CardState::Pending if self.expires_at <= now => CardState::Expired,
            s => s,
        }
    }
}

/// A person as shown: their display name, and the key next to it when they differ.
pub fn who(user: &str, display: Option<&str>) -> String {
    match display {
        Some(d) if d != user => format!("{d} ({user})"),
        _ => user.to_owned(),
    }
}

/// The grant an audit event is about, if any.
pub fn grant_of(event: &AuditEvent) -> Option<&GrantId> {
    match event {
        AuditEvent::GrantCreated(e) => Some(&e.grant_id),
        AuditEvent::GrantPendingApproval(e) => Some(&e.grant_id),
        AuditEvent::GrantApproved(e) => Some(&e.grant_id),
        AuditEvent::GrantActivated(e) => Some(&e.grant_id),
        AuditEvent::GrantDenied(e) => Some(&e.grant_id),
        AuditEvent::BreakGlassUsed(e) => Some(&e.grant_id),
        AuditEvent::BreakGlassReviewed(e) => Some(&e.grant_id),
        AuditEvent::GrantRevoked(e) => Some(&e.grant_id),
        _ => None,
    }
}
