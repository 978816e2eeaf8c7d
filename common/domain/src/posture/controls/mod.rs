//! Control evaluation: plain facts in, a [`ControlResult`] out. Pure: no I/O.
//!
//! One module per service family ([`cloudtrail`], [`guardduty`], [`iam`], [`kms`]); this one holds
//! what every control shares: the id, the status, the result, and the rule for resources that
//! could not be read.
//!
//! Control ids are AWS Security Hub's, so results line up with what auditors already know. Every
//! result is pass, fail or unknown; unknown always carries the reason (access denied, an API the
//! endpoint does not support, a throttled call), and is never reported as a pass.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

pub mod cloudtrail;
pub mod guardduty;
pub mod iam;
pub mod kms;

pub use self::cloudtrail::*;
pub use self::guardduty::*;
pub use self::iam::*;
pub use self::kms::*;

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
    pub(crate) fn describe(&self) -> String {
        format!("{}: {}", self.resource, self.reason)
    }
}

/// The verdict of a control that fails on any failing resource: fail when a readable resource
/// fails (naming the unreadable ones too), unknown when none fails but some could not be read,
/// else pass.
pub(crate) fn verdict(
    control: ControlId,
    mut failing: Vec<String>,
    unreadable: &[Unreadable],
    why: String,
) -> ControlResult {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_round_trip() {
        for c in ControlId::ALL {
            assert_eq!(ControlId::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }
}
