//! What every command shares: the configuration in force, the logged-in session, asking Portcullis
//! (typed, through `portcullis_client`), and printing a result as JSON or as text.

use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_client::{AskError, Auth, ClientError};
use portcullis_domain::AccountId;
use portcullis_domain::messages::KindRequest;
use serde::Serialize;

use crate::commands::Cli;
use crate::config::{Effective, Overrides, cache_dir, config_path};
use crate::error::CliError;
use crate::login::{self, Provider, Session};
use crate::output::{Format, Spinner};
use crate::render::human_seconds;
use crate::requester;

/// One command's context.
#[derive(Debug)]
pub struct Ctx {
    pub cli: Cli,
    pub now: DateTime<Utc>,
}

/// `what: error` as a local error (exit 1).
pub(crate) fn local_io(what: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |e| CliError::local(format!("{}: {e}", what.display()))
}

impl Ctx {
    pub fn new(cli: Cli) -> Self {
        Ctx { cli, now: Utc::now() }
    }

    /// The configuration file with the flags applied.
    pub(crate) fn effective(&self) -> Result<Effective, CliError> {
        let overrides = Overrides {
            endpoint_url: self.cli.endpoint_url.clone(),
            region: self.cli.region.clone(),
            profile: self.cli.profile.clone(),
        };
        Ok(Effective::resolve(config_path(self.cli.config.as_deref()), &overrides)?)
    }

    pub(crate) fn provider(&self, eff: &Effective) -> Result<Provider, CliError> {
        Provider::new(&eff.file.issuer, &eff.file.client_id, eff.file.login_options())
            .map_err(|e| CliError::local(e.to_string()))
    }

    /// `value` as pretty JSON with `--output json`, else the text `human` renders.
    pub(crate) fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        match self.cli.output {
            // Through a JSON value, so that the keys print as they always have.
            Format::Json => crate::output::emit(&format!(
                "{}\n",
                serde_json::to_value(value).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_default()
            )),
            // Tables fit the terminal; pipes and files get whole lines.
            Format::Table => match crate::output::terminal_width() {
                Some(width) => crate::output::emit(&crate::output::fit_width(&human(), width)),
                None => crate::output::emit(&human()),
            },
        }
    }

    /// The logged-in session (refreshed when near expiry), or the `--token` given.
    pub(crate) async fn session(&self, eff: &Effective) -> Result<Session, CliError> {
        if let Some(token) = &self.cli.token {
            return login::session_from_raw_token(token).ok_or_else(|| {
                CliError::usage("--token / PORTCULLIS_TOKEN is not a JWT with `sub` and `exp`", "pass an ID token")
            });
        }
        let provider = self.provider(eff)?;
        let store = eff.secret_store();
        match login::current_session(&provider, &store, &cache_dir(), eff.token_refresh_seconds(), self.now).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(CliError::local_hint(
                format!("not logged in to {}", eff.file.issuer),
                "run `portcullis login` (or `portcullis login --device` without a browser)",
            )),
            Err(e) => Err(login_error(e, eff, self.now)),
        }
    }

    /// Ask as the logged-in person: the typed result, with the session and configuration used.
    pub(crate) async fn ask_me<B: KindRequest>(&self, body: &B) -> Result<(B::Result, Session, Effective), CliError> {
        let eff = self.effective()?;
        let session = self.session(&eff).await?;
        let result = self.ask(&eff, &session, body).await?;
        Ok((result, session, eff))
    }

    /// Send `body` as `session`'s person and wait for its typed result.
    pub(crate) async fn ask<B: KindRequest>(
        &self,
        eff: &Effective,
        session: &Session,
        body: &B,
    ) -> Result<B::Result, CliError> {
        let requester = requester::connect(eff, session, &cache_dir(), self.now).await?;
        let client = requester.client.with_reply_timeout(Duration::from_secs(self.cli.timeout));
        let spinner = Spinner::start(&format!("waiting for Portcullis ({})", B::KIND.as_str()));
        let result = client.ask(&Auth::IdToken(session.id_token.clone()), body).await;
        spinner.stop().await;
        result.map_err(|e| ask_error(e, eff))
    }

    /// `--account`, else the profile's account, else the configured default account.
    pub(crate) fn account(&self, eff: &Effective, flag: Option<&str>) -> Result<AccountId, CliError> {
        let text = match (flag, eff.default_account()) {
            (Some(a), _) => a.to_owned(),
            (None, Some(a)) => return Ok(a.clone()),
            (None, None) => {
                return Err(CliError::usage(
                    "no --account given, and no account in the profile or default_account configured",
                    "pass --account 123456789012 (or `portcullis init --default-account ...`, or a profile's account)",
                ));
            }
        };
        AccountId::parse(&text)
            .map_err(|e| CliError::usage(format!("--account {text}: {e}"), "use the 12-digit account id"))
    }
}

/// A login or refresh failure as the CLI shows it: the endpoint, the root cause, and the exit code
/// of its class (unreachable or failing: 4; refused: 3; expired or local: 1).
pub(crate) fn login_error(e: login::LoginError, eff: &Effective, now: DateTime<Utc>) -> CliError {
    use login::LoginError as E;
    let relogin = "run `portcullis login` again (`portcullis login --device` without a browser)";
    match e {
        E::Unreachable { url, message } => CliError::Unreachable {
            what: "the identity provider".into(),
            endpoint: url,
            source: format!("issuer in {}", eff.path.display()),
            message,
            fix: "check issuer in the configuration (`portcullis init`), and your network".into(),
        },
        e @ E::Status { .. } => CliError::Unavailable {
            message: e.to_string(),
            hint: format!(
                "the identity provider is failing; try again later, or check issuer in {}",
                eff.path.display()
            ),
        },
        E::TimedOut(d) => CliError::Timeout {
            message: format!("the login was not completed within {}", human_seconds(d.as_secs())),
            hint: "run `portcullis login` again (--wait gives more time)".into(),
        },
        e @ (E::Refused { .. } | E::RefreshRefused { .. } | E::BadToken(_)) => {
            CliError::LoginRefused { message: e.to_string(), hint: relogin.into() }
        }
        e @ E::NoIdToken { .. } => CliError::LoginRefused {
            message: e.to_string(),
            hint: format!(
                "the provider's client `{}` must be allowed the `openid` scope and return ID tokens for this grant; \
                 ask its administrator",
                eff.file.client_id
            ),
        },
        E::Expired { issuer, expired_at } => CliError::local_hint(
            format!(
                "your session with {issuer} expired at {} ({} ago) and the provider issued no refresh token",
                expired_at.to_rfc3339(),
                human_seconds(u64::try_from((now - expired_at).num_seconds()).unwrap_or(0))
            ),
            relogin,
        ),
        e @ E::NoDeviceEndpoint { .. } => CliError::local_hint(
            e.to_string(),
            "if it serves one, set it: `portcullis init --device-authorization-endpoint <URL>`; else use \
             `portcullis login` (browser)",
        ),
        E::Other(m) => CliError::local(m),
    }
}

/// A refusal is the server's code and sentence (exit 3); no answer in time or no SQS is exit 4; a
/// reply that does not read as the contract says, or anything else, is local (exit 1).
fn ask_error(e: AskError, eff: &Effective) -> CliError {
    match e {
        AskError::Refused(r) => {
            CliError::Refused { code: r.code.as_str().to_owned(), message: r.message, details: r.details }
        }
        AskError::Client(ClientError::Timeout { message_id, timeout }) => CliError::Timeout {
            message: format!("no answer from Portcullis to {message_id} within {}", human_seconds(timeout.as_secs())),
            hint: "is the access worker running? (`make run` starts one); try again with a longer --timeout".into(),
        },
        AskError::Client(ClientError::Aws(e)) if e.is_unreachable() => {
            let (endpoint, source) = eff.sqs_endpoint();
            CliError::Unreachable {
                what: "SQS".into(),
                endpoint,
                source: source.to_string(),
                message: format!("{}: {}", e.op, e.message),
                fix: "check endpoint_url/region in the configuration, and that the service runs there".into(),
            }
        }
        AskError::Client(e @ ClientError::Decode { .. }) => CliError::local_hint(
            e.to_string(),
            "upgrade portcullis, or ask a Portcullis admin which version the workers run",
        ),
        AskError::Client(other) => CliError::local(other.to_string()),
    }
}
