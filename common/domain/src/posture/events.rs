//! EventBridge change events → which control to rescan where. Pure: no I/O.
//!
//! The stack's rules put CloudTrail API-call events and GuardDuty findings of severity 7 or more on
//! the posture queue. Which controls an event rescans is the [catalog](super::catalog)'s say; this
//! module finds the event's scope and narrows the rescan to the user or key it names. Delivery is
//! at-least-once and unordered, so an event only says *what to re-read*, never what the new state is.

use serde_json::Value;

use super::ScanTarget;
use super::catalog::{Rescan, controls_for_api_call, controls_for_findings, knows_event_source};
use crate::ids::AccountId;

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub account_id: AccountId,
    /// The event's region. IAM events arrive in us-east-1; the caller maps them to the home region.
    pub region: String,
    /// `source` of the event, e.g. `aws.cloudtrail`.
    pub source: String,
    /// The API call, or `GuardDuty Finding`.
    pub event_name: String,
    pub target: ScanTarget,
}

/// Why an event was not understood (kept in the dead-letter queue with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnrecognisedEvent(pub String);

/// The parse result: a trigger, or an event to drop on purpose (sample findings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Rescan(Trigger),
    /// Understood and deliberately ignored, with the reason.
    Ignored {
        source: String,
        event_name: String,
        why: &'static str,
    },
}

/// Parse one EventBridge event delivered to SQS. An event without `account` (moto omits it) is
/// attributed to the CloudTrail record's `recipientAccountId`, the finding's `accountId`, or else
/// `default_account`: the account whose bus and rules delivered it.
pub fn parse_event(body: &str, default_account: Option<&AccountId>) -> Result<Parsed, UnrecognisedEvent> {
    let v: Value = serde_json::from_str(body).map_err(|e| UnrecognisedEvent(format!("not JSON: {e}")))?;
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let source = text("/source").ok_or_else(|| UnrecognisedEvent("no `source`: not an EventBridge event".into()))?;
    let detail_type = text("/detail-type").unwrap_or_default();
    let account_id = text("/account")
        .or_else(|| text("/detail/recipientAccountId"))
        .or_else(|| text("/detail/accountId"))
        .or_else(|| default_account.map(AccountId::to_string))
        .ok_or_else(|| UnrecognisedEvent("no `account`".into()))?;
    let account_id = AccountId::parse(&account_id)
        .map_err(|_| UnrecognisedEvent(format!("account `{account_id:.40}` is not a 12-digit account id")))?;
    let region = text("/region").ok_or_else(|| UnrecognisedEvent("no `region`".into()))?;

    if source == "aws.guardduty" && detail_type == "GuardDuty Finding" {
        let sample = v.pointer("/detail/service/additionalInfo/sample").and_then(Value::as_bool).unwrap_or(false)
            || v.pointer("/detail/service/additionalInfo/sample").and_then(Value::as_str) == Some("true");
        let event_name = "GuardDuty Finding".to_owned();
        if sample {
            return Ok(Parsed::Ignored { source, event_name, why: "sample finding" });
        }
        let target = ScanTarget::Controls(controls_for_findings());
        return Ok(Parsed::Rescan(Trigger { account_id, region, source, event_name, target }));
    }
    if detail_type != "AWS API Call via CloudTrail" {
        return Err(UnrecognisedEvent(format!("detail-type `{detail_type}` from `{source}` is not handled")));
    }
    let event_source = text("/detail/eventSource").unwrap_or_default();
    let event_name = text("/detail/eventName").ok_or_else(|| UnrecognisedEvent("no `detail.eventName`".into()))?;
    if !knows_event_source(&event_source) {
        return Err(UnrecognisedEvent(format!("eventSource `{event_source}` is not handled")));
    }
    let controls = controls_for_api_call(&event_source, &event_name);
    if controls.is_empty() {
        return Err(UnrecognisedEvent(format!("`{event_name}` from `{event_source}` rescans no control")));
    }
    let rescans = |r: Rescan| controls.iter().any(|c| c.spec().rescan == r);
    let target = if rescans(Rescan::User) || rescans(Rescan::RootUser) {
        // A call without `userName` acts on the caller itself; for the root user that is the root
        // user's own credentials (IAM.4, IAM.9).
        let named = text("/detail/requestParameters/userName");
        let root = text("/detail/userIdentity/type").as_deref() == Some("Root");
        let for_root: std::collections::BTreeSet<_> =
            controls.iter().copied().filter(|c| c.spec().rescan == Rescan::RootUser).collect();
        match (named, root) {
            (None, true) if !for_root.is_empty() => ScanTarget::Controls(for_root),
            (Some(user), _) if rescans(Rescan::User) => ScanTarget::User(user),
            (None, false) if rescans(Rescan::User) => match text("/detail/userIdentity/userName") {
                Some(user) => ScanTarget::User(user),
                None => return Err(UnrecognisedEvent(format!("IAM event {event_name} names no user"))),
            },
            _ => return Err(UnrecognisedEvent(format!("IAM event {event_name} names no user"))),
        }
    } else if rescans(Rescan::Key) {
        let key = text("/detail/requestParameters/keyId")
            .or_else(|| text("/detail/responseElements/keyMetadata/keyId"))
            .or_else(|| text("/detail/resources/0/ARN"));
        match key {
            Some(k) => ScanTarget::KmsKey(key_id_of(&k)),
            None => ScanTarget::Controls(controls),
        }
    } else {
        ScanTarget::Controls(controls)
    };
    Ok(Parsed::Rescan(Trigger { account_id, region, source, event_name, target }))
}

/// `arn:aws:kms:us-east-1:1:key/abc` → `abc`; a bare id stays as it is.
fn key_id_of(k: &str) -> String {
    k.rsplit_once(":key/").map(|(_, id)| id.to_owned()).unwrap_or_else(|| k.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_call(source: &str, event_source: &str, name: &str, params: Value) -> String {
        json!({
            "version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail", "source": source,
            "account": "123456789012", "region": "eu-west-1", "time": "2026-11-22T12:00:00Z", "resources": [],
            "detail": {"eventSource": event_source, "eventName": name, "requestParameters": params,
                       "userIdentity": {"type": "IAMUser", "userName": "caller"}}
        })
        .to_string()
    }

    fn rescan(body: &str) -> Trigger {
        match parse_event(body, None).unwrap() {
            Parsed::Rescan(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn api_calls_map_to_targets() {
        use crate::posture::ControlId::*;
        let t = rescan(&api_call("aws.cloudtrail", "cloudtrail.amazonaws.com", "StopLogging", json!({"name": "main"})));
        assert_eq!(
            (t.target, t.event_name.as_str(), t.region.as_str()),
            (
                ScanTarget::controls(
                    [CloudTrail1, S322, S323]
                        .into_iter()
                        .chain(crate::posture::controls::MONITORING_CLASSES.iter().map(|m| m.control))
                ),
                "StopLogging",
                "eu-west-1"
            )
        );
        let t = rescan(&api_call("aws.cloudtrail", "cloudtrail.amazonaws.com", "UpdateTrail", json!({"name": "main"})));
        let mut trail =
            ScanTarget::controls([CloudTrail1, CloudTrail2, CloudTrail4, CloudTrail7, S322, S323]).measures(true);
        trail.extend(crate::posture::controls::MONITORING_CLASSES.iter().map(|m| m.control));
        assert_eq!(t.target, ScanTarget::Controls(trail));
        // A bucket's access logging rescans CloudTrail.7 in the event's region; a bucket policy, S3.5
        // (account-wide); a DB instance change, RDS.2 and RDS.13 but not RDS.3 (set at creation).
        let t = rescan(&api_call("aws.s3", "s3.amazonaws.com", "PutBucketLogging", json!({"bucketName": "b"})));
        assert_eq!((t.target, t.region.as_str()), (ScanTarget::controls([CloudTrail7]), "eu-west-1"));
        let t = rescan(&api_call("aws.s3", "s3.amazonaws.com", "PutBucketPolicy", json!({"bucketName": "b"})));
        assert_eq!(t.target, ScanTarget::controls([S35]));
        assert!(t.target.is_global());
        let t = rescan(&api_call("aws.rds", "rds.amazonaws.com", "ModifyDBInstance", json!({})));
        assert_eq!(t.target, ScanTarget::controls([Rds2, Rds13]));
        let t = rescan(&api_call("aws.iam", "iam.amazonaws.com", "UploadServerCertificate", json!({})));
        assert_eq!(t.target, ScanTarget::controls([Iam26]));
        let t = rescan(&api_call("aws.access-analyzer", "access-analyzer.amazonaws.com", "DeleteAnalyzer", json!({})));
        assert_eq!(t.target, ScanTarget::controls([Iam28]));
        // A link of the CIS 4.x chain further down rescans the fifteen classes.
        let t = rescan(&api_call("aws.logs", "logs.amazonaws.com", "DeleteMetricFilter", json!({})));
        assert_eq!(
            t.target,
            ScanTarget::controls(crate::posture::controls::MONITORING_CLASSES.iter().map(|m| m.control))
        );
        let t = rescan(&api_call("aws.securityhub", "securityhub.amazonaws.com", "DisableSecurityHub", json!({})));
        assert_eq!(t.target, ScanTarget::controls([Cis3_4_16]));
        let t = rescan(&api_call("aws.guardduty", "guardduty.amazonaws.com", "DeleteDetector", json!({})));
        assert_eq!(t.target, ScanTarget::controls([GuardDuty1]));
        let t = rescan(&api_call("aws.ec2", "ec2.amazonaws.com", "CreateVpc", json!({"cidrBlock": "10.0.0.0/16"})));
        assert_eq!(t.target, ScanTarget::controls([Ec22, Ec221, Ec26]));
        // Policy attachments: whole account-wide controls, not the user the call names.
        let t = rescan(&api_call(
            "aws.iam",
            "iam.amazonaws.com",
            "AttachUserPolicy",
            json!({"userName": "carol", "policyArn": "arn:aws:iam::aws:policy/AWSCloudShellFullAccess"}),
        ));
        assert_eq!(t.target, ScanTarget::controls([Cis3_1_16, Iam2, Iam27]));
        assert!(t.target.is_global());
        // A second key: the user, for CIS 1.13 with IAM.3's per-user controls.
        let t = rescan(&api_call("aws.iam", "iam.amazonaws.com", "CreateAccessKey", json!({"userName": "carol"})));
        assert_eq!(t.target, ScanTarget::User("carol".into()));
        assert!(t.target.measures(true).contains(&Cis3_1_13));
        let t = rescan(&api_call("aws.iam", "iam.amazonaws.com", "UpdateAccountPasswordPolicy", json!({})));
        assert_eq!(t.target, ScanTarget::controls([Iam15, Iam16]), "not the caller's own user");
        let t = rescan(&api_call("aws.s3", "s3.amazonaws.com", "DeleteAccountPublicAccessBlock", json!({})));
        assert!(t.target.is_global() && t.target == ScanTarget::controls([S31]));
        let t = rescan(&api_call("aws.iam", "iam.amazonaws.com", "EnableMFADevice", json!({"userName": "carol"})));
        assert_eq!(t.target, ScanTarget::User("carol".into()));
        let t = rescan(&api_call(
            "aws.kms",
            "kms.amazonaws.com",
            "DisableKeyRotation",
            json!({"keyId": "arn:aws:kms:eu-west-1:123456789012:key/k-1"}),
        ));
        assert_eq!(t.target, ScanTarget::KmsKey("k-1".into()));
        let t = rescan(&api_call("aws.iam", "iam.amazonaws.com", "CreateAccessKey", json!({"userName": "bob"})));
        assert_eq!(t.target, ScanTarget::User("bob".into()));
        let t = rescan(&api_call("aws.iam", "iam.amazonaws.com", "CreateAccessKey", Value::Null));
        assert_eq!(t.target, ScanTarget::User("caller".into()));
        let mut by_root: Value =
            serde_json::from_str(&api_call("aws.iam", "iam.amazonaws.com", "CreateAccessKey", Value::Null)).unwrap();
        by_root["detail"]["userIdentity"] = json!({"type": "Root", "accountId": "123456789012"});
        assert_eq!(rescan(&by_root.to_string()).target, ScanTarget::controls([Iam4]));
        by_root["detail"]["userIdentity"] = json!({"type": "AssumedRole"});
        assert!(parse_event(&by_root.to_string(), None).unwrap_err().0.contains("names no user"));
    }

    /// Every event the catalog lists is understood, and rescans every control that lists it.
    #[test]
    fn every_catalog_event_rescans_its_controls() {
        use crate::posture::catalog::api_events;
        for (event_source, name) in api_events() {
            let service = event_source.split('.').next().unwrap();
            let controls = controls_for_api_call(event_source, name);
            let params = json!({"userName": "bob", "keyId": "k-1"});
            let by_user = rescan(&api_call(&format!("aws.{service}"), event_source, name, params));
            let mut by_root: Value =
                serde_json::from_str(&api_call(&format!("aws.{service}"), event_source, name, Value::Null)).unwrap();
            by_root["detail"]["userIdentity"] = json!({"type": "Root", "accountId": "123456789012"});
            let by_root = parse_event(&by_root.to_string(), None);
            for c in &controls {
                let covered = if c.spec().rescan == Rescan::RootUser {
                    by_root
                        .as_ref()
                        .is_ok_and(|p| matches!(p, Parsed::Rescan(t) if t.target.measures(true).contains(c)))
                } else {
                    by_user.target.measures(true).contains(c)
                };
                assert!(covered, "{event_source} {name} does not rescan {c}: {:?}", by_user.target);
            }
        }
    }

    #[test]
    fn findings_and_samples() {
        let finding = |sample: bool| {
            json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "account": "123456789012",
                   "region": "us-east-1", "detail": {"severity": 8.0, "service": {"additionalInfo": {"sample": sample}}}})
            .to_string()
        };
        assert_eq!(rescan(&finding(false)).target, ScanTarget::controls([crate::posture::ControlId::GuardDuty1]));
        assert!(matches!(parse_event(&finding(true), None).unwrap(), Parsed::Ignored { why: "sample finding", .. }));
    }

    #[test]
    fn missing_account_falls_back() {
        let body = json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "region": "us-east-1",
                          "detail": {"severity": 8.0, "accountId": "111111111111"}})
        .to_string();
        let default = AccountId::parse("222222222222").unwrap();
        match parse_event(&body, Some(&default)).unwrap() {
            Parsed::Rescan(t) => assert_eq!(t.account_id, "111111111111"),
            other => panic!("{other:?}"),
        }
        let bare =
            json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "region": "us-east-1", "detail": {}})
                .to_string();
        match parse_event(&bare, Some(&default)).unwrap() {
            Parsed::Rescan(t) => assert_eq!(t.account_id, "222222222222"),
            other => panic!("{other:?}"),
        }
        assert!(parse_event(&bare, None).is_err());
    }

    #[test]
    fn unrecognised_events_say_why() {
        assert!(parse_event("nope", None).unwrap_err().0.contains("not JSON"));
        assert!(parse_event("{}", None).unwrap_err().0.contains("source"));
        let other = api_call("aws.s3", "s3.amazonaws.com", "PutObject", json!({}));
        assert!(parse_event(&other, None).unwrap_err().0.contains("rescans no control"));
        let unknown = api_call("aws.sqs", "sqs.amazonaws.com", "DeleteQueue", json!({}));
        assert!(parse_event(&unknown, None).unwrap_err().0.contains("sqs.amazonaws.com"));
    }
}
