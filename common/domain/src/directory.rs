//! The directory: what the HR system last said about each user, and what follows from it.
//!
//! Each field (team, groups, offboarding) remembers the `effective_at` of the change that set it, so
//! events that arrive out of order or twice settle on the newest: an older change is simply not
//! applied. A verified identity is then checked against the record: a token issued before a change
//! that contradicts it is stale (`token_stale`), and groups follow the directory when the directory
//! knows better.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, RequestError};
use crate::identity::Identity;

/// A value and the time it became true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dated<T> {
    pub value: T,
    pub at: DateTime<Utc>,
}

/// When a user left, and when Portcullis first acted on it (the cutoff of their sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarding {
    pub effective_at: DateTime<Utc>,
    pub applied_at: DateTime<Utc>,
}

/// What the directory says about one user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DirectoryRecord {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Dated<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Dated<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarded: Option<Offboarding>,
}

/// How far ahead a directory change may be dated: 31 days. Further is refused with
/// `effective_at_too_far` (an HR system that dates a change a year ahead more likely has a wrong
/// clock or field than a plan, and a scheduled change is a standing order nobody sees).
pub const MAX_SCHEDULE_AHEAD_SECONDS: i64 = 31 * 86_400;

/// When a change dated `effective_at` applies, seen at `now`: `Ok(None)` now (it is due),
/// `Ok(Some(due))` scheduled for `due`, or refused when dated further ahead than
/// [`MAX_SCHEDULE_AHEAD_SECONDS`].
pub fn schedule_for(effective_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, RequestError> {
    if effective_at <= now {
        return Ok(None);
    }
    if (effective_at - now).num_seconds() > MAX_SCHEDULE_AHEAD_SECONDS {
        return Err(RequestError::new(
            ErrorCode::EffectiveAtTooFar,
            format!(
                "effective_at {} is more than {} days ahead; send the change closer to its date",
                effective_at.to_rfc3339(),
                MAX_SCHEDULE_AHEAD_SECONDS / 86_400
            ),
        ));
    }
    Ok(Some(effective_at))
}

/// A directory event kept until its `effective_at`: the event as it came (kind and body), and who
/// sent it, so that applying it later is exactly applying it then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledChange {
    /// When it applies (its `effective_at`).
    pub due: DateTime<Utc>,
    pub user: String,
    /// The event's kind (`user.groups_changed`, ...).
    pub kind: String,
    /// The event's body, as sent.
    pub body: serde_json::Value,
    /// The event's `message_id` (audit event ids derive from it, so a repeat is recognised).
    pub message_id: crate::ids::MessageId,
    /// The trusted producer that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
}

/// One change from the HR system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryChange {
    TeamChanged { from: String, to: String, effective_at: DateTime<Utc> },
    Offboarded { effective_at: DateTime<Utc> },
    GroupsChanged { groups: Vec<String>, effective_at: DateTime<Utc> },
}

impl DirectoryChange {
    pub fn effective_at(&self) -> DateTime<Utc> {
        match self {
            DirectoryChange::TeamChanged { effective_at, .. }
            | DirectoryChange::Offboarded { effective_at }
            | DirectoryChange::GroupsChanged { effective_at, .. } => *effective_at,
        }
    }
}

impl DirectoryRecord {
    pub fn new(user: &str) -> Self {
        Self { user: user.to_owned(), ..Self::default() }
    }

    /// Apply `change` if it is newer than what the record holds for its field (at `now`, which
    /// becomes an offboarding's cutoff). Returns whether the record changed. Applying the same
    /// change twice changes nothing the second time.
    pub fn apply(&mut self, change: &DirectoryChange, now: DateTime<Utc>) -> bool {
        match change {
            DirectoryChange::TeamChanged { to, effective_at, .. } => {
                if self.team.as_ref().is_some_and(|t| t.at >= *effective_at) {
                    return false;
                }
                self.team = Some(Dated { value: to.clone(), at: *effective_at });
                true
            }
            DirectoryChange::GroupsChanged { groups, effective_at } => {
                if self.groups.as_ref().is_some_and(|g| g.at >= *effective_at) {
                    return false;
                }
                let mut groups = groups.clone();
                groups.sort();
                groups.dedup();
                self.groups = Some(Dated { value: groups, at: *effective_at });
                true
            }
            DirectoryChange::Offboarded { effective_at } => {
                // Offboarding is final: a later repeat does not move the cutoff.
                if self.offboarded.is_some() {
                    return false;
                }
                self.offboarded = Some(Offboarding { effective_at: *effective_at, applied_at: now });
                true
            }
        }
    }

    /// Whether the record holds exactly this change (applied now or by an earlier delivery).
    pub fn reflects(&self, change: &DirectoryChange) -> bool {
        match change {
            DirectoryChange::TeamChanged { to, effective_at, .. } => {
                self.team.as_ref().is_some_and(|t| t.at == *effective_at && &t.value == to)
            }
            DirectoryChange::GroupsChanged { effective_at, .. } => {
                self.groups.as_ref().is_some_and(|g| g.at == *effective_at)
            }
            DirectoryChange::Offboarded { effective_at } => {
                self.offboarded.is_some_and(|o| o.effective_at == *effective_at)
            }
        }
    }

    /// `identity` as the directory lets it act: refused with `token_stale` when the user is
    /// offboarded, or when the token was issued before a team change it contradicts; its groups
    /// replaced by the directory's when the directory's are newer than the token.
    pub fn check(&self, identity: &Identity) -> Result<Identity, RequestError> {
        if let Some(off) = &self.offboarded {
            return Err(RequestError::new(
                ErrorCode::TokenStale,
                format!(
                    "{} was offboarded at {}; no request is accepted for them any more",
                    identity.user,
                    off.effective_at.to_rfc3339()
                ),
            ));
        }
        if let Some(team) = &self.team
            && identity.issued_at < team.at
            && identity.team.as_deref() != Some(team.value.as_str())
        {
            return Err(RequestError::new(
                ErrorCode::TokenStale,
                format!(
                    "the identity token says team `{}`, but the directory moved {} to `{}` at {}, after the token was \
                     issued; log in again for a current token",
                    identity.team.as_deref().unwrap_or("none"),
                    identity.user,
                    team.value,
                    team.at.to_rfc3339()
                ),
            ));
        }
        let mut effective = identity.clone();
        if let Some(groups) = &self.groups
            && groups.at > identity.issued_at
        {
            effective.groups = groups.value.clone();
        }
        Ok(effective)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn identity(team: &str, groups: &[&str], issued: i64) -> Identity {
        Identity {
            issuer: "i".into(),
            subject: "alice".into(),
            user: "alice".into(),
            team: Some(team.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            issued_at: t(issued),
            via: None,
            display_name: "alice".into(),
        }
    }

    fn team(from: &str, to: &str, at: i64) -> DirectoryChange {
        DirectoryChange::TeamChanged { from: from.into(), to: to.into(), effective_at: t(at) }
    }

    #[test]
    fn the_newest_change_wins_whatever_the_order_and_repeats_change_nothing() {
        let changes = [team("a", "b", 1), team("b", "c", 5), team("c", "d", 3)];
        let mut in_order = DirectoryRecord::new("alice");
        for c in &changes {
            in_order.apply(c, t(10));
        }
        let mut reversed = DirectoryRecord::new("alice");
        for c in changes.iter().rev() {
            reversed.apply(c, t(10));
        }
        assert_eq!(in_order, reversed);
        assert_eq!(in_order.team.as_ref().unwrap().value, "c");
        assert!(!in_order.apply(&changes[1], t(11)), "a repeat applies nothing");
        assert!(in_order.reflects(&changes[1]) && !in_order.reflects(&changes[2]));
        let mut off = in_order.clone();
        assert!(off.apply(&DirectoryChange::Offboarded { effective_at: t(7) }, t(12)));
        assert!(!off.apply(&DirectoryChange::Offboarded { effective_at: t(9) }, t(13)));
        assert_eq!(off.offboarded.unwrap().applied_at, t(12), "the first application sets the cutoff");
    }

    #[test]
    fn future_changes_are_scheduled_within_a_bound() {
        assert_eq!(schedule_for(t(5), t(5)).unwrap(), None, "due now");
        assert_eq!(schedule_for(t(4), t(5)).unwrap(), None, "past");
        assert_eq!(schedule_for(t(6), t(5)).unwrap(), Some(t(6)));
        let bound = t(5) + Duration::seconds(MAX_SCHEDULE_AHEAD_SECONDS);
        assert_eq!(schedule_for(bound, t(5)).unwrap(), Some(bound));
        let err = schedule_for(bound + Duration::seconds(1), t(5)).unwrap_err();
        assert_eq!(err.code, ErrorCode::EffectiveAtTooFar);
    }

    #[test]
    fn stale_tokens_are_refused_and_groups_follow_the_directory() {
        let mut record = DirectoryRecord::new("alice");
        assert_eq!(record.check(&identity("payments", &["admins"], 0)).unwrap().groups, vec!["admins"]);
        record.apply(&team("payments", "growth", 5), t(6));
        // Issued before the move, saying the old team: stale.
        assert_eq!(record.check(&identity("payments", &[], 2)).unwrap_err().code, ErrorCode::TokenStale);
        // Issued before the move but already saying the new team, or issued after: fine.
        assert!(record.check(&identity("growth", &[], 2)).is_ok());
        assert!(record.check(&identity("payments", &[], 8)).is_ok());
        // Groups removed by the directory after the token was issued are gone.
        record.apply(&DirectoryChange::GroupsChanged { groups: vec!["engineers".into()], effective_at: t(7) }, t(7));
        assert_eq!(record.check(&identity("growth", &["admins"], 6)).unwrap().groups, vec!["engineers"]);
        assert_eq!(record.check(&identity("growth", &["admins"], 9)).unwrap().groups, vec!["admins"]);
        record.apply(&DirectoryChange::Offboarded { effective_at: t(10) }, t(10));
        assert_eq!(record.check(&identity("growth", &[], 20)).unwrap_err().code, ErrorCode::TokenStale);
    }
}
