//! Every kind is wired: its body, sent by this client, parses as the worker parses it, and its
//! result, as the worker writes it into a reply, reads back here as the same typed value. The match
//! over [`Kind`] is exhaustive, so a kind added to `message_kinds!` without a case here does not
//! compile.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use portcullis_domain::grant::{
    BreakGlass, Decision, Denial, Grant, GrantApproval, GrantStatus, Review, Revocation, Verdict,
};
use portcullis_domain::messages::*;
use portcullis_domain::template::{ApprovalRule, ParameterSpec, StoredTemplate, TemplateSpec};
use portcullis_domain::{AccountId, GrantId, MessageId, TemplateName};
use serde_json::{Value, json};

use crate::answer;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, minute, 0).unwrap()
}

fn account() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn grant_id() -> GrantId {
    GrantId::parse("g-0123456789abcdef0123456789abcdef").unwrap()
}

fn name() -> TemplateName {
    TemplateName::parse("bucketWrite").unwrap()
}

fn spec() -> TemplateSpec {
    TemplateSpec {
        name: name(),
        description: "Write one bucket".into(),
        parameters: vec![ParameterSpec {
            name: "bucketName".into(),
            description: "the bucket".into(),
            pattern: "[a-z0-9.-]{3,63}".into(),
            allow_wildcards: false,
        }],
        statements: vec![
            json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::{{ bucketName }}/*"}),
        ],
        max_ttl_seconds: 3600,
        allowed_accounts: Some(vec![account()]),
        approval: Some(ApprovalRule { required: 1, approver_groups: vec!["portcullis-approvers".into()] }),
        break_glass: true,
    }
}

/// A grant with every optional part filled.
pub(crate) fn grant() -> Grant {
    Grant {
        id: grant_id(),
        status: GrantStatus::Revoked,
        user: "alice".into(),
        team: Some("payments".into()),
        groups: vec!["engineers".into()],
        account: account(),
        template: name(),
        template_version: 2,
        params: BTreeMap::from([("bucketName".to_owned(), "exports".to_owned())]),
        statements: vec![json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::exports/*"})],
        reason: "INC-7".into(),
        created_at: at(0),
        expires_at: at(30),
        ttl_seconds: 1800,
        request_message_id: MessageId::parse("m-1").unwrap(),
        via: Some("slack".into()),
        approval: Some(GrantApproval {
            required: 2,
            approver_groups: vec!["portcullis-approvers".into()],
            approvals: vec![Decision { by: "secops".into(), at: at(1), via: None }],
            pending_until: at(59),
            activated_at: Some(at(2)),
            denied: Some(Denial { by: "bob".into(), at: at(3), reason: "no".into() }),
        }),
        break_glass: Some(BreakGlass {
            review_due: at(50),
            reviewer_groups: vec!["portcullis-approvers".into()],
            review: Some(Review { by: "secops".into(), at: at(4), verdict: Verdict::Justified, note: "ok".into() }),
        }),
        revoked: Some(Revocation { at: at(5), by: "alice".into(), reason: "done".into() }),
        user_display_name: None,
        revision: 0,
    }
}

fn revocation() -> RevocationResult {
    RevocationResult { grants: vec![grant_id()], accounts: vec![account()], sessions_issued_before: at(5) }
}

fn directory_change() -> DirectoryChangeResult {
    DirectoryChangeResult {
        user: "alice".into(),
        applied: true,
        revoked_grants: vec![grant_id()],
        session_accounts: vec![account()],
        scheduled_for: None,
    }
}

/// Send `body` as its kind, answer with `result` the way the worker does, and read it back.
fn wired<B>(body: B, result: B::Result) -> Kind
where
    B: KindRequest + PartialEq,
    B::Result: PartialEq,
{
    let sent = serde_json::to_value(&body).unwrap();
    let parsed = Request::parse(B::KIND, sent.clone());
    assert!(parsed.is_ok(), "{} body as sent does not parse: {:?}", B::KIND.as_str(), parsed.err());
    assert_eq!(serde_json::from_value::<B>(sent).unwrap(), body);

    let stamp = ReplyStamp { message_id: "r-1".into(), sent_at: at(0) };
    let reply = Reply::ok(stamp, Some(MessageId::parse("m-1").unwrap()), B::KIND.as_str(), {
        serde_json::to_value(&result).unwrap()
    });
    let text = serde_json::to_string(&reply).unwrap();
    let read: B::Result = answer::decode(B::KIND, serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    assert_eq!(read, result, "{} result", B::KIND.as_str());
    B::KIND
}

#[test]
fn every_kind_has_its_body_and_result_wired() {
    for kind in Kind::ALL.iter().copied() {
        let wired_kind = match kind {
            Kind::TemplatePut => {
                wired(TemplatePut { template: spec() }, TemplatePutResult { name: name(), version: 2 })
            }
            Kind::TemplateGet => wired(
                TemplateGet { name: name(), version: Some(2) },
                TemplateGetResult {
                    template: StoredTemplate {
                        spec: spec(),
                        version: 2,
                        created_by: "secops".into(),
                        created_at: at(0),
                    },
                },
            ),
            Kind::TemplateList => wired(
                TemplateList {},
                TemplateListResult {
                    templates: vec![TemplateSummary::of(&StoredTemplate {
                        spec: spec(),
                        version: 2,
                        created_by: "secops".into(),
                        created_at: at(0),
                    })],
                },
            ),
            Kind::TemplateDelete => {
                wired(TemplateDelete { name: name() }, TemplateDeleteResult { name: name(), deleted: true })
            }
            Kind::GrantRequest => wired(
                GrantRequest {
                    template: name(),
                    params: BTreeMap::from([("bucketName".to_owned(), "exports".to_owned())]),
                    account: account(),
                    ttl: 1800,
                    reason: "INC-7".into(),
                    break_glass: true,
                },
                GrantRequestResult { grant: grant() },
            ),
            Kind::GrantList => wired(
                GrantList { account: Some(account()), include_ended: true },
                GrantListResult { grants: vec![grant()] },
            ),
            Kind::GrantRevoke => wired(GrantRevoke { grant_id: grant_id(), reason: "done".into() }, revocation()),
            Kind::GrantRevokeAll => wired(GrantRevokeAll { user: "alice".into(), reason: "left".into() }, revocation()),
            Kind::GrantApprove => wired(GrantApprove { grant_id: grant_id() }, GrantDecisionResult { grant: grant() }),
            Kind::GrantDeny => wired(
                GrantDeny { grant_id: grant_id(), reason: "use the replica".into() },
                GrantDecisionResult { grant: grant() },
            ),
            Kind::GrantPending => {
                wired(GrantPending {}, GrantPendingResult { approvals: vec![grant()], reviews: vec![grant()] })
            }
            Kind::GrantReview => wired(
                GrantReview { grant_id: grant_id(), verdict: Verdict::Unjustified, note: "no SEV".into() },
                GrantDecisionResult { grant: grant() },
            ),
            Kind::CredentialsRequest => wired(
                CredentialsRequest {
                    account: account(),
                    duration: Some(900),
                    reply_key: Some("a".repeat(portcullis_domain::sealed::REPLY_KEY_CHARS)),
                },
                CredentialsResult {
                    credentials: Some(ProcessCredentials {
                        version: 1,
                        access_key_id: "ASIAEXAMPLE".into(),
                        secret_access_key: "secret".into(),
                        session_token: "token".into(),
                        expiration: at(30),
                    }),
                    sealed_credentials: None,
                    expires_at: at(30),
                    account: account(),
                    role_arn: "arn:aws:iam::123456789012:role/broker".into(),
                    session_name: "alice".into(),
                    source_identity: "alice".into(),
                    session_policy_size: 321,
                    packed_policy_size: Some(7),
                    grant_ids: vec![grant_id()],
                },
            ),
            Kind::UserTeamChanged => wired(
                UserTeamChanged {
                    user: "alice".into(),
                    from_team: "payments".into(),
                    to_team: "risk".into(),
                    effective_at: at(0),
                },
                directory_change(),
            ),
            Kind::UserOffboarded => {
                wired(UserOffboarded { user: "alice".into(), effective_at: at(0) }, directory_change())
            }
            Kind::UserGroupsChanged => wired(
                UserGroupsChanged { user: "alice".into(), groups: vec!["engineers".into()], effective_at: at(0) },
                directory_change(),
            ),
            Kind::PostureStatus => wired(
                PostureStatus { account: Some(account()), region: Some("eu-west-1".into()) },
                PostureStatusResult {
                    controls: vec![ControlEvidence {
                        account: account(),
                        region: "eu-west-1".into(),
                        control_id: "CloudTrail.1".into(),
                        title: "CloudTrail enabled".into(),
                        status: "fail".into(),
                        failing_count: 1,
                        failing_resources: vec!["trail/main".into()],
                        reason: Some("not logging".into()),
                        error_code: None,
                        checked_at: Some(at(0)),
                        trigger: Some("event:StopLogging".into()),
                    }],
                },
            ),
        };
        assert_eq!(wired_kind, kind);
    }
}

/// A result with one field more than this client knows is a decode error, for every kind whose
/// result is an object.
#[test]
fn every_kinds_result_refuses_a_field_it_does_not_know() {
    fn refuses<B: KindRequest>(mut result: Value) {
        result.as_object_mut().unwrap().insert("renamed_field".into(), json!("x"));
        let reply = json!({"version": 1, "message_id": "r", "in_reply_to": "m-1", "kind": B::KIND.as_str(),
                           "sent_at": "2026-11-22T12:00:00Z", "status": "ok", "result": result});
        let err = answer::decode::<B::Result>(B::KIND, reply).unwrap_err();
        assert!(err.to_string().contains("renamed_field"), "{}: {err}", B::KIND.as_str());
    }
    let grant = serde_json::to_value(grant()).unwrap();
    refuses::<GrantList>(json!({"grants": [grant]}));
    refuses::<GrantRequest>(json!({"grant": grant}));
    refuses::<GrantRevoke>(serde_json::to_value(revocation()).unwrap());
    refuses::<UserOffboarded>(serde_json::to_value(directory_change()).unwrap());
    // Nested: a grant inside the result with a field this client does not know.
    let mut nested = grant.clone();
    nested["display_name"] = json!("Alice");
    let reply = json!({"version": 1, "message_id": "r", "in_reply_to": "m-1", "kind": "grant.list",
                       "sent_at": "2026-11-22T12:00:00Z", "status": "ok", "result": {"grants": [nested]}});
    let err = answer::decode::<GrantListResult>(Kind::GrantList, reply).unwrap_err();
    assert!(err.to_string().contains("display_name"), "{err}");
    // A template's stored form is flattened: an unknown field there is refused too.
    let stored = StoredTemplate { spec: spec(), version: 2, created_by: "secops".into(), created_at: at(0) };
    let mut stored = serde_json::to_value(stored).unwrap();
    stored["owner"] = json!("x");
    let reply = json!({"version": 1, "message_id": "r", "in_reply_to": "m-1", "kind": "template.get",
                       "sent_at": "2026-11-22T12:00:00Z", "status": "ok", "result": {"template": stored}});
    let err = answer::decode::<TemplateGetResult>(Kind::TemplateGet, reply).unwrap_err();
    assert!(err.to_string().contains("owner"), "{err}");
}
