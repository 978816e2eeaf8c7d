//! Control evaluation: plain facts in, a [`ControlResult`] out. Pure: no I/O.
//!
//! Control ids are AWS Security Hub's, so results line up with what auditors already know. Every
//! result is pass, fail or unknown; unknown always carries the reason (access denied, an API the
//! endpoint does not support, a throttled call), and is never reported as a pass.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// A control Portcullis measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ControlId {
    #[serde(rename = "CloudTrail.1")]
    CloudTrail1,
    #[serde(rename = "GuardDuty.1")]
    GuardDuty1,
    #[serde(rename = "IAM.3")]
    Iam3,
    #[serde(rename = "IAM.4")]
    Iam4,
    #[serde(rename = "IAM.9")]
    Iam9,
    #[serde(rename = "KMS.3")]
    Kms3,
    #[serde(rename = "KMS.4")]
    Kms4,
}

impl ControlId {
    pub const ALL: [ControlId; 7] = [
        ControlId::CloudTrail1,
        ControlId::GuardDuty1,
        ControlId::Iam3,
        ControlId::Iam4,
        ControlId::Iam9,
        ControlId::Kms3,
        ControlId::Kms4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ControlId::CloudTrail1 => "CloudTrail.1",
            ControlId::GuardDuty1 => "GuardDuty.1",
            ControlId::Iam3 => "IAM.3",
            ControlId::Iam4 => "IAM.4",
            ControlId::Iam9 => "IAM.9",
            ControlId::Kms3 => "KMS.3",
            ControlId::Kms4 => "KMS.4",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ControlId::CloudTrail1 => "A multi-region trail logs read and write management events",
            ControlId::GuardDuty1 => "GuardDuty is enabled",
            ControlId::Iam3 => "Active access keys are rotated every 90 days or less",
            ControlId::Iam4 => "The root user has no access key",
            ControlId::Iam9 => "The root user has MFA",
            ControlId::Kms3 => "No customer managed key is pending deletion",
            ControlId::Kms4 => "Customer managed symmetric keys rotate",
        }
    }

    /// IAM is global: these are evaluated once per account, not per region.
    pub fn is_global(self) -> bool {
        matches!(self, ControlId::Iam3 | ControlId::Iam4 | ControlId::Iam9)
    }

    pub fn parse(s: &str) -> Option<Self> {
        ControlId::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for ControlId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pass, fail or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Unknown,
}

impl Status {
    /// The metric encoding: 1 pass, 0 fail, -1 unknown.
    pub fn gauge(self) -> i64 {
        match self {
            Status::Pass => 1,
            Status::Fail => 0,
            Status::Unknown => -1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

/// One control's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlResult {
    pub control: ControlId,
    pub status: Status,
    /// Failing resources (ARNs, key ids, user names). Logged and stored, never metric labels.
    pub failing_resources: Vec<String>,
    /// Why the control is failing or unknown, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For unknown: why it could not be measured (`access_denied`, `unsupported`, `throttled`,
    /// `not_found`, `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
}

impl ControlResult {
    pub fn pass(control: ControlId) -> Self {
        Self { control, status: Status::Pass, failing_resources: Vec::new(), reason: None, error_code: None }
    }

    pub fn fail(control: ControlId, failing: Vec<String>, reason: impl Into<String>) -> Self {
        Self {
            control,
            status: Status::Fail,
            failing_resources: failing,
            reason: Some(reason.into()),
            error_code: None,
        }
    }

    pub fn unknown(control: ControlId, error_code: ErrorCode, reason: impl Into<String>) -> Self {
        Self {
            control,
            status: Status::Unknown,
            failing_resources: Vec::new(),
            reason: Some(reason.into()),
            error_code: Some(error_code),
        }
    }
}

// ------------------------------------------------------------------ CloudTrail.1

/// What CloudTrail says about one trail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrailFacts {
    pub arn: String,
    pub is_multi_region: bool,
    pub is_logging: bool,
    pub latest_delivery_error: Option<String>,
    /// Management events recorded: read and write.
    pub management_read: bool,
    pub management_write: bool,
    /// Event sources excluded from management events (e.g. `kms.amazonaws.com`).
    pub excluded_sources: Vec<String>,
}

impl TrailFacts {
    fn healthy(&self) -> bool {
        self.is_multi_region
            && self.is_logging
            && self.latest_delivery_error.as_deref().is_none_or(str::is_empty)
            && self.management_read
            && self.management_write
            && self.excluded_sources.is_empty()
    }

    fn problem(&self) -> String {
        let mut p = Vec::new();
        if !self.is_multi_region {
            p.push("not multi-region".to_owned());
        }
        if !self.is_logging {
            p.push("not logging".to_owned());
        }
        if let Some(e) = self.latest_delivery_error.as_deref().filter(|e| !e.is_empty()) {
            p.push(format!("delivery error {e}"));
        }
        if !(self.management_read && self.management_write) {
            p.push("does not record read and write management events".to_owned());
        }
        if !self.excluded_sources.is_empty() {
            p.push(format!("excludes {}", self.excluded_sources.join(", ")));
        }
        format!("{}: {}", self.arn, p.join(", "))
    }
}

/// CloudTrail.1: at least one trail that is multi-region, logging without delivery errors, and
/// records read and write management events with no excluded event source.
pub fn evaluate_cloudtrail(trails: &[TrailFacts], unreadable: &[Unreadable]) -> ControlResult {
    if trails.iter().any(TrailFacts::healthy) {
        return ControlResult::pass(ControlId::CloudTrail1);
    }
    // One healthy trail is enough, so a trail that could not be read leaves the answer open.
    if let Some(first) = unreadable.first() {
        let which: Vec<String> = unreadable.iter().map(Unreadable::describe).collect();
        return ControlResult::unknown(
            ControlId::CloudTrail1,
            first.error_code,
            format!(
                "no readable trail is healthy and {} trail(s) could not be read ({})",
                which.len(),
                which.join("; ")
            ),
        );
    }
    if trails.is_empty() {
        return ControlResult::fail(ControlId::CloudTrail1, vec!["no trail".into()], "there is no trail");
    }
    let problems: Vec<String> = trails.iter().map(TrailFacts::problem).collect();
    ControlResult::fail(
        ControlId::CloudTrail1,
        trails.iter().map(|t| t.arn.clone()).collect(),
        format!("no healthy multi-region trail ({})", problems.join("; ")),
    )
}

/// A resource whose facts could not be read (a trail whose status or selectors are denied, for
/// example another account's organization trail; a KMS key whose policy denies `DescribeKey`). The
/// resources that could be read still decide a failure; an unreadable one only leaves a pass open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// ARN or id.
    pub resource: String,
    pub error_code: ErrorCode,
    pub reason: String,
}

impl Unreadable {
    fn describe(&self) -> String {
        format!("{}: {}", self.resource, self.reason)
    }
}

/// The verdict of a control that fails on any failing resource: fail when a readable resource
/// fails (naming the unreadable ones too), unknown when none fails but some could not be read,
/// else pass.
fn verdict(control: ControlId, mut failing: Vec<String>, unreadable: &[Unreadable], why: String) -> ControlResult {
    failing.sort();
    let unread = || {
        let which: Vec<String> = unreadable.iter().map(Unreadable::describe).collect();
        format!("{} could not be read ({})", which.len(), which.join("; "))
    };
    match unreadable.first() {
        _ if failing.is_empty() && unreadable.is_empty() => ControlResult::pass(control),
        None => ControlResult::fail(control, failing, why),
        Some(_) if !failing.is_empty() => {
            let why = format!("{why}; {}", unread());
            ControlResult::fail(control, failing, why)
        }
        Some(first) => {
            ControlResult::unknown(control, first.error_code, format!("no readable resource fails, but {}", unread()))
        }
    }
}

// ------------------------------------------------------------------ GuardDuty.1

/// Active (non-archived) findings by severity band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FindingCounts {
    /// Severity 7.0–8.9.
    pub high: u64,
    /// Severity 9.0–10.0.
    pub critical: u64,
}

impl FindingCounts {
    /// Add findings of `severity`.
    pub fn add(&mut self, severity: f64, count: u64) {
        if severity >= 9.0 {
            self.critical += count;
        } else if severity >= 7.0 {
            self.high += count;
        }
    }

    pub fn high_or_above(&self) -> u64 {
        self.high + self.critical
    }
}

/// GuardDuty.1: a detector in the region with status ENABLED (SUSPENDED or absent is off).
/// `detectors` are (detector id, status) pairs.
pub fn evaluate_guardduty(region: &str, detectors: &[(String, String)]) -> ControlResult {
    if detectors.iter().any(|(_, status)| status.eq_ignore_ascii_case("ENABLED")) {
        return ControlResult::pass(ControlId::GuardDuty1);
    }
    if detectors.is_empty() {
        return ControlResult::fail(
            ControlId::GuardDuty1,
            vec![format!("guardduty:{region}")],
            format!("GuardDuty has no detector in {region}"),
        );
    }
    ControlResult::fail(
        ControlId::GuardDuty1,
        detectors.iter().map(|(id, _)| id.clone()).collect(),
        format!(
            "GuardDuty detector in {region} is {}",
            detectors.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    )
}

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

// ------------------------------------------------------------------ KMS.3 / KMS.4

/// One KMS key, from `DescribeKey` (and `GetKeyRotationStatus` when it can rotate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKeyFacts {
    pub key_id: String,
    pub arn: String,
    /// `CUSTOMER` or `AWS`.
    pub manager: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
    /// `SYMMETRIC_DEFAULT`, `RSA_2048`, `HMAC_256`, ...
    pub spec: String,
    /// `AWS_KMS`, `EXTERNAL`, `AWS_CLOUDHSM`, `EXTERNAL_KEY_STORE`.
    pub origin: String,
    /// Rotation status, read only for keys that can rotate.
    pub rotation_enabled: Option<bool>,
}

impl KmsKeyFacts {
    /// Whether KMS.4 applies: customer managed, enabled, symmetric, AWS_KMS origin. Other keys
    /// (asymmetric, HMAC, imported, custom key store) cannot rotate automatically.
    pub fn can_rotate(&self) -> bool {
        self.manager == "CUSTOMER"
            && self.state == "Enabled"
            && self.spec == "SYMMETRIC_DEFAULT"
            && self.origin == "AWS_KMS"
    }
}

impl KmsKeyFacts {
    /// Whether KMS.3 fails: a customer managed key scheduled for deletion, including a multi-Region
    /// primary waiting for its replicas to be deleted first (`PendingReplicaDeletion`).
    pub fn pending_deletion(&self) -> bool {
        self.manager == "CUSTOMER" && matches!(self.state.as_str(), "PendingDeletion" | "PendingReplicaDeletion")
    }
}

/// KMS.4: every rotatable key has rotation on. KMS.3: no customer key is pending deletion. Keys
/// that could not be described still leave a failure of the others standing.
pub fn evaluate_kms(keys: &[KmsKeyFacts], unreadable: &[Unreadable]) -> (ControlResult, ControlResult) {
    let not_rotating: Vec<String> =
        keys.iter().filter(|k| k.can_rotate() && k.rotation_enabled != Some(true)).map(|k| k.arn.clone()).collect();
    let n = not_rotating.len();
    let rotation =
        verdict(ControlId::Kms4, not_rotating, unreadable, format!("{n} customer managed key(s) do not rotate"));
    let pending: Vec<String> = keys.iter().filter(|k| k.pending_deletion()).map(|k| k.arn.clone()).collect();
    let n = pending.len();
    let deletion =
        verdict(ControlId::Kms3, pending, unreadable, format!("{n} customer managed key(s) are pending deletion"));
    (rotation, deletion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn trail() -> TrailFacts {
        TrailFacts {
            arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into(),
            is_multi_region: true,
            is_logging: true,
            latest_delivery_error: None,
            management_read: true,
            management_write: true,
            excluded_sources: vec![],
        }
    }

    #[test]
    fn cloudtrail_needs_one_fully_healthy_trail() {
        assert_eq!(evaluate_cloudtrail(&[trail()], &[]).status, Status::Pass);
        assert_eq!(evaluate_cloudtrail(&[], &[]).status, Status::Fail);
        let broken: [(&str, TrailFacts); 5] = [
            ("not multi-region", TrailFacts { is_multi_region: false, ..trail() }),
            ("not logging", TrailFacts { is_logging: false, ..trail() }),
            ("delivery error", TrailFacts { latest_delivery_error: Some("AccessDenied".into()), ..trail() }),
            ("read and write", TrailFacts { management_read: false, ..trail() }),
            ("excludes", TrailFacts { excluded_sources: vec!["kms.amazonaws.com".into()], ..trail() }),
        ];
        for (why, t) in broken {
            let r = evaluate_cloudtrail(std::slice::from_ref(&t), &[]);
            assert_eq!(r.status, Status::Fail, "{why}");
            assert!(r.reason.as_deref().unwrap().contains(why), "{why}: {:?}", r.reason);
            assert_eq!(r.failing_resources, vec![t.arn.clone()]);
            // One healthy trail among broken ones is enough.
            assert_eq!(evaluate_cloudtrail(&[t, trail()], &[]).status, Status::Pass);
        }
        let empty_error = TrailFacts { latest_delivery_error: Some(String::new()), ..trail() };
        assert_eq!(evaluate_cloudtrail(&[empty_error], &[]).status, Status::Pass);

        // A trail that cannot be read: unknown unless another trail is healthy; never a silent pass.
        let org_trail = Unreadable {
            resource: "arn:aws:cloudtrail:us-east-1:999999999999:trail/org".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "cloudtrail:GetTrailStatus: AccessDenied".into(),
        };
        let stopped = TrailFacts { is_logging: false, ..trail() };
        let r = evaluate_cloudtrail(std::slice::from_ref(&stopped), std::slice::from_ref(&org_trail));
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
        assert!(r.reason.as_deref().unwrap().contains("trail/org"), "{:?}", r.reason);
        assert_eq!(evaluate_cloudtrail(&[trail()], std::slice::from_ref(&org_trail)).status, Status::Pass);
    }

    #[test]
    fn guardduty_needs_an_enabled_detector() {
        assert_eq!(evaluate_guardduty("eu-west-1", &[("d1".into(), "ENABLED".into())]).status, Status::Pass);
        let none = evaluate_guardduty("eu-west-1", &[]);
        assert_eq!(none.status, Status::Fail);
        assert!(none.reason.unwrap().contains("eu-west-1"));
        assert_eq!(evaluate_guardduty("eu-west-1", &[("d1".into(), "DISABLED".into())]).status, Status::Fail);
    }

    #[test]
    fn severity_bands() {
        let mut c = FindingCounts::default();
        for (s, n) in [(2.0, 5), (6.9, 1), (7.0, 1), (8.9, 2), (9.0, 3), (10.0, 1)] {
            c.add(s, n);
        }
        assert_eq!(c, FindingCounts { high: 3, critical: 4 });
        assert_eq!(c.high_or_above(), 7);
    }

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

    #[test]
    fn only_rotatable_keys_count_for_kms4() {
        let key = |id: &str, spec: &str, origin: &str, state: &str, rotation: Option<bool>| KmsKeyFacts {
            key_id: id.into(),
            arn: format!("arn:aws:kms:us-east-1:123456789012:key/{id}"),
            manager: "CUSTOMER".into(),
            state: state.into(),
            spec: spec.into(),
            origin: origin.into(),
            rotation_enabled: rotation,
        };
        let keys = vec![
            key("ok", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", Some(true)),
            key("norot", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", Some(false)),
            key("rsa", "RSA_2048", "AWS_KMS", "Enabled", None),
            key("hmac", "HMAC_256", "AWS_KMS", "Enabled", None),
            key("imported", "SYMMETRIC_DEFAULT", "EXTERNAL", "Enabled", None),
            key("disabled", "SYMMETRIC_DEFAULT", "AWS_KMS", "Disabled", Some(false)),
            key("dying", "SYMMETRIC_DEFAULT", "AWS_KMS", "PendingDeletion", None),
            // A multi-Region primary scheduled for deletion while its replicas remain.
            key("mrk-dying", "SYMMETRIC_DEFAULT", "AWS_KMS", "PendingReplicaDeletion", None),
            KmsKeyFacts { manager: "AWS".into(), ..key("aws", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", Some(false)) },
        ];
        let (rotation, deletion) = evaluate_kms(&keys, &[]);
        assert_eq!(rotation.status, Status::Fail);
        assert_eq!(rotation.failing_resources, vec!["arn:aws:kms:us-east-1:123456789012:key/norot"]);
        assert_eq!(
            deletion.failing_resources,
            vec!["arn:aws:kms:us-east-1:123456789012:key/dying", "arn:aws:kms:us-east-1:123456789012:key/mrk-dying"]
        );
        let (rotation, deletion) = evaluate_kms(&keys[..1], &[]);
        assert_eq!((rotation.status, deletion.status), (Status::Pass, Status::Pass));
        // A key that cannot be described leaves the others' failures standing, and a pass open.
        let denied = Unreadable {
            resource: "k-denied".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "kms:DescribeKey: AccessDeniedException".into(),
        };
        let (rotation, deletion) = evaluate_kms(&keys, std::slice::from_ref(&denied));
        assert_eq!((rotation.status, deletion.status), (Status::Fail, Status::Fail));
        assert!(rotation.reason.unwrap().contains("k-denied"));
        let (rotation, _) = evaluate_kms(&keys[..1], std::slice::from_ref(&denied));
        assert_eq!((rotation.status, rotation.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
    }

    #[test]
    fn control_ids_round_trip() {
        for c in ControlId::ALL {
            assert_eq!(ControlId::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }
}
