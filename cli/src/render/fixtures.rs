//! Sample results for the renderers' tests: one of every shape a table must show.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use portcullis_domain::grant::{
    BreakGlass, Decision, Denial, Grant, GrantApproval, GrantStatus, Review, Revocation, Verdict,
};
use portcullis_domain::messages::{ControlEvidence, PostureStatusResult, RevocationResult, TemplateSummary};
use portcullis_domain::template::{ApprovalRule, ParameterSpec, StoredTemplate, TemplateSpec};
use portcullis_domain::{AccountId, GrantId, MessageId, TemplateName};
use serde_json::json;

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn secs(s: i64) -> DateTime<Utc> {
    now() + TimeDelta::seconds(s)
}

fn account() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn id(n: u8) -> GrantId {
    GrantId::parse(&format!("g-{:032x}", n)).unwrap()
}

fn base(n: u8, status: GrantStatus, expires_in: i64) -> Grant {
    Grant {
        id: id(n),
        status,
        user: "alice".into(),
        team: Some("payments".into()),
        groups: vec![],
        account: account(),
        template: TemplateName::parse("bucketRead").unwrap(),
        template_version: 1,
        params: BTreeMap::from([("bucketName".into(), "reports".into()), ("region".into(), "eu-west-1".into())]),
        statements: vec![json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})],
        reason: "INC-4711: reconcile payouts".into(),
        created_at: secs(-600),
        expires_at: secs(expires_in),
        ttl_seconds: 3600,
        request_message_id: MessageId::parse("m-1").unwrap(),
        via: None,
        approval: None,
        break_glass: None,
        revoked: None,
        user_display_name: None,
        revision: 0,
    }
}

fn approval(approvals: usize, denied: bool) -> GrantApproval {
    GrantApproval {
        required: 2,
        approver_groups: vec!["portcullis-approvers".into(), "sre".into()],
        approvals: (0..approvals).map(|i| Decision { by: format!("approver{i}"), at: secs(-60), via: None }).collect(),
        pending_until: secs(86_400 + 7200),
        activated_at: None,
        denied: denied.then(|| Denial { by: "secops".into(), at: secs(-30), reason: "use the replica".into() }),
    }
}

/// Active; pending with one of two approvals; break glass unreviewed; break glass reviewed and
/// revoked; expired; denied.
pub(crate) fn grants() -> Vec<Grant> {
    let active = base(1, GrantStatus::Active, 3900);
    let mut pending = base(2, GrantStatus::Pending, 86_400);
    pending.template = TemplateName::parse("bucketWrite").unwrap();
    pending.ttl_seconds = 1800;
    pending.approval = Some(approval(1, false));
    pending.params = BTreeMap::from([("bucketName".into(), "exports".into())]);
    let mut glass = base(3, GrantStatus::Active, 1800);
    glass.break_glass = Some(BreakGlass {
        review_due: secs(45 * 60),
        reviewer_groups: vec!["portcullis-approvers".into()],
        review: None,
    });
    let mut reviewed = glass.clone();
    reviewed.id = id(4);
    reviewed.status = GrantStatus::Revoked;
    reviewed.break_glass.as_mut().unwrap().review =
        Some(Review { by: "secops".into(), at: secs(-10), verdict: Verdict::Unjustified, note: "no SEV".into() });
    reviewed.revoked = Some(Revocation { at: secs(-10), by: "secops".into(), reason: "unjustified".into() });
    let mut expired = base(5, GrantStatus::Expired, -5);
    expired.params = BTreeMap::new();
    let mut denied = base(6, GrantStatus::Denied, 600);
    denied.approval = Some(approval(0, true));
    vec![active, pending, glass, reviewed, expired, denied]
}

pub(crate) fn spec(name: &str, approval: bool, accounts: bool, parameters: bool) -> TemplateSpec {
    TemplateSpec {
        name: TemplateName::parse(name).unwrap(),
        description: format!("{name} for one bucket"),
        parameters: if parameters {
            vec![
                ParameterSpec {
                    name: "bucketName".into(),
                    description: "the bucket".into(),
                    pattern: "[a-z0-9.-]{3,63}".into(),
                    allow_wildcards: false,
                },
                ParameterSpec {
                    name: "prefix".into(),
                    description: "key prefix".into(),
                    pattern: "[a-z/]*".into(),
                    allow_wildcards: true,
                },
            ]
        } else {
            vec![]
        },
        statements: vec![json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})],
        max_ttl_seconds: 43_200,
        allowed_accounts: accounts.then(|| vec![account(), AccountId::parse("210987654321").unwrap()]),
        approval: approval
            .then(|| ApprovalRule { required: 1, approver_groups: vec!["portcullis-approvers".into(), "sre".into()] }),
        break_glass: approval,
    }
}

pub(crate) fn stored(spec: TemplateSpec) -> StoredTemplate {
    StoredTemplate { spec, version: 3, created_by: "secops".into(), created_at: secs(-86_400) }
}

pub(crate) fn summaries() -> Vec<TemplateSummary> {
    vec![
        TemplateSummary::of(&stored(spec("bucketRead", false, false, true))),
        TemplateSummary::of(&stored(spec("bucketWrite", true, true, true))),
        TemplateSummary::of(&stored(spec("tableReader", false, false, false))),
    ]
}

pub(crate) fn revocations() -> Vec<RevocationResult> {
    vec![
        RevocationResult { grants: vec![id(1), id(2)], accounts: vec![account()], sessions_issued_before: now() },
        RevocationResult { grants: vec![], accounts: vec![], sessions_issued_before: now() },
        RevocationResult { grants: vec![], accounts: vec![account()], sessions_issued_before: now() },
    ]
}

pub(crate) fn posture() -> PostureStatusResult {
    let control = |id: &str, status: &str, failing: u64, reason: Option<&str>, checked: Option<i64>| ControlEvidence {
        account: account(),
        region: "us-east-1".into(),
        control_id: id.into(),
        title: format!("{id} title"),
        status: status.into(),
        failing_count: failing,
        failing_resources: vec![],
        reason: reason.map(Into::into),
        error_code: None,
        checked_at: checked.map(secs),
        trigger: None,
    };
    PostureStatusResult {
        controls: vec![
            control("CloudTrail.1", "fail", 1, Some("no multi-region trail is logging"), Some(-75)),
            control("IAM.3", "pass", 0, None, Some(-7200)),
            control("KMS.4", "unknown", 0, Some("kms:ListKeys was denied"), None),
        ],
    }
}
