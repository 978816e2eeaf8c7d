//! Grants: one rendered template, for one person, in one account, until one expiry.
//!
//! A grant is *pending* while its template's approvals are collected (it lapses, *expired*, after
//! `access.pending_ttl_seconds`), *denied* when an approver says no, *active* from its activation (its
//! TTL counts from then) until it *expires*, or *revoked* early. A break-glass grant is active at once
//! and carries a review that its template's approvers owe. Every decision about these transitions is
//! made here; the worker only loads and stores.
//!
//! DynamoDB removes expired items only eventually (typically within two days), so every read must
//! filter on [`Grant::status_at`]; items are kept [`GRANT_RETENTION_DAYS`] after they end so that
//! `grant.list` can still show how they ended, and unreviewed break-glass grants far longer.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorCode, RequestError};
use crate::identity::Identity;
use crate::ids::{AccountId, GrantId, MessageId, TemplateName};

/// Days a grant's item is kept after it ended (expired, was denied or revoked).
pub const GRANT_RETENTION_DAYS: i64 = 7;
/// Days an unreviewed break-glass grant's item is kept after its review was due (the metric and the
/// alert keep showing it until someone reviews it or this passes).
pub const UNREVIEWED_RETENTION_DAYS: i64 = 90;

/// A stored grant. This is also the shape returned by the grant kinds, with `status` as of the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Grant id, derived from the requester and the request's message id (so a redelivered request
    /// maps to the same grant).
    pub id: GrantId,
    /// Where the grant stands, as of the reply that carries it.
    #[serde(default = "GrantStatus::active")]
    pub status: GrantStatus,
    /// The verified user the grant belongs to.
    pub user: String,
    /// The requester's display name when they asked (from their verified token's claims, sanitized;
    /// see `identity.display_name_claims`), to read next to `user`, which stays the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    /// The verified team claim at the time of the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The verified groups claim at the time of the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The 12-digit AWS account the grant applies to.
    pub account: AccountId,
    /// Template name and the version that was rendered.
    pub template: TemplateName,
    pub template_version: u32,
    /// The parameter values the statements were rendered with.
    pub params: BTreeMap<String, String>,
    /// The rendered IAM statements.
    pub statements: Vec<Value>,
    /// Why the requester needs the access.
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// When the access ends. For a pending grant: when the request lapses unless approved (on
    /// activation it becomes the activation time plus `ttl_seconds`).
    pub expires_at: DateTime<Utc>,
    /// The lifetime asked for, in seconds.
    #[serde(default)]
    pub ttl_seconds: u64,
    /// The `message_id` of the `grant.request` that created it.
    pub request_message_id: MessageId,
    /// The trusted producer that relayed the request for the user, when it was not the user's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// For a template that needs approval: the rule and the decisions so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<GrantApproval>,
    /// For a break-glass grant: when its review is due and the review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
    /// Set when the grant was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// The stored item's revision (optimistic concurrency); not part of the document.
    #[serde(skip)]
    #[schemars(skip)]
    pub revision: u64,
}

/// Who ended a grant early, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub at: DateTime<Utc>,
    /// The user who revoked it, or `directory` for an HR event.
    pub by: String,
    pub reason: String,
}

/// The approvals a grant needs and has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantApproval {
    /// Distinct approvals needed.
    pub required: u32,
    /// Whose members may approve (never the requester).
    pub approver_groups: Vec<String>,
    /// The approvals so far, one per approver.
    pub approvals: Vec<Decision>,
    /// When the request lapses unless approved.
    pub pending_until: DateTime<Utc>,
    /// When the last needed approval made it active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<DateTime<Utc>>,
    /// Set when an approver denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<Denial>,
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub by: String,
    pub at: DateTime<Utc>,
    /// The trusted producer that relayed it (a chat bot), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// A denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A break-glass grant's review duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlass {
    /// When the review is due (`access.break_glass_review_seconds` after the request).
    pub review_due: DateTime<Utc>,
    /// Whose members may review it (the template's approver groups; never the requester).
    pub reviewer_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

/// The review of a break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub by: String,
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    pub note: String,
}

/// A reviewer's verdict on a break-glass use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The emergency justified it.
    Justified,
    /// It did not: the grant is revoked (and its sessions killed) if still active.
    Unjustified,
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Pending,
    Active,
    Denied,
    Expired,
    Revoked,
}

impl GrantStatus {
    fn active() -> Self {
        GrantStatus::Active
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Denied => "denied",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        }
    }
}

/// What an approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approved {
    /// Counted; more approvals are needed.
    Counted,
    /// This approver had approved already: counted once.
    AlreadyCounted,
    /// The last needed approval: the grant is active now.
    Activated,
}

impl Grant {
    /// Where the grant stands at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> GrantStatus {
        if self.revoked.is_some() {
            return GrantStatus::Revoked;
        }
        if let Some(approval) = &self.approval {
            if approval.denied.is_some() {
                return GrantStatus::Denied;
            }
            if approval.activated_at.is_none() {
                return if now < approval.pending_until { GrantStatus::Pending } else { GrantStatus::Expired };
            }
        }
        if self.expires_at > now { GrantStatus::Active } else { GrantStatus::Expired }
    }

    /// The grant with `status` set as of `now` (what replies carry).
    pub fn observed(mut self, now: DateTime<Utc>) -> Self {
        self.status = self.status_at(now);
        self
    }

    /// Whether the grant confers access at `now`: active.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.status_at(now) == GrantStatus::Active
    }

    /// Whether the grant is pending or active at `now` (what a revocation ends).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status_at(now), GrantStatus::Pending | GrantStatus::Active)
    }

    /// Whether `by` revoked the grant for `reason`: what a redelivery of a revocation finds of the
    /// work an earlier delivery did (and must still finish: kill the sessions, announce it).
    pub fn revoked_for(&self, by: &str, reason: &str) -> bool {
        self.revoked.as_ref().is_some_and(|r| r.by == by && r.reason == reason)
    }

    /// Whether the grant ever conferred access (no approval needed, or approved); a grant that was
    /// pending or denied never did.
    pub fn was_activated(&self) -> bool {
        self.approval.as_ref().is_none_or(|a| a.activated_at.is_some())
    }

    /// When the grant waits on approvals (neither activated nor denied; it may have lapsed since), the
    /// time it lapses: what the approvers' list is kept by.
    pub fn awaiting_approval_until(&self) -> Option<DateTime<Utc>> {
        self.approval.as_ref().filter(|a| a.activated_at.is_none() && a.denied.is_none()).map(|a| a.pending_until)
    }

    /// Whether the grant is a break-glass grant nobody has reviewed yet.
    pub fn awaits_review(&self) -> bool {
        self.break_glass.as_ref().is_some_and(|b| b.review.is_none())
    }

    /// Until when the stored item is kept (its TTL): a while after it ended, and an unreviewed
    /// break-glass grant long after its review was due.
    pub fn keep_until(&self) -> DateTime<Utc> {
        let ended = match &self.approval {
            Some(a) if a.activated_at.is_none() => a.pending_until.max(self.expires_at),
            _ => self.expires_at,
        };
        let mut keep = ended + TimeDelta::days(GRANT_RETENTION_DAYS);
        if let Some(b) = &self.break_glass
            && b.review.is_none()
        {
            keep = keep.max(b.review_due + TimeDelta::days(UNREVIEWED_RETENTION_DAYS));
        }
        keep
    }

    /// The deterministic grant id for a request: the same requester re-sending the same message id
    /// always gets the same grant.
    pub fn id_for(user: &str, message_id: &MessageId) -> GrantId {
        let name = format!("{user}\u{0}{message_id}");
        GrantId::from_generated(format!("g-{}", uuid::Uuid::new_v5(&GRANT_NAMESPACE, name.as_bytes()).simple()))
    }

    /// Whether `who` may decide on this grant (approve, deny): never its owner, and only a member of
    /// its approver groups.
    fn check_approver(&self, who: &Identity, groups: &[String], what: &str) -> Result<(), RequestError> {
        if who.user == self.user {
            return Err(RequestError::new(
                ErrorCode::ApprovalForbidden,
                format!("you cannot {what} your own grant {}; another member of {} must", self.id, groups.join(" or ")),
            ));
        }
        if !who.in_any_group(groups) {
            return Err(RequestError::new(
                ErrorCode::ApprovalForbidden,
                format!("only members of {} may {what} grant {}", groups.join(" or "), self.id),
            ));
        }
        Ok(())
    }

    fn pending_approval(&mut self, now: DateTime<Utc>) -> Result<&mut GrantApproval, RequestError> {
        let status = self.status_at(now);
        let id = self.id.clone();
        match self.approval.as_mut() {
            Some(approval) if status == GrantStatus::Pending => Ok(approval),
            Some(_) => Err(RequestError::new(
                ErrorCode::GrantNotPending,
                format!("grant {id} is {} and no longer waits for approval", status.as_str()),
            )),
            None => Err(RequestError::new(
                ErrorCode::GrantNotPending,
                format!("grant {id} is {}; its template needs no approval", status.as_str()),
            )),
        }
    }

    /// `who` approves the grant at `now`. Approvals are counted once per approver; the last needed
    /// one activates the grant, whose lifetime counts from then.
    pub fn approve(&mut self, who: &Identity, now: DateTime<Utc>) -> Result<Approved, RequestError> {
        let groups = self.pending_approval(now)?.approver_groups.clone();
        self.check_approver(who, &groups, "approve")?;
        let ttl = TimeDelta::try_seconds(i64::try_from(self.ttl_seconds).unwrap_or(i64::MAX))
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| RequestError::new(ErrorCode::DurationInvalid, "the grant's ttl is out of range"))?;
        let approval = self.pending_approval(now)?;
        if approval.approvals.iter().any(|a| a.by == who.user) {
            return Ok(Approved::AlreadyCounted);
        }
        approval.approvals.push(Decision { by: who.user.clone(), at: now, via: who.via.clone() });
        if u32::try_from(approval.approvals.len()).unwrap_or(u32::MAX) < approval.required {
            return Ok(Approved::Counted);
        }
        approval.activated_at = Some(now);
        self.expires_at = ttl;
        Ok(Approved::Activated)
    }

    /// `who` denies the grant at `now`.
    pub fn deny(&mut self, who: &Identity, reason: &str, now: DateTime<Utc>) -> Result<(), RequestError> {
        let groups = self.pending_approval(now)?.approver_groups.clone();
        self.check_approver(who, &groups, "deny")?;
        self.pending_approval(now)?.denied = Some(Denial { by: who.user.clone(), at: now, reason: reason.to_owned() });
        Ok(())
    }

    /// `who` reviews the break-glass grant at `now`.
    pub fn review(
        &mut self,
        who: &Identity,
        verdict: Verdict,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RequestError> {
        let Some(duty) = &self.break_glass else {
            return Err(RequestError::new(
                ErrorCode::ReviewNotNeeded,
                format!("grant {} is not a break-glass grant; there is nothing to review", self.id),
            ));
        };
        if let Some(done) = &duty.review {
            return Err(RequestError::new(
                ErrorCode::ReviewNotNeeded,
                format!("grant {} was reviewed already by {} at {}", self.id, done.by, done.at.to_rfc3339()),
            ));
        }
        let groups = duty.reviewer_groups.clone();
        self.check_approver(who, &groups, "review")?;
        if let Some(duty) = self.break_glass.as_mut() {
            duty.review = Some(Review { by: who.user.clone(), at: now, verdict, note: note.to_owned() });
        }
        Ok(())
    }
}

const GRANT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f0c_1b7e_8a44_4f7e_9d0a_7b1c_2e3d_4f50);

#[cfg(test)]
mod tests {
    use super::*;

    /// `bucketRead` with `extra` merged into its spec, compiled.
    fn template(extra: serde_json::Value) -> crate::template::CompiledTemplate {
        let mut spec = serde_json::json!({
            "name": "bucketRead", "description": "Read one bucket",
            "parameters": [{"name": "bucketName", "description": "bucket", "pattern": "[a-z0-9-]+"}],
            "statements": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::{{ bucketName }}/*"}],
            "max_ttl_seconds": 3600
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        crate::template::CompiledTemplate::compile(serde_json::from_value(spec).unwrap()).unwrap()
    }

    fn request(ttl: u64, break_glass: bool) -> crate::messages::GrantRequest {
        serde_json::from_value(serde_json::json!({
            "template": "bucketRead", "params": {"bucketName": "reports"}, "account": "123456789012",
            "ttl": ttl, "reason": "  INC-1  ", "break_glass": break_glass
        }))
        .unwrap()
    }

    fn decide(t: &crate::template::CompiledTemplate, r: crate::messages::GrantRequest) -> Result<Grant, RequestError> {
        let guardrails = crate::guardrails::Guardrails::new(&["iam:*"], &["arn:aws:iam::*:role/portcullis-*"]).unwrap();
        let rules =
            GrantRules { guardrails: &guardrails, pending_ttl_seconds: 600, break_glass_review_seconds: 86_400 };
        let who = person("alice", &["engineers"]);
        let id = MessageId::parse("m-decide").unwrap();
        Grant::decide(r, t, 3, &rules, Asking { who: &who, message_id: &id, now: at(0) })
    }

    #[test]
    fn a_grant_is_decided_active_pending_or_break_glass_from_the_template() {
        let plain = decide(&template(serde_json::json!({})), request(1800, false)).unwrap();
        assert_eq!((plain.status, plain.expires_at, plain.template_version), (GrantStatus::Active, at(30), 3));
        assert_eq!(plain.reason, "INC-1", "the reason is kept trimmed");
        assert_eq!(plain.id, Grant::id_for("alice", &MessageId::parse("m-decide").unwrap()));
        assert_eq!(plain.statements[0]["Resource"], "arn:aws:s3:::reports/*");
        let approved = template(
            serde_json::json!({"approval": {"required": 2, "approver_groups": ["leads"]}, "break_glass": true}),
        );
        let pending = decide(&approved, request(1800, false)).unwrap();
        assert_eq!(
            (pending.status, pending.expires_at),
            (GrantStatus::Pending, at(10)),
            "waits pending_ttl for approvals"
        );
        assert_eq!(pending.approval.as_ref().map(|a| a.required), Some(2));
        let glass = decide(&approved, request(1800, true)).unwrap();
        assert_eq!((glass.status, glass.expires_at), (GrantStatus::Active, at(30)));
        assert_eq!(glass.break_glass.as_ref().map(|b| b.review_due), Some(at(24 * 60)));
        assert!(glass.approval.is_none());
    }

    #[test]
    fn a_grant_outside_the_template_is_refused_with_its_code() {
        let code = |t: serde_json::Value, r| decide(&template(t), r).unwrap_err().code;
        assert_eq!(code(serde_json::json!({}), request(7200, false)), ErrorCode::TtlTooLong);
        assert_eq!(code(serde_json::json!({}), request(30, false)), ErrorCode::DurationInvalid);
        assert_eq!(code(serde_json::json!({}), request(600, true)), ErrorCode::BreakGlassForbidden);
        assert_eq!(
            code(serde_json::json!({"allowed_accounts": ["210987654321"]}), request(600, false)),
            ErrorCode::AccountForbidden
        );
        let mut bad = request(600, false);
        bad.params.insert("bucketName".into(), "*".into());
        assert_eq!(decide(&template(serde_json::json!({})), bad).unwrap_err().code, ErrorCode::ParamInvalid);
    }

    #[test]
    fn grant_ids_are_deterministic_and_scoped_to_the_user() {
        let m = |s: &str| MessageId::parse(s).unwrap();
        assert_eq!(Grant::id_for("alice", &m("m1")), Grant::id_for("alice", &m("m1")));
        assert_ne!(Grant::id_for("alice", &m("m1")), Grant::id_for("bob", &m("m1")));
        assert_ne!(Grant::id_for("alice", &m("m1")), Grant::id_for("alice", &m("m2")));
        assert!(GrantId::parse(Grant::id_for("a", &m("b")).as_str()).is_ok());
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(minutes)
    }

    fn person(user: &str, groups: &[&str]) -> Identity {
        Identity {
            issuer: "https://idp".into(),
            subject: user.into(),
            user: user.into(),
            team: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            issued_at: at(0),
            via: None,
            display_name: user.into(),
        }
    }

    /// A grant of alice's from a template that needs `required` approvals by `leads`, pending for an
    /// hour, asking for 30 minutes.
    fn pending(required: u32) -> Grant {
        Grant {
            id: Grant::id_for("alice", &MessageId::parse("m1").unwrap()),
            status: GrantStatus::Pending,
            user: "alice".into(),
            team: None,
            groups: vec!["leads".into()],
            account: AccountId::parse("123456789012").unwrap(),
            template: TemplateName::parse("prodDb").unwrap(),
            template_version: 1,
            params: BTreeMap::new(),
            statements: vec![],
            reason: "r".into(),
            created_at: at(0),
            expires_at: at(60),
            ttl_seconds: 1800,
            request_message_id: MessageId::parse("m1").unwrap(),
            via: None,
            approval: Some(GrantApproval {
                required,
                approver_groups: vec!["leads".into()],
                approvals: vec![],
                pending_until: at(60),
                activated_at: None,
                denied: None,
            }),
            break_glass: None,
            revoked: None,
            user_display_name: None,
            revision: 0,
        }
    }

    #[test]
    fn distinct_approvers_activate_and_the_ttl_counts_from_activation() {
        let mut g = pending(2);
        assert_eq!(g.status_at(at(1)), GrantStatus::Pending);
        assert!(!g.is_live(at(1)) && g.is_open(at(1)));
        assert_eq!(g.approve(&person("bob", &["leads"]), at(10)), Ok(Approved::Counted));
        // The same approver again counts once.
        assert_eq!(g.approve(&person("bob", &["leads"]), at(11)), Ok(Approved::AlreadyCounted));
        assert_eq!(g.status_at(at(12)), GrantStatus::Pending);
        assert_eq!(g.approve(&person("carol", &["leads"]), at(20)), Ok(Approved::Activated));
        assert_eq!(g.expires_at, at(50), "30 minutes from activation, not from the request");
        assert!(g.is_live(at(49)) && !g.is_live(at(50)));
        assert_eq!(g.status_at(at(50)), GrantStatus::Expired);
        let err = g.approve(&person("dave", &["leads"]), at(21)).unwrap_err();
        assert_eq!(err.code, ErrorCode::GrantNotPending);
    }

    #[test]
    fn the_owner_and_non_approvers_cannot_decide() {
        let mut g = pending(1);
        // alice is in `leads` herself, and still cannot approve her own grant.
        assert_eq!(g.approve(&person("alice", &["leads"]), at(1)).unwrap_err().code, ErrorCode::ApprovalForbidden);
        assert_eq!(g.approve(&person("eve", &["devs"]), at(1)).unwrap_err().code, ErrorCode::ApprovalForbidden);
        assert_eq!(g.deny(&person("alice", &["leads"]), "no", at(1)).unwrap_err().code, ErrorCode::ApprovalForbidden);
        assert_eq!(g.approval.as_ref().unwrap().approvals, vec![], "nothing counted");
        assert_eq!(g.status_at(at(1)), GrantStatus::Pending);
    }

    #[test]
    fn a_pending_grant_lapses_and_a_denied_one_stays_denied() {
        let mut lapsed = pending(1);
        assert_eq!(lapsed.status_at(at(60)), GrantStatus::Expired);
        let err = lapsed.approve(&person("bob", &["leads"]), at(60)).unwrap_err();
        assert_eq!(err.code, ErrorCode::GrantNotPending);
        let mut denied = pending(1);
        denied.deny(&person("bob", &["leads"]), "use the replica", at(5)).unwrap();
        assert_eq!(denied.status_at(at(6)), GrantStatus::Denied);
        assert_eq!(denied.approve(&person("carol", &["leads"]), at(7)).unwrap_err().code, ErrorCode::GrantNotPending);
        assert_eq!(denied.keep_until(), at(60) + TimeDelta::days(GRANT_RETENTION_DAYS));
    }

    #[test]
    fn break_glass_is_reviewed_once_by_someone_else() {
        let mut g = pending(1);
        g.approval = None;
        g.break_glass =
            Some(BreakGlass { review_due: at(24 * 60), reviewer_groups: vec!["leads".into()], review: None });
        assert!(g.is_live(at(1)) && g.awaits_review());
        assert!(g.keep_until() >= at(24 * 60) + TimeDelta::days(UNREVIEWED_RETENTION_DAYS));
        let own = g.review(&person("alice", &["leads"]), Verdict::Justified, "mine", at(2)).unwrap_err();
        assert_eq!(own.code, ErrorCode::ApprovalForbidden);
        g.review(&person("bob", &["leads"]), Verdict::Justified, "SEV1 confirmed", at(3)).unwrap();
        assert!(!g.awaits_review());
        assert_eq!(g.keep_until(), at(60) + TimeDelta::days(GRANT_RETENTION_DAYS));
        let again = g.review(&person("carol", &["leads"]), Verdict::Unjustified, "x", at(4)).unwrap_err();
        assert_eq!(again.code, ErrorCode::ReviewNotNeeded);
        let mut plain = pending(1);
        plain.approval = None;
        let none = plain.review(&person("bob", &["leads"]), Verdict::Justified, "x", at(4)).unwrap_err();
        assert_eq!(none.code, ErrorCode::ReviewNotNeeded);
    }

    #[test]
    fn revoked_wins_over_everything() {
        let mut g = pending(1);
        g.revoked = Some(Revocation { at: at(1), by: "alice".into(), reason: "withdrawn".into() });
        assert_eq!(g.status_at(at(2)), GrantStatus::Revoked);
        assert_eq!(g.approve(&person("bob", &["leads"]), at(2)).unwrap_err().code, ErrorCode::GrantNotPending);
        assert_eq!(g.clone().observed(at(2)).status, GrantStatus::Revoked);
    }
}

/// The deployment's rules a grant decision follows besides the template's.
#[derive(Debug, Clone, Copy)]
pub struct GrantRules<'a> {
    /// Actions and resources no template may render (Portcullis's own among them).
    pub guardrails: &'a crate::guardrails::Guardrails,
    /// How long a grant waits for its approvals (`access.pending_ttl_seconds`).
    pub pending_ttl_seconds: u64,
    /// When a break-glass grant's review is due (`access.break_glass_review_seconds`).
    pub break_glass_review_seconds: u64,
}

/// Who asks, when, and under which request id.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    pub who: &'a Identity,
    pub message_id: &'a MessageId,
    pub now: DateTime<Utc>,
}

impl Grant {
    /// The grant `request` asks for from version `version` of `template` (not stored yet), or why it
    /// is refused: the account must be one the template allows, the lifetime within its bounds,
    /// break glass allowed by it; the statements are rendered from the declared parameters only and
    /// through the guardrails. A template with an approval rule makes a pending grant, unless this is
    /// break glass: then it is active at once and its approvers owe a review. The id follows from the
    /// requester and the request's message id, so a redelivery decides the same grant.
    pub fn decide(
        request: crate::messages::GrantRequest,
        template: &crate::template::CompiledTemplate,
        version: u32,
        rules: &GrantRules<'_>,
        asking: Asking<'_>,
    ) -> Result<Grant, RequestError> {
        let spec = template.spec();
        if let Some(allowed) = &spec.allowed_accounts
            && !allowed.contains(&request.account)
        {
            let allowed: Vec<&str> = allowed.iter().map(AccountId::as_str).collect();
            return Err(RequestError::new(
                ErrorCode::AccountForbidden,
                format!(
                    "template `{}` may not be used in account {}; it allows {}",
                    request.template,
                    request.account,
                    allowed.join(", ")
                ),
            ));
        }
        if request.ttl < crate::template::MIN_TEMPLATE_TTL_SECONDS {
            return Err(RequestError::new(ErrorCode::DurationInvalid, "ttl must be at least 60 seconds"));
        }
        let max = spec.max_ttl_seconds;
        if request.ttl > max {
            return Err(RequestError::new(
                ErrorCode::TtlTooLong,
                format!(
                    "ttl {}s is above template `{}`'s maximum of {max}s; ask for {max}s or less",
                    request.ttl, request.template
                ),
            )
            .with_details(serde_json::json!({ "max_ttl_seconds": max })));
        }
        if request.break_glass && !spec.break_glass {
            return Err(RequestError::new(
                ErrorCode::BreakGlassForbidden,
                format!(
                    "template `{}` does not allow break-glass requests; request it without break_glass",
                    request.template
                ),
            ));
        }
        let statements = template.render(&request.params, rules.guardrails).map_err(RequestError::from)?;
        let after = |seconds: u64, what: &str| {
            TimeDelta::try_seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
                .and_then(|d| asking.now.checked_add_signed(d))
                .ok_or_else(|| RequestError::new(ErrorCode::DurationInvalid, format!("{what} is out of range")))
        };
        let active_until = after(request.ttl, "ttl")?;
        let (status, expires_at, approval, break_glass) = match (&spec.approval, request.break_glass) {
            (Some(rule), false) => {
                let pending_until = after(rules.pending_ttl_seconds, "access.pending_ttl_seconds")?;
                let approval = GrantApproval {
                    required: rule.required,
                    approver_groups: rule.approver_groups.clone(),
                    approvals: Vec::new(),
                    pending_until,
                    activated_at: None,
                    denied: None,
                };
                (GrantStatus::Pending, pending_until, Some(approval), None)
            }
            (Some(rule), true) => {
                let duty = BreakGlass {
                    review_due: after(rules.break_glass_review_seconds, "access.break_glass_review_seconds")?,
                    reviewer_groups: rule.approver_groups.clone(),
                    review: None,
                };
                (GrantStatus::Active, active_until, None, Some(duty))
            }
            (None, _) => (GrantStatus::Active, active_until, None, None),
        };
        let who = asking.who;
        Ok(Grant {
            id: Grant::id_for(&who.user, asking.message_id),
            status,
            user: who.user.clone(),
            user_display_name: Some(who.display_name.clone()),
            team: who.team.clone(),
            groups: who.groups.clone(),
            account: request.account,
            template: spec.name.clone(),
            template_version: version,
            params: request.params,
            statements,
            reason: request.reason.trim().to_owned(),
            created_at: asking.now,
            expires_at,
            ttl_seconds: request.ttl,
            request_message_id: asking.message_id.clone(),
            via: who.via.clone(),
            approval,
            break_glass,
            revoked: None,
            revision: 0,
        })
    }
}
