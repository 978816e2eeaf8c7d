//! `portcullis templates`: list, show, and (admins) put and delete statement templates.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use portcullis_domain::TemplateName;
use portcullis_domain::messages::{TemplateDelete, TemplateGet, TemplateList, TemplatePut};
use portcullis_domain::template::TemplateSpec;

use crate::context::{Ctx, local_io};
use crate::error::CliError;
use crate::render::templates;

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub action: Option<TemplatesAction>,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// Every template (default).
    #[command(after_help = "Example:\n  portcullis templates list --output json")]
    List,
    /// One template: parameters, patterns, maximum TTL, allowed accounts.
    #[command(after_help = "Example:\n  portcullis templates show bucketRead")]
    Show {
        #[arg(value_parser = parse_template_name)]
        name: TemplateName,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Admins: create a template or a new version from a JSON file.
    #[command(after_help = "Example:\n  portcullis templates put examples/templates/bucketRead.json")]
    Put { file: PathBuf },
    /// Admins: stop a template from being used for new grants.
    #[command(after_help = "Example:\n  portcullis templates delete queueConsumer")]
    Delete {
        #[arg(value_parser = parse_template_name)]
        name: TemplateName,
    },
}

/// A template name, checked as the worker checks it (a malformed one is a usage error).
pub(crate) fn parse_template_name(s: &str) -> Result<TemplateName, String> {
    TemplateName::parse(s).map_err(|e| e.to_string())
}

pub(crate) async fn run(ctx: &Ctx, args: &TemplatesArgs) -> Result<u8, CliError> {
    match args.action.as_ref().unwrap_or(&TemplatesAction::List) {
        TemplatesAction::List => {
            let (result, ..) = ctx.ask_me(&TemplateList {}).await?;
            ctx.print(&result, || templates::list(&result.templates));
        }
        TemplatesAction::Show { name, version } => {
            let (result, ..) = ctx.ask_me(&TemplateGet { name: name.clone(), version: *version }).await?;
            ctx.print(&result, || templates::show(&result.template));
        }
        TemplatesAction::Put { file } => {
            let text = std::fs::read_to_string(file).map_err(local_io(file))?;
            let hint = "start from one that works: `portcullis templates show <name> --output json`";
            let template: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CliError::usage(format!("{} is not JSON: {e}", file.display()), hint))?;
            let template: TemplateSpec = serde_json::from_value(template).map_err(|e| {
                CliError::usage(
                    format!("{} is not a template: {e} (checked locally; nothing was sent)", file.display()),
                    hint,
                )
            })?;
            let (result, ..) = ctx.ask_me(&TemplatePut { template }).await?;
            ctx.print(&result, || format!("template {} version {}\n", result.name, result.version));
        }
        TemplatesAction::Delete { name } => {
            let (result, ..) = ctx.ask_me(&TemplateDelete { name: name.clone() }).await?;
            ctx.print(&result, || format!("template {name} deleted\n"));
        }
    }
    Ok(0)
}
