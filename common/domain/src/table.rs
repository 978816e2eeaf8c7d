//! The stack's single DynamoDB table: every item's key, described and built here and nowhere else.
//!
//! Partition key `pk`, sort key `sk` (both strings); the TTL attribute is `expires_at` in epoch
//! seconds, and every reader still filters on it (TTL deletion is late).
//!
//! | item | pk | sk | written by |
//! |---|---|---|---|
//! | template index | `TEMPLATES` | `<template name>` | access: `latest_version`, `deleted`, `summary` |
//! | template version | `TEMPLATE#<name>` | `V#<version, 8 digits>` | access: `doc` (the stored template) |
//! | grant | `GRANTS#<user>` | `GRANT#<account>#<grant id>` | access: `doc`, `account`, `template`, `expires_at` |
//! | request record | `REQUEST#<user>#<message id>` | `REPLY` | access: `reply` (the exact reply text), `digest`, `expires_at` |
//! | posture evidence | `POSTURE#<account>#<region>` | `CONTROL#<control id>` | posture: `status`, `failing_*`, `reason`, ... |
//! | scan lease | `LEASE#posture#<account>#<region>` | `LEASE` | posture: `owner`, `lease_until`, `expires_at` |
//! | grant index | `GRANT#<grant id>` | `GRANT` | access: `user`, `account` (find a grant by id), `expires_at` |
//! | directory record | `USER#<user>` | `DIRECTORY` | directory: `doc`, `rev` (optimistic concurrency) |
//! | session revocation | `REVOKED#<account>` | `<cutoff, RFC 3339>#<STS name>` | access, directory: `expires_at` |
//! | revocation generation | `REVOKED#<account>` | `GENERATION` | access, directory: `generation` |
//! | pending approval | `APPROVALS` | `<grant id>` | access: `user`, `account`, `expires_at` (= pending until) |
//! | break-glass review owed | `REVIEWS` | `<grant id>` | access: `user`, `account`, `review_due`; deleted by the review |
//! | IAM user read | `IAMREAD#<account>` | `USER#<user>` | posture: `read` (JSON), `read_at_ms`, `expires_at` |
//! | scheduled directory change | `SCHEDULED` | `<due, RFC 3339>#<message id>#<user>` | directory: `doc` (the event), `expires_at`; deleted once applied |
//! | Slack account binding | `SLACK#<team id>#<Slack user id>` | `BINDING` | slack edge: `doc` (subject, team, groups, linked_at); deleted by unlink |
//! | Slack link in progress | `SLACKLINK#<state>` | `STATE` | slack edge: `doc` (team, user, PKCE verifier, nonce), `expires_at`; deleted when used |
//! | Slack copy of a grant's message | `SLACKMSG#<grant id>` | `<channel id>#<message ts>` | slack edge: `doc` (who it was posted for), `expires_at` |
//!
//! Message ids, account ids, regions and control ids cannot contain `#`, so a key splits back into its
//! parts unambiguously even when a user name does.

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, GrantId, MessageId, TemplateName};
use crate::posture::ControlId;

/// The name of the TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// One item's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

/// A partition and a sort-key prefix: the items a `Query` with `begins_with(sk, prefix)` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix {
    pub pk: String,
    pub sk_prefix: String,
}

const TEMPLATES: &str = "TEMPLATES";
const APPROVALS: &str = "APPROVALS";
const REVIEWS: &str = "REVIEWS";
/// The partition of scheduled directory changes (few: one per future-dated HR event).
pub const SCHEDULED: &str = "SCHEDULED";

impl Key {
    /// A template's index entry (latest version, deleted flag, list summary).
    pub fn template_index(name: &TemplateName) -> Key {
        Key { pk: TEMPLATES.into(), sk: name.to_string() }
    }

    /// One stored version of a template.
    pub fn template_version(name: &TemplateName, version: u32) -> Key {
        Key { pk: format!("TEMPLATE#{name}"), sk: format!("V#{version:08}") }
    }

    /// One grant.
    pub fn grant(user: &str, account: &AccountId, id: &GrantId) -> Key {
        Key { pk: grants_pk(user), sk: format!("GRANT#{account}#{id}") }
    }

    /// The record of a request that changed something: its digest and the exact reply sent, so a
    /// redelivery is answered byte for byte and a reused id with another body is recognised.
    pub fn request(user: &str, message_id: &MessageId) -> Key {
        Key { pk: format!("REQUEST#{user}#{message_id}"), sk: "REPLY".into() }
    }

    /// The latest evidence of one control in one account and region.
    pub fn evidence(account: &str, region: &str, control: ControlId) -> Key {
        Key { pk: format!("POSTURE#{account}#{region}"), sk: format!("CONTROL#{}", control.as_str()) }
    }

    /// The scan lease of one account and region.
    pub fn scan_lease(account: &str, region: &str) -> Key {
        Key { pk: format!("LEASE#posture#{account}#{region}"), sk: "LEASE".into() }
    }

    /// A grant's index entry: which user and account it belongs to, found by its id alone.
    pub fn grant_index(id: &GrantId) -> Key {
        Key { pk: format!("GRANT#{id}"), sk: "GRANT".into() }
    }

    /// A grant waiting for approval, listed for the approvers (`grant.pending`).
    pub fn pending_approval(id: &GrantId) -> Key {
        Key { pk: APPROVALS.into(), sk: id.to_string() }
    }

    /// A break-glass grant whose review is owed (`grant.pending`, the unreviewed metric).
    pub fn review_owed(id: &GrantId) -> Key {
        Key { pk: REVIEWS.into(), sk: id.to_string() }
    }

    /// The directory record of a user.
    pub fn directory(user: &str) -> Key {
        Key { pk: format!("USER#{user}"), sk: "DIRECTORY".into() }
    }

    /// One session revocation in an account.
    pub fn session_revocation(account: &AccountId, cutoff: &str, source_identity: &str) -> Key {
        Key { pk: revocations_pk(account), sk: format!("{cutoff}#{source_identity}") }
    }

    /// The generation counter of an account's revocation policy.
    pub fn revocation_generation(account: &AccountId) -> Key {
        Key { pk: revocations_pk(account), sk: "GENERATION".into() }
    }

    /// A directory change kept until it is due.
    pub fn scheduled_change(due: &str, message_id: &MessageId, user: &str) -> Key {
        Key { pk: SCHEDULED.into(), sk: format!("{due}#{message_id}#{user}") }
    }

    /// One IAM user's credentials as last read on their own (after a change event), kept so that a
    /// full scan reusing an older credential report does not undo them, on every replica.
    pub fn iam_user_read(account: &AccountId, user: &str) -> Key {
        Key { pk: iam_reads_pk(account), sk: format!("USER#{user}") }
    }

    /// Which IdP subject a Slack user (of one workspace) acts as. Slack team and user ids are
    /// upper-case letters and digits, never `#`.
    pub fn slack_binding(team_id: &str, user_id: &str) -> Key {
        Key { pk: format!("SLACK#{team_id}#{user_id}"), sk: "BINDING".into() }
    }

    /// A one-time account-link in progress, found by its random `state`.
    pub fn slack_link_state(state: &str) -> Key {
        Key { pk: format!("SLACKLINK#{state}"), sk: "STATE".into() }
    }

    /// One Slack message showing a grant (a channel copy, a DM), updated on every decision.
    pub fn slack_message(grant: &GrantId, channel: &str, ts: &str) -> Key {
        Key { pk: slack_messages_pk(grant), sk: format!("{channel}#{ts}") }
    }

    /// A grant's Slack copies to update when it ends at `at` (`at_sk` is [`slack_expiry_sk`]): the
    /// Slack edge's expiry sweep reads the partition of the day `at` falls in.
    pub fn slack_expiry(at: DateTime<Utc>, grant: &GrantId) -> Key {
        Key { pk: slack_expiries_pk(at), sk: slack_expiry_sk(at, grant.as_str()) }
    }

    /// (region, control) of an evidence key, when it is one.
    pub fn parse_evidence(pk: &str, sk: &str) -> Option<(String, ControlId)> {
        let rest = pk.strip_prefix("POSTURE#")?;
        let (_, region) = rest.rsplit_once('#')?;
        let control = ControlId::parse(sk.strip_prefix("CONTROL#")?)?;
        Some((region.to_owned(), control))
    }
}

impl KeyPrefix {
    /// Every template's index entry.
    pub fn templates() -> KeyPrefix {
        KeyPrefix { pk: TEMPLATES.into(), sk_prefix: String::new() }
    }

    /// Every grant waiting for approval.
    pub fn pending_approvals() -> KeyPrefix {
        KeyPrefix { pk: APPROVALS.into(), sk_prefix: String::new() }
    }

    /// Every break-glass grant whose review is owed.
    pub fn reviews_owed() -> KeyPrefix {
        KeyPrefix { pk: REVIEWS.into(), sk_prefix: String::new() }
    }

    /// An account's session revocations and their generation counter.
    pub fn revocations(account: &AccountId) -> KeyPrefix {
        KeyPrefix { pk: revocations_pk(account), sk_prefix: String::new() }
    }

    /// A user's grants, in one account or all.
    pub fn grants_of(user: &str, account: Option<&AccountId>) -> KeyPrefix {
        let sk_prefix = match account {
            Some(a) => format!("GRANT#{a}#"),
            None => "GRANT#".to_owned(),
        };
        KeyPrefix { pk: grants_pk(user), sk_prefix }
    }
}

fn revocations_pk(account: &AccountId) -> String {
    format!("REVOKED#{account}")
}

impl KeyPrefix {
    /// Every IAM user read of an account.
    pub fn iam_user_reads(account: &AccountId) -> KeyPrefix {
        KeyPrefix { pk: iam_reads_pk(account), sk_prefix: "USER#".into() }
    }
}

impl KeyPrefix {
    /// Every Slack message showing a grant.
    pub fn slack_messages(grant: &GrantId) -> KeyPrefix {
        KeyPrefix { pk: slack_messages_pk(grant), sk_prefix: String::new() }
    }
}

impl KeyPrefix {
    /// The Slack expiries of the (UTC) day of `day`.
    pub fn slack_expiries(day: DateTime<Utc>) -> KeyPrefix {
        KeyPrefix { pk: slack_expiries_pk(day), sk_prefix: String::new() }
    }
}

fn slack_expiries_pk(at: DateTime<Utc>) -> String {
    format!("SLACKEXP#{}", at.format("%Y-%m-%d"))
}

/// `<at, RFC 3339 with a fixed width>#<grant>`: sorts by time, so `sk <= slack_expiry_sk(now, "")`
/// reads what is due.
pub fn slack_expiry_sk(at: DateTime<Utc>, grant: &str) -> String {
    format!("{}#{grant}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

fn slack_messages_pk(grant: &GrantId) -> String {
    format!("SLACKMSG#{grant}")
}

fn iam_reads_pk(account: &AccountId) -> String {
    format!("IAMREAD#{account}")
}

fn grants_pk(user: &str) -> String {
    format!("GRANTS#{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shapes() {
        let name = TemplateName::parse("bucketRead").unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        let id = GrantId::parse("g-0123456789abcdef0123456789abcdef").unwrap();
        let msg = MessageId::parse("m-1").unwrap();
        assert_eq!(Key::template_index(&name), Key { pk: "TEMPLATES".into(), sk: "bucketRead".into() });
        assert_eq!(Key::template_version(&name, 3).sk, "V#00000003");
        let grant = Key::grant("alice", &account, &id);
        assert_eq!(
            (grant.pk.as_str(), grant.sk.as_str()),
            ("GRANTS#alice", "GRANT#123456789012#g-0123456789abcdef0123456789abcdef")
        );
        let prefix = KeyPrefix::grants_of("alice", Some(&account));
        assert!(grant.pk == prefix.pk && grant.sk.starts_with(&prefix.sk_prefix));
        assert_eq!(Key::request("alice", &msg).pk, "REQUEST#alice#m-1");
        let evidence = Key::evidence("123456789012", "eu-west-1", ControlId::Kms4);
        assert_eq!(Key::parse_evidence(&evidence.pk, &evidence.sk), Some(("eu-west-1".into(), ControlId::Kms4)));
        assert_eq!(Key::scan_lease("123456789012", "eu-west-1").pk, "LEASE#posture#123456789012#eu-west-1");
        let read = Key::iam_user_read(&account, "bob");
        assert_eq!((read.pk.as_str(), read.sk.as_str()), ("IAMREAD#123456789012", "USER#bob"));
        let reads = KeyPrefix::iam_user_reads(&account);
        assert!(read.pk == reads.pk && read.sk.starts_with(&reads.sk_prefix));
        let binding = Key::slack_binding("T0A", "U0B");
        assert_eq!((binding.pk.as_str(), binding.sk.as_str()), ("SLACK#T0A#U0B", "BINDING"));
        assert_eq!(Key::slack_link_state("st").pk, "SLACKLINK#st");
        let copy = Key::slack_message(&id, "C0A", "1795834632.000100");
        assert_eq!(copy.sk, "C0A#1795834632.000100");
        assert!(copy.pk == KeyPrefix::slack_messages(&id).pk);
    }
}
