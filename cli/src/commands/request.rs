//! `portcullis request`: ask for access from a template. The template's parameters are checked here
//! first, exactly as the worker checks them, so a bad value is refused before anything is sent.

use std::collections::BTreeMap;

use clap::Args;
use portcullis_domain::TemplateName;
use portcullis_domain::grant::GrantStatus;
use portcullis_domain::guardrails::Guardrails;
use portcullis_domain::messages::{GrantRequest, TemplateGet};
use portcullis_domain::template::{CompiledTemplate, RenderError};

use super::init::prompt;
use super::templates::parse_template_name;
use super::{parse_param, parse_ttl};
use crate::config::cache_dir;
use crate::context::{Ctx, local_io};
use crate::error::CliError;
use crate::render::{grants, human_seconds};
use crate::{credentials, files};

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Template name (`portcullis templates` lists them; default: the --profile's template).
    #[arg(value_parser = parse_template_name)]
    pub template: Option<TemplateName>,
    /// A parameter as name=value (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// 12-digit account (default: default_account from the configuration).
    #[arg(long)]
    pub account: Option<String>,
    /// How long, e.g. 3600, 45m, 4h, 1h30m (60s to 7d, and at most the template's maximum).
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: Option<u64>,
    /// Why you need it (recorded on the grant).
    #[arg(long)]
    pub reason: Option<String>,
    /// Emergency: active at once without approval, announced and reviewed afterwards (only for
    /// templates that allow it).
    #[arg(long)]
    pub break_glass: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: &RequestArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let template = &match (args.template.clone(), eff.profile().template) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => {
            return Err(CliError::usage(
                "no template named, and no profile with a template chosen",
                "name one (`portcullis templates` lists them), or pass --profile NAME of a profile with a template",
            ));
        }
    };
    let account = ctx.account(&eff, args.account.as_deref())?;
    let session = ctx.session(&eff).await?;
    let stored = ctx.ask(&eff, &session, &TemplateGet { name: template.clone(), version: None }).await?.template;
    let compiled = CompiledTemplate::compile(stored.spec.clone())
        .map_err(|e| CliError::local(format!("template {template} is invalid: {e}")))?;
    let mut values: BTreeMap<String, String> = args.params.iter().cloned().collect();
    for p in &stored.spec.parameters {
        if !values.contains_key(&p.name)
            && let Some(v) = prompt(&format!("{} ({}; pattern {})", p.name, p.description, p.pattern))
        {
            values.insert(p.name.clone(), v);
        }
    }
    // The worker's own check, before anything is sent.
    if let Err(e) = compiled.render(&values, &Guardrails::default()) {
        let text = match &e {
            RenderError::Param { param, reason } => format!("param_invalid: parameter `{param}` {reason}"),
            other => format!("{other}"),
        };
        return Err(CliError::usage(
            format!("{text} (checked locally; nothing was sent)"),
            format!("`portcullis templates show {template}` shows each parameter's pattern"),
        ));
    }
    let ttl = match args.ttl.or_else(|| {
        prompt(&format!("ttl (e.g. 1h; at most {})", human_seconds(stored.spec.max_ttl_seconds)))
            .and_then(|t| parse_ttl(&t).ok())
    }) {
        Some(t) => t,
        None => return Err(CliError::usage("--ttl is required", "e.g. --ttl 1h")),
    };
    // The template's maximum, known now: a longer ttl is refused here, as the worker would.
    if ttl > stored.spec.max_ttl_seconds {
        return Err(CliError::usage(
            format!(
                "ttl_too_long: --ttl {} is above {template}'s maximum of {} (checked locally; nothing was sent)",
                human_seconds(ttl),
                human_seconds(stored.spec.max_ttl_seconds)
            ),
            format!("ask for --ttl {} or less", human_seconds(stored.spec.max_ttl_seconds)),
        ));
    }
    let reason = match args.reason.clone().or_else(|| prompt("reason (why you need it)")) {
        Some(r) => r,
        None => {
            return Err(CliError::usage("--reason is required", "e.g. --reason \"INC-4711: reconcile payouts\""));
        }
    };
    let body = GrantRequest {
        template: template.clone(),
        params: values,
        account: account.clone(),
        ttl,
        reason,
        break_glass: args.break_glass,
    };
    let result = ctx.ask(&eff, &session, &body).await?;
    let grant = &result.grant;
    // Only an active grant changes what credentials are worth (a pending one confers nothing yet).
    if grant.status == GrantStatus::Active {
        let path = credentials::known_grants_path(&cache_dir(), &session.issuer, &session.subject);
        let mut known = credentials::load_known(&path);
        known.add(&account, grant.id.as_str(), grant.expires_at);
        files::write_json(&path, &known).map_err(local_io(&path))?;
    }
    ctx.print(&result, || grants::requested(grant, ctx.now));
    Ok(0)
}
