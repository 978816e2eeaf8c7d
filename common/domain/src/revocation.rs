//! Killing live sessions: the inline policy Portcullis owns on each account's broker role.
//!
//! STS credentials cannot be recalled, but IAM re-evaluates permissions on every call. So revoking a
//! user's sessions is a `Deny *` on the broker role for sessions whose `aws:SourceIdentity` is the
//! user and whose `aws:TokenIssueTime` is before the revocation (what the console's "Revoke active
//! sessions" does, narrowed to one person). [`render`] turns the current revocations into that
//! policy:
//!
//! - per user only the latest cutoff counts (it denies strictly more than an earlier one);
//! - a cutoff older than the role's maximum session duration is pruned: every session it could
//!   deny has expired;
//! - users with the same cutoff share a statement, so the role's inline-policy budget (10,240
//!   characters across its inline policies) holds many revocations; when it still would not fit, the
//!   statements with the closest cutoffs are merged under the later one (denying a little more, never
//!   less), and in the last resort one statement denies every session issued before the latest cutoff;
//! - the first statement, a no-op, carries a generation number, so a writer can tell whether the
//!   policy on the role is the newest one rendered.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The name of the inline policy Portcullis owns on every broker role.
pub const POLICY_NAME: &str = "PortcullisRevocations";

const GENERATION_SID: &str = "PortcullisRevocationsGeneration";

/// One user's sessions issued before `cutoff` no longer work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionRevocation {
    /// The user's STS name ([`crate::session::sts_name_for`]): what `aws:SourceIdentity` holds.
    pub source_identity: String,
    pub cutoff: DateTime<Utc>,
}

/// A rendered revocation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RevocationPolicy {
    /// The minified policy document.
    pub document: String,
    pub generation: u64,
    /// Users whose sessions it denies.
    pub users: usize,
    /// Statements after packing (the generation marker not counted).
    pub statements: usize,
    /// Whether statements had to be merged (some users' cutoffs moved later) to fit the budget.
    pub merged: bool,
}

/// How far ahead of a revoking worker's clock STS's clock may be, and still every session issued
/// before the revocation was seen is denied: 5 minutes.
///
/// A revocation's cutoff is compared with `aws:TokenIssueTime`, which STS stamps with *its* clock,
/// while the revocation time comes from the worker's. SigV4 refuses a request whose signing time is
/// more than 5 minutes off AWS's clock (`RequestTimeTooSkewed`, `SignatureDoesNotMatch`), so a worker
/// that can call STS, IAM and DynamoDB at all is within 5 minutes of AWS: this allowance covers any
/// skew a working worker can have. The cost: the revoked user's sessions issued in the 5 minutes
/// after the revocation are denied too, so the credentials path refuses to issue them
/// (`access_revoked`, "ask again after ...") instead of sending credentials that would not work.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::seconds(300);

/// The cutoff for a revocation at `t` (the revoking worker's clock): `t` plus
/// [`CLOCK_SKEW_ALLOWANCE`], rounded up to the next whole second (a policy's dates have whole seconds).
pub fn revocation_cutoff(t: DateTime<Utc>) -> DateTime<Utc> {
    cutoff_for(t.checked_add_signed(CLOCK_SKEW_ALLOWANCE).unwrap_or(t))
}

/// `t` rounded up to the next whole second (a policy's dates have whole seconds, and a session
/// issued in the same second as `t`, before it, must be covered).
pub fn cutoff_for(t: DateTime<Utc>) -> DateTime<Utc> {
    let whole = DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    if whole == t { whole } else { whole + Duration::seconds(1) }
}

/// The latest cutoff revoking `source_identity`'s sessions, if any: a session of theirs issued
/// (by STS's clock) before it is denied.
pub fn revoked_until(revocations: &[SessionRevocation], source_identity: &str) -> Option<DateTime<Utc>> {
    revocations.iter().filter(|r| r.source_identity == source_identity).map(|r| r.cutoff).max()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn statement(users: &[&str], cutoff: DateTime<Utc>) -> Value {
    let mut condition = json!({ "DateLessThan": { "aws:TokenIssueTime": stamp(cutoff) } });
    if !users.is_empty() {
        condition["StringEquals"] = json!({ "aws:SourceIdentity": users });
    }
    // No `Sid`: every character counts against the role's inline-policy budget.
    json!({ "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition })
}

fn document(generation: u64, groups: &[(DateTime<Utc>, Vec<&str>)]) -> String {
    // Denies sessions issued before 2000: none. It only carries the generation.
    let marker = json!({ "Sid": format!("{GENERATION_SID}{generation}"), "Effect": "Deny", "Action": "*", "Resource": "*",
                         "Condition": { "DateLessThan": { "aws:TokenIssueTime": "2000-01-01T00:00:00Z" } } });
    let mut statements = vec![marker];
    statements.extend(groups.iter().map(|(cutoff, users)| statement(users, *cutoff)));
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// The revocation policy for `revocations` at `now`: pruned after `max_session`, packed, and at most
/// `budget_chars` characters.
pub fn render(
    revocations: &[SessionRevocation],
    generation: u64,
    now: DateTime<Utc>,
    max_session: Duration,
    budget_chars: usize,
) -> RevocationPolicy {
    // The latest live cutoff per user.
    let mut latest: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for r in revocations.iter().filter(|r| r.cutoff + max_session > now) {
        let entry = latest.entry(r.source_identity.as_str()).or_insert(r.cutoff);
        *entry = (*entry).max(r.cutoff);
    }
    let users = latest.len();
    // Users by cutoff, oldest first.
    let mut by_cutoff: BTreeMap<DateTime<Utc>, Vec<&str>> = BTreeMap::new();
    for (user, cutoff) in latest {
        by_cutoff.entry(cutoff).or_default().push(user);
    }
    let mut groups: Vec<(DateTime<Utc>, Vec<&str>)> = by_cutoff.into_iter().collect();
    let mut merged = false;
    let mut doc = document(generation, &groups);
    while doc.chars().count() > budget_chars && groups.len() > 1 {
        // Merge the two neighbours with the closest cutoffs under the later one.
        let i = (0..groups.len() - 1).min_by_key(|&i| groups[i + 1].0 - groups[i].0).unwrap_or(0);
        let (_, earlier) = groups.remove(i);
        groups[i].1.extend(earlier);
        groups[i].1.sort_unstable();
        merged = true;
        doc = document(generation, &groups);
    }
    if doc.chars().count() > budget_chars
        && let Some((cutoff, _)) = groups.last().cloned()
    {
        // Too many users even in one statement: every session issued before the latest cutoff.
        groups = vec![(cutoff, Vec::new())];
        merged = true;
        doc = document(generation, &groups);
    }
    RevocationPolicy { statements: groups.len(), document: doc, generation, users, merged }
}

/// The generation of a rendered policy (from its marker statement), if it is one.
pub fn generation_of(document: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(document).ok()?;
    v["Statement"].as_array()?.iter().find_map(|s| s["Sid"].as_str()?.strip_prefix(GENERATION_SID)?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam_policy::{Decision, PolicyDocument};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(second: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap() + Duration::seconds(second)
    }

    fn r(user: &str, second: i64) -> SessionRevocation {
        SessionRevocation { source_identity: user.into(), cutoff: t(second) }
    }

    fn statements(policy: &RevocationPolicy) -> Vec<Value> {
        let v: Value = serde_json::from_str(&policy.document).unwrap();
        v["Statement"].as_array().unwrap().clone()
    }

    /// A revocation document as IAM reads it, for the conditions it uses: per deny statement, the
    /// users it names (`None`: everyone) and the issue times it denies before. Any other statement
    /// shape or condition fails the test, so a change to what [`render`] writes must come with a
    /// change to this oracle.
    struct Denials(Vec<Denial>);

    /// One deny statement: the users it names (`None`: everyone), and the issue times it denies
    /// sessions before (alternatives).
    type Denial = (Option<Vec<String>>, Vec<DateTime<Utc>>);

    impl Denials {
        fn read(document: &str) -> Self {
            let doc: Value = serde_json::from_str(document).expect("the document is JSON");
            assert_eq!(doc["Version"], "2012-10-17");
            let statements = doc["Statement"].as_array().expect("a statement list").iter().map(|s| {
                assert_eq!(
                    (&s["Effect"], &s["Action"], &s["Resource"]),
                    (&json!("Deny"), &json!("*"), &json!("*")),
                    "{s}"
                );
                let condition = s["Condition"].as_object().expect("every deny is conditional");
                let (mut users, mut before) = (None, Vec::new());
                for (op, keys) in condition {
                    for (key, values) in keys.as_object().expect("an operator maps keys to values") {
                        // IAM: the values of one key are alternatives; keys and operators must all hold.
                        let values: Vec<String> = match values {
                            Value::String(v) => vec![v.clone()],
                            Value::Array(vs) => {
                                vs.iter().map(|v| v.as_str().expect("string values").to_owned()).collect()
                            }
                            other => panic!("unexpected condition value {other}"),
                        };
                        match (op.as_str(), key.as_str()) {
                            ("DateLessThan", "aws:TokenIssueTime") => {
                                assert!(before.is_empty(), "one issue-time condition per statement");
                                before = values.iter().map(|v| v.parse().expect("an RFC 3339 date")).collect();
                            }
                            ("StringEquals", "aws:SourceIdentity") => users = Some(values),
                            other => panic!("a condition the oracle does not know: {other:?}"),
                        }
                    }
                }
                assert!(!before.is_empty(), "every deny is bounded by an issue time");
                (users, before)
            });
            Self(statements.collect())
        }

        /// Whether every action of a session of `user` issued at `issued` is denied.
        fn deny(&self, user: &str, issued: DateTime<Utc>) -> bool {
            self.0.iter().any(|(users, before)| {
                users.as_ref().is_none_or(|u| u.iter().any(|u| u == user)) && before.iter().any(|b| issued < *b)
            })
        }
    }

    /// STS names (`[A-Za-z0-9_+=,.@-]{2,64}`): short ones collide often, long ones fill the budget.
    fn source_identity() -> impl Strategy<Value = String> {
        prop_oneof!["u[a-e]{1,2}", "[A-Za-z0-9_+=,.@-]{2,64}"]
    }

    proptest! {
        #![proptest_config(crate::properties::config(128))]

        /// Every revoked user's sessions issued before their cutoff are denied, whatever merging the
        /// budget forces; the document stays within the budget whenever one statement can; and
        /// nobody else is denied, except in the documented last resort (one statement denying every
        /// session issued before the latest cutoff), which is used only when no list of users fits.
        #[test]
        fn revoked_users_stay_denied_and_nobody_else_is(
            revocations in prop::collection::vec((source_identity(), 0i64..7_500), 0..120),
            budget in prop_oneof![300usize..1_500, 1_500usize..=10_240],
            generation in any::<u64>(),
            other in "zz[a-z]{0,8}",
            probe in 0i64..7_500,
        ) {
            let (now, max_session) = (t(7_200), Duration::hours(1));
            let revocations: Vec<SessionRevocation> =
                revocations.into_iter().map(|(user, second)| SessionRevocation { source_identity: user, cutoff: t(second) }).collect();
            let p = render(&revocations, generation, now, max_session, budget);
            let size = p.document.chars().count();
            let d = Denials::read(&p.document);
            prop_assert_eq!(generation_of(&p.document), Some(generation));
            // No statement denies unconditionally: the policy never locks out the whole role.
            let parsed = PolicyDocument::parse(&serde_json::from_str(&p.document).expect("JSON")).expect("a policy");
            prop_assert_ne!(parsed.decide("s3:GetObject"), Decision::ExplicitDeny);

            let live: BTreeMap<&str, DateTime<Utc>> = revocations
                .iter()
                .filter(|r| r.cutoff + max_session > now)
                .map(|r| (r.source_identity.as_str(), revoked_until(&revocations, &r.source_identity).expect("revoked")))
                .collect();
            prop_assert_eq!(p.users, live.len());
            let Some(latest) = live.values().max().copied() else {
                prop_assert_eq!((p.statements, p.merged), (0, false));
                prop_assert!(!d.deny(&other, t(probe)));
                return Ok(());
            };
            // Within budget whenever the smallest possible document is.
            if document(generation, &[(latest, Vec::new())]).chars().count() <= budget {
                prop_assert!(size <= budget, "{} > {}", size, budget);
            }
            let mut everyone: Vec<&str> = live.keys().copied().collect();
            everyone.sort_unstable();
            let one_list_fits = document(generation, &[(latest, everyone)]).chars().count() <= budget;
            let last_resort = p.statements == 1 && !p.document.contains("aws:SourceIdentity");
            if one_list_fits {
                prop_assert!(!last_resort, "the last resort was used though one statement of users fits");
            }
            for (user, cutoff) in &live {
                // Denied up to their own cutoff: the second before it, and any earlier probe.
                prop_assert!(d.deny(user, *cutoff - Duration::seconds(1)), "{} not denied before {}", user, cutoff);
                if t(probe) < *cutoff {
                    prop_assert!(d.deny(user, t(probe)));
                }
                // Never past the latest cutoff; and without merging, exactly up to their own.
                prop_assert!(!d.deny(user, latest));
                if !p.merged {
                    prop_assert!(!d.deny(user, *cutoff));
                }
            }
            // Someone not revoked (or whose revocations were all pruned) is never denied, except
            // under the last resort, and then only for sessions issued before the latest cutoff.
            let pruned = revocations.iter().map(|r| r.source_identity.as_str()).find(|u| !live.contains_key(u));
            for bystander in std::iter::once(other.as_str()).chain(pruned).filter(|u| !live.contains_key(u)) {
                let denied = d.deny(bystander, t(probe));
                prop_assert_eq!(denied, last_resort && t(probe) < latest, "{} at {}", bystander, t(probe));
            }
        }
    }

    #[test]
    fn one_deny_per_cutoff_for_exactly_those_users() {
        let p = render(
            &[r("alice", 10), r("bob", 10), r("carol", 20), r("alice", 5)],
            7,
            t(30),
            Duration::hours(1),
            10_240,
        );
        assert_eq!((p.users, p.statements, p.merged, p.generation), (3, 2, false, 7));
        assert_eq!(generation_of(&p.document), Some(7));
        let st = statements(&p);
        assert_eq!(st[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"], "2000-01-01T00:00:00Z");
        assert_eq!(st[1]["Effect"], "Deny");
        assert_eq!(st[1]["Condition"]["StringEquals"]["aws:SourceIdentity"], json!(["alice", "bob"]));
        assert_eq!(st[1]["Condition"]["DateLessThan"]["aws:TokenIssueTime"], "2026-11-22T12:00:10Z");
        assert_eq!(st[2]["Condition"]["StringEquals"]["aws:SourceIdentity"], json!(["carol"]));
        assert!(!p.document.contains(' '), "minified");
    }

    #[test]
    fn cutoffs_round_up_to_the_next_second() {
        let at = t(10) + Duration::milliseconds(40);
        assert_eq!(cutoff_for(at), t(11));
        assert_eq!(cutoff_for(t(10)), t(10));
    }

    /// A session STS issued up to 5 minutes "after" the revocation by the worker's clock (STS's clock
    /// ahead) is still denied.
    #[test]
    fn revocation_cutoffs_allow_for_clock_skew() {
        let at = t(10) + Duration::milliseconds(40);
        assert_eq!(revocation_cutoff(at), t(311));
        let issued_by_sts = at + Duration::seconds(299);
        assert!(issued_by_sts < revocation_cutoff(at));
        assert_eq!(revoked_until(&[r("alice", 5), r("bob", 50), r("alice", 20)], "alice"), Some(t(20)));
        assert_eq!(revoked_until(&[r("bob", 50)], "alice"), None);
    }

    #[test]
    fn cutoffs_older_than_the_longest_session_are_pruned() {
        let p = render(&[r("alice", 0), r("bob", 3000)], 1, t(3700), Duration::hours(1), 10_240);
        assert_eq!(p.users, 1);
        assert!(!p.document.contains("alice"));
        assert_eq!(render(&[r("alice", 0)], 2, t(3600), Duration::hours(1), 10_240).statements, 0);
    }

    /// The budget holds this many one-user revocations at distinct seconds before statements merge
    /// (reported in the closing note), and past it nothing is ever denied less.
    #[test]
    fn the_budget_is_respected_by_merging_later_never_earlier() {
        let budget = 8_192;
        let users: Vec<SessionRevocation> = (0..200).map(|i| r(&format!("user-{i:04}@example.com"), i)).collect();
        let fits =
            (1..=200).take_while(|n| !render(&users[..*n], 1, t(500), Duration::hours(1), budget).merged).count();
        assert!(fits >= 40, "{fits} distinct-time revocations fit in {budget} characters");
        eprintln!("{fits} one-user revocations at distinct seconds fit in {budget} characters");
        let p = render(&users, 1, t(500), Duration::hours(1), budget);
        assert!(p.merged && p.document.chars().count() <= budget, "{}", p.document.len());
        assert_eq!(p.users, 200);
        // Every user is still denied, at a cutoff no earlier than their own.
        let st = statements(&p);
        for rev in &users {
            let covering = st.iter().skip(1).find(|s| {
                s["Condition"]["StringEquals"]["aws:SourceIdentity"]
                    .as_array()
                    .is_some_and(|u| u.iter().any(|u| u == rev.source_identity.as_str()))
            });
            let cutoff: DateTime<Utc> =
                covering.unwrap()["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str().unwrap().parse().unwrap();
            assert!(cutoff >= rev.cutoff);
        }
        // Same-second revocations share one statement: thousands of users fit.
        let same: Vec<SessionRevocation> = (0..600).map(|i| r(&format!("u{i}"), 1)).collect();
        let p = render(&same, 1, t(2), Duration::hours(1), budget);
        assert_eq!((p.statements, p.merged), (1, false));
        // Past any packing: one statement for every session before the latest cutoff.
        let huge: Vec<SessionRevocation> = (0..2000).map(|i| r(&format!("user-number-{i}"), 1)).collect();
        let p = render(&huge, 1, t(2), Duration::hours(1), budget);
        assert!(p.merged && p.document.chars().count() <= budget);
        assert!(statements(&p)[1]["Condition"].get("StringEquals").is_none());
    }
}
