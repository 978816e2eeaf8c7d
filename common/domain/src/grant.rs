//! Grants: one rendered template, for one person, in one account, until one expiry.
//!
//! A grant is written once; it ends by expiring or by being revoked (the revocation is recorded on it,
//! and the record kept until it would have expired). DynamoDB removes expired items only eventually
//! (typically within two days), so every read must filter on [`Grant::is_live`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AccountId, GrantId, MessageId, TemplateName};

/// A stored grant. This is also the shape returned by `grant.request` and `grant.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Grant id, derived from the requester and the request's message id (so a redelivered request
    /// maps to the same grant).
    pub id: GrantId,
    /// The verified user the grant belongs to.
    pub user: String,
    /// The verified team claim at the time of the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The verified groups claim at the time of the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The 12-digit AWS account the grant applies to.
    pub account: AccountId,
    /// Template name and the version that was rendered.
    pub template: TemplateName,
    pub template_version: u32,
    /// The parameter values the statements were rendered with.
    pub params: BTreeMap<String, String>,
    /// The rendered IAM statements.
    pub statements: Vec<Value>,
    /// Why the requester needs the access.
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The `message_id` of the `grant.request` that created it.
    pub request_message_id: MessageId,
    /// The trusted producer that relayed the request for the user, when it was not the user's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Set when the grant was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
}

/// Who ended a grant early, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub at: DateTime<Utc>,
    /// The user who revoked it, or `directory` for an HR event.
    pub by: String,
    pub reason: String,
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Active,
    Expired,
    Revoked,
}

impl Grant {
    /// Whether the grant still confers access at `now`: not revoked, not expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked.is_none() && self.expires_at > now
    }

    /// Where the grant stands at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> GrantStatus {
        if self.revoked.is_some() {
            GrantStatus::Revoked
        } else if self.expires_at > now {
            GrantStatus::Active
        } else {
            GrantStatus::Expired
        }
    }

    /// The deterministic grant id for a request: the same requester re-sending the same message id
    /// always gets the same grant.
    pub fn id_for(user: &str, message_id: &MessageId) -> GrantId {
        let name = format!("{user}\u{0}{message_id}");
        GrantId::from_generated(format!("g-{}", uuid::Uuid::new_v5(&GRANT_NAMESPACE, name.as_bytes()).simple()))
    }
}

const GRANT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f0c_1b7e_8a44_4f7e_9d0a_7b1c_2e3d_4f50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_are_deterministic_and_scoped_to_the_user() {
        let m = |s: &str| MessageId::parse(s).unwrap();
        assert_eq!(Grant::id_for("alice", &m("m1")), Grant::id_for("alice", &m("m1")));
        assert_ne!(Grant::id_for("alice", &m("m1")), Grant::id_for("bob", &m("m1")));
        assert_ne!(Grant::id_for("alice", &m("m1")), Grant::id_for("alice", &m("m2")));
        assert!(GrantId::parse(Grant::id_for("a", &m("b")).as_str()).is_ok());
    }
}
