//! Posture, the pure part: the control catalog, each control's evaluation over plain facts, what a
//! scan reports, and which change event asks to rescan what. No I/O: the posture worker reads the
//! facts and stores the results.
//!
//! - [`catalog`]: every control's metadata and change events, and the stack's EventBridge rules.
//! - [`controls`]: the evaluations, one module per service family.
//! - [`events`]: EventBridge events → the scope and [`ScanTarget`] to rescan.
//! - [`generated`]: what the catalog generates in the stack, the docs and the dashboard.

pub mod catalog;
pub mod controls;
pub mod events;
pub mod generated;

use std::collections::BTreeSet;

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
    /// Every control of the scope (account-wide ones too when it is the home region).
    Full,
    /// These controls, read in full.
    Controls(BTreeSet<ControlId>),
    /// The per-user IAM controls (IAM.3, IAM.5, IAM.22, CIS 1.13) with this user read afresh (a full read of
    /// the credential report first when none is recent).
    User(String),
    /// KMS.3 and KMS.4 with this key read afresh (a full KMS sweep when none is recent).
    KmsKey(String),
}

impl ScanTarget {
    /// Whole controls.
    pub fn controls(ids: impl IntoIterator<Item = ControlId>) -> Self {
        ScanTarget::Controls(ids.into_iter().collect())
    }

    /// The controls this target measures in a scope (`home`: the account's home region, where the
    /// account-wide controls live).
    pub fn measures(&self, home: bool) -> BTreeSet<ControlId> {
        use self::catalog::Rescan;
        let applies = |c: &ControlId| home || !c.is_global();
        let with = |rescan: Rescan| ControlId::ALL.iter().copied().filter(|c| c.spec().rescan == rescan).collect();
        let all: BTreeSet<ControlId> = match self {
            ScanTarget::Full => ControlId::ALL.iter().copied().collect(),
            ScanTarget::Controls(ids) => ids.clone(),
            ScanTarget::User(_) => with(Rescan::User),
            ScanTarget::KmsKey(_) => with(Rescan::Key),
        };
        all.into_iter().filter(applies).collect()
    }

    /// Whether every control it measures is account-wide (measured in the home region).
    pub fn is_global(&self) -> bool {
        let controls = self.measures(true);
        !controls.is_empty() && controls.iter().all(|c| c.is_global())
    }

    /// A bounded label for metrics: `full`, or the service family (`IAM`, `EC2`, `CloudTrail`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            ScanTarget::Full => "full",
            other => other.measures(true).first().map(|c| c.family()).unwrap_or("none"),
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
