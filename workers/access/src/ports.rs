//! What the access use cases need from the world, as traits: a store, a credential broker, a reply
//! sink and an identity verifier. The AWS adapters implement them in [`crate::adapters`]; the fakes in
//! [`crate::fakes`] implement them in memory for tests.
//!
//! Every port's error says whether retrying can help: the adapters decide that from
//! [`portcullis_runtime::aws::classify`], once.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_domain::grant::Grant;
use portcullis_domain::identity::Identity;
use portcullis_domain::messages::{ProcessCredentials, TemplateSummary};
use portcullis_domain::template::StoredTemplate;
use portcullis_domain::{AccountId, GrantId, MessageId, QueueUrl, RequestError, TemplateName};

// ---------------------------------------------------------------------------------------- store

/// A storage failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or failed; retrying may help.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored item cannot be decoded: retrying cannot help.
    #[error("stored item {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    /// A concurrent update won a conditional write; retry at once.
    #[error("concurrent update of {0}; retry")]
    Conflict(String),
    /// The store refused the request itself (for example a key over its size limit): retrying
    /// cannot help.
    #[error("the store refused the request: {0}")]
    Invalid(String),
}

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

/// Templates, grants and request records.
#[async_trait]
pub trait AccessStore: Send + Sync + Debug + 'static {
    /// The record of an earlier request with this key, if any.
    async fn request_record(&self, key: &RequestKey<'_>) -> Result<Option<RequestRecord>, StoreError>;

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

    /// Write a new grant with its record.
    async fn put_grant(&self, grant: &Grant, record: &NewRecord<'_>) -> Result<Recorded<()>, StoreError>;

    /// The user's grants live at `now`, for one account or all, oldest first.
    async fn live_grants(
        &self,
        user: &str,
        account: Option<&AccountId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>, StoreError>;
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
