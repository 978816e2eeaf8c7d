//! `portcullis login`: authorization code + PKCE on a loopback redirect, or the device flow.

use std::time::Duration;

use clap::Args;

use crate::config::cache_dir;
use crate::context::{Ctx, local_io};
use crate::error::CliError;
use crate::render::session;
use crate::secrets::SecretStore;
use crate::{files, login, requester};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Use the device authorization flow (RFC 8628): no browser on this machine.
    #[arg(long)]
    pub device: bool,
    /// Print the URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// How long to wait for you to finish logging in.
    #[arg(long, value_parser = super::parse_duration, default_value = "5m")]
    pub wait: u64,
}

pub(crate) async fn run(ctx: &Ctx, args: &LoginArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let provider = ctx.provider(&eff)?;
    let wait = Duration::from_secs(args.wait);
    let result = if args.device {
        provider
            .login_device(
                |uri, code, complete| {
                    eprintln!("To log in, open {uri}");
                    eprintln!("and enter the code {code}");
                    if let Some(c) = complete {
                        eprintln!("(or open {c} directly)");
                    }
                    eprintln!("Waiting for you to confirm...");
                },
                wait,
            )
            .await
    } else {
        provider
            .login_browser(
                |url| {
                    let opened = !args.no_browser && login::open_browser(url);
                    if opened {
                        eprintln!("Opened your browser to log in. If nothing happened, open:\n{url}");
                    } else {
                        eprintln!("Open this URL in a browser to log in:\n{url}");
                    }
                    eprintln!("Waiting for you to finish logging in...");
                },
                wait,
            )
            .await
    };
    let session = result.map_err(|e| crate::context::login_error(e, &eff, ctx.now))?;
    // A subject SQS cannot name has no reply queue: say so now, not at the first request.
    portcullis_domain::reply_policy::own_reply_queue_name(&eff.names.reply_queue_prefix(), &session.subject).map_err(
        |e| {
            CliError::local_hint(
                e.to_string(),
                "ask your identity provider's administrator: Portcullis needs a `sub` of letters, digits, '-' or '_'",
            )
        },
    )?;
    let cache = cache_dir();
    let store = eff.secret_store();
    if let Some(old) = login::stored_session(&store, &cache)
        && (old.subject != session.subject || old.issuer != session.issuer)
    {
        forget_caches(&store, &cache);
    }
    login::store_session(&store, &cache, &session).map_err(local_io(&login::session_path(&cache)))?;
    ctx.print(&session::session_json(&session, ctx.now), || session::logged_in(&session));
    if session.refresh_token.is_none() {
        eprintln!(
            "note: {} issued no refresh token: you will need to log in again at {} (when the ID token expires)",
            session.issuer,
            session.expires_at.to_rfc3339()
        );
    }
    Ok(0)
}

/// Remove everything cached for the person: the requester binding, credentials, known grants.
pub(crate) fn forget_caches(store: &SecretStore, cache: &std::path::Path) {
    let _ = store.remove(&requester::cache_path(cache));
    let _ = store.remove_dir(&cache.join("credentials"));
    if let Ok(entries) = std::fs::read_dir(cache) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("grants-") {
                let _ = files::remove(&e.path());
            }
        }
    }
}
