//! Control evaluation: plain facts in, a [`ControlResult`] out. Pure: no I/O.
//!
//! One module per service family ([`account`], [`cloudtrail`], [`config`], [`ec2`], [`guardduty`], [`iam`],
//! [`iam_policies`], [`iam_extras`] (server certificates, Access Analyzer), [`kms`], [`monitoring`], [`rds`] (with EFS), [`s3`]); this one holds what every control shares:
//! the status, the result, and the rule for resources that could not be read. The controls
//! themselves are listed in the [catalog](crate::posture::catalog).
//!
//! Control ids are AWS Security Hub's, so results line up with what auditors already know (a CIS
//! recommendation Security Hub does not check is `CIS3-<number>`). Every
//! result is pass, fail or unknown; unknown always carries the reason (access denied, an API the
//! endpoint does not support, a throttled call), and is never reported as a pass.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
pub use crate::posture::catalog::ControlId;

pub mod account;
pub mod cloudtrail;
pub mod config;
pub mod ec2;
pub mod guardduty;
pub mod iam;
pub mod iam_extras;
pub mod iam_policies;
pub mod kms;
pub mod monitoring;
pub mod rds;
pub mod s3;

pub use self::account::*;
pub use self::cloudtrail::*;
pub use self::config::*;
pub use self::ec2::*;
pub use self::guardduty::*;
pub use self::iam::*;
pub use self::iam_extras::*;
pub use self::iam_policies::*;
pub use self::kms::*;
pub use self::monitoring::*;
pub use self::rds::*;
pub use self::s3::*;

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
