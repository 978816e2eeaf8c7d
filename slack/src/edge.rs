//! The edge: what each verified Slack request, browser visit and bus event does. Slack is answered
//! at once (an empty 200, an ephemeral line, a modal's errors); the Portcullis round trip runs in a
//! spawned task that answers through `response_url`, `chat.postMessage`, `chat.update` or
//! `views.*`. Every handler is idempotent: message ids derive from what caused them, a click
//! already in flight is dropped, and Portcullis acts once per (person, message id).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use portcullis_client::{AskError, RefusalCode};
use portcullis_domain::audit::{self, AuditEvent};
use portcullis_domain::grant::Verdict;
use portcullis_domain::messages::{
    GrantApprove, GrantDeny, GrantList, GrantRequest, GrantReview, GrantRevoke, TemplateGet,
};
use portcullis_domain::{ErrorCode, GrantId, MessageId, TemplateName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use slack_morphism::prelude::*;
use tokio_util::task::TaskTracker;

use crate::card::{CardState, GrantCard, grant_of};
use crate::command::{self, HELP, RequestArgs, SlashCommand};
use crate::form::check_request;
use crate::inbound::{self, Event, Interaction, Origin};
use crate::link::{IdProvider, LinkError, random_token, s256};
use crate::ports::{
    Answer, Ask, Binding, EdgeStore, LinkAudit, LinkState, MessageRef, Portcullis, SlackApi, StartedLink, StoreError,
};
use crate::render::{self, Audience, Ephemeral, RequestForm, actions, callbacks};
use crate::settings::EdgeSettings;
use crate::verify::{ReplayGuard, Signed, VerifyError, verify_signature};

/// The clock the edge reads (tests pass their own).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// An HTTP answer, for the shell to send as is.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl HttpAnswer {
    fn json(status: u16, body: &Value) -> Self {
        HttpAnswer { status, content_type: "application/json", body: body.to_string(), headers: Vec::new() }
    }
    /// The acknowledgement: an empty 200.
    pub fn ack() -> Self {
        HttpAnswer { status: 200, content_type: "text/plain", body: String::new(), headers: Vec::new() }
    }
    fn ephemeral(text: impl Into<String>) -> Self {
        Self::json(200, &json!(Ephemeral::text(text)))
    }
    /// A refusal with its stable code.
    pub fn refused(status: u16, code: ErrorCode, message: &str) -> Self {
        Self::json(status, &json!({"ok": false, "error": code.as_str(), "message": message}))
    }
    fn page(status: u16, title: &str, text: &str) -> Self {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        HttpAnswer {
            status,
            content_type: "text/html; charset=utf-8",
            body: format!("<!doctype html><title>{}</title><h1>{}</h1><p>{}</p>", esc(title), esc(title), esc(text)),
            headers: Vec::new(),
        }
    }
}

/// The cookie `/link/start` sets.
pub const LINK_COOKIE: &str = "portcullis_link";

/// The ports the edge runs on.
#[derive(Debug, Clone)]
pub struct Ports {
    pub slack: Arc<dyn SlackApi>,
    pub portcullis: Arc<dyn Portcullis>,
    pub store: Arc<dyn EdgeStore>,
    pub idp: Arc<dyn IdProvider>,
    pub audit: Arc<dyn LinkAudit>,
}

/// The Slack edge.
pub struct Edge {
    settings: Arc<EdgeSettings>,
    ports: Ports,
    replay: ReplayGuard,
    inflight: Mutex<HashSet<MessageId>>,
    tasks: TaskTracker,
    clock: Clock,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("settings", &self.settings).field("ports", &self.ports).finish_non_exhaustive()
    }
}

/// Reads and writes of one card before giving up on a busy grant.
const CARD_WRITE_TRIES: usize = 5;

/// Expiries handled per sweep.
const EXPIRY_SWEEP_BATCH: usize = 100;

/// A message id derived from what caused the request: the same cause, the same id, one action.
pub fn message_id(parts: &[&str]) -> MessageId {
    let digest = hex::encode(Sha256::digest(parts.join("\u{0}").as_bytes()));
    MessageId::parse(&format!("slack-{}", &digest[..40])).unwrap_or_else(|_| portcullis_client::new_message_id())
}

fn refusal_text(e: &AskError) -> String {
    match e {
        AskError::Refused(r) => match r.code.known() {
            Some(ErrorCode::ApprovalForbidden) => format!(
                ":no_entry: You cannot decide this one (`approval_forbidden`): {}. Your own requests need someone else.",
                r.message
            ),
            _ => format!(":warning: Portcullis refused (`{}`): {}", r.code.as_str(), r.message),
        },
        AskError::Client(_) => ":warning: Portcullis did not answer in time; try again in a minute.".to_owned(),
    }
}

fn is_code(e: &AskError, code: ErrorCode) -> bool {
    matches!(e, AskError::Refused(r) if r.code == RefusalCode::Known(code))
}

/// A decision from a button or the slash command.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Approve,
    Deny(String),
    Revoke(String),
    Review(Verdict, String),
}

impl Decision {
    fn name(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny(_) => "deny",
            Decision::Revoke(_) => "revoke",
            Decision::Review(..) => "review",
        }
    }
}

impl Edge {
    pub fn new(settings: Arc<EdgeSettings>, ports: Ports, clock: Clock) -> Arc<Self> {
        Arc::new(Edge {
            settings,
            ports,
            replay: ReplayGuard::default(),
            inflight: Mutex::default(),
            tasks: TaskTracker::new(),
            clock,
        })
    }

    pub fn settings(&self) -> &EdgeSettings {
        &self.settings
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Wait for every spawned task (shutdown; tests).
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(work);
    }

    // ------------------------------------------------------------------------------- verification

    /// Signature, window and replay, on the raw body: `Err` is the answer to send.
    pub fn verify(&self, headers: Signed<'_>, body: &[u8]) -> Result<(), HttpAnswer> {
        let now = self.now().timestamp();
        let refuse = |e: VerifyError| {
            tracing::warn!(target: "portcullis::slack", code = e.code().as_str(), "refused a Slack request: {e}");
            HttpAnswer::refused(401, e.code(), &e.to_string())
        };
        verify_signature(self.settings.slack.signing_secret.expose(), headers, body, now).map_err(refuse)?;
        let ts = headers.timestamp.and_then(|t| t.parse().ok()).unwrap_or(now);
        self.replay.first_time(headers.signature.unwrap_or_default(), ts, now).map_err(refuse)
    }

    fn check_origin(&self, origin: &Origin) -> Result<(), HttpAnswer> {
        let slack = &self.settings.slack;
        if origin.team_id != slack.team_id || origin.api_app_id != slack.api_app_id {
            tracing::warn!(target: "portcullis::slack", team = %origin.team_id, app = %origin.api_app_id, "refused a request from another workspace or app");
            return Err(HttpAnswer::refused(
                403,
                ErrorCode::SlackWorkspaceUnknown,
                "this Portcullis edge serves another Slack workspace or app",
            ));
        }
        Ok(())
    }

    /// Who the Slack user acts as: their binding, or (only with `slack.email_matching`) the
    /// case-folded e-mail of their Slack profile.
    async fn actor(&self, team_id: &str, user_id: &str) -> Result<Option<Binding>, StoreError> {
        if let Some(binding) = self.ports.store.binding(team_id, user_id).await? {
            return Ok(Some(binding));
        }
        if !self.settings.slack.email_matching {
            return Ok(None);
        }
        let email = self.ports.slack.user_email(user_id).await.map_err(|e| StoreError(e.to_string()))?;
        Ok(email.filter(|e| e.contains('@')).map(|e| Binding {
            subject: e.to_lowercase(),
            team: None,
            groups: Vec::new(),
            display_name: None,
            issuer: "slack-email".into(),
            linked_at: self.now(),
        }))
    }

    fn not_linked() -> String {
        format!(
            "Link your Slack account to your company sign-in first: `/portcullis link` (`{}`).",
            ErrorCode::SlackNotLinked.as_str()
        )
    }

    // ---------------------------------------------------------------------------- slash command

    /// `/slack/commands` (verified).
    pub async fn command(self: &Arc<Self>, body: &[u8]) -> HttpAnswer {
        let cmd = match inbound::command(body) {
            Ok(c) => c,
            Err(e) => return HttpAnswer::refused(400, ErrorCode::BadRequest, &e.to_string()),
        };
        if let Err(answer) = self.check_origin(&cmd.origin) {
            return answer;
        }
        let parsed = match command::parse(&cmd.text) {
            Ok(p) => p,
            Err(e) => return HttpAnswer::ephemeral(format!("{e}\n\n{HELP}")),
        };
        let team = cmd.origin.team_id.clone();
        match parsed {
            SlashCommand::Help => return HttpAnswer::ephemeral(HELP),
            SlashCommand::Link => return self.start_link(&team, &cmd.user_id).await,
            SlashCommand::Unlink => return self.unlink(&team, &cmd.user_id).await,
            _ => {}
        }
        let binding = match self.actor(&team, &cmd.user_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return HttpAnswer::ephemeral(Self::not_linked()),
            Err(e) => return HttpAnswer::ephemeral(format!(":warning: {e}; try again")),
        };
        let edge = Arc::clone(self);
        let url = Some(cmd.response_url.clone());
        let user = cmd.user_id.clone();
        match parsed {
            SlashCommand::Request(args) => {
                let id = message_id(&["request", &team, &user, &cmd.trigger_id]);
                let text = format!("Asking Portcullis for *{}*…", args.template.as_str());
                self.spawn(async move { edge.request(binding, args, user, url, id).await });
                HttpAnswer::ephemeral(text)
            }
            SlashCommand::RequestModal(template) => {
                let trigger = cmd.trigger_id.clone();
                self.spawn(async move { edge.open_request_modal(binding, template, trigger, url).await });
                HttpAnswer::ack()
            }
            SlashCommand::List => {
                self.spawn(async move { edge.list(binding, url).await });
                HttpAnswer::ack()
            }
            SlashCommand::Pending => {
                self.spawn(async move { edge.pending(binding, url).await });
                HttpAnswer::ack()
            }
            SlashCommand::Approve(grant) => {
                self.decide_later(binding, user, grant, Decision::Approve, url, &cmd.trigger_id)
            }
            SlashCommand::Deny { grant, reason } => {
                self.decide_later(binding, user, grant, Decision::Deny(reason), url, &cmd.trigger_id)
            }
            SlashCommand::Revoke { grant, reason } => {
                self.decide_later(binding, user, grant, Decision::Revoke(reason), url, &cmd.trigger_id)
            }
            SlashCommand::Review { grant, verdict, note } => {
                self.decide_later(binding, user, grant, Decision::Review(verdict, note), url, &cmd.trigger_id)
            }
            SlashCommand::Help | SlashCommand::Link | SlashCommand::Unlink => HttpAnswer::ack(),
        }
    }

    fn decide_later(
        self: &Arc<Self>,
        binding: Binding,
        user: String,
        grant: GrantId,
        decision: Decision,
        url: Option<String>,
        cause: &str,
    ) -> HttpAnswer {
        let id = message_id(&[decision.name(), &self.settings.slack.team_id, &user, grant.as_str(), cause]);
        let edge = Arc::clone(self);
        self.spawn(async move { edge.decide(binding, grant, decision, url, id).await });
        HttpAnswer::ack()
    }

    async fn respond(&self, url: Option<&str>, message: Ephemeral) {
        let Some(url) = url.filter(|u| !u.is_empty()) else { return };
        if !self.settings.slack.response_url_prefixes.iter().any(|p| url.starts_with(p.as_str())) {
            tracing::warn!(target: "portcullis::slack", "a response_url outside slack.response_url_prefixes was not used");
            return;
        }
        if let Err(e) = self.ports.slack.respond(url, &message).await {
            tracing::warn!(target: "portcullis::slack", "{e}");
        }
    }

    // -------------------------------------------------------------------------------- requests

    async fn request(
        self: Arc<Self>,
        binding: Binding,
        args: RequestArgs,
        user: String,
        url: Option<String>,
        id: MessageId,
    ) {
        let Some(account) = args.account.clone().or_else(|| self.settings.slack.default_account.clone()) else {
            return self.respond(url.as_deref(), Ephemeral::text("Name the account: `--account 123456789012`.")).await;
        };
        let body = GrantRequest {
            template: args.template,
            params: args.params,
            account,
            ttl: args.ttl_seconds.unwrap_or(3600),
            reason: args.reason,
            break_glass: args.break_glass,
        };
        self.send_request(binding, body, user, url, id).await;
    }

    async fn send_request(
        &self,
        binding: Binding,
        body: GrantRequest,
        user: String,
        url: Option<String>,
        id: MessageId,
    ) {
        match self.ports.portcullis.ask(&binding.on_behalf_of(), id, Ask::Request(body)).await {
            Ok(Answer::Grant(grant)) => {
                // The bus's events may have made the card first: refreshed, not replaced.
                let stored = self
                    .update_card(&grant.id, |stored| {
                        let mut card = stored.unwrap_or_else(|| GrantCard::of(&grant));
                        card.refresh(&grant);
                        Some(card)
                    })
                    .await;
                let card = match stored {
                    Ok(Some(card)) => card,
                    Ok(None) => GrantCard::of(&grant),
                    Err(e) => {
                        tracing::warn!(target: "portcullis::slack", "{e}");
                        GrantCard::of(&grant)
                    }
                };
                self.post_copy(&card, &user, Audience::Requester).await;
                if card.state == CardState::Pending || card.review_owed {
                    self.notify_approvers(&card).await;
                }
                let text = format!("Requested: grant `{}` is *{}*.", grant.id, grant.status.as_str());
                self.respond(url.as_deref(), Ephemeral::text(text)).await;
            }
            Ok(other) => tracing::warn!(target: "portcullis::slack", "unexpected answer to grant.request: {other:?}"),
            Err(e) => self.respond(url.as_deref(), Ephemeral::text(refusal_text(&e))).await,
        }
    }

    /// Post a copy of the grant's message to `channel` and remember it.
    async fn post_copy(&self, card: &GrantCard, channel: &str, audience: Audience) {
        let content = render::grant_message(card, audience, self.now());
        let request = SlackApiChatPostMessageRequest::new(SlackChannelId::new(channel.to_owned()), content);
        match self.ports.slack.post_message(&request).await {
            Ok(posted) => {
                let message = MessageRef { channel: posted.channel, ts: posted.ts, audience };
                if let Err(e) = self.ports.store.add_message(&card.grant_id, &message).await {
                    tracing::warn!(target: "portcullis::slack", "{e}");
                }
            }
            Err(e) => tracing::warn!(target: "portcullis::slack", "{e}"),
        }
    }

    /// The approvers' notification, once per grant (the request path and the bus both call it).
    async fn notify_approvers(&self, card: &GrantCard) {
        match self.ports.store.claim_notification(&card.grant_id).await {
            Ok(true) => {
                let channel = self.settings.approvals_channel_for(card.template.as_str()).to_owned();
                self.post_copy(card, &channel, Audience::Approvers).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(target: "portcullis::slack", "{e}"),
        }
    }

    /// `chat.update` every copy of the grant's message.
    async fn update_copies(&self, card: &GrantCard) {
        let copies = match self.ports.store.messages(&card.grant_id).await {
            Ok(c) => c,
            Err(e) => return tracing::warn!(target: "portcullis::slack", "{e}"),
        };
        for copy in copies {
            let content = render::grant_message(card, copy.audience, self.now());
            let request = SlackApiChatUpdateRequest::new(
                SlackChannelId::new(copy.channel.clone()),
                content,
                SlackTs::new(copy.ts.clone()),
            );
            if let Err(e) = self.ports.slack.update_message(&request).await {
                tracing::warn!(target: "portcullis::slack", "{e}");
            }
        }
    }

    /// Read the grant's card, `change` it, and store it over the revision read, again from the read
    /// when another replica wrote in between (at most [`CARD_WRITE_TRIES`] times). `change` returns
    /// `None` for nothing to write. While the card can still end by itself (active or pending), its
    /// end is scheduled for the expiry sweep. Returns the card as stored.
    async fn update_card(
        &self,
        grant: &GrantId,
        change: impl Fn(Option<GrantCard>) -> Option<GrantCard>,
    ) -> Result<Option<GrantCard>, StoreError> {
        for _ in 0..CARD_WRITE_TRIES {
            let Some(card) = change(self.ports.store.card(grant).await?) else { return Ok(None) };
            if !self.ports.store.put_card(&card).await? {
                continue;
            }
            if matches!(card.state, CardState::Active | CardState::Pending) {
                self.ports.store.schedule_expiry(&card.grant_id, card.expires_at).await?;
            }
            return Ok(Some(card));
        }
        Err(StoreError(format!("the card of grant {grant} kept changing under this edge; not updated")))
    }

    /// Update every copy of the grants that ended by themselves since the last sweep (expired, or
    /// lapsed unapproved): Portcullis publishes no event for that. Replicas may sweep the same
    /// grant; each update shows the same message. Returns how many grants were updated.
    pub async fn sweep_expiries(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let mut updated = 0;
        for (grant, at) in self.ports.store.due_expiries(now, EXPIRY_SWEEP_BATCH).await? {
            let expired = self
                .update_card(&grant, |stored| {
                    let mut card = stored?;
                    card.expire(now).then_some(card)
                })
                .await?;
            if let Some(card) = expired {
                self.update_copies(&card).await;
                updated += 1;
            }
            self.ports.store.clear_expiry(&grant, at).await?;
        }
        Ok(updated)
    }

    async fn open_request_modal(&self, binding: Binding, template: TemplateName, trigger: String, url: Option<String>) {
        let id = portcullis_client::new_message_id();
        let ask = Ask::Template(TemplateGet { name: template, version: None });
        match self.ports.portcullis.ask(&binding.on_behalf_of(), id, ask).await {
            Ok(Answer::Template(t)) => {
                let view = render::request_modal(&t, self.settings.slack.default_account.as_ref());
                let request = SlackApiViewsOpenRequest::new(SlackTriggerId::new(trigger), view);
                if let Err(e) = self.ports.slack.open_view(&request).await {
                    self.respond(
                        url.as_deref(),
                        Ephemeral::text(format!(":warning: the form could not open ({e}); write the request instead")),
                    )
                    .await;
                }
            }
            Ok(_) => {}
            Err(e) => self.respond(url.as_deref(), Ephemeral::text(refusal_text(&e))).await,
        }
    }

    async fn list(&self, binding: Binding, url: Option<String>) {
        let id = portcullis_client::new_message_id();
        match self.ports.portcullis.ask(&binding.on_behalf_of(), id, Ask::List(GrantList::default())).await {
            Ok(Answer::Grants(grants)) => self.respond(url.as_deref(), render::grant_list(&grants)).await,
            Ok(_) => {}
            Err(e) => self.respond(url.as_deref(), Ephemeral::text(refusal_text(&e))).await,
        }
    }

    async fn pending(&self, binding: Binding, url: Option<String>) {
        let id = portcullis_client::new_message_id();
        match self.ports.portcullis.ask(&binding.on_behalf_of(), id, Ask::Pending).await {
            Ok(Answer::Pending(p)) => {
                self.respond(url.as_deref(), render::pending_list(&p.approvals, &p.reviews)).await
            }
            Ok(_) => {}
            Err(e) => self.respond(url.as_deref(), Ephemeral::text(refusal_text(&e))).await,
        }
    }

    // ------------------------------------------------------------------------------- decisions

    /// Approve, deny, review or revoke: Portcullis decides from its own record of the grant (the
    /// button carried only its id), and every copy of the grant's message shows the outcome.
    async fn decide(&self, binding: Binding, grant: GrantId, decision: Decision, url: Option<String>, id: MessageId) {
        // A double click: the same message id while the first is in flight acts once.
        let first = self.inflight.lock().map(|mut s| s.insert(id.clone())).unwrap_or(false);
        if !first {
            return;
        }
        let ask = match &decision {
            Decision::Approve => Ask::Approve(GrantApprove { grant_id: grant.clone() }),
            Decision::Deny(reason) => Ask::Deny(GrantDeny { grant_id: grant.clone(), reason: reason.clone() }),
            Decision::Revoke(reason) => Ask::Revoke(GrantRevoke { grant_id: grant.clone(), reason: reason.clone() }),
            Decision::Review(verdict, note) => {
                Ask::Review(GrantReview { grant_id: grant.clone(), verdict: *verdict, note: note.clone() })
            }
        };
        let answer = self.ports.portcullis.ask(&binding.on_behalf_of(), id.clone(), ask).await;
        let card = match &answer {
            Ok(Answer::Grant(g)) => {
                self.update_card(&grant, |stored| {
                    let mut card = stored.unwrap_or_else(|| GrantCard::of(g));
                    card.refresh(g);
                    Some(card)
                })
                .await
            }
            Ok(Answer::Revoked(_)) => {
                self.update_card(&grant, |stored| {
                    let mut card = stored?;
                    (card.state != CardState::Revoked).then(|| {
                        card.state = CardState::Revoked;
                        card
                    })
                })
                .await
            }
            _ => Ok(None),
        };
        let card = card.unwrap_or_else(|e| {
            tracing::warn!(target: "portcullis::slack", "{e}");
            None
        });
        let text = match answer {
            Ok(Answer::Grant(g)) => format!("Done: grant `{}` is now *{}*.", g.id, g.status.as_str()),
            Ok(Answer::Revoked(r)) => {
                if r.grants.is_empty() {
                    format!("Grant `{grant}` had ended already.")
                } else {
                    format!(
                        "Revoked `{grant}`; sessions issued before {} no longer work.",
                        r.sessions_issued_before.format("%H:%M:%S UTC")
                    )
                }
            }
            Ok(other) => format!("unexpected answer: {other:?}"),
            // Decided already (the second of two clicks, or someone else first): show where it stands.
            Err(e) if is_code(&e, ErrorCode::GrantNotPending) || is_code(&e, ErrorCode::ReviewNotNeeded) => {
                format!("Grant `{grant}` was decided already.")
            }
            Err(e) => refusal_text(&e),
        };
        if let Some(c) = &card {
            self.update_copies(c).await;
        }
        self.respond(url.as_deref(), Ephemeral::text(text)).await;
        if let Ok(mut s) = self.inflight.lock() {
            s.remove(&id);
        }
    }

    // ---------------------------------------------------------------------------- interactions

    /// `/slack/interactions` (verified).
    pub async fn interaction(self: &Arc<Self>, body: &[u8]) -> HttpAnswer {
        let interaction = match inbound::interaction(body) {
            Ok(i) => i,
            Err(e) => return HttpAnswer::refused(400, ErrorCode::BadRequest, &e.to_string()),
        };
        if let Err(answer) = self.check_origin(interaction.origin()) {
            return answer;
        }
        let team = interaction.origin().team_id.clone();
        match interaction {
            Interaction::BlockActions { user_id, clicks, response_url, .. } => {
                let binding = match self.actor(&team, &user_id).await {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        let edge = Arc::clone(self);
                        self.spawn(async move {
                            edge.respond(response_url.as_deref(), Ephemeral::text(Self::not_linked())).await
                        });
                        return HttpAnswer::ack();
                    }
                    Err(e) => return HttpAnswer::ephemeral(format!(":warning: {e}")),
                };
                for click in clicks {
                    let Ok(grant) = GrantId::parse(&click.value) else { continue };
                    let decision = match click.action_id.as_str() {
                        actions::APPROVE => Decision::Approve,
                        actions::DENY => Decision::Deny(format!("denied in Slack by {}", binding.subject)),
                        actions::REVOKE => Decision::Revoke(format!("revoked in Slack by {}", binding.subject)),
                        actions::REVIEW_JUSTIFIED => Decision::Review(Verdict::Justified, "reviewed in Slack".into()),
                        actions::REVIEW_UNJUSTIFIED => {
                            Decision::Review(Verdict::Unjustified, "reviewed in Slack".into())
                        }
                        _ => continue,
                    };
                    // One id per (person, grant, decision): two clicks of the same button act once.
                    self.decide_later(
                        binding.clone(),
                        user_id.clone(),
                        grant,
                        decision,
                        response_url.clone(),
                        "button",
                    );
                }
                HttpAnswer::ack()
            }
            Interaction::Shortcut { user_id, callback_id, trigger_id, .. } if callback_id == callbacks::SHORTCUT => {
                let binding = match self.actor(&team, &user_id).await {
                    Ok(Some(b)) => b,
                    _ => return HttpAnswer::ack(),
                };
                let edge = Arc::clone(self);
                self.spawn(async move { edge.open_pick_modal(binding, trigger_id).await });
                HttpAnswer::ack()
            }
            Interaction::ViewSubmission { user_id, callback_id, private_metadata, values, .. } => {
                let binding = match self.actor(&team, &user_id).await {
                    Ok(Some(b)) => b,
                    _ => return Self::view_errors("template", &Self::not_linked()),
                };
                match callback_id.as_str() {
                    callbacks::PICK => self.picked(binding, &values).await,
                    callbacks::REQUEST => self.submitted(binding, user_id, &private_metadata, &values),
                    _ => HttpAnswer::ack(),
                }
            }
            Interaction::Shortcut { .. } | Interaction::Other { .. } => HttpAnswer::ack(),
        }
    }

    fn view_errors(block: &str, message: &str) -> HttpAnswer {
        HttpAnswer::json(200, &json!({"response_action": "errors", "errors": {block: message}}))
    }

    async fn open_pick_modal(&self, binding: Binding, trigger: String) {
        let id = portcullis_client::new_message_id();
        if let Ok(Answer::Templates(list)) =
            self.ports.portcullis.ask(&binding.on_behalf_of(), id, Ask::Templates).await
        {
            let request = SlackApiViewsOpenRequest::new(SlackTriggerId::new(trigger), render::pick_modal(&list));
            if let Err(e) = self.ports.slack.open_view(&request).await {
                tracing::warn!(target: "portcullis::slack", "{e}");
            }
        }
    }

    /// The template was picked: the modal becomes that template's form (in the HTTP answer, as
    /// Slack wants for a submission).
    async fn picked(
        &self,
        binding: Binding,
        values: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    ) -> HttpAnswer {
        let picked = values.get(render::blocks::TEMPLATE).and_then(|v| v.get(render::blocks::VALUE));
        let Some(name) = picked.and_then(|n| TemplateName::parse(n).ok()) else {
            return Self::view_errors(render::blocks::TEMPLATE, "pick a template");
        };
        let id = portcullis_client::new_message_id();
        let ask = Ask::Template(TemplateGet { name, version: None });
        let answer = tokio::time::timeout(
            std::time::Duration::from_millis(2500),
            self.ports.portcullis.ask(&binding.on_behalf_of(), id, ask),
        )
        .await;
        match answer {
            Ok(Ok(Answer::Template(t))) => {
                let view = render::request_modal(&t, self.settings.slack.default_account.as_ref());
                HttpAnswer::json(200, &json!({"response_action": "update", "view": view}))
            }
            Ok(Err(e)) => Self::view_errors(render::blocks::TEMPLATE, &refusal_text(&e)),
            _ => Self::view_errors(render::blocks::TEMPLATE, "Portcullis did not answer in time; try again"),
        }
    }

    /// The form was submitted: checked here (patterns, account, lifetime, reason) before anything
    /// is sent; errors go back to the form.
    fn submitted(
        self: &Arc<Self>,
        binding: Binding,
        user: String,
        metadata: &str,
        values: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    ) -> HttpAnswer {
        let Ok(form) = serde_json::from_str::<RequestForm>(metadata) else {
            return Self::view_errors(render::blocks::REASON, "this form is out of date; open it again");
        };
        match check_request(&form, values, self.settings.slack.default_account.as_ref()) {
            Ok(request) => {
                let digest = hex::encode(Sha256::digest(
                    serde_json::to_vec(&json!({"r": format!("{request:?}")})).unwrap_or_default(),
                ));
                let id = message_id(&[
                    "form",
                    &self.settings.slack.team_id,
                    &user,
                    &digest,
                    &self.now().timestamp().to_string(),
                ]);
                let edge = Arc::clone(self);
                self.spawn(async move { edge.send_request(binding, request, user, None, id).await });
                HttpAnswer::json(200, &json!({"response_action": "clear"}))
            }
            Err(errors) => HttpAnswer::json(200, &json!({"response_action": "errors", "errors": errors})),
        }
    }

    // ---------------------------------------------------------------------------------- events

    /// `/slack/events` (verified). `retry`: Slack's `X-Slack-Retry-Num` (acknowledged, not acted
    /// on: the first delivery was).
    pub async fn event(self: &Arc<Self>, body: &[u8], retry: bool) -> HttpAnswer {
        let event = match inbound::event(body) {
            Ok(e) => e,
            Err(e) => return HttpAnswer::refused(400, ErrorCode::BadRequest, &e.to_string()),
        };
        match event {
            Event::UrlVerification { challenge } => HttpAnswer::json(200, &json!({"challenge": challenge})),
            Event::AppHomeOpened { origin, user_id, .. } => {
                if let Err(answer) = self.check_origin(&origin) {
                    return answer;
                }
                if !retry {
                    let edge = Arc::clone(self);
                    self.spawn(async move { edge.publish_home(&origin.team_id, &user_id).await });
                }
                HttpAnswer::ack()
            }
            Event::Other { origin, .. } => {
                if let Some(origin) = origin
                    && let Err(answer) = self.check_origin(&origin)
                {
                    return answer;
                }
                HttpAnswer::ack()
            }
        }
    }

    /// The App Home: my live grants, and what waits for me.
    pub async fn publish_home(&self, team: &str, user_id: &str) {
        let view = match self.actor(team, user_id).await {
            Ok(Some(binding)) => {
                let who = binding.on_behalf_of();
                let live = self
                    .ports
                    .portcullis
                    .ask(&who, portcullis_client::new_message_id(), Ask::List(GrantList::default()))
                    .await;
                let waiting = self.ports.portcullis.ask(&who, portcullis_client::new_message_id(), Ask::Pending).await;
                match (live, waiting) {
                    (Ok(Answer::Grants(live)), Ok(Answer::Pending(p))) => render::home(&live, &p.approvals, &p.reviews),
                    (l, w) => {
                        tracing::warn!(target: "portcullis::slack", "the App Home could not be read: {:?} {:?}", l.err(), w.err());
                        return;
                    }
                }
            }
            Ok(None) => render::home_unlinked(),
            Err(e) => return tracing::warn!(target: "portcullis::slack", "{e}"),
        };
        let request = SlackApiViewsPublishRequest::new(SlackUserId::new(user_id.to_owned()), view);
        if let Err(e) = self.ports.slack.publish_view(&request).await {
            tracing::warn!(target: "portcullis::slack", "{e}");
        }
    }

    // ---------------------------------------------------------------------------- the bus

    /// An audit event from the bus: advance the grant's card and update every copy (decisions
    /// made from the CLI, directory changes, break glass); notify approvers of a pending grant
    /// Slack has not shown yet.
    pub async fn on_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let Some(grant) = grant_of(event) else { return Ok(()) };
        let changed = self
            .update_card(grant, |stored| match stored {
                Some(mut card) => card.apply(event).then_some(card),
                None => GrantCard::from_event(event),
            })
            .await?;
        let Some(card) = changed else { return Ok(()) };
        // Grants this edge asked for were notified when their answer came (with their parameters);
        // the bus notifies for the others (the CLI, another producer).
        let announced_by = match event {
            AuditEvent::GrantPendingApproval(e) => Some(e.actor.via.as_deref()),
            AuditEvent::BreakGlassUsed(e) => Some(e.actor.via.as_deref()),
            _ => None,
        };
        if let Some(via) = announced_by
            && via != Some(self.settings.slack.producer_name.as_str())
        {
            self.notify_approvers(&card).await;
        }
        self.update_copies(&card).await;
        Ok(())
    }

    // ----------------------------------------------------------------------------------- link

    async fn start_link(&self, team: &str, user: &str) -> HttpAnswer {
        let state = random_token();
        let ttl = i64::try_from(self.settings.link.ttl_seconds).unwrap_or(600);
        let link = LinkState {
            team_id: team.to_owned(),
            user_id: user.to_owned(),
            expires_at: self.now() + chrono::Duration::seconds(ttl),
            started: None,
        };
        if let Err(e) = self.ports.store.put_link(&state, &link).await {
            return HttpAnswer::ephemeral(format!(":warning: {e}; try again"));
        }
        let url = format!("{}/link/start?state={state}", self.settings.http.public_url);
        HttpAnswer::ephemeral(format!(
            "<{url}|Link your Slack account> to your company sign-in. The link is for you only, works once, and expires in {} minutes.",
            ttl / 60
        ))
    }

    async fn unlink(self: &Arc<Self>, team: &str, user: &str) -> HttpAnswer {
        let old = self.ports.store.binding(team, user).await.ok().flatten();
        match self.ports.store.delete_binding(team, user).await {
            Ok(true) => {
                if let Some(binding) = old {
                    // One event per binding ended: its id follows from the binding.
                    let linked_at = binding.linked_at.to_rfc3339();
                    let event = AuditEvent::SlackAccountUnlinked(audit::SlackAccountUnlinked {
                        event_id: audit::event_id(&[
                            "Slack Account Unlinked",
                            team,
                            user,
                            &binding.subject,
                            &linked_at,
                        ]),
                        at: self.now(),
                        team_id: team.to_owned(),
                        slack_user_id: user.to_owned(),
                        subject: binding.subject,
                        issuer: binding.issuer,
                    });
                    let edge = Arc::clone(self);
                    self.spawn(async move {
                        if let Err(e) = edge.ports.audit.publish(&event).await {
                            tracing::warn!(target: "portcullis::slack", "{e}");
                        }
                    });
                }
                HttpAnswer::ephemeral("Unlinked: Portcullis no longer acts for this Slack account.")
            }
            Ok(false) => HttpAnswer::ephemeral("This Slack account was not linked."),
            Err(e) => HttpAnswer::ephemeral(format!(":warning: {e}; try again")),
        }
    }

    /// `GET /link/start?state=…`: remember PKCE verifier, nonce and this browser, then off to the IdP.
    pub async fn link_start(&self, state: &str) -> HttpAnswer {
        let now = self.now();
        let mut link = match self.ports.store.link(state, now).await {
            Ok(Some(l)) => l,
            Ok(None) => return Self::link_refused(&LinkError::UnknownState),
            Err(e) => return HttpAnswer::page(503, "Try again", &e.to_string()),
        };
        let cookie = random_token();
        let started = StartedLink { pkce_verifier: random_token(), nonce: random_token(), browser_hash: s256(&cookie) };
        let url = match self.ports.idp.authorization_url(state, &started.nonce, &started.pkce_verifier).await {
            Ok(u) => u,
            Err(e) => return Self::link_refused(&e),
        };
        link.started = Some(started);
        if let Err(e) = self.ports.store.put_link(state, &link).await {
            return HttpAnswer::page(503, "Try again", &e.to_string());
        }
        let secure = if self.settings.http.public_url.starts_with("https://") { "; Secure" } else { "" };
        HttpAnswer {
            status: 302,
            content_type: "text/plain",
            body: String::new(),
            headers: vec![
                ("location", url),
                (
                    "set-cookie",
                    format!(
                        "{LINK_COOKIE}={cookie}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
                        self.settings.link.ttl_seconds
                    ),
                ),
                ("cache-control", "no-store".into()),
            ],
        }
    }

    fn link_refused(e: &LinkError) -> HttpAnswer {
        tracing::warn!(target: "portcullis::slack", code = ErrorCode::SlackLinkInvalid.as_str(), "account link refused: {e}");
        HttpAnswer::page(400, "Not linked", &format!("{e} ({})", ErrorCode::SlackLinkInvalid.as_str()))
    }

    /// `GET /link/callback?code&state` from the browser that started: verify, bind, audit, tell.
    pub async fn link_callback(
        self: &Arc<Self>,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
        cookie: Option<&str>,
    ) -> HttpAnswer {
        let now = self.now();
        let link = match self.ports.store.link(state, now).await {
            Ok(Some(l)) => l,
            Ok(None) => return Self::link_refused(&LinkError::UnknownState),
            Err(e) => return HttpAnswer::page(503, "Try again", &e.to_string()),
        };
        let Some(started) = link.started.clone() else { return Self::link_refused(&LinkError::UnknownState) };
        // Another browser: refused without using the link up.
        if cookie.map(s256).as_deref() != Some(started.browser_hash.as_str()) {
            return Self::link_refused(&LinkError::OtherBrowser);
        }
        match self.ports.store.take_link(state, now).await {
            Ok(Some(_)) => {}
            Ok(None) => return Self::link_refused(&LinkError::UnknownState),
            Err(e) => return HttpAnswer::page(503, "Try again", &e.to_string()),
        }
        if let Some(error) = error {
            return Self::link_refused(&LinkError::Refused(error.chars().take(64).collect()));
        }
        let Some(code) = code else { return Self::link_refused(&LinkError::Refused("no code".into())) };
        let identity = match self.ports.idp.identify(code, &started.pkce_verifier, &started.nonce, now).await {
            Ok(i) => i,
            Err(e) => return Self::link_refused(&e),
        };
        // The directory has the last word on who may act: an offboarded person, or a token its team
        // changes contradict, links nothing.
        match self.ports.store.directory_record(&identity.user).await {
            Ok(Some(record)) => {
                if let Err(e) = record.check(&identity) {
                    return Self::link_refused(&LinkError::Directory(e.message));
                }
            }
            Ok(None) => {}
            Err(e) => return HttpAnswer::page(503, "Try again", &e.to_string()),
        }
        let binding = Binding {
            subject: identity.user.clone(),
            team: identity.team.clone(),
            groups: identity.groups.clone(),
            display_name: Some(identity.display_name.clone()),
            issuer: identity.issuer.clone(),
            linked_at: now,
        };
        if let Err(e) = self.ports.store.put_binding(&link.team_id, &link.user_id, &binding).await {
            return HttpAnswer::page(503, "Try again", &e.to_string());
        }
        let event = AuditEvent::SlackAccountLinked(audit::SlackAccountLinked {
            event_id: audit::event_id(&["Slack Account Linked", &link.team_id, &link.user_id, &now.to_rfc3339()]),
            at: now,
            team_id: link.team_id.clone(),
            slack_user_id: link.user_id.clone(),
            subject: binding.subject.clone(),
            issuer: binding.issuer.clone(),
        });
        let edge = Arc::clone(self);
        let user = link.user_id.clone();
        let text = format!(
            "Your Slack account is now linked to *{}* (`{}`). Not you? `/portcullis unlink` at once.",
            render::escape(&identity.display_name),
            render::escape(&identity.user)
        );
        self.spawn(async move {
            if let Err(e) = edge.ports.audit.publish(&event).await {
                tracing::warn!(target: "portcullis::slack", "{e}");
            }
            let dm = SlackApiChatPostMessageRequest::new(
                SlackChannelId::new(user),
                SlackMessageContent::new().with_text(text),
            );
            if let Err(e) = edge.ports.slack.post_message(&dm).await {
                tracing::warn!(target: "portcullis::slack", "{e}");
            }
        });
        HttpAnswer::page(
            200,
            "Linked",
            &format!("Your Slack account now acts as {}. You can close this tab.", identity.user),
        )
    }
}
