//! IAM controls: credentials of users (from the credential report, or read per user) and of the
//! root user.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{ControlId, ControlResult};

// ------------------------------------------------------------------ IAM users (IAM.3)

/// One IAM access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyFacts {
    pub user: String,
    /// `access_key_1`/`access_key_2` in the credential report, or the key id from ListAccessKeys.
    pub key: String,
    pub active: bool,
    /// When the key was created or last rotated.
    pub created: DateTime<Utc>,
}

/// One IAM user's credentials, from a row of the credential report or read for that user alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamUserFacts {
    pub user: String,
    pub access_keys: Vec<AccessKeyFacts>,
}

/// The IAM credential report: every user's credentials as of `generated_at`. AWS reuses a report
/// for up to [`CREDENTIAL_REPORT_MAX_AGE`], so it can be hours older than the scan that reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialReport {
    pub generated_at: DateTime<Utc>,
    pub users: Vec<IamUserFacts>,
}

/// How long AWS serves the same credential report (`GenerateCredentialReport` regenerates it only
/// when it is older).
pub const CREDENTIAL_REPORT_MAX_AGE: Duration = Duration::hours(4);

/// One user's credentials read on their own (after a change event), at `read_at`. `facts` is
/// `None` when the user no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRead {
    pub user: String,
    pub read_at: DateTime<Utc>,
    pub facts: Option<IamUserFacts>,
}

impl UserRead {
    /// Whether this read is newer than `report` and still younger than any report AWS could serve
    /// at `now` (after [`CREDENTIAL_REPORT_MAX_AGE`] a newer report exists, whatever its
    /// `generated_at` says).
    pub fn supersedes(&self, report: &CredentialReport, now: DateTime<Utc>) -> bool {
        self.read_at > report.generated_at && now - self.read_at <= CREDENTIAL_REPORT_MAX_AGE
    }
}

/// The users as best known at `now`: the report's rows, except that a user read on their own after
/// the report was generated keeps what that read saw (keys deactivated, reactivated, deleted or
/// created since), until a newer report. The latest read of a user wins. Sorted by user.
pub fn current_users(report: &CredentialReport, reads: &[UserRead], now: DateTime<Utc>) -> Vec<IamUserFacts> {
    let mut users: std::collections::BTreeMap<&str, &IamUserFacts> =
        report.users.iter().map(|u| (u.user.as_str(), u)).collect();
    let mut latest: std::collections::BTreeMap<&str, &UserRead> = std::collections::BTreeMap::new();
    for read in reads.iter().filter(|r| r.supersedes(report, now)) {
        let slot = latest.entry(read.user.as_str()).or_insert(read);
        if read.read_at > slot.read_at {
            *slot = read;
        }
    }
    for (user, read) in latest {
        match &read.facts {
            Some(facts) => users.insert(user, facts),
            None => users.remove(user),
        };
    }
    users.into_values().cloned().collect()
}

/// IAM.3 verdict plus the oldest active key.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeyAge {
    pub result: ControlResult,
    /// Creation time of the oldest active key, if any key is active.
    pub oldest_active_created: Option<DateTime<Utc>>,
    /// Age in whole days of the oldest active key (0 when there is none).
    pub max_age_days: i64,
}

/// IAM.3 over users: every user's keys, see [`evaluate_access_keys`].
pub fn evaluate_user_access_keys(users: &[IamUserFacts], now: DateTime<Utc>, max_age_days: u64) -> AccessKeyAge {
    let keys: Vec<AccessKeyFacts> = users.iter().flat_map(|u| u.access_keys.iter().cloned()).collect();
    evaluate_access_keys(&keys, now, max_age_days)
}

/// IAM.3: an active key fails when it is *older than* `max_age_days` days: a key exactly 90 days
/// (90 × 86,400 s) old still passes; one second more fails. Inactive keys never fail.
pub fn evaluate_access_keys(keys: &[AccessKeyFacts], now: DateTime<Utc>, max_age_days: u64) -> AccessKeyAge {
    let limit = Duration::days(i64::try_from(max_age_days).unwrap_or(i64::MAX / 86_400));
    let active: Vec<&AccessKeyFacts> = keys.iter().filter(|k| k.active).collect();
    let oldest = active.iter().map(|k| k.created).min();
    let mut stale: Vec<String> =
        active.iter().filter(|k| now - k.created > limit).map(|k| format!("{}/{}", k.user, k.key)).collect();
    stale.sort();
    let oldest_days = oldest.map(|c| (now - c).num_days().max(0)).unwrap_or(0);
    let result = if stale.is_empty() {
        ControlResult::pass(ControlId::Iam3)
    } else {
        let n = stale.len();
        ControlResult::fail(
            ControlId::Iam3,
            stale,
            format!("{n} active access key(s) older than {max_age_days} days (the oldest is {oldest_days} days old)"),
        )
    };
    AccessKeyAge { result, oldest_active_created: oldest, max_age_days: oldest_days }
}

// ------------------------------------------------------------------ IAM.4 / IAM.9

/// IAM.4 and IAM.9 from `GetAccountSummary` (`AccountAccessKeysPresent`, `AccountMFAEnabled`).
pub fn evaluate_root(access_keys_present: i64, mfa_enabled: i64) -> (ControlResult, ControlResult) {
    let keys = if access_keys_present > 0 {
        ControlResult::fail(ControlId::Iam4, vec!["root".into()], "the root user has an access key")
    } else {
        ControlResult::pass(ControlId::Iam4)
    };
    let mfa = if mfa_enabled > 0 {
        ControlResult::pass(ControlId::Iam9)
    } else {
        ControlResult::fail(ControlId::Iam9, vec!["root".into()], "the root user has no MFA device")
    };
    (keys, mfa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;
    use chrono::TimeZone;
    #[test]
    fn access_key_boundary_is_ninety_days() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let key = |user: &str, age: Duration, active: bool| AccessKeyFacts {
            user: user.into(),
            key: "access_key_1".into(),
            active,
            created: now - age,
        };
        let exactly = evaluate_access_keys(&[key("a", Duration::days(90), true)], now, 90);
        assert_eq!(exactly.result.status, Status::Pass);
        assert_eq!(exactly.max_age_days, 90);
        let over = evaluate_access_keys(&[key("a", Duration::days(90) + Duration::seconds(1), true)], now, 90);
        assert_eq!(over.result.status, Status::Fail);
        assert_eq!(over.result.failing_resources, vec!["a/access_key_1"]);
        let inactive = evaluate_access_keys(&[key("a", Duration::days(400), false)], now, 90);
        assert_eq!(inactive.result.status, Status::Pass);
        assert_eq!(inactive.max_age_days, 0);
        assert_eq!(inactive.oldest_active_created, None);
        let mixed =
            evaluate_access_keys(&[key("a", Duration::days(10), true), key("b", Duration::days(100), true)], now, 90);
        assert_eq!(mixed.oldest_active_created, Some(now - Duration::days(100)));
        assert_eq!(mixed.result.failing_resources, vec!["b/access_key_1"]);
        assert_eq!(
            mixed.result.reason.as_deref(),
            Some("1 active access key(s) older than 90 days (the oldest is 100 days old)")
        );
    }

    #[test]
    fn user_reads_after_the_report_win_until_a_newer_report() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let user = |name: &str, active: bool| IamUserFacts {
            user: name.into(),
            access_keys: vec![AccessKeyFacts {
                user: name.into(),
                key: "access_key_1".into(),
                active,
                created: now - Duration::days(100),
            }],
        };
        let report = CredentialReport {
            generated_at: now - Duration::hours(1),
            users: vec![user("alice", true), user("bob", true), user("carol", false)],
        };
        let read = |name: &str, ago: Duration, facts: Option<IamUserFacts>| UserRead {
            user: name.into(),
            read_at: now - ago,
            facts,
        };
        let reads = vec![
            // bob deactivated his key after the report; an older read of bob does not count.
            read("bob", Duration::minutes(30), Some(user("bob", false))),
            read("bob", Duration::minutes(50), Some(user("bob", true))),
            // carol's key was reactivated, but that read is older than the report.
            read("carol", Duration::hours(2), Some(user("carol", true))),
            // alice was deleted; dave was created with an old key (an imported user, say).
            read("alice", Duration::minutes(10), None),
            read("dave", Duration::minutes(5), Some(user("dave", true))),
        ];
        let current = current_users(&report, &reads, now);
        let names: Vec<(&str, bool)> = current.iter().map(|u| (u.user.as_str(), u.access_keys[0].active)).collect();
        assert_eq!(names, vec![("bob", false), ("carol", false), ("dave", true)]);
        let iam3 = evaluate_user_access_keys(&current, now, 90);
        assert_eq!(iam3.result.failing_resources, vec!["dave/access_key_1"]);

        // A newer report wins over every older read.
        let newer = CredentialReport { generated_at: now - Duration::minutes(1), ..report.clone() };
        assert_eq!(current_users(&newer, &reads, now), newer.users);
        // After 4 hours AWS has a newer report, whatever generated_at says (moto's is fixed).
        let later = now + CREDENTIAL_REPORT_MAX_AGE;
        assert_eq!(current_users(&report, &reads, later), report.users);
    }

    #[test]
    fn root_controls() {
        let (keys, mfa) = evaluate_root(0, 1);
        assert_eq!((keys.status, mfa.status), (Status::Pass, Status::Pass));
        let (keys, mfa) = evaluate_root(1, 0);
        assert_eq!((keys.status, mfa.status), (Status::Fail, Status::Fail));
    }
}
