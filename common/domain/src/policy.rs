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
                let keep_existing = op.get("aws:CurrentTime").and_then(latest_bound).is_some_and(|t| t < expiry);
                if !keep_existing {
                    op.insert("aws:CurrentTime".into(), Value::String(stamp));
                }
            }
        }
    }
    statement
}

/// The latest instant an `aws:CurrentTime` condition value lets through, read as IAM reads dates
/// (RFC 3339 or epoch seconds, as a number or digits); a list allows while *any* of its values does,
/// so its latest. `None` when a value is none of these: IAM refuses a policy with a date it cannot
/// read (`MalformedPolicyDocument`), so the grant's expiry replaces it.
fn latest_bound(value: &Value) -> Option<DateTime<Utc>> {
    let one = |v: &Value| match v {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok().and_then(|secs| DateTime::from_timestamp(secs, 0))
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(|secs| DateTime::from_timestamp(secs, 0)),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(one).collect::<Option<Vec<_>>>()?.into_iter().max()
        }
        other => one(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, MessageId, TemplateName};
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;
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

    /// Where a grant stands, for the properties: only `Active` and `Approved` confer access.
    #[derive(Debug, Clone, Copy)]
    enum State {
        Active,
        Approved,
        Expired,
        Revoked,
        Pending,
        Denied,
    }

    fn state() -> impl Strategy<Value = State> {
        prop_oneof![
            4 => Just(State::Active),
            1 => Just(State::Approved),
            1 => Just(State::Expired),
            1 => Just(State::Revoked),
            1 => Just(State::Pending),
            1 => Just(State::Denied),
        ]
    }

    /// A whole-second time `minutes` from `now()`, RFC 3339 (a policy's dates have whole seconds).
    fn at(minutes: i64) -> String {
        (now() + Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// A statement's own condition, as a template may write it: time bounds on `aws:CurrentTime` as
    /// one date, several (IAM: any of them), or epoch seconds, and conditions on other keys.
    fn own_condition() -> impl Strategy<Value = Option<Value>> {
        let minutes = -30i64..600;
        prop_oneof![
            4 => Just(None),
            2 => minutes.clone().prop_map(|m| Some(json!({"DateLessThan": {"aws:CurrentTime": at(m)}}))),
            1 => prop::collection::vec(minutes.clone(), 1..3)
                .prop_map(|ms| Some(json!({"DateLessThan": {"aws:CurrentTime": ms.into_iter().map(at).collect::<Vec<_>>()}}))),
            1 => minutes.clone().prop_map(|m| Some(json!({"DateLessThan": {"aws:CurrentTime": (now() + Duration::minutes(m)).timestamp()}}))),
            1 => minutes.clone().prop_map(|m| Some(json!({"DateLessThan": {"aws:CurrentTime": (now() + Duration::minutes(m)).timestamp().to_string()}}))),
            1 => Just(Some(json!({"Bool": {"aws:SecureTransport": "true"}}))),
            1 => minutes.prop_map(|m| Some(json!({"Bool": {"aws:SecureTransport": "true"}, "DateLessThan": {"aws:CurrentTime": at(m)}}))),
        ]
    }

    /// A rendered statement from a small pool, so that grants often share statements.
    fn statement() -> impl Strategy<Value = Value> {
        let actions = prop::sample::subsequence(
            vec!["s3:GetObject", "s3:PutObject", "s3:ListBucket", "kms:Decrypt", "dynamodb:GetItem"],
            1..3,
        );
        (
            prop_oneof![5 => Just("Allow"), 1 => Just("Deny")],
            actions,
            prop_oneof![(0..3u8).prop_map(|b| format!("arn:aws:s3:::b{b}/*")), Just("*".to_owned())],
            prop::option::of("[A-Z][a-z0-9]{0,6}"),
            own_condition(),
        )
            .prop_map(|(effect, actions, resource, sid, condition)| {
                let mut s = json!({"Effect": effect, "Action": actions, "Resource": resource});
                if let Some(sid) = sid {
                    s["Sid"] = json!(sid);
                }
                if let Some(condition) = condition {
                    s["Condition"] = condition;
                }
                s
            })
    }

    fn grants() -> impl Strategy<Value = Vec<Grant>> {
        prop::collection::vec((state(), 1i64..600, prop::collection::vec(statement(), 1..5)), 0..9).prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (state, minutes, statements))| {
                    let mut g = grant(&format!("g{i}"), "unused", minutes);
                    g.statements = statements;
                    let approval = |activated: bool, denied: bool| crate::grant::GrantApproval {
                        required: 1,
                        approver_groups: vec!["leads".into()],
                        approvals: vec![],
                        pending_until: now() + Duration::minutes(10),
                        activated_at: activated.then(|| now() - Duration::minutes(1)),
                        denied: denied.then(|| crate::grant::Denial {
                            by: "bob".into(),
                            at: now(),
                            reason: "no".into(),
                        }),
                    };
                    match state {
                        State::Active => {}
                        State::Approved => g.approval = Some(approval(true, false)),
                        State::Expired => g.expires_at = now() - Duration::minutes(minutes % 60),
                        State::Revoked => {
                            g.revoked =
                                Some(crate::grant::Revocation { at: now(), by: "alice".into(), reason: "r".into() })
                        }
                        State::Pending => g.approval = Some(approval(false, false)),
                        State::Denied => g.approval = Some(approval(false, true)),
                    }
                    g
                })
                .collect()
        })
    }

    /// IAM's reading of a date in a date condition: RFC 3339, or epoch seconds (a number or digits).
    fn iam_date(v: &Value) -> DateTime<Utc> {
        match v {
            Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
                DateTime::from_timestamp(s.parse().expect("epoch seconds"), 0).expect("a time")
            }
            Value::String(s) => s.parse().expect("an RFC 3339 date"),
            Value::Number(n) => DateTime::from_timestamp(n.as_i64().expect("epoch seconds"), 0).expect("a time"),
            other => panic!("not a date: {other}"),
        }
    }

    /// A statement split into what it says apart from time (without `Sid`, which IAM ignores for
    /// access) and its `aws:CurrentTime` upper bounds: each entry is one `DateLessThan` key whose
    /// values are alternatives.
    fn split(statement: &Value) -> (Value, Bounds) {
        let mut core = statement.as_object().expect("an object").clone();
        core.remove("Sid");
        let mut bounds = Vec::new();
        if let Some(Value::Object(condition)) = core.get_mut("Condition") {
            if let Some(Value::Object(op)) = condition.get_mut("DateLessThan") {
                if let Some(values) = op.remove("aws:CurrentTime") {
                    bounds.push(match values {
                        Value::Array(vs) => vs.iter().map(iam_date).collect(),
                        one => vec![iam_date(&one)],
                    });
                }
                if op.is_empty() {
                    condition.remove("DateLessThan");
                }
            }
            if condition.is_empty() {
                core.remove("Condition");
            }
        }
        (Value::Object(core), bounds)
    }

    /// `aws:CurrentTime` upper bounds: one entry per key, its values alternatives.
    type Bounds = Vec<Vec<DateTime<Utc>>>;

    fn in_time(bounds: &[Vec<DateTime<Utc>>], t: DateTime<Utc>) -> bool {
        bounds.iter().all(|values| values.iter().any(|v| t < *v))
    }

    proptest! {
        #![proptest_config(crate::properties::config(512))]

        /// For any grants: the policy holds exactly the live grants' statements, each for exactly as
        /// long as its grant and its own condition allow (none lost, none widened, nothing from an
        /// expired, revoked, pending or denied grant), its size is its length, and a policy that
        /// would not fit is refused as `policy_too_large`, never cut.
        #[test]
        fn the_policy_is_exactly_the_live_grants(grants in grants()) {
            let live: Vec<&Grant> = grants.iter().filter(|g| g.is_live(now())).collect();
            let policy = match compose_session_policy(&grants, now()) {
                Ok(policy) => policy,
                Err(err) if live.is_empty() => {
                    prop_assert_eq!(err.code, ErrorCode::NoGrants);
                    return Ok(());
                }
                Err(err) => {
                    prop_assert_eq!(err.code, ErrorCode::PolicyTooLarge);
                    let details = err.details.expect("details");
                    prop_assert!(details["size"].as_u64().expect("a size") > MAX_SESSION_POLICY_CHARS as u64);
                    prop_assert_eq!(details["grants"].as_array().expect("grants").len(), live.len());
                    return Ok(());
                }
            };
            prop_assert!(!live.is_empty());
            prop_assert_eq!(policy.size(), policy.json.chars().count());
            prop_assert!(policy.size() <= MAX_SESSION_POLICY_CHARS);
            prop_assert_eq!(&policy.grant_ids, &live.iter().map(|g| g.id.clone()).collect::<Vec<_>>());
            prop_assert_eq!(Some(policy.latest_expiry), live.iter().map(|g| g.expires_at).max());
            let doc: Value = serde_json::from_str(&policy.json).expect("the policy is JSON");
            prop_assert_eq!(&doc["Version"], "2012-10-17");
            let out: Vec<(Value, Bounds)> =
                doc["Statement"].as_array().expect("statements").iter().map(split).collect();
            prop_assert_eq!(out.len(), policy.statement_count);
            crate::iam_policy::PolicyDocument::parse(&doc).expect("the evaluator reads it");

            let granted: Vec<(Value, Bounds, DateTime<Utc>)> = live
                .iter()
                .flat_map(|g| g.statements.iter().map(|s| { let (core, bounds) = split(s); (core, bounds, g.expires_at) }))
                .collect();
            // Every instant where something could change: each bound and expiry, either side of it.
            let mut probes = vec![now(), now() + Duration::days(365)];
            for g in &grants {
                for s in &g.statements {
                    probes.extend(split(s).1.into_iter().flatten());
                }
                probes.push(g.expires_at);
            }
            let probes: Vec<DateTime<Utc>> =
                probes.iter().flat_map(|t| [*t - Duration::seconds(1), *t, *t + Duration::seconds(1)]).collect();
            for t in probes {
                for (core, bounds, expiry) in &granted {
                    if t < *expiry && in_time(bounds, t) {
                        prop_assert!(
                            out.iter().any(|(o, ob)| o == core && in_time(ob, t)),
                            "lost at {}: {}", t, core
                        );
                    }
                }
                for (o, ob) in &out {
                    if in_time(ob, t) {
                        prop_assert!(
                            granted.iter().any(|(core, bounds, expiry)| core == o && t < *expiry && in_time(bounds, t)),
                            "widened at {}: {} {:?}", t, o, ob
                        );
                    }
                }
            }
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

    /// Found by `the_policy_is_exactly_the_live_grants`: a template's own bound written as a list
    /// (or in epoch seconds) was not read, so the grant's later expiry replaced it and the statement
    /// was allowed for hours after its template said it ends.
    #[test]
    fn an_earlier_bound_as_a_list_or_epoch_seconds_is_kept() {
        for bound in [
            json!(["2026-11-22T12:00:00Z"]),
            json!(["2026-11-22T12:00:00Z", "2026-11-22T12:10:00Z"]),
            json!(now().timestamp() + 600),
            json!((now().timestamp() + 600).to_string()),
        ] {
            let mut g = grant("g1", "a", 300);
            g.statements[0]["Condition"] = json!({"DateLessThan": {"aws:CurrentTime": bound.clone()}});
            let doc: Value = serde_json::from_str(&compose_session_policy(&[g], now()).unwrap().json).unwrap();
            assert_eq!(doc["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"], bound);
        }
        // A list whose latest value is after the grant's expiry gives way to the expiry.
        let mut late = grant("g1", "a", 60);
        late.statements[0]["Condition"] =
            json!({"DateLessThan": {"aws:CurrentTime": ["2026-11-22T12:10:00Z", "2027-01-01T00:00:00Z"]}});
        let doc: Value = serde_json::from_str(&compose_session_policy(&[late], now()).unwrap().json).unwrap();
        assert_eq!(doc["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"], "2026-11-22T13:00:00Z");
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
