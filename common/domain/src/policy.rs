//! Composition of a requester's live grants into one STS session policy.
//!
//! Rules (see `docs/messages.md`):
//! - only grants live at `now` count;
//! - statements that are identical across grants are merged, keeping the latest expiry;
//! - each statement gets `Condition.DateLessThan."aws:CurrentTime"` at its grant's expiry, so one
//!   session can outlive a short grant without that grant's access outliving it;
//! - the policy is minified and must fit STS's 2,048-character plaintext limit, else
//!   `policy_too_large` naming the grants, largest first.
//!
//! Pure: no I/O.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::{ErrorCode, RequestError};
use crate::grant::Grant;
use crate::ids::GrantId;

/// STS `AssumeRole` inline session policy limit, in characters of plaintext.
pub const MAX_SESSION_POLICY_CHARS: usize = 2048;

/// A composed session policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPolicy {
    /// The minified policy document.
    pub json: String,
    /// Ids of the grants it was composed from.
    pub grant_ids: Vec<GrantId>,
    /// Number of statements after merging.
    pub statement_count: usize,
    /// The latest expiry among the grants: credentials should not outlive it.
    pub latest_expiry: DateTime<Utc>,
}

impl SessionPolicy {
    pub fn size(&self) -> usize {
        self.json.chars().count()
    }
}

/// Compose the live grants in `grants` into one session policy.
pub fn compose_session_policy(grants: &[Grant], now: DateTime<Utc>) -> Result<SessionPolicy, RequestError> {
    let live: Vec<&Grant> = grants.iter().filter(|g| g.is_live(now)).collect();
    let Some(latest_expiry) = live.iter().map(|g| g.expires_at).max() else {
        return Err(RequestError::new(
            ErrorCode::NoGrants,
            "you have no live grant for this account; request one with grant.request first",
        ));
    };

    // Unique statements (without `Sid`), by their serialized form, with the latest expiry. The
    // serialized form is reused for the output, so a statement is serialized once.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut merged: Vec<(&Value, String, DateTime<Utc>)> = Vec::new();
    for grant in &live {
        for statement in &grant.statements {
            let key = match statement.as_object().filter(|o| o.contains_key("Sid")) {
                Some(obj) => {
                    let mut without_sid = obj.clone();
                    without_sid.remove("Sid");
                    Value::Object(without_sid).to_string()
                }
                // `Value`'s Display is its compact JSON and cannot fail.
                None => statement.to_string(),
            };
            match index.get(&key) {
                Some(&i) => merged[i].2 = merged[i].2.max(grant.expires_at),
                None => {
                    index.insert(key.clone(), merged.len());
                    merged.push((statement, key, grant.expires_at));
                }
            }
        }
    }

    let statement_count = merged.len();
    let mut json = String::with_capacity(64 + merged.iter().map(|(_, k, _)| k.len() + 64).sum::<usize>());
    json.push_str(r#"{"Statement":["#);
    for (i, (statement, key, expiry)) in merged.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let plain = statement.as_object().is_some_and(|o| !o.contains_key("Condition")) && key.ends_with('}');
        if plain {
            // `{...}` → `{...,"Condition":{"DateLessThan":{"aws:CurrentTime":"<expiry>"}}}`
            json.push_str(&key[..key.len() - 1]);
            json.push_str(r#","Condition":{"DateLessThan":{"aws:CurrentTime":""#);
            json.push_str(&expiry.to_rfc3339_opts(SecondsFormat::Secs, true));
            json.push_str(r#""}}}"#);
        } else {
            // A statement with a condition of its own: merge the expiry into it.
            let mut owned = statement.clone();
            if let Some(obj) = owned.as_object_mut() {
                obj.remove("Sid");
            }
            json.push_str(&with_expiry_condition(owned, expiry).to_string());
        }
    }
    json.push_str(r#"],"Version":"2012-10-17"}"#);
    let size = json.chars().count();
    if size > MAX_SESSION_POLICY_CHARS {
        let mut by_size: Vec<(&Grant, usize)> =
            live.iter().map(|g| (*g, Value::Array(g.statements.clone()).to_string().len())).collect();
        by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
        let names: Vec<String> = by_size.iter().map(|(g, n)| format!("{} ({}, {n} chars)", g.id, g.template)).collect();
        return Err(RequestError::new(
            ErrorCode::PolicyTooLarge,
            format!(
                "your live grants for this account make a {size}-character session policy; STS accepts \
                 {MAX_SESSION_POLICY_CHARS}. Let some of these grants expire or ask for narrower ones: {}",
                names.join(", ")
            ),
        )
        .with_details(json!({
            "size": size,
            "limit": MAX_SESSION_POLICY_CHARS,
            "grants": by_size.iter().map(|(g, n)| json!({"id": g.id, "template": g.template, "chars": n})).collect::<Vec<_>>(),
        })));
    }
    Ok(SessionPolicy { json, grant_ids: live.iter().map(|g| g.id.clone()).collect(), statement_count, latest_expiry })
}

fn with_expiry_condition(mut statement: Value, expiry: DateTime<Utc>) -> Value {
    let stamp = expiry.to_rfc3339_opts(SecondsFormat::Secs, true);
    if let Some(obj) = statement.as_object_mut() {
        let condition = obj.entry("Condition").or_insert_with(|| Value::Object(Map::new()));
        if let Some(cond) = condition.as_object_mut() {
            let op = cond.entry("DateLessThan").or_insert_with(|| Value::Object(Map::new()));
            if let Some(op) = op.as_object_mut() {
                // A template's own, earlier aws:CurrentTime bound wins.
                let keep_existing = op
                    .get("aws:CurrentTime")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .is_some_and(|t| t.with_timezone(&Utc) < expiry);
                if !keep_existing {
                    op.insert("aws:CurrentTime".into(), Value::String(stamp));
                }
            }
        }
    }
    statement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, MessageId, TemplateName};
    use chrono::{Duration, TimeZone};
    use std::collections::BTreeMap;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    /// A stable, valid grant id for a short test name.
    fn gid(name: &str) -> GrantId {
        Grant::id_for("test", &MessageId::parse(name).unwrap())
    }

    fn grant(id: &str, bucket: &str, expires_in_min: i64) -> Grant {
        Grant {
            id: gid(id),
            user: "alice".into(),
            team: Some("payments".into()),
            groups: vec![],
            account: AccountId::parse("123456789012").unwrap(),
            template: TemplateName::parse("bucketRead").unwrap(),
            template_version: 1,
            params: BTreeMap::from([("bucketName".to_string(), bucket.to_string())]),
            statements: vec![json!({
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            })],
            reason: "r".into(),
            created_at: now() - Duration::minutes(5),
            expires_at: now() + Duration::minutes(expires_in_min),
            request_message_id: MessageId::parse(id).unwrap(),
            via: None,
            revoked: None,
            status: crate::grant::GrantStatus::Active,
            ttl_seconds: 3600,
            approval: None,
            break_glass: None,
            user_display_name: None,
            revision: 0,
        }
    }

    #[test]
    fn each_statement_expires_with_its_grant() {
        let policy = compose_session_policy(&[grant("g1", "a", 30), grant("g2", "b", 90)], now()).unwrap();
        let doc: Value = serde_json::from_str(&policy.json).unwrap();
        let st = doc["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[0]["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-22T12:30:00Z");
        assert_eq!(st[1]["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-22T13:30:00Z");
        assert_eq!(policy.latest_expiry, now() + Duration::minutes(90));
        assert_eq!(policy.grant_ids, vec![gid("g1"), gid("g2")]);
        assert!(!policy.json.contains(' '), "minified: {}", policy.json);
    }

    #[test]
    fn identical_statements_merge_with_latest_expiry() {
        let policy = compose_session_policy(&[grant("g1", "a", 30), grant("g2", "a", 60)], now()).unwrap();
        assert_eq!(policy.statement_count, 1);
        let doc: Value = serde_json::from_str(&policy.json).unwrap();
        assert_eq!(doc["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-22T13:00:00Z");
    }

    #[test]
    fn expired_grants_are_ignored() {
        let policy = compose_session_policy(&[grant("old", "a", -1), grant("g2", "b", 60)], now()).unwrap();
        assert_eq!(policy.grant_ids, vec![gid("g2")]);
        let err = compose_session_policy(&[grant("old", "a", 0)], now()).unwrap_err();
        assert_eq!(err.code, ErrorCode::NoGrants);
    }

    #[test]
    fn too_large_names_the_grants() {
        let grants: Vec<Grant> =
            (0..20).map(|i| grant(&format!("g{i:02}"), &format!("bucket-number-{i}"), 60)).collect();
        let err = compose_session_policy(&grants, now()).unwrap_err();
        assert_eq!(err.code, ErrorCode::PolicyTooLarge);
        assert!(
            err.message.contains(gid("g00").as_str()) && err.message.contains(gid("g19").as_str()),
            "{}",
            err.message
        );
        assert_eq!(err.details.as_ref().unwrap()["grants"].as_array().unwrap().len(), 20);
    }

    #[test]
    fn fits_at_the_limit() {
        // Ten distinct bucket grants fit comfortably.
        let grants: Vec<Grant> = (0..10).map(|i| grant(&format!("g{i}"), &format!("b{i}"), 60)).collect();
        let policy = compose_session_policy(&grants, now()).unwrap();
        assert!(policy.size() <= MAX_SESSION_POLICY_CHARS, "{}", policy.size());
    }

    #[test]
    fn sids_do_not_keep_identical_statements_apart_and_the_document_is_complete() {
        let mut g1 = grant("g1", "a", 30);
        g1.statements[0]["Sid"] = json!("ReadA");
        let mut g2 = grant("g2", "a", 60);
        g2.statements[0]["Sid"] = json!("AlsoReadA");
        let policy = compose_session_policy(&[g1, g2, grant("g3", "b", 45)], now()).unwrap();
        let doc: Value = serde_json::from_str(&policy.json).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        let st = doc["Statement"].as_array().unwrap();
        assert_eq!((st.len(), policy.statement_count), (2, 2));
        assert_eq!(
            st[0],
            json!({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "arn:aws:s3:::a/*",
                   "Condition": {"DateLessThan": {"aws:CurrentTime": "2026-11-22T13:00:00Z"}}})
        );
        assert_eq!(st[1]["Resource"], "arn:aws:s3:::b/*");
    }

    #[test]
    fn a_templates_own_earlier_time_bound_is_kept() {
        let mut g = grant("g1", "a", 60);
        g.statements[0]["Condition"] = json!({"DateLessThan": {"aws:CurrentTime": "2026-11-22T12:10:00Z"}});
        let policy = compose_session_policy(&[g], now()).unwrap();
        assert!(policy.json.contains("2026-11-22T12:10:00Z"));
        let doc: Value = serde_json::from_str(&policy.json).unwrap();
        assert_eq!(doc["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-22T12:10:00Z");
        // A later template bound gives way to the grant's expiry.
        let mut late = grant("g1", "a", 60);
        late.statements[0]["Condition"] = json!({"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}});
        let doc: Value = serde_json::from_str(&compose_session_policy(&[late], now()).unwrap().json).unwrap();
        assert_eq!(doc["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-22T13:00:00Z");
    }
}
