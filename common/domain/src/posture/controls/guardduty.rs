//! GuardDuty.1 and finding counts.

use serde::{Deserialize, Serialize};

use super::{ControlId, ControlResult};
use crate::error::ErrorCode;

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

/// The active findings of a region where GuardDuty is enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Findings {
    /// Counted by severity band.
    Counted(FindingCounts),
    /// The statistics could not be read: the findings part of GuardDuty.1 is unknown (the detector
    /// part still decides the control's status).
    Unknown { error_code: ErrorCode, reason: String },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

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
}
