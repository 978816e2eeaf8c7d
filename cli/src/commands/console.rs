//! `portcullis console`: print (and open) an AWS console sign-in URL for the person's credentials.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::credentials::{CredentialsArgs, issue};
use crate::console::{self, SigninTokenResponse};
use crate::context::Ctx;
use crate::error::CliError;
use crate::login;

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub credentials: CredentialsArgs,
    /// Only print the URL.
    #[arg(long)]
    pub no_browser: bool,
    /// Console page to land on.
    #[arg(long, default_value = "https://console.aws.amazon.com/")]
    pub destination: String,
}

pub(crate) async fn run(ctx: &Ctx, args: &ConsoleArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let creds = issue(ctx, &args.credentials).await?;
    let federation = eff.file.federation_url.clone().unwrap_or_else(|| console::FEDERATION_URL.into());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| CliError::local(e.to_string()))?;
    let response =
        http.get(console::signin_token_url(&federation, &creds)).send().await.map_err(|e| CliError::Unreachable {
            what: "the AWS federation endpoint".into(),
            endpoint: federation.clone(),
            source: if eff.file.federation_url.is_some() {
                format!("federation_url in {}", eff.path.display())
            } else {
                "the default".into()
            },
            message: e.to_string(),
            fix: "check your network (or federation_url in the configuration)".into(),
        })?;
    let status = response.status();
    let token = response.json::<SigninTokenResponse>().await.ok().filter(|_| status.is_success()).ok_or_else(|| {
        CliError::local_hint(
            format!("the federation endpoint answered {status} without a SigninToken"),
            "the console needs credentials from AssumeRole; try --refresh",
        )
    })?;
    let url = console::login_url(&federation, &token.signin_token, &args.destination);
    if !args.no_browser && login::open_browser(&url) {
        eprintln!("opened the console in your browser");
    }
    ctx.print(&json!({ "url": url }), || format!("{url}\n"));
    Ok(0)
}
