//! The edge's settings: a TOML file (`--config`, else `$PORTCULLIS_SLACK_CONFIG`) under
//! `PORTCULLIS__`-prefixed environment variables (`PORTCULLIS__SLACK__SIGNING_SECRET`, `__` nests).
//! Secrets are [`Secret`]s: their `Debug` never shows them, so no log line can.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use portcullis_domain::AccountId;
use portcullis_domain::naming::StackNames;
use portcullis_runtime::config::{AwsSettings, IdentitySettings, StackSettings};
use serde::Deserialize;

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the settings cannot be read: {0}")]
    Read(String),
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

impl From<figment::Error> for SettingsError {
    fn from(e: figment::Error) -> Self {
        SettingsError::Read(e.to_string())
    }
}

/// A value never to be logged or sent anywhere but where it belongs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that uses it (an HMAC key, an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything the edge needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSettings {
    /// AWS region and endpoint (credentials come from the SDK's default chain).
    #[serde(default)]
    pub aws: AwsSettings,
    /// The Portcullis stack this edge sends to.
    pub stack: StackSettings,
    /// The HTTP listener.
    #[serde(default)]
    pub http: HttpSettings,
    /// The Slack app.
    pub slack: SlackSettings,
    /// The one-time "link account" sign-in.
    pub link: LinkSettings,
    /// Queues.
    #[serde(default)]
    pub queues: QueueSettings,
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on. Default `127.0.0.1:8088` (a container sets `0.0.0.0:8088`).
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// The URL Slack and browsers reach the edge at (no trailing slash), e.g.
    /// `https://portcullis-slack.example.com`: link URLs and the OIDC redirect are built from it.
    #[serde(default = "defaults::public_url")]
    pub public_url: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen: defaults::listen(), public_url: defaults::public_url() }
    }
}

/// The Slack app this edge serves: one workspace, one app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// The workspace (`team_id`, `T…`) whose requests are accepted; any other is refused.
    pub team_id: String,
    /// The app (`api_app_id`, `A…`) whose requests are accepted; any other is refused.
    pub api_app_id: String,
    /// The app's signing secret (Basic Information → App Credentials).
    pub signing_secret: Secret,
    /// The bot token (`xoxb-…`) for `chat.postMessage`, `chat.update`, `views.*`.
    pub bot_token: Secret,
    /// Slack's Web API base URL. Default `https://slack.com/api` (tests: the fake's).
    #[serde(default = "defaults::api_base_url")]
    pub api_base_url: String,
    /// `response_url`s are only posted to when they start with one of these. Default
    /// `["https://hooks.slack.com/"]`.
    #[serde(default = "defaults::response_url_prefixes")]
    pub response_url_prefixes: Vec<String>,
    /// Where approver notifications go unless `routes` names the template: a channel id (`C…`).
    pub approvals_channel: String,
    /// Per template: the channel (or user, for a DM) its approver notifications go to.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// The account a request is for when it names none (`--account`).
    #[serde(default)]
    pub default_account: Option<AccountId>,
    /// The name of this edge's `[[producers]]` entry in the workers' settings (`via` on the grants
    /// it asks for). Grants announced on the bus with this `via` were notified by the edge itself
    /// when it asked. Default `slack`.
    #[serde(default = "defaults::producer_name")]
    pub producer_name: String,
    /// Map unlinked Slack users by their Slack profile e-mail (case-folded) to the IdP subject of
    /// the same address. Off by default: a Slack e-mail is only as good as the workspace's
    /// control of it (guests, Slack Connect). Needs the `users:read.email` scope.
    #[serde(default)]
    pub email_matching: bool,
    /// How often the copies of grants that ended by themselves (expired, or lapsed unapproved) are
    /// updated, in seconds. Default 30.
    #[serde(default = "defaults::expiry_sweep_seconds")]
    pub expiry_sweep_seconds: u64,
    /// The app-level token (`xapp-…`, scope `connections:write`). When set, Slack's requests come
    /// over Socket Mode (a WebSocket the edge opens to Slack), for installs without a public URL;
    /// the HTTP routes stay up (the account link needs a browser to reach `/link/…`).
    #[serde(default)]
    pub app_token: Option<Secret>,
}

/// The "link account" sign-in (authorization code + PKCE at the IdP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// The IdP and how its ID tokens are checked: the same table as the workers' `[identity]`;
    /// `audience` is this edge's OIDC client id.
    pub identity: IdentitySettings,
    /// The client secret, for a confidential client (none: a public client, PKCE only).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Scopes asked for besides `openid`. Default none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The redirect URI registered at the IdP. Default `<public_url>/link/callback`; the edge
    /// serves the callback at this URI's path as well.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// How long a link URL can be used, seconds. Default 600.
    #[serde(default = "defaults::link_ttl")]
    pub ttl_seconds: u64,
}

/// The edge's queues (names; the stack creates them).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// The edge's reply queue. Default `<prefix>-reply-slack` (it must match the workers'
    /// `access.reply_queue_names`).
    #[serde(default)]
    pub reply_queue: Option<String>,
    /// The queue the stack's rule fills with the bus's grant events. Default `<prefix>-slack-events`;
    /// `""` turns keeping Slack in step with decisions made elsewhere off.
    #[serde(default)]
    pub events_queue: Option<String>,
}

impl EdgeSettings {
    /// The file (if any) under `PORTCULLIS__` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        let base = match path {
            Some(p) => Figment::from(Toml::file(p)),
            None => Figment::new(),
        };
        let settings: EdgeSettings = base.merge(Env::prefixed("PORTCULLIS__").split("__")).extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// From TOML text alone (tests).
    pub fn from_toml(text: &str) -> Result<Self, SettingsError> {
        let settings: EdgeSettings = Figment::from(Toml::string(text)).extract()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, message: &str| Err(SettingsError::Invalid { key, message: message.to_owned() });
        if self.slack.signing_secret.expose().len() < 16 {
            return invalid("slack.signing_secret", "is missing or too short for a Slack signing secret");
        }
        if self.slack.team_id.is_empty() || self.slack.api_app_id.is_empty() {
            return invalid("slack.team_id", "and slack.api_app_id are both needed");
        }
        if self.http.public_url.ends_with('/') {
            return invalid("http.public_url", "must not end with `/`");
        }
        Ok(())
    }

    pub fn names(&self) -> StackNames {
        StackNames::new(&self.stack.prefix)
    }

    /// The OIDC redirect URI.
    pub fn redirect_uri(&self) -> String {
        self.link.redirect_uri.clone().unwrap_or_else(|| format!("{}/link/callback", self.http.public_url))
    }

    pub fn reply_queue(&self) -> String {
        self.queues.reply_queue.clone().unwrap_or_else(|| self.names().slack_reply_queue())
    }

    /// The events queue, unless turned off.
    pub fn events_queue(&self) -> Option<String> {
        match &self.queues.events_queue {
            Some(name) if name.is_empty() => None,
            Some(name) => Some(name.clone()),
            None => Some(self.names().slack_events_queue()),
        }
    }

    /// Where a template's approver notifications go.
    pub fn approvals_channel_for(&self, template: &str) -> &str {
        self.slack.routes.get(template).map_or(self.slack.approvals_channel.as_str(), String::as_str)
    }
}

mod defaults {
    use std::net::{Ipv4Addr, SocketAddr};

    pub(super) fn listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 8088))
    }
    pub(super) fn public_url() -> String {
        "http://127.0.0.1:8088".into()
    }
    pub(super) fn api_base_url() -> String {
        "https://slack.com/api".into()
    }
    pub(super) fn response_url_prefixes() -> Vec<String> {
        vec!["https://hooks.slack.com/".into()]
    }
    pub(super) fn expiry_sweep_seconds() -> u64 {
        30
    }
    pub(super) fn producer_name() -> String {
        "slack".into()
    }
    pub(super) fn link_ttl() -> u64 {
        600
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) const TOML: &str = r#"
[stack]
prefix = "pc"
[slack]
team_id = "T0001"
api_app_id = "A0001"
signing_secret = "8f742231b10e8888abcd99yyyzzz85a5"
bot_token = "xoxb-test"
approvals_channel = "C0APPROVE"
routes = { bucketWrite = "C0WRITES" }
[link.identity]
issuer = "https://idp.test"
audience = "portcullis-slack"
"#;

    #[test]
    fn secrets_never_show_in_debug_and_defaults_apply() {
        let s = EdgeSettings::from_toml(TOML).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("8f742231") && !debug.contains("xoxb-test"), "{debug}");
        assert_eq!(s.redirect_uri(), "http://127.0.0.1:8088/link/callback");
        assert_eq!(s.reply_queue(), "pc-reply-slack");
        assert_eq!(s.events_queue().as_deref(), Some("pc-slack-events"));
        assert_eq!(s.approvals_channel_for("bucketWrite"), "C0WRITES");
        assert_eq!(s.approvals_channel_for("bucketRead"), "C0APPROVE");
        assert!(!s.slack.email_matching);
    }

    #[test]
    fn unknown_keys_and_short_secrets_are_refused() {
        let err = EdgeSettings::from_toml(&TOML.replace("[slack]", "[slack]\nsigning_secrt = \"x\"")).unwrap_err();
        assert!(err.to_string().contains("signing_secrt"), "{err}");
        let err = EdgeSettings::from_toml(&TOML.replace("8f742231b10e8888abcd99yyyzzz85a5", "short")).unwrap_err();
        assert!(err.to_string().contains("slack.signing_secret"), "{err}");
    }
}
