//! GuardDuty: detectors and finding statistics (GuardDuty.1).

use portcullis_domain::posture::FindingCounts;

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// Detectors as (id, status).
    pub(super) async fn read_guardduty_detectors(&self) -> Result<Vec<(String, String)>, CollectError> {
        let ids = {
            let _p = self.permit().await;
            self.clients
                .guardduty
                .list_detectors()
                .send()
                .await
                .map_err(|e| classify("guardduty:ListDetectors", &e))?
                .detector_ids
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for id in ids {
            let _p = self.permit().await;
            let d = self
                .clients
                .guardduty
                .get_detector()
                .detector_id(&id)
                .send()
                .await
                .map_err(|e| classify("guardduty:GetDetector", &e))?;
            out.push((id, d.status.map(|s| s.as_str().to_owned()).unwrap_or_default()));
        }
        Ok(out)
    }

    /// Active (non-archived) findings of severity 7 and above, by band, from one
    /// `GetFindingsStatistics` call grouped by severity.
    pub(super) async fn read_guardduty_findings(&self, detector_id: &str) -> Result<FindingCounts, CollectError> {
        use aws_sdk_guardduty::types::{Condition, FindingCriteria, GroupByType};
        let criteria = FindingCriteria::builder()
            .criterion("service.archived", Condition::builder().equals("false").build())
            .criterion("severity", Condition::builder().greater_than_or_equal(7).build())
            .build();
        let _p = self.permit().await;
        let out = self
            .clients
            .guardduty
            .get_findings_statistics()
            .detector_id(detector_id)
            .finding_criteria(criteria)
            .group_by(GroupByType::Severity)
            .send()
            .await
            .map_err(|e| classify("guardduty:GetFindingsStatistics", &e))?;
        let mut counts = FindingCounts::default();
        if let Some(stats) = out.finding_statistics {
            for s in stats.grouped_by_severity() {
                counts.add(s.severity.unwrap_or(0.0), u64::try_from(s.total_findings.unwrap_or(0)).unwrap_or(0));
            }
            #[allow(deprecated)]
            if stats.grouped_by_severity().is_empty()
                && let Some(by) = stats.count_by_severity()
            {
                for (sev, n) in by {
                    counts.add(sev.parse().unwrap_or(0.0), u64::try_from(*n).unwrap_or(0));
                }
            }
        }
        Ok(counts)
    }
}
