//! Fakes and data for the unit tests: a Portcullis that keeps grants the way the access worker
//! decides them (approval by someone else, never the owner; a decided grant is not pending), and a
//! Slack that records calls.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use portcullis_client::{AskError, Refusal, RefusalCode};
use portcullis_domain::grant::{Decision, Denial, Grant, GrantApproval, GrantStatus, Revocation};
use portcullis_domain::identity::Identity;
use portcullis_domain::messages::{GrantPendingResult, OnBehalfOf, RevocationResult, TemplateSummary};
use portcullis_domain::template::{ApprovalRule, ParameterSpec, StoredTemplate, TemplateSpec};
use portcullis_domain::{AccountId, ErrorCode, GrantId, MessageId, TemplateName};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::edge::{Edge, Ports};
use crate::link::{IdProvider, LinkError};
use crate::memory::{MemoryAudit, MemoryStore};
use crate::ports::{Answer, Ask, Portcullis, PostedMessage, SlackApi, SlackError};
use crate::render::Ephemeral;
use crate::settings::EdgeSettings;

pub(crate) const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

pub(crate) fn settings_toml() -> String {
    format!(
        r#"
[stack]
prefix = "pc"
[http]
public_url = "https://edge.test"
[slack]
team_id = "T0PORTCUL"
api_app_id = "A0PORTCUL"
signing_secret = "{SECRET}"
bot_token = "xoxb-test"
approvals_channel = "C0APPROVE"
default_account = "123456789012"
response_url_prefixes = ["https://hooks.test/"]
[link.identity]
issuer = "https://idp.test"
audience = "portcullis-slack"
"#
    )
}

pub(crate) fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, minute, 0).unwrap()
}

pub(crate) fn template() -> StoredTemplate {
    StoredTemplate {
        spec: TemplateSpec {
            name: TemplateName::parse("bucketRead").unwrap(),
            description: "Read one bucket".into(),
            parameters: vec![ParameterSpec {
                name: "bucketName".into(),
                description: "the bucket".into(),
                pattern: "[a-z0-9.-]{3,63}".into(),
                allow_wildcards: false,
            }],
            statements: vec![
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{{ bucketName }}/*"}),
            ],
            max_ttl_seconds: 7200,
            allowed_accounts: None,
            approval: Some(ApprovalRule { required: 1, approver_groups: vec!["portcullis-approvers".into()] }),
            break_glass: false,
        },
        version: 1,
        created_by: "admin".into(),
        created_at: at(0),
    }
}

pub(crate) fn grant() -> Grant {
    Grant {
        id: GrantId::parse("g-0123456789abcdef0123456789abcdef").unwrap(),
        status: GrantStatus::Active,
        user: "alice".into(),
        team: Some("payments".into()),
        groups: vec!["engineers".into()],
        account: AccountId::parse("123456789012").unwrap(),
        template: TemplateName::parse("bucketRead").unwrap(),
        template_version: 1,
        params: BTreeMap::from([("bucketName".to_owned(), "exports".to_owned())]),
        statements: vec![],
        reason: "INC-7".into(),
        created_at: at(0),
        expires_at: at(59),
        ttl_seconds: 3600,
        request_message_id: MessageId::parse("m-1").unwrap(),
        via: Some("slack".into()),
        approval: None,
        break_glass: None,
        revoked: None,
        user_display_name: Some("Alice A.".into()),
        revision: 0,
    }
}

pub(crate) fn pending_grant() -> Grant {
    let mut g = grant();
    g.status = GrantStatus::Pending;
    g.approval = Some(GrantApproval {
        required: 1,
        approver_groups: vec!["portcullis-approvers".into()],
        approvals: vec![],
        pending_until: at(59),
        activated_at: None,
        denied: None,
    });
    g
}

fn refused(code: ErrorCode, message: &str) -> AskError {
    AskError::Refused(Refusal { code: RefusalCode::Known(code), message: message.into(), details: None })
}

/// Portcullis, deciding as the access worker does (for what the edge relies on).
#[derive(Debug, Default)]
pub(crate) struct FakePortcullis {
    pub grants: Mutex<Vec<Grant>>,
    /// (user, kind, message id) of every request.
    pub asked: Mutex<Vec<(String, &'static str, MessageId)>>,
    /// Message ids acted on, as the worker records them per (requester, message id).
    done: Mutex<BTreeMap<(String, String), Answer>>,
}

impl FakePortcullis {
    fn find(&self, id: &GrantId) -> Option<Grant> {
        self.grants.lock().unwrap().iter().find(|g| &g.id == id).cloned()
    }
    fn save(&self, g: &Grant) {
        let mut grants = self.grants.lock().unwrap();
        grants.retain(|x| x.id != g.id);
        grants.push(g.clone());
    }
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        self.asked.lock().unwrap().iter().map(|(_, k, _)| *k).collect()
    }
}

#[async_trait]
impl Portcullis for FakePortcullis {
    async fn ask(&self, who: &OnBehalfOf, id: MessageId, ask: Ask) -> Result<Answer, AskError> {
        let kind = match &ask {
            Ask::Request(_) => "grant.request",
            Ask::Approve(_) => "grant.approve",
            Ask::Deny(_) => "grant.deny",
            Ask::Review(_) => "grant.review",
            Ask::Revoke(_) => "grant.revoke",
            Ask::List(_) => "grant.list",
            Ask::Pending => "grant.pending",
            Ask::Template(_) => "template.get",
            Ask::Templates => "template.list",
        };
        self.asked.lock().unwrap().push((who.user.clone(), kind, id.clone()));
        let key = (who.user.clone(), id.to_string());
        if let Some(done) = self.done.lock().unwrap().get(&key) {
            return Ok(done.clone());
        }
        let answer = match ask {
            Ask::Request(r) => {
                let mut g = pending_grant();
                let digest = hex::encode(sha2::Sha256::digest(format!("{}{id}", who.user).as_bytes()));
                g.id = GrantId::parse(&format!("g-{}", &digest[..32])).unwrap();
                g.user = who.user.clone();
                g.user_display_name = None;
                g.params = r.params;
                g.reason = r.reason;
                g.ttl_seconds = r.ttl;
                self.save(&g);
                Answer::Grant(Box::new(g))
            }
            Ask::Approve(a) => {
                let mut g = self.find(&a.grant_id).ok_or_else(|| refused(ErrorCode::GrantNotFound, "no such grant"))?;
                if g.user == who.user {
                    return Err(refused(ErrorCode::ApprovalForbidden, "the grant is your own"));
                }
                if g.status != GrantStatus::Pending {
                    return Err(refused(ErrorCode::GrantNotPending, "the grant is not pending"));
                }
                g.status = GrantStatus::Active;
                if let Some(ap) = g.approval.as_mut() {
                    ap.approvals.push(Decision { by: who.user.clone(), at: at(5), via: Some("slack".into()) });
                }
                self.save(&g);
                Answer::Grant(Box::new(g))
            }
            Ask::Deny(d) => {
                let mut g = self.find(&d.grant_id).ok_or_else(|| refused(ErrorCode::GrantNotFound, "no such grant"))?;
                if g.user == who.user {
                    return Err(refused(ErrorCode::ApprovalForbidden, "the grant is your own"));
                }
                if g.status != GrantStatus::Pending {
                    return Err(refused(ErrorCode::GrantNotPending, "the grant is not pending"));
                }
                g.status = GrantStatus::Denied;
                if let Some(ap) = g.approval.as_mut() {
                    ap.denied = Some(Denial { by: who.user.clone(), at: at(5), reason: d.reason });
                }
                self.save(&g);
                Answer::Grant(Box::new(g))
            }
            Ask::Revoke(r) => {
                let mut g = self
                    .find(&r.grant_id)
                    .filter(|g| g.user == who.user)
                    .ok_or_else(|| refused(ErrorCode::GrantNotFound, "no such grant"))?;
                g.status = GrantStatus::Revoked;
                g.revoked = Some(Revocation { at: at(6), by: who.user.clone(), reason: r.reason });
                self.save(&g);
                Answer::Revoked(RevocationResult {
                    grants: vec![g.id],
                    accounts: vec![g.account],
                    sessions_issued_before: at(11),
                })
            }
            Ask::Review(_) => return Err(refused(ErrorCode::ReviewNotNeeded, "not break glass")),
            Ask::List(_) => {
                Answer::Grants(self.grants.lock().unwrap().iter().filter(|g| g.user == who.user).cloned().collect())
            }
            Ask::Pending => Answer::Pending(GrantPendingResult {
                approvals: self
                    .grants
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|g| g.user != who.user && g.status == GrantStatus::Pending)
                    .cloned()
                    .collect(),
                reviews: vec![],
            }),
            Ask::Template(t) if t.name.as_str() == "bucketRead" => Answer::Template(Box::new(template())),
            Ask::Template(_) => return Err(refused(ErrorCode::TemplateNotFound, "no such template")),
            Ask::Templates => Answer::Templates(vec![TemplateSummary::of(&template())]),
        };
        if matches!(answer, Answer::Grant(_) | Answer::Revoked(_)) {
            self.done.lock().unwrap().insert(key, answer.clone());
        }
        Ok(answer)
    }
}

use sha2::Digest;

/// Slack, recording.
#[derive(Debug, Default)]
pub(crate) struct RecordingSlack {
    pub calls: Mutex<Vec<(String, serde_json::Value)>>,
}

impl RecordingSlack {
    fn push(&self, method: &str, body: serde_json::Value) -> usize {
        let mut calls = self.calls.lock().unwrap();
        calls.push((method.to_owned(), body));
        calls.len()
    }
    pub(crate) fn of(&self, method: &str) -> Vec<serde_json::Value> {
        self.calls.lock().unwrap().iter().filter(|(m, _)| m == method).map(|(_, b)| b.clone()).collect()
    }
}

#[async_trait]
impl SlackApi for RecordingSlack {
    async fn post_message(&self, request: &SlackApiChatPostMessageRequest) -> Result<PostedMessage, SlackError> {
        let n = self.push("chat.postMessage", serde_json::to_value(request).unwrap());
        Ok(PostedMessage { channel: request.channel.to_string(), ts: format!("1795834632.{n:06}") })
    }
    async fn update_message(&self, request: &SlackApiChatUpdateRequest) -> Result<(), SlackError> {
        self.push("chat.update", serde_json::to_value(request).unwrap());
        Ok(())
    }
    async fn open_view(&self, request: &SlackApiViewsOpenRequest) -> Result<(), SlackError> {
        self.push("views.open", serde_json::to_value(request).unwrap());
        Ok(())
    }
    async fn publish_view(&self, request: &SlackApiViewsPublishRequest) -> Result<(), SlackError> {
        self.push("views.publish", serde_json::to_value(request).unwrap());
        Ok(())
    }
    async fn respond(&self, response_url: &str, message: &Ephemeral) -> Result<(), SlackError> {
        let mut body = serde_json::to_value(message).unwrap();
        body["_url"] = json!(response_url);
        self.push("response_url", body);
        Ok(())
    }
    async fn user_email(&self, _user_id: &str) -> Result<Option<String>, SlackError> {
        Ok(Some("Carol@Example.COM".into()))
    }
}

/// An IdP that signs in whoever the code names (`code-<user>`), checking the verifier and nonce
/// it was given at the start.
#[derive(Debug, Default)]
pub(crate) struct FakeIdp {
    started: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl IdProvider for FakeIdp {
    async fn authorization_url(&self, state: &str, nonce: &str, verifier: &str) -> Result<String, LinkError> {
        self.started.lock().unwrap().push((verifier.to_owned(), nonce.to_owned()));
        Ok(format!("https://idp.test/auth?state={state}"))
    }
    async fn identify(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, LinkError> {
        if !self.started.lock().unwrap().contains(&(verifier.to_owned(), nonce.to_owned())) {
            return Err(LinkError::Invalid("nonce".into()));
        }
        let user = code.strip_prefix("code-").ok_or_else(|| LinkError::Refused("invalid_grant".into()))?;
        Ok(Identity {
            user: user.to_owned(),
            team: Some("payments".into()),
            groups: vec![if user == "bob" { "portcullis-approvers".into() } else { "engineers".into() }],
            issued_at: now,
            via: None,
            display_name: user.to_uppercase(),
            issuer: "https://idp.test".into(),
            subject: user.to_owned(),
        })
    }
}

/// An edge on fakes, with its clock.
pub(crate) struct TestEdge {
    pub edge: Arc<Edge>,
    pub slack: Arc<RecordingSlack>,
    pub portcullis: Arc<FakePortcullis>,
    pub store: Arc<MemoryStore>,
    pub audit: Arc<MemoryAudit>,
    pub now: Arc<Mutex<DateTime<Utc>>>,
}

impl TestEdge {
    pub(crate) fn new(extra: &str) -> TestEdge {
        let settings = Arc::new(EdgeSettings::from_toml(&(settings_toml() + extra)).unwrap());
        let slack = Arc::new(RecordingSlack::default());
        let portcullis = Arc::new(FakePortcullis::default());
        let store = Arc::new(MemoryStore::default());
        let audit = Arc::new(MemoryAudit::default());
        let now = Arc::new(Mutex::new(at(10)));
        let clock_now = now.clone();
        let ports = Ports {
            slack: slack.clone(),
            portcullis: portcullis.clone(),
            store: store.clone(),
            idp: Arc::new(FakeIdp::default()),
            audit: audit.clone(),
        };
        let edge = Edge::new(settings, ports, Arc::new(move || *clock_now.lock().unwrap()));
        TestEdge { edge, slack, portcullis, store, audit, now }
    }

    pub(crate) fn new_with_email_matching() -> TestEdge {
        let toml = settings_toml().replace("default_account =", "email_matching = true\ndefault_account =");
        let t = TestEdge::new("");
        let settings = Arc::new(EdgeSettings::from_toml(&toml).unwrap());
        let clock_now = t.now.clone();
        let ports = Ports {
            slack: t.slack.clone(),
            portcullis: t.portcullis.clone(),
            store: t.store.clone(),
            idp: Arc::new(FakeIdp::default()),
            audit: t.audit.clone(),
        };
        TestEdge { edge: Edge::new(settings, ports, Arc::new(move || *clock_now.lock().unwrap())), ..t }
    }

    pub(crate) fn now(&self) -> i64 {
        self.now.lock().unwrap().timestamp()
    }
}
