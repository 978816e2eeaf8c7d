//! Posture, the pure part: control definitions and their evaluation over plain facts, what a scan
//! reports, and which change event asks to rescan what. No I/O: the posture worker reads the facts and
//! stores the results.

pub mod controls;
pub mod events;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::AccountId;

pub use self::controls::{
    AccessKeyAge, AccessKeyFacts, ControlId, ControlResult, CredentialReport, FindingCounts, Findings, IamUserFacts,
    KmsKeyFacts, Status, TrailFacts, Unreadable, UserRead,
};

/// One account in one region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Scope {
    pub account_id: AccountId,
    pub region: String,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account_id, self.region)
    }
}

/// What to rescan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScanTarget {
    /// Every control of the scope (IAM ones too when it is the home region).
    Full,
    /// CloudTrail.1.
    CloudTrail,
    /// GuardDuty.1 and its findings.
    GuardDuty,
    /// IAM.3 for one user (a full IAM.3 sweep when no earlier sweep is known).
    AccessKeysOf(String),
    /// KMS.3 and KMS.4 for one key (a full KMS sweep when no earlier sweep is known).
    KmsKey(String),
    /// IAM.4 and IAM.9.
    Root,
}

impl ScanTarget {
    pub fn label(&self) -> &'static str {
        match self {
            ScanTarget::Full => "full",
            ScanTarget::CloudTrail => "CloudTrail.1",
            ScanTarget::GuardDuty => "GuardDuty.1",
            ScanTarget::AccessKeysOf(_) => "IAM.3",
            ScanTarget::KmsKey(_) => "KMS.4",
            ScanTarget::Root => "IAM.4",
        }
    }
}

/// What one scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    pub scope: Scope,
    /// (region the result belongs to, result). Global controls carry the home region.
    pub results: Vec<(String, ControlResult)>,
    /// Active findings when GuardDuty is enabled (counted, or unknown with the reason); `None`
    /// when GuardDuty was not measured or is not enabled.
    pub findings: Option<Findings>,
    /// (home region, oldest key) when IAM.3 was measured.
    pub key_age: Option<(String, AccessKeyAge)>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `scheduled`, `once`, or `event:<EventName>`.
    pub trigger: String,
}

impl ScanReport {
    pub fn result(&self, control: ControlId) -> Option<&ControlResult> {
        self.results.iter().map(|(_, r)| r).find(|r| r.control == control)
    }
}
