//! What the access use cases need from the world, as traits: a store, a credential broker, a reply
//! sink and an identity verifier. The AWS adapters implement them in [`crate::adapters`]; the fakes in
//! [`crate::fakes`] implement them in memory for tests.
//!
//! Every port's error says whether retrying can help: the adapters decide that from
//! [`portcullis_runtime::aws::classify`], once.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::audit::AuditEvent;
use portcullis_domain::directory::{DirectoryRecord, ScheduledChange};
use portcullis_domain::grant::{Grant, Revocation};
use portcullis_domain::identity::Identity;
use portcullis_domain::messages::{ProcessCredentials, TemplateSummary};
use portcullis_domain::revocation::SessionRevocation;
use portcullis_domain::template::StoredTemplate;
use portcullis_domain::{AccountId, GrantId, MessageId, QueueUrl, RequestError, TemplateName};
pub use portcullis_runtime::aws::{FailureKind, SdkFailure};
use portcullis_runtime::clock::Clock;

// ---------------------------------------------------------------------------------------- store

pub use crate::failure::StoreError;

/// Identifies a request for idempotency: (requester, message id). Scoping by requester means nobody
/// can replay someone else's reply by reusing their message id.
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    pub user: &'a str,
    pub message_id: &'a MessageId,
}

/// What was recorded for a request that changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// [`portcullis_domain::messages::Envelope::digest`] of the request.
    pub digest: String,
    /// The exact reply text that was sent (a redelivery gets it byte for byte).
    pub reply: String,
    /// The audit events the change caused (published again on a redelivery: same ids).
    pub events: Vec<PublishedEvent>,
}

/// An audit event ready to publish: its detail-type and detail JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishedEvent {
    pub detail_type: String,
    pub detail: String,
}

impl PublishedEvent {
    /// `event` as published (and recorded for replays): its detail through
    /// [`portcullis_domain::redact::redact_secrets`], the one redaction every event goes through.
    pub fn from_event(event: &AuditEvent) -> Result<Self, serde_json::Error> {
        let detail = portcullis_domain::redact::redact_secrets(&event.detail()?);
        Ok(Self { detail_type: event.detail_type().to_owned(), detail })
    }
}

/// A record to write together with a change.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    pub key: RequestKey<'a>,
    pub record: RequestRecord,
    /// Epoch seconds after which the store may forget it.
    pub expires_at: i64,
}

/// Outcome of a write guarded by a request record.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded<T> {
    /// The write happened now.
    Applied(T),
    /// A request with this key was recorded before; nothing was written.
    Replayed(RequestRecord),
}

/// A template's index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateIndex {
    pub latest_version: u32,
    pub deleted: bool,
}

/// What a new grant was decided on, checked again by the write that stores it: the requester's
/// directory record still at `directory_revision` (`None`: there was none), and the grant's template
/// still at the grant's version and not deleted. So a decision made on a cached read stands only if
/// the read is still true when the grant is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecidedOn {
    pub directory_revision: Option<u64>,
}

/// What [`AccessStore::entitlement`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlement {
    pub directory: Option<(DirectoryRecord, u64)>,
    /// One per id asked, in order.
    pub grants: Vec<Option<Grant>>,
    pub revocation_generation: u64,
}

/// Templates, grants and request records.
#[async_trait]
pub trait AccessStore: Send + Sync + Debug + 'static {
    /// The record of an earlier request with this key, if any.
    async fn request_record(&self, key: &RequestKey<'_>) -> Result<Option<RequestRecord>, StoreError>;

    /// Record a request whose changes are idempotent by themselves (a revocation): `Replayed` with
    /// the earlier record when it was recorded before.
    async fn put_request_record(&self, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError>;

    /// A template's index entry.
    async fn template_index(&self, name: &TemplateName) -> Result<Option<TemplateIndex>, StoreError>;

    /// Store `template` as the version after `previous` (none: the first), with its record.
    /// `Conflict` when the index is no longer at `previous`.
    async fn put_template(
        &self,
        template: &StoredTemplate,
        previous: Option<u32>,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError>;

    /// One stored version of a template (whether deleted or not: the caller checks the index).
    async fn template_version(&self, name: &TemplateName, version: u32) -> Result<Option<StoredTemplate>, StoreError>;

    /// Every template that is not deleted.
    async fn list_templates(&self) -> Result<Vec<TemplateSummary>, StoreError>;

    /// Mark a template deleted, with its record. `Applied(false)` when there is no such (undeleted)
    /// template.
    async fn delete_template(&self, name: &TemplateName, record: &NewRecord<'_>) -> Result<Recorded<bool>, StoreError>;

    /// One grant, live or not, if it is still stored.
    async fn grant(&self, user: &str, account: &AccountId, id: &GrantId) -> Result<Option<Grant>, StoreError>;

    /// Write a new grant with its record, when what it was decided on still holds (`Stale`
    /// otherwise, and nothing is written).
    async fn put_grant(
        &self,
        grant: &Grant,
        decided_on: DecidedOn,
        record: &NewRecord<'_>,
    ) -> Result<Recorded<()>, StoreError>;

    /// The user's grants live at `now`, for one account or all, oldest first.
    async fn live_grants(
        &self,
        user: &str,
        account: Option<&AccountId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>, StoreError>;

    /// Every grant of the user still kept at `now`, whatever its status, oldest first.
    async fn kept_grants(&self, user: &str, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError>;

    /// Write a grant's new state (approvals, activation, denial, review) with its record, when its
    /// stored revision is still `grant.revision` (`Conflict` otherwise: read it again). Keeps the
    /// approvers' and reviewers' lists in step: a grant no longer pending leaves the approvals list,
    /// a reviewed one the reviews list.
    async fn update_grant(&self, grant: &Grant, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError>;

    /// Grants that may still wait for approval at `now` (anyone's; the caller checks each grant's
    /// status), oldest first.
    async fn pending_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError>;

    /// Break-glass grants whose review is owed (anyone's), oldest first.
    async fn reviews_owed(&self) -> Result<Vec<Grant>, StoreError>;

    /// A grant by its id alone (whoever it belongs to).
    async fn grant_by_id(&self, id: &GrantId) -> Result<Option<Grant>, StoreError>;

    /// Mark `grant` revoked. False when it was revoked already (nothing changed).
    async fn revoke_grant(&self, grant: &Grant, revocation: &Revocation) -> Result<bool, StoreError>;

    /// The directory record of a user and its revision.
    async fn directory_record(&self, user: &str) -> Result<Option<(DirectoryRecord, u64)>, StoreError>;

    /// [`Self::directory_record`] of `user` and [`Self::template_index`] of `template`, read together
    /// (the grant path needs both; a store that can reads them in one round trip).
    async fn directory_record_and_template_index(
        &self,
        user: &str,
        template: &TemplateName,
    ) -> Result<(Option<(DirectoryRecord, u64)>, Option<TemplateIndex>), StoreError> {
        Ok((self.directory_record(user).await?, self.template_index(template).await?))
    }

    /// What credentials are checked against after STS issued them, in one round trip where the
    /// store can (every read strongly consistent): `user`'s directory record, the grants `ids` of
    /// `user` in `account` as stored (`None`: gone), and the account's session-revocation
    /// generation (as [`Self::session_revocations`] gives it).
    async fn entitlement(&self, user: &str, account: &AccountId, ids: &[GrantId]) -> Result<Entitlement, StoreError> {
        let directory = self.directory_record(user).await?;
        let mut grants = Vec::with_capacity(ids.len());
        for id in ids {
            grants.push(self.grant(user, account, id).await?);
        }
        let (revocation_generation, _) = self.session_revocations(account).await?;
        Ok(Entitlement { directory, grants, revocation_generation })
    }

    /// Write a directory record whose current revision is `revision` (`None`: none yet). `Conflict`
    /// when someone else wrote it meanwhile.
    async fn put_directory_record(&self, record: &DirectoryRecord, revision: Option<u64>) -> Result<(), StoreError>;

    /// Add a session revocation in `account` (kept until `expires_at`, epoch seconds) and bump the
    /// account's revocation generation; a repeat of the same revocation adds nothing.
    async fn add_session_revocation(
        &self,
        account: &AccountId,
        revocation: &SessionRevocation,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// The account's session revocations and their generation.
    async fn session_revocations(&self, account: &AccountId) -> Result<(u64, Vec<SessionRevocation>), StoreError>;

    /// Keep a future-dated directory change until it is due (a repeat keeps one).
    async fn put_scheduled_change(&self, change: &ScheduledChange) -> Result<(), StoreError>;

    /// The scheduled directory changes due at `now`, earliest first.
    async fn due_scheduled_changes(&self, now: DateTime<Utc>) -> Result<Vec<ScheduledChange>, StoreError>;

    /// Forget a scheduled change once it is applied.
    async fn delete_scheduled_change(&self, change: &ScheduledChange) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------------------------------- sessions

/// Why a broker role's revocation policy could not be read or written: the classified failure of the
/// IAM call, which decides retry or refusal ([`crate::front::Failure`]).
pub type RevokerError = SdkFailure;

/// Reads and writes the inline revocation policy on each account's broker role.
#[async_trait]
pub trait SessionRevoker: Send + Sync + Debug + 'static {
    /// The current document of the policy on `account`'s broker role, if any.
    async fn get_policy(&self, account: &AccountId) -> Result<Option<String>, RevokerError>;
    /// Replace it with `document`.
    async fn put_policy(&self, account: &AccountId, document: &str) -> Result<(), RevokerError>;
}

// ---------------------------------------------------------------------------------------- audit

/// Why audit events could not be published: the classified failure of the call.
pub type AuditError = SdkFailure;

/// Publishes audit events.
#[async_trait]
pub trait AuditSink: Send + Sync + Debug + 'static {
    async fn publish(&self, events: &[PublishedEvent]) -> Result<(), AuditError>;
}

// ---------------------------------------------------------------------------------------- broker

/// What to ask STS for.
#[derive(Debug, Clone, PartialEq)]
pub struct AssumeRequest {
    pub role_arn: String,
    pub session_name: String,
    pub source_identity: String,
    pub policy: String,
    pub duration_seconds: u64,
}

/// What STS gave.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub credentials: ProcessCredentials,
    pub packed_policy_size: Option<i32>,
}

/// Why no credentials were issued.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrokerError {
    /// STS refused the request itself; the answer for the requester.
    #[error("{0}")]
    Refused(RequestError),
    /// STS could not be reached or throttled; retrying may help.
    #[error("STS unavailable: {0}")]
    Unavailable(String),
}

/// Turns a session policy into temporary credentials.
#[async_trait]
pub trait CredentialBroker: Send + Sync + Debug + 'static {
    async fn assume(&self, request: &AssumeRequest) -> Result<IssuedCredentials, BrokerError>;
}

// ---------------------------------------------------------------------------------------- replies

/// Why a reply was not delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplyError {
    /// The address cannot take the reply (gone, a FIFO queue, refused): retrying cannot help.
    #[error("the reply cannot be delivered: {0}")]
    Undeliverable(String),
    /// SQS could not be reached or throttled; retrying may help.
    #[error("the reply could not be sent: {0}")]
    Unavailable(String),
}

/// Sends replies.
#[async_trait]
pub trait ReplySink: Send + Sync + Debug + 'static {
    /// Send `reply` (its exact text) to `to`, tagged with the request it answers.
    async fn send(&self, to: &QueueUrl, in_reply_to: Option<&MessageId>, reply: &str) -> Result<(), ReplyError>;
}

// ---------------------------------------------------------------------------------------- identity

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdentityError {
    /// The token is missing, malformed, expired or not from the issuer.
    #[error("{0}")]
    Unauthenticated(String),
    /// The issuer's keys could not be loaded; retry later.
    #[error("identity keys unavailable: {0}")]
    Unavailable(String),
}

/// Says who a token belongs to.
#[async_trait]
pub trait IdentityVerifier: Send + Sync + Debug + 'static {
    /// Verify `token` as of `now` and return who it names.
    async fn verify(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<Identity, IdentityError>;
}

// ---------------------------------------------------------------------------------------- posture evidence

/// Reads the posture worker's evidence items (read-only; the posture worker writes them).
#[async_trait]
pub trait EvidenceReader: Send + Sync + Debug + 'static {
    /// The latest evidence of every control measured in each (account, region) of
    /// `accounts` × `regions`; controls never measured are left out.
    async fn latest_evidence(
        &self,
        accounts: &[AccountId],
        regions: &[String],
    ) -> Result<Vec<portcullis_domain::messages::ControlEvidence>, StoreError>;
}

// ---------------------------------------------------------------------------------------- all

/// Everything the access use cases talk to.
#[derive(Debug, Clone)]
pub struct Ports {
    pub store: Arc<dyn AccessStore>,
    pub broker: Arc<dyn CredentialBroker>,
    pub replies: Arc<dyn ReplySink>,
    pub identity: Arc<dyn IdentityVerifier>,
    pub sessions: Arc<dyn SessionRevoker>,
    pub audit: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
}
