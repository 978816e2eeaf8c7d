//! The edge's ports: Slack's Web API, Portcullis, the edge's records, the audit bus. Each has an
//! AWS or HTTP adapter (`adapters`) and an in-memory fake (`memory`, and the fake Slack server).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_client::AskError;
use portcullis_domain::audit::AuditEvent;
use portcullis_domain::directory::DirectoryRecord;
use portcullis_domain::grant::Grant;
use portcullis_domain::messages::{
    GrantApprove, GrantDeny, GrantList, GrantPendingResult, GrantRequest, GrantReview, GrantRevoke, OnBehalfOf,
    RevocationResult, TemplateGet, TemplateSummary,
};
use portcullis_domain::template::StoredTemplate;
use portcullis_domain::{GrantId, MessageId};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

use crate::card::GrantCard;
use crate::render::{Audience, Ephemeral};

// ------------------------------------------------------------------------------------------ Slack

/// A Slack Web API call that failed (network, or `ok: false`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Slack {method} failed: {message}")]
pub struct SlackError {
    pub method: &'static str,
    pub message: String,
}

/// Where a posted message is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
}

/// The Slack Web API calls the edge makes, with the bot token.
#[async_trait]
pub trait SlackApi: Send + Sync + Debug {
    /// `chat.postMessage`.
    async fn post_message(&self, request: &SlackApiChatPostMessageRequest) -> Result<PostedMessage, SlackError>;
    /// `chat.update`.
    async fn update_message(&self, request: &SlackApiChatUpdateRequest) -> Result<(), SlackError>;
    /// `views.open`.
    async fn open_view(&self, request: &SlackApiViewsOpenRequest) -> Result<(), SlackError>;
    /// `views.publish`.
    async fn publish_view(&self, request: &SlackApiViewsPublishRequest) -> Result<(), SlackError>;
    /// A post to an interaction's `response_url` (no token: the URL is the capability).
    async fn respond(&self, response_url: &str, message: &Ephemeral) -> Result<(), SlackError>;
    /// `users.info`: the profile e-mail (only with `slack.email_matching`).
    async fn user_email(&self, user_id: &str) -> Result<Option<String>, SlackError>;
}

// ------------------------------------------------------------------------------------- Portcullis

/// One request the edge sends for a person.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    Request(GrantRequest),
    Approve(GrantApprove),
    Deny(GrantDeny),
    Review(GrantReview),
    Revoke(GrantRevoke),
    List(GrantList),
    Pending,
    Template(TemplateGet),
    Templates,
}

/// Its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Grant(Box<Grant>),
    Revoked(RevocationResult),
    Grants(Vec<Grant>),
    Pending(GrantPendingResult),
    Template(Box<StoredTemplate>),
    Templates(Vec<TemplateSummary>),
}

/// Portcullis, reached as a trusted producer acting `on_behalf_of` the linked person.
#[async_trait]
pub trait Portcullis: Send + Sync + Debug {
    /// Send `ask` for `who` under `message_id` (the same id acts once) and wait for the answer.
    async fn ask(&self, who: &OnBehalfOf, message_id: MessageId, ask: Ask) -> Result<Answer, AskError>;
}

// ---------------------------------------------------------------------------------------- records

/// A record could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the edge's records: {0}")]
pub struct StoreError(pub String);

/// A Slack user bound to an IdP subject (the `user` Portcullis knows), from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Portcullis user (the ID token's user claim).
    pub subject: String,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    pub issuer: String,
    pub linked_at: DateTime<Utc>,
}

impl Binding {
    /// Who Portcullis is asked to act for. The workers check the person against the directory
    /// (offboarded, moved team, changed groups) as for a token.
    pub fn on_behalf_of(&self) -> OnBehalfOf {
        OnBehalfOf { user: self.subject.clone(), team: self.team.clone(), groups: self.groups.clone() }
    }
}

/// A link in progress: who asked (from the signed slash command), and the PKCE verifier and nonce
/// once the browser started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    pub team_id: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub started: Option<StartedLink>,
}

/// What `/link/start` chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedLink {
    pub pkce_verifier: String,
    pub nonce: String,
    /// Hash of the cookie set in the browser that started: the callback must come from it.
    pub browser_hash: String,
}

/// One Slack message showing a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub channel: String,
    pub ts: String,
    pub audience: Audience,
}

/// The edge's own records (bindings, links in progress, grants' messages).
#[async_trait]
pub trait EdgeStore: Send + Sync + Debug {
    async fn binding(&self, team_id: &str, user_id: &str) -> Result<Option<Binding>, StoreError>;
    async fn put_binding(&self, team_id: &str, user_id: &str, binding: &Binding) -> Result<(), StoreError>;
    /// Remove a binding; whether there was one.
    async fn delete_binding(&self, team_id: &str, user_id: &str) -> Result<bool, StoreError>;

    async fn put_link(&self, state: &str, link: &LinkState) -> Result<(), StoreError>;
    /// A link not expired as of `now`.
    async fn link(&self, state: &str, now: DateTime<Utc>) -> Result<Option<LinkState>, StoreError>;
    /// Delete and return it: a link is used once, whoever races.
    async fn take_link(&self, state: &str, now: DateTime<Utc>) -> Result<Option<LinkState>, StoreError>;

    /// The card of a grant Slack shows.
    async fn card(&self, grant: &GrantId) -> Result<Option<GrantCard>, StoreError>;
    /// Store `card` as revision `card.version + 1`, only if the stored one is still revision
    /// `card.version` (0: none stored): whether it was written.
    async fn put_card(&self, card: &GrantCard) -> Result<bool, StoreError>;
    /// Record a message showing the grant.
    async fn add_message(&self, grant: &GrantId, message: &MessageRef) -> Result<(), StoreError>;
    async fn messages(&self, grant: &GrantId) -> Result<Vec<MessageRef>, StoreError>;
    /// Claim the one approver notification of a grant: `true` for the first caller only.
    async fn claim_notification(&self, grant: &GrantId) -> Result<bool, StoreError>;

    /// Remember to update `grant`'s copies when it ends at `at` (an active grant's end, a pending
    /// one's lapse): Portcullis publishes no event for that.
    async fn schedule_expiry(&self, grant: &GrantId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// The expiries due by `now` (of today and yesterday, UTC; oldest first, at most `limit`).
    async fn due_expiries(&self, now: DateTime<Utc>, limit: usize)
    -> Result<Vec<(GrantId, DateTime<Utc>)>, StoreError>;
    /// Forget one once its copies are updated.
    async fn clear_expiry(&self, grant: &GrantId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// What the directory (the HR events the directory worker applied) says about `subject`:
    /// an account is linked only to an identity the directory lets act.
    async fn directory_record(&self, subject: &str) -> Result<Option<DirectoryRecord>, StoreError>;
}

// ------------------------------------------------------------------------------------------ audit

/// An audit event could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit event could not be published: {0}")]
pub struct AuditError(pub String);

/// Account-link events for the Portcullis bus.
#[async_trait]
pub trait LinkAudit: Send + Sync + Debug {
    /// Publish `event` (a `Slack Account Linked` or `Slack Account Unlinked`) on the bus.
    async fn publish(&self, event: &AuditEvent) -> Result<(), AuditError>;
}
