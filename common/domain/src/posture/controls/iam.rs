//! IAM controls: credentials of users (from the credential report, or read per user) and of the
//! root user.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{ControlId, ControlResult};

// ------------------------------------------------------------------ IAM users (IAM.3, IAM.5, IAM.22)

/// One IAM access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyFacts {
    pub user: String,
    /// `access_key_1`/`access_key_2` in the credential report, or the key id from ListAccessKeys.
    pub key: String,
    pub active: bool,
    /// When the key was created or last rotated.
    pub created: DateTime<Utc>,
    /// When it was last used (`None`: never, or unknown).
    #[serde(default)]
    pub last_used: Option<DateTime<Utc>>,
}

/// A user's console password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PasswordFacts {
    /// When it was set (`password_last_changed`, or the login profile's creation).
    pub set_at: Option<DateTime<Utc>>,
    /// When it was last used to sign in (`None`: never, or unknown).
    pub last_used: Option<DateTime<Utc>>,
}

/// One IAM user's credentials, from a row of the credential report or read for that user alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamUserFacts {
    pub user: String,
    /// When the user was created.
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    /// The console password, when the user has one.
    #[serde(default)]
    pub password: Option<PasswordFacts>,
    #[serde(default)]
    pub mfa_active: bool,
    pub access_keys: Vec<AccessKeyFacts>,
}

impl IamUserFacts {
    /// A user with nothing but a name (tests and fakes add what they need).
    pub fn named(user: &str) -> Self {
        Self { user: user.to_owned(), created: None, password: None, mfa_active: false, access_keys: Vec::new() }
    }
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

/// IAM.5: every user with a console password has an MFA device.
pub fn evaluate_console_mfa(users: &[IamUserFacts]) -> ControlResult {
    let mut without: Vec<String> =
        users.iter().filter(|u| u.password.is_some() && !u.mfa_active).map(|u| u.user.clone()).collect();
    without.sort();
    if without.is_empty() {
        return ControlResult::pass(ControlId::Iam5);
    }
    let n = without.len();
    ControlResult::fail(ControlId::Iam5, without, format!("{n} user(s) with a console password have no MFA device"))
}

/// IAM.22's threshold, in days (CIS 1.12: "unused for 45 days or greater").
pub const UNUSED_CREDENTIAL_DAYS: i64 = 45;

/// IAM.22: a console password or an active key fails when its last use (or, never used, its
/// creation) is [`UNUSED_CREDENTIAL_DAYS`] × 86,400 s ago or more: exactly 45 days fails, one second
/// less passes. Inactive keys and users without a password are ignored. A password with neither a
/// last use nor a creation time falls back to the user's creation time; with none of them it is not
/// judged.
pub fn evaluate_unused_credentials(users: &[IamUserFacts], now: DateTime<Utc>) -> ControlResult {
    let limit = Duration::days(UNUSED_CREDENTIAL_DAYS);
    let mut unused = Vec::new();
    for u in users {
        if let Some(p) = &u.password
            && let Some(since) = p.last_used.or(p.set_at).or(u.created)
            && now - since >= limit
        {
            unused.push(format!("{}/password", u.user));
        }
        for k in u.access_keys.iter().filter(|k| k.active) {
            if now - k.last_used.unwrap_or(k.created) >= limit {
                unused.push(format!("{}/{}", u.user, k.key));
            }
        }
    }
    unused.sort();
    if unused.is_empty() {
        return ControlResult::pass(ControlId::Iam22);
    }
    let n = unused.len();
    ControlResult::fail(
        ControlId::Iam22,
        unused,
        format!("{n} credential(s) unused for {UNUSED_CREDENTIAL_DAYS} days or more"),
    )
}

// ------------------------------------------------------------------ IAM.15 / IAM.16

/// The account password policy (`GetAccountPasswordPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PasswordPolicyFacts {
    pub minimum_length: Option<i32>,
    /// How many earlier passwords cannot be reused (absent: reuse allowed).
    pub reuse_prevention: Option<i32>,
}

/// IAM.15 (minimum length 14 or more) and IAM.16 (the last 24 passwords cannot be reused). `None`:
/// the account has no password policy, which fails both.
pub fn evaluate_password_policy(account: &str, policy: Option<&PasswordPolicyFacts>) -> (ControlResult, ControlResult) {
    let resource = || vec![format!("password-policy:{account}")];
    let Some(policy) = policy else {
        return (
            ControlResult::fail(ControlId::Iam15, resource(), "the account has no password policy"),
            ControlResult::fail(ControlId::Iam16, resource(), "the account has no password policy"),
        );
    };
    let length = match policy.minimum_length {
        Some(n) if n >= 14 => ControlResult::pass(ControlId::Iam15),
        n => ControlResult::fail(
            ControlId::Iam15,
            resource(),
            format!("the minimum password length is {} (14 or more required)", n.unwrap_or(0)),
        ),
    };
    let reuse = match policy.reuse_prevention {
        Some(n) if n >= 24 => ControlResult::pass(ControlId::Iam16),
        Some(n) => ControlResult::fail(
            ControlId::Iam16,
            resource(),
            format!("only the last {n} passwords cannot be reused (24 required)"),
        ),
        None => ControlResult::fail(ControlId::Iam16, resource(), "the password policy allows reusing passwords"),
    };
    (length, reuse)
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

// ------------------------------------------------------------------ CIS 1.13

/// CIS 1.13: no IAM user has more than one **active** access key (inactive ones do not count).
pub fn evaluate_one_active_key(users: &[IamUserFacts]) -> ControlResult {
    let mut failing: Vec<String> = users
        .iter()
        .filter(|u| u.access_keys.iter().filter(|k| k.active).count() > 1)
        .map(|u| u.user.clone())
        .collect();
    failing.sort();
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Cis3_1_13);
    }
    let n = failing.len();
    ControlResult::fail(ControlId::Cis3_1_13, failing, format!("{n} user(s) have more than one active access key"))
}

// ------------------------------------------------------------------ IAM.6

/// An assigned virtual MFA device (`ListVirtualMFADevices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMfaDevice {
    pub serial_number: String,
    /// The ARN of the user it is assigned to (the root user's is `arn:<partition>:iam::<account>:root`).
    pub user_arn: Option<String>,
}

impl VirtualMfaDevice {
    /// Assigned to the root user: its user is the account root, or its serial is the root's
    /// (`...:mfa/root-account-mfa-device`).
    pub fn is_roots(&self) -> bool {
        self.user_arn.as_deref().is_some_and(|a| a.ends_with(":root"))
            || self.serial_number.ends_with(":mfa/root-account-mfa-device")
    }
}

/// IAM.6: the root user has MFA (`AccountMFAEnabled` is 1) and it is not a virtual device (so it
/// is a hardware device: a FIDO key or a hardware TOTP token).
pub fn evaluate_root_hardware_mfa(mfa_enabled: i64, virtual_devices: &[VirtualMfaDevice]) -> ControlResult {
    let root = || vec!["root".to_owned()];
    if mfa_enabled <= 0 {
        return ControlResult::fail(ControlId::Iam6, root(), "the root user has no MFA device");
    }
    match virtual_devices.iter().find(|d| d.is_roots()) {
        Some(d) => ControlResult::fail(
            ControlId::Iam6,
            root(),
            format!("the root user's MFA is a virtual device ({}), not a hardware one", d.serial_number),
        ),
        None => ControlResult::pass(ControlId::Iam6),
    }
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
            last_used: None,
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
                last_used: None,
            }],
            ..IamUserFacts::named(name)
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
    fn console_users_need_mfa() {
        let user = |name: &str, password: bool, mfa: bool| IamUserFacts {
            password: password.then(PasswordFacts::default),
            mfa_active: mfa,
            ..IamUserFacts::named(name)
        };
        assert_eq!(evaluate_console_mfa(&[]).status, Status::Pass);
        let users = [user("api", false, false), user("alice", true, true), user("carol", true, false)];
        let r = evaluate_console_mfa(&users);
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec!["carol".to_owned()]));
        assert_eq!(evaluate_console_mfa(&users[..2]).status, Status::Pass);
    }

    #[test]
    fn credentials_unused_for_45_days_fail_at_exactly_45_days() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let days = |d: i64| now - Duration::days(d);
        let key = |name: &str, active: bool, created: DateTime<Utc>, used: Option<DateTime<Utc>>| AccessKeyFacts {
            user: name.into(),
            key: "access_key_1".into(),
            active,
            created,
            last_used: used,
        };
        let with_key =
            |k: AccessKeyFacts| IamUserFacts { access_keys: vec![k.clone()], ..IamUserFacts::named(&k.user) };
        let with_password = |name: &str, set_at: DateTime<Utc>, used: Option<DateTime<Utc>>| IamUserFacts {
            password: Some(PasswordFacts { set_at: Some(set_at), last_used: used }),
            ..IamUserFacts::named(name)
        };
        let just_under = now - Duration::days(45) + Duration::seconds(1);
        let cases = [
            ("used 45 days ago exactly", with_key(key("a", true, days(400), Some(days(45)))), Status::Fail),
            ("used a second under 45 days ago", with_key(key("a", true, days(400), Some(just_under))), Status::Pass),
            ("never used, created 45 days ago", with_key(key("a", true, days(45), None)), Status::Fail),
            ("never used, created 44 days ago", with_key(key("a", true, days(44), None)), Status::Pass),
            ("inactive and old", with_key(key("a", false, days(400), None)), Status::Pass),
            ("password used 46 days ago", with_password("p", days(400), Some(days(46))), Status::Fail),
            ("password used yesterday", with_password("p", days(400), Some(days(1))), Status::Pass),
            ("password never used, set 50 days ago", with_password("p", days(50), None), Status::Fail),
            ("password never used, set 10 days ago", with_password("p", days(10), None), Status::Pass),
            ("no credentials at all", IamUserFacts::named("nobody"), Status::Pass),
        ];
        for (what, user, expected) in cases {
            let r = evaluate_unused_credentials(std::slice::from_ref(&user), now);
            assert_eq!(r.status, expected, "{what}: {r:?}");
        }
        let r = evaluate_unused_credentials(
            &[with_password("p", days(50), None), with_key(key("a", true, days(50), None))],
            now,
        );
        assert_eq!(r.failing_resources, vec!["a/access_key_1", "p/password"]);
    }

    #[test]
    fn password_policy_boundaries() {
        let policy =
            |len: i32, reuse: Option<i32>| PasswordPolicyFacts { minimum_length: Some(len), reuse_prevention: reuse };
        let statuses = |p: Option<&PasswordPolicyFacts>| {
            let (a, b) = evaluate_password_policy("123456789012", p);
            (a.status, b.status)
        };
        assert_eq!(statuses(Some(&policy(14, Some(24)))), (Status::Pass, Status::Pass));
        assert_eq!(statuses(Some(&policy(13, Some(23)))), (Status::Fail, Status::Fail));
        assert_eq!(statuses(Some(&policy(64, None))), (Status::Pass, Status::Fail));
        assert_eq!(statuses(None), (Status::Fail, Status::Fail));
        let (length, _) = evaluate_password_policy("123456789012", Some(&policy(13, Some(24))));
        assert_eq!(length.failing_resources, vec!["password-policy:123456789012"]);
        assert!(length.reason.unwrap().contains("is 13"));
    }

    #[test]
    fn root_controls() {
        let (keys, mfa) = evaluate_root(0, 1);
        assert_eq!((keys.status, mfa.status), (Status::Pass, Status::Pass));
        let (keys, mfa) = evaluate_root(1, 0);
        assert_eq!((keys.status, mfa.status), (Status::Fail, Status::Fail));
    }

    #[test]
    fn one_active_key_per_user() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let key = |user: &str, n: u8, active: bool| AccessKeyFacts {
            user: user.into(),
            key: format!("access_key_{n}"),
            active,
            created: now,
            last_used: None,
        };
        let user =
            |name: &str, keys: Vec<AccessKeyFacts>| IamUserFacts { access_keys: keys, ..IamUserFacts::named(name) };
        let ok = [
            user("none", vec![]),
            user("one", vec![key("one", 1, true)]),
            user("rotating", vec![key("rotating", 1, true), key("rotating", 2, false)]),
        ];
        assert_eq!(evaluate_one_active_key(&ok).status, Status::Pass);
        let two = user("two", vec![key("two", 1, true), key("two", 2, true)]);
        let mut all = ok.to_vec();
        all.insert(0, two);
        let r = evaluate_one_active_key(&all);
        assert_eq!((r.status, r.failing_resources), (Status::Fail, vec!["two".to_owned()]));
    }

    #[test]
    fn root_mfa_must_be_hardware() {
        let virtual_root = VirtualMfaDevice {
            serial_number: "arn:aws:iam::123456789012:mfa/root-account-mfa-device".into(),
            user_arn: Some("arn:aws:iam::123456789012:root".into()),
        };
        let users = VirtualMfaDevice {
            serial_number: "arn:aws:iam::123456789012:mfa/alice".into(),
            user_arn: Some("arn:aws:iam::123456789012:user/alice".into()),
        };
        assert_eq!(evaluate_root_hardware_mfa(1, std::slice::from_ref(&users)).status, Status::Pass);
        assert_eq!(evaluate_root_hardware_mfa(1, &[]).status, Status::Pass);
        let r = evaluate_root_hardware_mfa(1, &[users.clone(), virtual_root.clone()]);
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.unwrap().contains("virtual"));
        // Identified by its serial alone too (AWS omits the user of some listings).
        let by_serial = VirtualMfaDevice { user_arn: None, ..virtual_root };
        assert_eq!(evaluate_root_hardware_mfa(1, &[by_serial]).status, Status::Fail);
        let r = evaluate_root_hardware_mfa(0, &[users]);
        assert_eq!((r.status, r.reason.as_deref()), (Status::Fail, Some("the root user has no MFA device")));
    }
}
