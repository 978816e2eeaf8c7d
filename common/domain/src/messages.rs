//! The message contract spoken over SQS.
//!
//! Every request is a versioned JSON [`Envelope`] whose `body` depends on its `kind`; every request
//! that names a `reply_to` queue gets exactly one [`Reply`] there (replies carry `in_reply_to`, so a
//! client ignores the rare duplicate caused by at-least-once delivery). Parsing happens in two steps so
//! that a bad body can still be answered: first the envelope (body kept as raw JSON), then the body for
//! its kind.
//!
//! JSON Schemas for every kind are generated from these types by [`schemas`] and committed under
//! `docs/schemas/`; a test fails when they drift.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, schema_for};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, RequestError};
use crate::grant::{Grant, Verdict};
use crate::ids::{AccountId, GrantId, MessageId, TemplateName};
use crate::sealed::SealedBox;
use crate::template::{ApprovalRule, StoredTemplate, TemplateSpec};

/// The only envelope version this code speaks.
pub const ENVELOPE_VERSION: u32 = 1;

/// The envelope around every request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope<B> {
    /// Envelope version; always 1 for now.
    pub version: u32,
    /// Client-chosen unique id (1–128 of `A-Z a-z 0-9 . _ : -`). Requests are idempotent on
    /// (requester, message_id): re-sending the same id never acts twice.
    pub message_id: MessageId,
    /// What the request is, e.g. `grant.request`.
    pub kind: String,
    /// When the client sent it (RFC 3339).
    pub sent_at: DateTime<Utc>,
    /// An OIDC ID token from the configured issuer. It alone says who the requester is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token: Option<String>,
    /// Instead of an ID token: the person a trusted producer (configured, recognised by its SQS
    /// `SenderId`, and allowed to act for people) relays the request for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<OnBehalfOf>,
    /// URL of an SQS queue to send the reply to. Must be allowed by the worker's reply policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The kind-specific body.
    pub body: B,
}

/// The person a trusted producer acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnBehalfOf {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Envelope<Value> {
    /// Parse the envelope, keeping the body as raw JSON.
    pub fn parse(raw: &str) -> Result<Self, RequestError> {
        let invalid = |e: serde_json::Error| {
            RequestError::new(ErrorCode::BadRequest, format!("the message is not a valid envelope: {e}"))
        };
        let value: Value = serde_json::from_str(raw).map_err(invalid)?;
        // The version first: a newer envelope may carry fields this worker does not know, and its
        // sender should hear `unsupported_version`, not `bad_request`.
        if let Some(version) = value.get("version").and_then(Value::as_u64)
            && version != u64::from(ENVELOPE_VERSION)
        {
            return Err(RequestError::new(
                ErrorCode::UnsupportedVersion,
                format!("envelope version {version} is not supported; send version {ENVELOPE_VERSION}"),
            ));
        }
        serde_json::from_value(value).map_err(invalid)
    }

    /// Best effort: the reply address and message id of a message that failed to parse as an
    /// envelope (a message id that is not a valid one is not echoed).
    pub fn salvage_reply_to(raw: &str) -> (Option<String>, Option<MessageId>) {
        let v: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        (field("reply_to").map(str::to_owned), field("message_id").and_then(|m| MessageId::parse(m).ok()))
    }

    /// The digest that tells two requests with the same message id apart: SHA-256 over the kind and
    /// the body's canonical JSON (object keys sorted), hex.
    pub fn digest(&self) -> String {
        request_digest(&self.kind, &self.body)
    }
}

/// See [`Envelope::digest`].
pub fn request_digest(kind: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0u8]);
    hasher.update(canonical(body.clone()).to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// Which queue a kind belongs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRole {
    /// `<prefix>-access-requests`: people (through the CLI or a trusted producer acting for them).
    Access,
    /// `<prefix>-directory-events`: the HR system (a trusted producer).
    Directory,
}

/// A request body, tied to its kind and to the result its reply carries: what a typed client sends
/// (`client.ask(body)`) and decodes. Implemented for every body by `message_kinds!` from the same
/// line that declares the kind, so a kind cannot exist without its result type, and a body cannot be
/// sent as another kind.
pub trait KindRequest: Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static {
    /// The kind this body is sent as.
    const KIND: Kind;
    /// The `result` of an `ok` reply to this kind.
    type Result: Serialize + DeserializeOwned + std::fmt::Debug + Send + 'static;
}

/// Declares every message kind once: its wire name, its queue, its body and its result. The `Kind`
/// and `Request` enums, the [`KindRequest`] impls, parsing and the JSON Schemas all come from this
/// list.
macro_rules! message_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal, $queue:ident, $body:ty => $result:ty; )*) => {
        /// Every message kind.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $( $(#[$doc])* $variant, )*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $wire,)* }
            }

            /// The queue this kind is sent on.
            pub fn queue(self) -> QueueRole {
                match self { $(Kind::$variant => QueueRole::$queue,)* }
            }
        }

        /// A parsed request body.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $( $variant($body), )*
        }

        impl Request {
            /// Parse `body` as the body of `kind`. Names, accounts and ids are typed: a malformed one
            /// fails here, as `bad_request`, before anything is looked up or stored.
            pub fn parse(kind: Kind, body: Value) -> Result<Self, RequestError> {
                Ok(match kind { $(Kind::$variant => Request::$variant(body_of(kind, body)?),)* })
            }
        }

        $(
            impl KindRequest for $body {
                const KIND: Kind = Kind::$variant;
                type Result = $result;
            }
        )*

        fn kind_schemas(out: &mut Vec<(String, Schema)>) {
            $(
                out.push((format!("{}.json", $wire), request_schema::<$body>(Kind::$variant)));
                out.push((format!("{}.reply.json", $wire), reply_schema::<$result>(Kind::$variant)));
            )*
        }
    };
}

message_kinds! {
    TemplatePut = "template.put", Access, TemplatePut => TemplatePutResult;
    TemplateGet = "template.get", Access, TemplateGet => TemplateGetResult;
    TemplateList = "template.list", Access, TemplateList => TemplateListResult;
    TemplateDelete = "template.delete", Access, TemplateDelete => TemplateDeleteResult;
    GrantRequest = "grant.request", Access, GrantRequest => GrantRequestResult;
    GrantList = "grant.list", Access, GrantList => GrantListResult;
    GrantRevoke = "grant.revoke", Access, GrantRevoke => RevocationResult;
    GrantRevokeAll = "grant.revoke_all", Access, GrantRevokeAll => RevocationResult;
    GrantApprove = "grant.approve", Access, GrantApprove => GrantDecisionResult;
    GrantDeny = "grant.deny", Access, GrantDeny => GrantDecisionResult;
    GrantPending = "grant.pending", Access, GrantPending => GrantPendingResult;
    GrantReview = "grant.review", Access, GrantReview => GrantDecisionResult;
    CredentialsRequest = "credentials.request", Access, CredentialsRequest => CredentialsResult;
    UserTeamChanged = "user.team_changed", Directory, UserTeamChanged => DirectoryChangeResult;
    UserOffboarded = "user.offboarded", Directory, UserOffboarded => DirectoryChangeResult;
    UserGroupsChanged = "user.groups_changed", Directory, UserGroupsChanged => DirectoryChangeResult;
    PostureStatus = "posture.status", Access, PostureStatus => PostureStatusResult;
}

impl Kind {
    pub fn parse(s: &str) -> Result<Self, RequestError> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            RequestError::new(ErrorCode::UnknownKind, format!("kind `{s}` is unknown; use one of {}", known.join(", ")))
        })
    }
}

fn body_of<T: DeserializeOwned>(kind: Kind, body: Value) -> Result<T, RequestError> {
    serde_json::from_value(body).map_err(|e| {
        RequestError::new(
            ErrorCode::BadRequest,
            format!("the body is not a valid `{}` body: {e}; see docs/messages.md", kind.as_str()),
        )
    })
}

/// `template.put`: create a template, or a new version of an existing one. Admins only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePut {
    pub template: TemplateSpec,
}

/// `template.get`: one template, latest version unless `version` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateGet {
    pub name: TemplateName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// `template.list`: every template that is not deleted, latest versions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateList {}

/// `template.delete`: stop a template from being used for new grants. Admins only. Existing grants
/// keep their rendered statements until they expire; versions are kept for audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDelete {
    pub name: TemplateName,
}

/// `grant.request`: render a template for the requester into a grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Template name (its latest version is used).
    pub template: TemplateName,
    /// A value for every declared parameter, and nothing else.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The 12-digit AWS account id.
    pub account: AccountId,
    /// Lifetime in seconds; at most the template's `max_ttl_seconds`.
    pub ttl: u64,
    /// Why the access is needed (1–512 characters); recorded on the grant.
    pub reason: String,
    /// Break glass: active at once without approval (only for templates that allow it), announced
    /// on the bus and reviewed afterwards by the template's approvers. Say why in `reason`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

/// `grant.list`: the requester's pending and active grants, optionally for one account, and with
/// `include_ended` also those that ended (denied, expired, revoked) in the last days.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Also grants that ended (kept 7 days after they ended). `include_revoked` is accepted too.
    #[serde(default, alias = "include_revoked", skip_serializing_if = "std::ops::Not::not")]
    pub include_ended: bool,
}

/// `credentials.request`: temporary credentials for the requester's live grants in one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    /// The 12-digit AWS account id.
    pub account: AccountId,
    /// Wanted session length in seconds. Clamped to [900, the broker role's maximum] and to the latest
    /// grant's expiry. Defaults to the latest grant's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// A fresh X25519 public key (32 bytes, base64url without padding) made for this request: the
    /// credentials are sealed to it with HPKE (see `sealed_credentials` in the result). Required
    /// unless the worker runs with `access.require_sealed_credentials = false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_key: Option<String>,
}

/// `grant.approve`: approve a pending grant (members of its approver groups, never its owner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantApprove {
    pub grant_id: GrantId,
}

/// `grant.deny`: deny a pending grant (members of its approver groups, never its owner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDeny {
    pub grant_id: GrantId,
    /// Why (1–512 characters); the requester sees it.
    pub reason: String,
}

/// `grant.pending`: the pending grants the requester may approve, and the break-glass grants they
/// may review.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantPending {}

/// `grant.review`: review a break-glass grant (members of its template's approver groups, never its
/// owner). An `unjustified` verdict revokes the grant and kills its sessions if it is still active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantReview {
    pub grant_id: GrantId,
    pub verdict: Verdict,
    /// What the reviewer found (1–512 characters).
    pub note: String,
}

/// `grant.revoke`: end one grant now, and the sessions of its owner in its account. By the grant's
/// owner or an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRevoke {
    pub grant_id: GrantId,
    /// Why (1–512 characters); recorded on the grant and in the audit event.
    pub reason: String,
}

/// `grant.revoke_all`: end every grant of a user, and their sessions, in every account. Admins only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRevokeAll {
    pub user: String,
    pub reason: String,
}

/// `user.team_changed` (directory): the user moved from one team to another at `effective_at`; their
/// grants created under the old team are revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserTeamChanged {
    pub user: String,
    pub from_team: String,
    pub to_team: String,
    pub effective_at: DateTime<Utc>,
}

/// `user.offboarded` (directory): the user left at `effective_at`; every grant is revoked and every
/// live session killed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserOffboarded {
    pub user: String,
    pub effective_at: DateTime<Utc>,
}

/// `user.groups_changed` (directory): the user's groups as of `effective_at` (admin and approver
/// rights follow the directory, not only the token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserGroupsChanged {
    pub user: String,
    pub groups: Vec<String>,
    pub effective_at: DateTime<Utc>,
}

/// Result of `grant.revoke` and `grant.revoke_all`: what was covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationResult {
    /// Grants revoked by this request (grants revoked before are not repeated).
    pub grants: Vec<GrantId>,
    /// Accounts whose live sessions of the user were killed.
    pub accounts: Vec<AccountId>,
    /// The time before which the user's sessions in those accounts no longer work.
    pub sessions_issued_before: DateTime<Utc>,
}

/// Result of a directory event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryChangeResult {
    pub user: String,
    /// False when a newer change for the same user was applied already (events arrive out of order).
    pub applied: bool,
    /// Grants revoked by this change.
    pub revoked_grants: Vec<GrantId>,
    /// Accounts whose live sessions of the user were killed.
    pub session_accounts: Vec<AccountId>,
    /// Set when the change is dated ahead: it is kept and applied then (nothing was applied now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// `posture.status`: the latest evidence of every control, for members of
/// `access.posture_reader_groups`. Read-only.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostureStatus {
    /// Only this account (default: every account the posture worker scans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Only this region, e.g. `eu-west-1` (default: every configured region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"))]
    pub region: Option<String>,
}

/// Result of `template.put`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePutResult {
    pub name: TemplateName,
    pub version: u32,
}

/// Result of `template.get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateGetResult {
    pub template: StoredTemplate,
}

/// One line of `template.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSummary {
    pub name: TemplateName,
    pub description: String,
    pub latest_version: u32,
    pub max_ttl_seconds: u64,
    pub parameters: Vec<String>,
    /// Grants from it need these approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
    /// It allows break-glass requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

impl TemplateSummary {
    /// The list line of a stored template version.
    pub fn of(template: &StoredTemplate) -> Self {
        let spec = &template.spec;
        TemplateSummary {
            name: spec.name.clone(),
            description: spec.description.clone(),
            latest_version: template.version,
            max_ttl_seconds: spec.max_ttl_seconds,
            parameters: spec.parameters.iter().map(|p| p.name.clone()).collect(),
            approval: spec.approval.clone(),
            break_glass: spec.break_glass,
        }
    }
}

/// Result of `template.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateListResult {
    pub templates: Vec<TemplateSummary>,
}

/// Result of `template.delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDeleteResult {
    pub name: TemplateName,
    pub deleted: bool,
}

/// Result of `grant.request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequestResult {
    pub grant: Grant,
}

/// Result of `grant.approve`, `grant.deny` and `grant.review`: the grant after the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDecisionResult {
    pub grant: Grant,
}

/// Result of `grant.pending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantPendingResult {
    /// Pending grants the requester may approve or deny, oldest first.
    pub approvals: Vec<Grant>,
    /// Break-glass grants awaiting the requester's review, oldest first.
    pub reviews: Vec<Grant>,
}

/// Result of `grant.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantListResult {
    pub grants: Vec<Grant>,
}

/// Temporary credentials in the shape the AWS CLI's `credential_process` expects.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ProcessCredentials {
    /// Always 1.
    pub version: u8,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// RFC 3339.
    pub expiration: DateTime<Utc>,
}

impl std::fmt::Debug for ProcessCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// Result of `credentials.request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsResult {
    /// The credentials in clear: only when the request had no `reply_key` and the worker allows that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ProcessCredentials>,
    /// The credentials (the `credential_process` JSON) sealed to the request's `reply_key` with HPKE;
    /// see docs/messages.md, "Sealed credentials".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_credentials: Option<SealedBox>,
    /// When the credentials expire (also inside them).
    pub expires_at: DateTime<Utc>,
    pub account: AccountId,
    pub role_arn: String,
    pub session_name: String,
    pub source_identity: String,
    /// Characters in the session policy (STS accepts 2,048).
    pub session_policy_size: usize,
    /// STS's `PackedPolicySize`: percent of the packed limit used, when STS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed_policy_size: Option<i32>,
    /// The grants the session policy was composed from.
    pub grant_ids: Vec<GrantId>,
}

/// The latest evidence of one control in one account and region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlEvidence {
    pub account: AccountId,
    pub region: String,
    /// The AWS Security Hub control id, e.g. `CloudTrail.1`.
    pub control_id: String,
    pub title: String,
    /// `pass`, `fail` or `unknown`.
    pub status: String,
    /// How many resources fail (exact).
    pub failing_count: u64,
    /// The first failing resources (at most 100).
    #[serde(default)]
    pub failing_resources: Vec<String>,
    /// Why the control fails or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For unknown: why it could not be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// When the measuring scan finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
    /// `scheduled`, `once` or `event:<EventName>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// Result of `posture.status`: controls never measured are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostureStatusResult {
    pub controls: Vec<ControlEvidence>,
}

/// The error part of a failed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable machine code; see the table in docs/messages.md.
    pub code: ErrorCode,
    /// A sentence that says what went wrong and what to do.
    pub message: String,
    /// Structured details, e.g. `{"param": "bucketName"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl From<RequestError> for ErrorBody {
    fn from(e: RequestError) -> Self {
        ErrorBody { code: e.code, message: e.message, details: e.details }
    }
}

/// Outcome carried by a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReplyOutcome<R> {
    Ok { result: R },
    Error { error: ErrorBody },
}

/// A reply to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reply<R = Value> {
    pub version: u32,
    /// Unique id of this reply.
    pub message_id: String,
    /// `message_id` of the request answered (absent only when the request had none readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// The request's kind, or `unknown` when it could not be read.
    pub kind: String,
    pub sent_at: DateTime<Utc>,
    #[serde(flatten)]
    pub outcome: ReplyOutcome<R>,
}

/// Identity and time of one reply, chosen by whoever sends it (the domain reads no clock).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyStamp {
    pub message_id: String,
    pub sent_at: DateTime<Utc>,
}

impl Reply<Value> {
    pub fn ok(stamp: ReplyStamp, in_reply_to: Option<MessageId>, kind: &str, result: Value) -> Self {
        Self::new(stamp, in_reply_to, kind, ReplyOutcome::Ok { result })
    }

    pub fn error(stamp: ReplyStamp, in_reply_to: Option<MessageId>, kind: &str, error: RequestError) -> Self {
        Self::new(stamp, in_reply_to, kind, ReplyOutcome::Error { error: error.into() })
    }

    fn new(stamp: ReplyStamp, in_reply_to: Option<MessageId>, kind: &str, outcome: ReplyOutcome<Value>) -> Self {
        Reply {
            version: ENVELOPE_VERSION,
            message_id: stamp.message_id,
            in_reply_to,
            kind: kind.to_owned(),
            sent_at: stamp.sent_at,
            outcome,
        }
    }
}

fn request_schema<B: JsonSchema>(kind: Kind) -> Schema {
    let mut schema = schema_for!(Envelope<B>);
    schema.insert("title".into(), json!(format!("{} request", kind.as_str())));
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("kind".into(), json!({ "const": kind.as_str(), "type": "string" }));
    }
    schema
}

fn reply_schema<R: JsonSchema>(kind: Kind) -> Schema {
    let mut schema = schema_for!(Reply<R>);
    schema.insert("title".into(), json!(format!("{} reply", kind.as_str())));
    schema
}

/// Every JSON Schema of the contract, as (file name, schema).
pub fn schemas() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Schema)> = Vec::new();
    kind_schemas(&mut out);
    out.push(("envelope.json".into(), schema_for!(Envelope<Value>)));
    out.push(("error-reply.json".into(), schema_for!(Reply<Value>)));
    out.into_iter().map(|(name, schema)| (name, canonical(schema.to_value()))).collect()
}

/// `v` with every object's keys in sorted order, so the committed schemas are byte-stable whatever
/// map implementation serde_json was built with.
pub(crate) fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use std::path::PathBuf;

    /// Any JSON value, with keys that are often the envelope's own.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[0-9a-z.:_-]{0,12}".prop_map(Value::from),
        ];
        let key = prop_oneof![
            "version|message_id|kind|sent_at|identity_token|on_behalf_of|reply_to|body|user|account|template|params|ttl|reason",
            any::<String>(),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn valid_envelope() -> impl Strategy<Value = Envelope<Value>> {
        (
            MessageId::PATTERN.trim_start_matches('^').trim_end_matches('$'),
            prop_oneof![prop::sample::select(Kind::ALL).prop_map(|k| k.as_str().to_owned()), any::<String>()],
            -10_000_000_000i64..10_000_000_000,
            0u32..1_000_000_000,
            prop::option::of(any::<String>()),
            prop::option::of((
                any::<String>(),
                prop::option::of(any::<String>()),
                prop::collection::vec(any::<String>(), 0..3),
            )),
            prop::option::of(any::<String>()),
            json_value(),
        )
            .prop_map(|(id, kind, secs, nanos, identity_token, on_behalf_of, reply_to, body)| Envelope {
                version: ENVELOPE_VERSION,
                message_id: MessageId::parse(&id).expect("generated from the pattern"),
                kind,
                sent_at: DateTime::from_timestamp(secs, nanos).expect("in range"),
                identity_token,
                on_behalf_of: on_behalf_of.map(|(user, team, groups)| OnBehalfOf { user, team, groups }),
                reply_to,
                body,
            })
    }

    /// What a worker does with a raw message body, in order; each step either goes on or refuses
    /// with one of the codes it may give.
    fn read_message(raw: &str) -> Result<(), TestCaseError> {
        let _ = Envelope::salvage_reply_to(raw);
        let envelope = match Envelope::parse(raw) {
            Ok(envelope) => envelope,
            Err(e) => {
                prop_assert!(matches!(e.code, ErrorCode::BadRequest | ErrorCode::UnsupportedVersion), "{:?}", e.code);
                return Ok(());
            }
        };
        let _ = envelope.digest();
        let kind = match Kind::parse(&envelope.kind) {
            Ok(kind) => kind,
            Err(e) => {
                prop_assert_eq!(e.code, ErrorCode::UnknownKind);
                return Ok(());
            }
        };
        if let Err(e) = Request::parse(kind, envelope.body) {
            prop_assert_eq!(e.code, ErrorCode::BadRequest);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::properties::config(512))]

        /// Any text, any JSON, and valid envelopes with text spliced in: never a panic, always a
        /// parsed request or a refusal with a stable code.
        #[test]
        fn any_message_is_read_or_refused_with_a_code(
            raw in prop_oneof![
                any::<String>(),
                json_value().prop_map(|v| v.to_string()),
                (valid_envelope(), any::<prop::sample::Index>(), "[\"{}\\[\\],:0-9a-z\\\\]{0,4}").prop_map(|(e, at, splice)| {
                    let mut text = serde_json::to_string(&e).expect("serializes");
                    let at = text.char_indices().map(|(i, _)| i).nth(at.index(text.chars().count())).unwrap_or(0);
                    text.insert_str(at, &splice);
                    text
                }),
            ],
        ) {
            read_message(&raw)?;
        }

        /// A body of any shape for any kind: parsed, or refused as `bad_request`.
        #[test]
        fn any_body_for_any_kind_is_parsed_or_bad_request(kind in prop::sample::select(Kind::ALL), body in json_value()) {
            if let Err(e) = Request::parse(kind, body) {
                prop_assert_eq!(e.code, ErrorCode::BadRequest);
            }
        }

        /// A valid envelope survives the wire unchanged.
        #[test]
        fn valid_envelopes_round_trip(envelope in valid_envelope()) {
            let text = serde_json::to_string(&envelope).expect("serializes");
            prop_assert_eq!(Envelope::parse(&text).expect("parses"), envelope.clone());
            let (reply_to, message_id) = Envelope::salvage_reply_to(&text);
            prop_assert_eq!((reply_to, message_id), (envelope.reply_to, Some(envelope.message_id)));
        }
    }

    #[test]
    fn a_newer_envelope_is_unsupported_even_with_fields_this_version_lacks() {
        let v2 = json!({"version": 2, "message_id": "m1", "kind": "grant.list", "sent_at": "2026-11-22T12:00:00Z",
                        "body": {}, "signature": "new in v2"});
        assert_eq!(Envelope::parse(&v2.to_string()).unwrap_err().code, ErrorCode::UnsupportedVersion);
        let mut v1 = v2.clone();
        v1["version"] = json!(1);
        assert_eq!(Envelope::parse(&v1.to_string()).unwrap_err().code, ErrorCode::BadRequest);
        v1.as_object_mut().unwrap().remove("signature");
        assert!(Envelope::parse(&v1.to_string()).is_ok());
    }

    #[test]
    fn names_and_accounts_are_checked_before_anything_is_looked_up() {
        let bad = |kind: Kind, body: Value| Request::parse(kind, body).unwrap_err().code;
        let long = "a".repeat(2000);
        assert_eq!(bad(Kind::TemplateGet, json!({"name": long})), ErrorCode::BadRequest);
        assert_eq!(bad(Kind::TemplateDelete, json!({"name": "no spaces"})), ErrorCode::BadRequest);
        let grant = |template: &str, account: &str| json!({"template": template, "account": account, "ttl": 3600, "reason": "r", "params": {}});
        assert_eq!(bad(Kind::GrantRequest, grant("bucketRead", "12345")), ErrorCode::BadRequest);
        assert_eq!(bad(Kind::GrantRequest, grant("bucket/Read", "123456789012")), ErrorCode::BadRequest);
        assert!(Request::parse(Kind::GrantRequest, grant("bucketRead", "123456789012")).is_ok());
        assert_eq!(bad(Kind::GrantList, json!({"account": "x"})), ErrorCode::BadRequest);
        assert!(Request::parse(Kind::GrantList, json!({})).is_ok());
        assert_eq!(bad(Kind::CredentialsRequest, json!({"account": "1234567890123"})), ErrorCode::BadRequest);
        assert!(Request::parse(Kind::CredentialsRequest, json!({"account": "123456789012"})).is_ok());
        assert!(Request::parse(Kind::PostureStatus, json!({})).is_ok());
        assert_eq!(bad(Kind::PostureStatus, json!({"account": "1"})), ErrorCode::BadRequest);
    }

    fn schema_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas")
    }

    /// Fails when the committed schemas differ from the Rust types. Regenerate with `make schemas`.
    #[test]
    fn committed_schemas_match_the_types() {
        let bless = std::env::var_os("PORTCULLIS_BLESS_SCHEMAS").is_some();
        let dir = schema_dir();
        let mut expected_files = Vec::new();
        for (name, schema) in schemas() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(&name);
            expected_files.push(name.clone());
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{} is missing; run `make schemas`", path.display()));
            assert_eq!(committed, text, "{name} drifted from the Rust types; run `make schemas` and commit");
        }
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        present.sort();
        expected_files.sort();
        assert_eq!(present, expected_files, "stale schema files in docs/schemas; run `make schemas`");
    }

    /// docs/messages.md documents every kind (the error codes are checked in `error`).
    #[test]
    fn message_reference_covers_every_kind() {
        let doc = std::fs::read_to_string(schema_dir().join("../messages.md")).unwrap();
        for kind in Kind::ALL.iter().copied() {
            assert!(
                doc.contains(&format!("### `{}`", kind.as_str())),
                "docs/messages.md lacks a section for {}",
                kind.as_str()
            );
        }
    }

    #[test]
    fn envelope_parse_errors_have_codes() {
        assert_eq!(Envelope::parse("not json").unwrap_err().code, ErrorCode::BadRequest);
        let v2 = r#"{"version":2,"message_id":"m","kind":"grant.list","sent_at":"2026-01-01T00:00:00Z","body":{}}"#;
        assert_eq!(Envelope::parse(v2).unwrap_err().code, ErrorCode::UnsupportedVersion);
        let bad_id =
            r#"{"version":1,"message_id":"has space","kind":"grant.list","sent_at":"2026-01-01T00:00:00Z","body":{}}"#;
        assert_eq!(Envelope::parse(bad_id).unwrap_err().code, ErrorCode::BadRequest);
        let extra = r#"{"version":1,"message_id":"m","kind":"grant.list","sent_at":"2026-01-01T00:00:00Z","body":{},"user":"root"}"#;
        assert_eq!(Envelope::parse(extra).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(Kind::parse("grant.steal").unwrap_err().code, ErrorCode::UnknownKind);
    }

    #[test]
    fn bodies_reject_unknown_fields() {
        let err = Request::parse(Kind::GrantList, json!({"user": "bob"})).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(err.message.contains("user"), "{}", err.message);
    }

    #[test]
    fn reply_wire_shape() {
        let stamp = || ReplyStamp { message_id: "r1".into(), sent_at: Utc::now() };
        let m1 = || Some(MessageId::parse("m1").unwrap());
        let ok = Reply::ok(stamp(), m1(), "grant.list", json!({"grants": []}));
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["result"]["grants"], json!([]));
        let err = Reply::error(stamp(), m1(), "grant.list", RequestError::new(ErrorCode::NoGrants, "x"));
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"]["code"], "no_grants");
    }

    #[test]
    fn credentials_are_redacted_in_debug() {
        let c = ProcessCredentials {
            version: 1,
            access_key_id: "ASIA".into(),
            secret_access_key: "very-secret".into(),
            session_token: "token".into(),
            expiration: Utc::now(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret") && !s.contains("token\""), "{s}");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["SecretAccessKey"], "very-secret");
    }
}
