//! `portcullis logout`: forget the session and every cached credential, and revoke the refresh
//! token.

use serde_json::json;

use crate::config::{Effective, cache_dir};
use crate::context::{Ctx, local_io};
use crate::error::CliError;
use crate::login;
use crate::secrets::SecretStore;

pub(crate) async fn run(ctx: &Ctx) -> Result<u8, CliError> {
    let cache = cache_dir();
    let eff = ctx.effective();
    // Without a readable configuration there is no keychain setting: the files are cleared.
    let store = eff.as_ref().map_or(SecretStore::Files, Effective::secret_store);
    let session = login::stored_session(&store, &cache);
    let mut revoked = false;
    if let (Some(s), Ok(eff)) = (&session, &eff)
        && let Ok(p) = ctx.provider(eff)
    {
        revoked = p.revoke(s).await;
    }
    store.remove(&login::session_path(&cache)).map_err(local_io(&login::session_path(&cache)))?;
    super::login::forget_caches(&store, &cache);
    ctx.print(&json!({ "logged_out": session.is_some(), "refresh_token_revoked": revoked }), || match &session {
        Some(s) => format!("logged out {} (session and cached credentials removed)\n", s.name()),
        None => "not logged in; cached credentials removed\n".into(),
    });
    Ok(0)
}
