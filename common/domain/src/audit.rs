//! Audit events: everything Portcullis does to access, as events on the Portcullis bus (archived),
//! each saying who, on whose behalf, what, why and when. Never a secret: the details are typed, and
//! none of them has a field for a key, a session token or an ID token.
//!
//! Every event has a deterministic `event_id` (from the request that caused it), so a redelivered
//! request publishes the same event again rather than a new one: consumers deduplicate on it.
//! `docs/events.md` and the JSON Schemas under `docs/schemas/events/` are checked against these types.

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, schema_for};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::grant::Verdict;
use crate::identity::Identity;
use crate::ids::{AccountId, GrantId, MessageId, TemplateName};

/// EventBridge `source` of the access and directory workers' audit events.
pub const SOURCE: &str = "portcullis.access";

/// EventBridge `source` of the Slack edge's audit events (account links).
pub const SLACK_SOURCE: &str = "portcullis.slack";

/// Who did something: the person, and the producer that relayed it for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The verified user, `directory` for an HR event, or `portcullis` for the system itself.
    pub user: String,
    /// The trusted producer that relayed the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The person's display name (from the verified token's claims, sanitized), to read next to
    /// `user`, which stays the key. Absent for `directory` and `portcullis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl Actor {
    /// The verified person `who`, as audit events name them.
    pub fn of(who: &Identity) -> Self {
        Actor { user: who.user.clone(), via: who.via.clone(), display_name: Some(who.display_name.clone()) }
    }
}

/// `Grant Created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantCreated {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    pub template_version: u32,
    pub expires_at: DateTime<Utc>,
    pub reason: String,
    pub request_message_id: MessageId,
}

/// `Grant Revoked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRevoked {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// Who revoked it.
    pub actor: Actor,
    /// Whose grant it was.
    pub user: String,
    /// The grant owner's display name when they asked (see `Grant.user_display_name`), next to `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    pub reason: String,
}

/// `Grant Pending Approval`: a grant waits for approvals (a bot can notify the approvers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantPendingApproval {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The requester.
    pub actor: Actor,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    pub template_version: u32,
    /// The lifetime asked for, counted from activation.
    pub ttl_seconds: u64,
    pub reason: String,
    pub required: u32,
    pub approver_groups: Vec<String>,
    /// When the request lapses unless approved.
    pub pending_until: DateTime<Utc>,
    pub request_message_id: MessageId,
}

/// `Grant Approved`: one approval was counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantApproved {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The approver.
    pub actor: Actor,
    /// Whose grant.
    pub user: String,
    /// The grant owner's display name when they asked (see `Grant.user_display_name`), next to `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    /// Distinct approvals so far, and needed.
    pub approvals: u32,
    pub required: u32,
}

/// `Grant Activated`: the last needed approval made the grant active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantActivated {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The approver whose approval activated it.
    pub actor: Actor,
    pub user: String,
    /// The grant owner's display name when they asked (see `Grant.user_display_name`), next to `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    /// Everyone who approved it.
    pub approved_by: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// `Grant Denied`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDenied {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The approver who denied it.
    pub actor: Actor,
    pub user: String,
    /// The grant owner's display name when they asked (see `Grant.user_display_name`), next to `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    pub reason: String,
}

/// `Break Glass Used`: a grant was made active without approval; its review is due by `review_due`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassUsed {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The requester.
    pub actor: Actor,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    pub review_due: DateTime<Utc>,
    pub reviewer_groups: Vec<String>,
}

/// `Break Glass Reviewed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassReviewed {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The reviewer.
    pub actor: Actor,
    pub user: String,
    /// The grant owner's display name when they asked (see `Grant.user_display_name`), next to `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    pub grant_id: GrantId,
    pub account: AccountId,
    pub template: TemplateName,
    pub verdict: Verdict,
    pub note: String,
    /// Whether the review came after `review_due`.
    pub overdue: bool,
}

/// `Credentials Issued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsIssued {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub account: AccountId,
    pub role_arn: String,
    /// `RoleSessionName` and `SourceIdentity`: what CloudTrail shows for every call.
    pub session_name: String,
    /// The access key id (not secret: it names the session in CloudTrail).
    pub access_key_id: String,
    pub expires_at: DateTime<Utc>,
    pub grant_ids: Vec<GrantId>,
    /// Whether the credentials went out sealed to the requester's key (HPKE).
    pub sealed: bool,
}

/// `Sessions Revoked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsRevoked {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// Whose sessions.
    pub user: String,
    pub session_name: String,
    pub accounts: Vec<AccountId>,
    /// Sessions of the user issued before this no longer work.
    pub sessions_issued_before: DateTime<Utc>,
    pub reason: String,
}

/// `Directory Change Applied`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryChangeApplied {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The producer that sent it (the HR system).
    pub actor: Actor,
    pub user: String,
    /// The message kind, e.g. `user.offboarded`.
    pub change: String,
    pub effective_at: DateTime<Utc>,
    /// The change's own fields (teams, groups).
    pub details: Value,
    pub revoked_grants: Vec<GrantId>,
}

/// `Slack Account Linked`: a Slack user bound to a verified identity through the edge's OIDC
/// link flow; from then on the edge acts for that identity when that Slack user acts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackAccountLinked {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The Slack workspace (`T…`).
    pub team_id: String,
    /// The Slack user (`U…`) who completed the link.
    pub slack_user_id: String,
    /// The identity's subject, as the ID token named it.
    pub subject: String,
    /// The ID token's issuer.
    pub issuer: String,
}

/// `Slack Account Unlinked`: the binding removed (by its owner from Slack, or because the
/// directory no longer knows the identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackAccountUnlinked {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub team_id: String,
    pub slack_user_id: String,
    pub subject: String,
    pub issuer: String,
}

/// `Request Refused`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRefused {
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// The verified requester, when the refusal came after authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// The SQS `SenderId` of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// The message kind, or `unknown`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    pub code: ErrorCode,
    /// The sentence the requester was told (secrets removed).
    pub reason: String,
}

/// Declares every audit event once: its detail-type and its detail.
macro_rules! audit_events {
    (@source) => { SOURCE };
    (@source $source:ident) => { $source };
    ($( $variant:ident = $detail_type:literal $(from $source:ident)?; )*) => {
        /// One audit event.
        #[derive(Debug, Clone, PartialEq)]
        pub enum AuditEvent {
            $( $variant($variant), )*
        }

        impl AuditEvent {
            /// Every detail-type, in documentation order.
            pub const DETAIL_TYPES: &'static [&'static str] = &[$($detail_type),*];

            /// The EventBridge `detail-type`.
            pub fn detail_type(&self) -> &'static str {
                match self { $(AuditEvent::$variant(_) => $detail_type,)* }
            }

            /// The EventBridge `source`: [`SOURCE`] unless the event names another.
            pub fn source(&self) -> &'static str {
                match self { $(AuditEvent::$variant(_) => audit_events!(@source $($source)?),)* }
            }

            /// The `source` of the events of `detail_type`, if it is one of them.
            pub fn source_of(detail_type: &str) -> Option<&'static str> {
                match detail_type { $($detail_type => Some(audit_events!(@source $($source)?)),)* _ => None }
            }

            /// The event's id (deterministic per cause).
            pub fn event_id(&self) -> &str {
                match self { $(AuditEvent::$variant(e) => &e.event_id,)* }
            }

            /// The `detail` JSON.
            pub fn detail(&self) -> Result<String, serde_json::Error> {
                match self { $(AuditEvent::$variant(e) => serde_json::to_string(e),)* }
            }
        }

        /// (file name, JSON Schema) of every event's detail.
        pub fn schemas() -> Vec<(String, Schema)> {
            vec![$(
                (format!("{}.json", $detail_type.to_ascii_lowercase().replace(' ', "-")), {
                    let mut s = schema_for!($variant);
                    s.insert("title".into(), $detail_type.into());
                    s
                }),
            )*]
        }
    };
}

audit_events! {
    GrantCreated = "Grant Created";
    GrantPendingApproval = "Grant Pending Approval";
    GrantApproved = "Grant Approved";
    GrantActivated = "Grant Activated";
    GrantDenied = "Grant Denied";
    BreakGlassUsed = "Break Glass Used";
    BreakGlassReviewed = "Break Glass Reviewed";
    GrantRevoked = "Grant Revoked";
    CredentialsIssued = "Credentials Issued";
    SessionsRevoked = "Sessions Revoked";
    DirectoryChangeApplied = "Directory Change Applied";
    RequestRefused = "Request Refused";
    SlackAccountLinked = "Slack Account Linked" from SLACK_SOURCE;
    SlackAccountUnlinked = "Slack Account Unlinked" from SLACK_SOURCE;
}

/// A deterministic event id from what caused the event.
pub fn event_id(parts: &[&str]) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x2b1f_8c3e_4d5a_4b6c_9e7f_1a2b_3c4d_5e6f);
    uuid::Uuid::new_v5(&NAMESPACE, parts.join("\u{0}").as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
    }

    /// docs/schemas/events/ holds exactly the schemas of these types (`make schemas` writes them), and
    /// docs/events.md has a section for every detail-type.
    #[test]
    fn event_docs_and_schemas_match_the_types() {
        let bless = std::env::var_os("PORTCULLIS_BLESS_SCHEMAS").is_some();
        let schemas_dir = dir().join("schemas/events");
        let mut expected = Vec::new();
        for (name, schema) in schemas() {
            let text = serde_json::to_string_pretty(&crate::messages::canonical(schema.to_value())).unwrap() + "\n";
            let path = schemas_dir.join(&name);
            expected.push(name.clone());
            if bless {
                std::fs::create_dir_all(&schemas_dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed =
                std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{name} missing; run `make schemas`"));
            assert_eq!(committed, text, "{name} drifted; run `make schemas`");
        }
        let mut present: Vec<String> = std::fs::read_dir(&schemas_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        present.sort();
        expected.sort();
        assert_eq!(present, expected, "stale files in docs/schemas/events");
        let doc = std::fs::read_to_string(dir().join("events.md")).unwrap();
        for detail_type in AuditEvent::DETAIL_TYPES {
            assert!(doc.contains(&format!("### `{detail_type}`")), "docs/events.md lacks `{detail_type}`");
        }
    }

    #[test]
    fn each_event_names_its_source() {
        assert_eq!(AuditEvent::source_of("Grant Created"), Some(SOURCE));
        assert_eq!(AuditEvent::source_of("Slack Account Linked"), Some(SLACK_SOURCE));
        assert_eq!(AuditEvent::source_of("Slack Account Unlinked"), Some(SLACK_SOURCE));
        assert_eq!(AuditEvent::source_of("Grant Expired"), None);
    }

    #[test]
    fn event_ids_are_deterministic() {
        assert_eq!(event_id(&["a", "b"]), event_id(&["a", "b"]));
        assert_ne!(event_id(&["a", "b"]), event_id(&["ab"]));
    }
}
