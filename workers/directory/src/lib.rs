//! The directory worker: HR events on `<prefix>-directory-events`, kept per user, and the access that
//! follows from them revoked.
//!
//! # Layout
//!
//! - this module: the [`DirectoryHandler`]: admission (only a configured producer may send directory
//!   kinds; shared with the access worker through [`portcullis_access::front::Front`]), the change
//!   applied to the user's [`DirectoryRecord`] (newest `effective_at` per field wins), then what
//!   follows from the record as it now stands: a team change revokes the grants made under the old
//!   team (unless the user is back in it), an offboarding revokes every grant and kills every live
//!   session, and the audit events say so.
//!
//! The record is written before the revocations, and the revocations follow from the record, so a
//! worker killed at any point does the rest on redelivery: every step is idempotent, and the audit
//! events of a redelivery carry the same ids.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_access::front::{Admitted, Failure, Front};
use portcullis_access::ports::{AccessStore, PublishedEvent, StoreError};
use portcullis_access::revoke::{Announcement, Revoker};
use portcullis_domain::audit::{self, Actor, AuditEvent};
use portcullis_domain::directory::{DirectoryChange, DirectoryRecord, ScheduledChange, schedule_for};
use portcullis_domain::grant::{Grant, Revocation};
use portcullis_domain::messages::{DirectoryChangeResult, Kind, Request};
use portcullis_domain::{AccountId, ErrorCode, MessageId, RequestError};
use portcullis_runtime::consumer::{Handler, Outcome};
use portcullis_runtime::queue::{Attempt, ReceivedMessage};
use serde_json::json;
use tracing::{info, warn};

/// Who directory changes are made by, in grants and audit events.
pub const DIRECTORY_ACTOR: &str = "directory";

/// Handles the directory-events queue.
#[derive(Debug)]
pub struct DirectoryHandler {
    front: Front,
    store: Arc<dyn AccessStore>,
    revoker: Revoker,
}

/// One directory event, read.
#[derive(Debug)]
struct Event {
    user: String,
    change: DirectoryChange,
    details: serde_json::Value,
}

impl DirectoryHandler {
    /// `front` must admit the directory queue's kinds (`QueueRole::Directory`).
    pub fn new(front: Front, store: Arc<dyn AccessStore>, revoker: Revoker) -> Self {
        Self { front, store, revoker }
    }

    fn read(request: Request) -> Result<Event, RequestError> {
        match request {
            Request::UserTeamChanged(e) => Ok(Event {
                details: json!({ "from_team": e.from_team, "to_team": e.to_team }),
                user: e.user,
                change: DirectoryChange::TeamChanged { from: e.from_team, to: e.to_team, effective_at: e.effective_at },
            }),
            Request::UserOffboarded(e) => Ok(Event {
                user: e.user,
                change: DirectoryChange::Offboarded { effective_at: e.effective_at },
                details: json!({}),
            }),
            Request::UserGroupsChanged(e) => Ok(Event {
                details: json!({ "groups": e.groups }),
                user: e.user,
                change: DirectoryChange::GroupsChanged { groups: e.groups, effective_at: e.effective_at },
            }),
            _ => Err(RequestError::new(ErrorCode::UnknownKind, "not a directory kind")),
        }
    }

    /// Apply the change to the user's record (newest wins; retried on a concurrent write), and return
    /// the record as it now stands.
    async fn record(&self, event: &Event, now: DateTime<Utc>) -> Result<DirectoryRecord, Failure> {
        for _ in 0..3 {
            let (record, revision) = match self.store.directory_record(&event.user).await? {
                Some((record, revision)) => (record, Some(revision)),
                None => (DirectoryRecord::new(&event.user), None),
            };
            let mut next = record.clone();
            if !next.apply(&event.change, now) {
                return Ok(record);
            }
            match self.store.put_directory_record(&next, revision).await {
                Ok(()) => return Ok(next),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Failure::Retry(format!("the directory record of {} kept changing", event.user)))
    }

    /// The event of a directory `kind` with `body`, checked.
    fn parse(kind: Kind, body: serde_json::Value) -> Result<Event, RequestError> {
        let event = Self::read(Request::parse(kind, body)?)?;
        if event.user.is_empty() || event.user.len() > 256 || event.user.chars().any(char::is_control) {
            return Err(RequestError::new(ErrorCode::BadRequest, "user must be 1 to 256 characters"));
        }
        Ok(event)
    }

    async fn apply(&self, admitted: &Admitted, now: DateTime<Utc>) -> Result<String, Failure> {
        let event = Self::parse(admitted.kind, admitted.envelope.body.clone())?;
        let producer = admitted.producer.as_ref().map(|p| p.name.clone());
        let message_id = &admitted.envelope.message_id;
        // A change dated ahead is kept until it is due (applied then by `apply_due`), never now.
        if let Some(due) = schedule_for(event.change.effective_at(), now)? {
            let scheduled = ScheduledChange {
                due,
                user: event.user.clone(),
                kind: admitted.kind.as_str().to_owned(),
                body: admitted.envelope.body.clone(),
                message_id: message_id.clone(),
                producer,
            };
            self.store.put_scheduled_change(&scheduled).await?;
            info!(user = %event.user, change = admitted.kind.as_str(), due = %due, "directory change scheduled");
            return admitted.answer.ok_text(&DirectoryChangeResult {
                user: event.user,
                applied: false,
                revoked_grants: Vec::new(),
                session_accounts: Vec::new(),
                scheduled_for: Some(due),
            });
        }
        let result = self.apply_event(event, admitted.kind, message_id, producer, now).await?;
        admitted.answer.ok_text(&result)
    }

    /// Apply every scheduled change due now (each as if it had just arrived), and forget it once
    /// applied; returns how many were applied. A failure leaves the rest for the next call.
    pub async fn apply_due(&self) -> Result<usize, Failure> {
        let now = self.front.clock.now();
        let due = self.store.due_scheduled_changes(now).await?;
        let mut applied = 0;
        for scheduled in due {
            let kind = Kind::parse(&scheduled.kind)?;
            match Self::parse(kind, scheduled.body.clone()) {
                Ok(event) => {
                    let result =
                        self.apply_event(event, kind, &scheduled.message_id, scheduled.producer.clone(), now).await?;
                    info!(user = %result.user, change = kind.as_str(), due = %scheduled.due, applied = result.applied,
                          revoked = result.revoked_grants.len(), "scheduled directory change applied");
                    applied += 1;
                }
                // Checked when it was scheduled: only a change of the rules can make it unreadable.
                Err(e) => {
                    warn!(user = %scheduled.user, error = %e, "a scheduled directory change is unreadable; dropped")
                }
            }
            self.store.delete_scheduled_change(&scheduled).await?;
        }
        Ok(applied)
    }

    /// Apply `event` (of `kind`, sent as `message_id` by `producer`) at `now`: the record, then what
    /// follows from it, and the audit events.
    async fn apply_event(
        &self,
        event: Event,
        kind: Kind,
        message_id: &MessageId,
        producer: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<DirectoryChangeResult, Failure> {
        let record = self.record(&event, now).await?;
        let applied = record.reflects(&event.change);
        let actor = Actor { user: DIRECTORY_ACTOR.into(), via: producer.clone(), display_name: None };
        let id = |what: &str| audit::event_id(&[producer.as_deref().unwrap_or(""), message_id.as_str(), what]);
        let kind = kind.as_str();
        let reason = format!("{kind} effective {}", event.change.effective_at().to_rfc3339());

        // What follows from the record as it stands (whether this delivery changed it or an earlier one):
        // which of the user's grants it covers, and whether it cuts their sessions everywhere.
        let team_left = match &event.change {
            DirectoryChange::TeamChanged { from, .. } if record.team.as_ref().is_none_or(|t| &t.value != from) => {
                Some(from.as_str())
            }
            _ => None,
        };
        let (everywhere, cutoff) = match (&event.change, &record.offboarded) {
            (DirectoryChange::Offboarded { .. }, Some(off)) => (true, off.applied_at),
            _ => (false, now),
        };
        let revocation = Revocation { at: now, by: DIRECTORY_ACTOR.into(), reason: reason.clone() };
        // Read even when this change covers nothing now (a later one moved the user back): an
        // earlier delivery of it may have revoked grants, and they are reported again.
        let can_revoke =
            matches!(event.change, DirectoryChange::Offboarded { .. } | DirectoryChange::TeamChanged { .. });
        let revoked = if can_revoke {
            let grants = self.store.kept_grants(&event.user, now).await?;
            // Offboarded: pending grants too (nobody can approve them any more); a team change: the
            // grants made for the team left.
            let covered = |g: &Grant| everywhere || team_left.is_some_and(|team| g.team.as_deref() == Some(team));
            self.revoker.revoke_covered(grants, covered, &revocation).await?
        } else {
            Vec::new()
        };
        // A team change cuts sessions at the moment its grants were revoked (the first delivery's),
        // so a redelivery does not cut sessions the user got since with their other grants.
        let cutoff = if everywhere {
            cutoff
        } else {
            revoked.iter().filter_map(|g| g.revoked.as_ref().map(|r| r.at)).max().unwrap_or(cutoff)
        };
        let session_accounts: Vec<AccountId> = if everywhere {
            self.revoker.accounts()
        } else {
            // Only grants that conferred access can have sessions (a pending one never did).
            let mut accounts: Vec<AccountId> =
                revoked.iter().filter(|g| g.was_activated()).map(|g| g.account.clone()).collect();
            accounts.sort();
            accounts.dedup();
            accounts
        };
        let cutoff = if session_accounts.is_empty() {
            cutoff
        } else {
            self.revoker.kill_sessions(&event.user, &session_accounts, cutoff, now).await.map_err(Failure::from)?
        };

        let mut events: Vec<AuditEvent> = Vec::new();
        if applied {
            events.push(AuditEvent::DirectoryChangeApplied(audit::DirectoryChangeApplied {
                event_id: id("applied"),
                at: now,
                actor: actor.clone(),
                user: event.user.clone(),
                change: kind.to_owned(),
                effective_at: event.change.effective_at(),
                details: event.details.clone(),
                revoked_grants: revoked.iter().map(|g| g.id.clone()).collect(),
            }));
        }
        let announcement = Announcement {
            at: now,
            actor: &actor,
            user: &event.user,
            reason: &reason,
            revoked: &revoked,
            accounts: &session_accounts,
            cutoff,
        };
        events.extend(announcement.events(id));
        let published: Vec<PublishedEvent> = events
            .iter()
            .map(PublishedEvent::from_event)
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Refused(RequestError::new(ErrorCode::InternalError, e.to_string())))?;
        self.front.publish(&published).await?;
        info!(user = %event.user, change = kind, applied, revoked = revoked.len(), accounts = ?session_accounts,
              via = ?producer, "directory change handled");
        Ok(DirectoryChangeResult {
            user: event.user,
            applied,
            revoked_grants: revoked.iter().map(|g| g.id.clone()).collect(),
            session_accounts,
            scheduled_for: None,
        })
    }
}

#[async_trait]
impl Handler for DirectoryHandler {
    async fn handle(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome {
        let now = self.front.clock.now();
        match self.front.admit(message, now) {
            Ok(admitted) => {
                let result = self.apply(&admitted, now).await;
                self.front.answer(&admitted.answer, result, attempt, None, admitted.sender_id.as_deref()).await
            }
            Err(stop) => self.front.stopped(stop, attempt, message.sender_id.as_deref(), now).await,
        }
    }
}

#[cfg(test)]
mod tests;
