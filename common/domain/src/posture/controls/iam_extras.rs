//! IAM.26 (expired server certificates stored in IAM) and IAM.28 (an IAM Access Analyzer external
//! access analyzer in every region).

use chrono::{DateTime, Utc};

use super::{ControlId, ControlResult, Unreadable, verdict};

/// One server certificate stored in IAM, with the end of its validity read from the certificate
/// itself (`notAfter`), not from IAM's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertificateFacts {
    pub arn: String,
    pub not_after: DateTime<Utc>,
}

/// IAM.26: no server certificate stored in IAM has expired (`notAfter` before `now`). A certificate
/// whose body could not be read or parsed leaves the control unknown unless another one fails. No
/// certificate: pass.
pub fn evaluate_server_certificates(
    certificates: &[ServerCertificateFacts],
    unreadable: &[Unreadable],
    now: DateTime<Utc>,
) -> ControlResult {
    let failing: Vec<String> = certificates.iter().filter(|c| c.not_after < now).map(|c| c.arn.clone()).collect();
    let n = failing.len();
    verdict(ControlId::Iam26, failing, unreadable, format!("{n} server certificate(s) stored in IAM have expired"))
}

/// One IAM Access Analyzer analyzer, as `ListAnalyzers` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzerFacts {
    pub arn: String,
    /// `ACCOUNT`, `ORGANIZATION` (external access), or another kind (unused or internal access).
    pub analyzer_type: String,
    /// `ACTIVE`, `CREATING`, `DISABLED` or `FAILED`.
    pub status: String,
}

/// IAM.28: the region has an external access analyzer (type `ACCOUNT` or `ORGANIZATION`) that is
/// `ACTIVE`. Unused-access and internal-access analyzers do not count.
pub fn evaluate_access_analyzer(account: &str, region: &str, analyzers: &[AnalyzerFacts]) -> ControlResult {
    let external = |a: &&AnalyzerFacts| matches!(a.analyzer_type.as_str(), "ACCOUNT" | "ORGANIZATION");
    if analyzers.iter().filter(external).any(|a| a.status == "ACTIVE") {
        return ControlResult::pass(ControlId::Iam28);
    }
    let inactive: Vec<String> =
        analyzers.iter().filter(external).map(|a| format!("{} is {}", a.arn, a.status)).collect();
    let why = if inactive.is_empty() {
        format!("{region} has no IAM Access Analyzer external access analyzer")
    } else {
        format!("{region} has no active external access analyzer ({})", inactive.join("; "))
    };
    ControlResult::fail(ControlId::Iam28, vec![format!("access-analyzer:{account}:{region}")], why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::posture::controls::Status;
    use chrono::TimeZone;

    #[test]
    fn an_expired_certificate_fails_and_an_unreadable_one_is_unknown() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let cert = |name: &str, not_after: DateTime<Utc>| ServerCertificateFacts {
            arn: format!("arn:aws:iam::123456789012:server-certificate/{name}"),
            not_after,
        };
        let valid = cert("valid", Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        let expired = cert("expired", Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap());
        assert_eq!(evaluate_server_certificates(&[], &[], now).status, Status::Pass);
        assert_eq!(evaluate_server_certificates(std::slice::from_ref(&valid), &[], now).status, Status::Pass);
        let r = evaluate_server_certificates(&[valid.clone(), expired], &[], now);
        assert_eq!((r.control, r.status), (ControlId::Iam26, Status::Fail));
        assert_eq!(r.failing_resources, vec!["arn:aws:iam::123456789012:server-certificate/expired"]);
        let garbled = Unreadable {
            resource: "arn:aws:iam::123456789012:server-certificate/garbled".into(),
            error_code: ErrorCode::ReadFailed,
            reason: "not a PEM X.509 certificate".into(),
        };
        let r = evaluate_server_certificates(&[valid], &[garbled], now);
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::ReadFailed)));
    }

    #[test]
    fn only_an_active_external_analyzer_passes() {
        let analyzer = |kind: &str, status: &str| AnalyzerFacts {
            arn: format!("arn:aws:access-analyzer:eu-west-1:1:analyzer/{kind}"),
            analyzer_type: kind.into(),
            status: status.into(),
        };
        assert_eq!(evaluate_access_analyzer("1", "eu-west-1", &[analyzer("ACCOUNT", "ACTIVE")]).status, Status::Pass);
        assert_eq!(
            evaluate_access_analyzer("1", "eu-west-1", &[analyzer("ORGANIZATION", "ACTIVE")]).status,
            Status::Pass
        );
        let none = evaluate_access_analyzer("1", "eu-west-1", &[analyzer("ACCOUNT_UNUSED_ACCESS", "ACTIVE")]);
        assert_eq!(none.status, Status::Fail);
        assert_eq!(none.failing_resources, vec!["access-analyzer:1:eu-west-1"]);
        assert!(none.reason.unwrap().contains("no IAM Access Analyzer external access analyzer"));
        let disabled = evaluate_access_analyzer("1", "eu-west-1", &[analyzer("ACCOUNT", "DISABLED")]);
        assert!(disabled.reason.unwrap().contains("analyzer/ACCOUNT is DISABLED"));
        assert_eq!(evaluate_access_analyzer("1", "eu-west-1", &[]).status, Status::Fail);
    }
}
