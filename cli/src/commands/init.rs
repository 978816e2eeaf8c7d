//! `portcullis init`: write the CLI's configuration, from flags or by asking on a terminal.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use portcullis_domain::AccountId;
use serde_json::json;

use crate::config::{CliConfig, config_path};
use crate::context::Ctx;
use crate::error::CliError;
use crate::output::Format;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// OpenID Connect issuer URL (the `iss` of its tokens).
    #[arg(long)]
    pub issuer: Option<String>,
    /// Client id registered for portcullis.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Extra scope (repeatable; default: portcullis).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// The stack's AWS endpoint, for emulators.
    #[arg(long = "aws-endpoint-url")]
    pub aws_endpoint_url: Option<String>,
    /// The stack's region.
    #[arg(long = "stack-region")]
    pub stack_region: Option<String>,
    #[arg(long)]
    pub stack_prefix: Option<String>,
    #[arg(long)]
    pub stack_account: Option<String>,
    /// Instead of prefix and account: the access-requests queue URL.
    #[arg(long)]
    pub queue_url: Option<String>,
    #[arg(long)]
    pub default_account: Option<String>,
    /// AWS federation endpoint for `portcullis console`.
    #[arg(long)]
    pub federation_url: Option<String>,
    /// The ID token claim that names people (default: preferred_username, else email, else name).
    #[arg(long)]
    pub display_name_claim: Option<String>,
    /// The provider's device authorization endpoint, when its discovery document leaves it out.
    #[arg(long)]
    pub device_authorization_endpoint: Option<String>,
}

pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask on the terminal; `None` when stdin is not one.
pub(crate) fn prompt(question: &str) -> Option<String> {
    if !interactive() {
        return None;
    }
    eprint!("{question}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    let line = line.trim().to_owned();
    (!line.is_empty()).then_some(line)
}

pub(crate) fn run(ctx: &Ctx, a: &InitArgs) -> Result<u8, CliError> {
    let path = config_path(ctx.cli.config.as_deref());
    let previous = CliConfig::load(&path).ok();
    let pick = |flag: &Option<String>, old: Option<String>, question: &str| -> Option<String> {
        flag.clone().or_else(|| {
            prompt(&format!("{question}{}", old.as_ref().map(|o| format!(" [{o}]")).unwrap_or_default())).or(old)
        })
    };
    let old = previous.clone().unwrap_or_default();
    let issuer =
        pick(&a.issuer, previous.as_ref().map(|p| p.issuer.clone()), "Issuer URL (the `iss` of your ID tokens)");
    // `--stack-region`, or the global `--region` (the stack's region everywhere else too).
    let region_flag = a.stack_region.clone().or_else(|| ctx.cli.region.clone());
    let region = pick(&region_flag, previous.as_ref().map(|p| p.region.clone()), "AWS region of the Portcullis stack");
    let (Some(issuer), Some(region)) = (issuer, region) else {
        return Err(CliError::usage(
            "init needs at least --issuer and --stack-region (or a terminal to ask on)",
            "portcullis init --help shows an example",
        ));
    };
    let account =
        |flag: &Option<String>, old: Option<AccountId>, question: &str| -> Result<Option<AccountId>, CliError> {
            match pick(flag, old.map(|a| a.to_string()), question) {
                Some(a) => AccountId::parse(&a).map(Some).map_err(|e| CliError::usage(e.to_string(), "use 12 digits")),
                None => Ok(None),
            }
        };
    let queue_url = a.queue_url.clone().or(old.queue_url.clone());
    let (stack_prefix, stack_account) = if queue_url.is_some() {
        (None, None)
    } else {
        (
            pick(&a.stack_prefix, old.stack_prefix.clone(), "Stack prefix"),
            account(&a.stack_account, old.stack_account.clone(), "Stack account (12 digits)")?,
        )
    };
    let config = CliConfig {
        issuer: issuer.trim_end_matches('/').to_owned(),
        client_id: a
            .client_id
            .clone()
            .unwrap_or_else(|| previous.as_ref().map_or("portcullis-cli".into(), |p| p.client_id.clone())),
        scopes: if a.scopes.is_empty() {
            previous.as_ref().map_or(vec!["portcullis".into()], |p| p.scopes.clone())
        } else {
            a.scopes.clone()
        },
        region,
        endpoint_url: a.aws_endpoint_url.clone().or(old.endpoint_url.clone()),
        stack_prefix,
        stack_account,
        queue_url,
        requester_role_arn: old.requester_role_arn.clone(),
        default_account: account(
            &a.default_account,
            old.default_account.clone(),
            "Default account for --account (optional)",
        )?,
        federation_url: a.federation_url.clone().or(old.federation_url.clone()),
        credentials_refresh_seconds: old.credentials_refresh_seconds,
        token_refresh_seconds: old.token_refresh_seconds,
        display_name_claim: a.display_name_claim.clone().or(old.display_name_claim.clone()),
        device_authorization_endpoint: a
            .device_authorization_endpoint
            .clone()
            .or(old.device_authorization_endpoint.clone()),
        ..old.clone()
    };
    config.check().map_err(|m| CliError::usage(m, "portcullis init --help shows an example"))?;
    config.save(&path)?;
    match ctx.cli.output {
        Format::Json => crate::output::emit(&format!("{}\n", json!({ "config": path, "written": true }))),
        Format::Table => crate::output::emit(&format!("wrote {}\nnext: portcullis login\n", path.display())),
    }
    Ok(0)
}
