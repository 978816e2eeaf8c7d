//! The command line: every command's flags (with an example in its `--help`) and what it does.
//!
//! Each command is one `async fn` over a [`Ctx`]; adding one (`revoke`, `approve`, `pending` once
//! their message kinds exist) is a variant in [`Command`], a function that builds the request body
//! and one that renders the result, all through [`Ctx::ask`].

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, Parser, Subcommand};
use portcullis_domain::AccountId;
use portcullis_domain::guardrails::Guardrails;
use portcullis_domain::messages::{Kind, ProcessCredentials, ReplyOutcome};
use portcullis_domain::template::{CompiledTemplate, RenderError, StoredTemplate};
use serde_json::{Value, json};

use crate::client::ClientError;
use crate::config::{CliConfig, Effective, Overrides, cache_dir, config_path};
use crate::credentials::{self, CachedCredentials};
use crate::error::CliError;
use crate::login::{self, Provider, Session};
use crate::output::{Format, Spinner, human_seconds, table, until};
use crate::{aws_profile, console, files, requester};

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 local error (no config, not logged in), 2 usage, \
3 refused (the server's code and sentence on stderr), 4 timeout or unreachable.";

/// `portcullis`: just-in-time AWS access from a terminal.
#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Just-in-time AWS access: log in with your identity provider, ask for access, get credentials",
    after_help = "Examples:\n  portcullis init --issuer https://idp.example.com/realms/acme --region eu-west-1 \\\n      --stack-prefix portcullis-prod --stack-account 123456789012\n  portcullis login\n  portcullis request bucketRead --param bucketName=reports --account 123456789012 --ttl 1h --reason INC-4711\n  portcullis configure-profile jit --account 123456789012 && aws --profile jit s3 ls s3://reports\n\nExit codes: 0 ok, 1 local error, 2 usage, 3 refused, 4 timeout or unreachable."
)]
pub struct Cli {
    /// The CLI's configuration file (default: $PORTCULLIS_CLI_CONFIG, else ~/.config/portcullis/config.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: Format,
    /// How long to wait for Portcullis to answer, e.g. 30, 2m.
    #[arg(long, global = true, value_parser = parse_duration, default_value = "30")]
    pub timeout: u64,
    /// AWS endpoint (emulators); overrides endpoint_url from the configuration.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// AWS region of the stack; overrides region from the configuration.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Use this ID token instead of the logged-in session (scripts, `portcullis dev-token`).
    #[arg(long, global = true, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the CLI's configuration (interactively on a terminal, or from flags).
    #[command(
        after_help = "Example:\n  portcullis init --issuer https://idp.example.com/realms/acme --client-id portcullis-cli \\\n      --region eu-west-1 --stack-prefix portcullis-prod --stack-account 123456789012 --default-account 123456789012"
    )]
    Init(InitArgs),
    /// Log in with your identity provider (browser with PKCE, or --device for machines without one).
    #[command(
        after_help = "Examples:\n  portcullis login              # opens a browser (or prints the URL)\n  portcullis login --device     # prints a URL and a code to confirm on another device"
    )]
    Login {
        /// Use the device authorization flow (RFC 8628): no browser on this machine.
        #[arg(long)]
        device: bool,
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for you to finish logging in.
        #[arg(long, value_parser = parse_duration, default_value = "5m")]
        wait: u64,
    },
    /// Forget the session and every cached credential (and revoke the refresh token).
    #[command(after_help = "Example:\n  portcullis logout")]
    Logout,
    /// Who you are logged in as: user, team, groups and expiry.
    #[command(after_help = "Example:\n  portcullis whoami --output json")]
    Whoami,
    /// Statement templates: list them, show one, or (admins) put and delete them.
    #[command(
        after_help = "Examples:\n  portcullis templates\n  portcullis templates show bucketRead\n  portcullis templates put examples/templates/bucketRead.json   # admins"
    )]
    Templates {
        #[command(subcommand)]
        action: Option<TemplatesAction>,
    },
    /// Ask for access from a template (prompts for missing parameters on a terminal).
    #[command(
        after_help = "Example:\n  portcullis request bucketRead --param bucketName=analytics-reports --account 123456789012 \\\n      --ttl 4h --reason \"INC-4711: reconcile payouts\""
    )]
    Request {
        /// Template name (`portcullis templates` lists them).
        template: String,
        /// A parameter as name=value (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// 12-digit account (default: default_account from the configuration).
        #[arg(long)]
        account: Option<String>,
        /// How long, e.g. 3600, 45m, 4h.
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<u64>,
        /// Why you need it (recorded on the grant).
        #[arg(long)]
        reason: Option<String>,
        /// Emergency: active at once without approval, announced and reviewed afterwards (only for
        /// templates that allow it).
        #[arg(long)]
        break_glass: bool,
    },
    /// Your pending and active grants (--all: also those that ended in the last week).
    #[command(after_help = "Examples:\n  portcullis grants --account 123456789012\n  portcullis grants --all")]
    Grants {
        #[arg(long)]
        account: Option<String>,
        /// Also denied, expired and revoked grants.
        #[arg(long)]
        all: bool,
    },
    /// End one of your grants now (admins: anyone's), and your sessions in its account.
    #[command(
        after_help = "Example:\n  portcullis revoke g-0123456789abcdef0123456789abcdef --reason \"INC-4711 closed\""
    )]
    Revoke {
        /// The grant id (`portcullis grants` lists them).
        grant_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Admins: end every grant of a user, and their sessions in every account.
    #[command(after_help = "Example:\n  portcullis revoke-user alice --reason \"laptop stolen\"")]
    RevokeUser {
        user: String,
        #[arg(long)]
        reason: String,
    },
    /// Grants waiting for your approval, and break-glass uses waiting for your review.
    #[command(after_help = "Example:\n  portcullis pending")]
    Pending,
    /// Approve someone's pending grant (members of its approver groups).
    #[command(after_help = "Example:\n  portcullis approve g-0123456789abcdef0123456789abcdef")]
    Approve { grant_id: String },
    /// Deny someone's pending grant (members of its approver groups).
    #[command(
        after_help = "Example:\n  portcullis deny g-0123456789abcdef0123456789abcdef --reason \"use the read replica\""
    )]
    Deny {
        grant_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Review someone's break-glass grant (members of its approver groups); unjustified revokes it.
    #[command(
        after_help = "Example:\n  portcullis review g-0123456789abcdef0123456789abcdef --verdict justified --note \"SEV1 confirmed\""
    )]
    Review {
        grant_id: String,
        #[arg(long, value_enum)]
        verdict: VerdictArg,
        /// What you found (recorded, and announced on the bus).
        #[arg(long)]
        note: String,
    },
    /// Temporary credentials for your live grants, in the AWS `credential_process` shape (cached).
    #[command(
        after_help = "Examples:\n  portcullis credentials --account 123456789012\n  # ~/.aws/config:\n  [profile jit]\n  credential_process = portcullis credentials --account 123456789012"
    )]
    Credentials(CredentialsArgs),
    /// Write a `credential_process` profile into ~/.aws/config (idempotent; other profiles untouched).
    #[command(
        after_help = "Example:\n  portcullis configure-profile jit-prod --account 123456789012\n  aws --profile jit-prod sts get-caller-identity"
    )]
    ConfigureProfile {
        /// Profile name.
        name: String,
        #[arg(long)]
        account: Option<String>,
        /// Region for the profile (default: the stack's).
        #[arg(long = "profile-region")]
        profile_region: Option<String>,
    },
    /// Run a command with your credentials in its environment.
    #[command(after_help = "Example:\n  portcullis exec --account 123456789012 -- aws s3 ls s3://analytics-reports")]
    Exec {
        #[command(flatten)]
        credentials: CredentialsArgs,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print (and open) an AWS console sign-in URL for your credentials.
    #[command(after_help = "Example:\n  portcullis console --account 123456789012 --no-browser")]
    Console {
        #[command(flatten)]
        credentials: CredentialsArgs,
        /// Only print the URL.
        #[arg(long)]
        no_browser: bool,
        /// Console page to land on.
        #[arg(long, default_value = "https://console.aws.amazon.com/")]
        destination: String,
    },
    /// The latest posture evidence per control (for members of the posture reader groups).
    #[command(after_help = "Example:\n  portcullis posture --region us-east-1")]
    Posture {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        region: Option<String>,
    },
    /// Shell completions.
    #[command(
        after_help = "Examples:\n  portcullis completions bash > ~/.local/share/bash-completion/completions/portcullis\n  portcullis completions zsh > \"${fpath[1]}/_portcullis\"\n  portcullis completions fish > ~/.config/fish/completions/portcullis.fish"
    )]
    Completions { shell: Shell },
    /// Operators: deploy the CloudFormation stack (reads the workers' settings, needs AWS credentials).
    #[command(subcommand)]
    Stack(StackCommand),
    /// Development: the local identity issuer.
    #[command(subcommand)]
    DevIssuer(DevIssuerCommand),
    /// Development: mint an ID token from the local development issuer.
    #[command(
        after_help = "Example:\n  PORTCULLIS_TOKEN=$(portcullis dev-token --user alice --team payments) portcullis grants"
    )]
    DevToken {
        #[arg(long)]
        user: String,
        #[arg(long)]
        team: Option<String>,
        /// Group claim values (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Token lifetime, e.g. 1h.
        #[arg(long, value_parser = parse_duration, default_value = "1h")]
        ttl: u64,
        /// Issuer directory.
        #[arg(long, default_value = ".portcullis/dev-issuer")]
        dir: PathBuf,
        /// The workers' settings file (default: $PORTCULLIS_CONFIG, else the embedded default).
        #[arg(long)]
        worker_config: Option<PathBuf>,
    },
}

/// A review's verdict.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum VerdictArg {
    Justified,
    Unjustified,
}

/// Shells for completions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

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
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    /// 12-digit account (default: default_account from the configuration).
    #[arg(long)]
    pub account: Option<String>,
    /// Session length, e.g. 900, 30m, 1h (default: until your latest grant expires, capped).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<u64>,
    /// Ask for new credentials even if cached ones are still good.
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// Every template (default).
    #[command(after_help = "Example:\n  portcullis templates list --output json")]
    List,
    /// One template: parameters, patterns, maximum TTL, allowed accounts.
    #[command(after_help = "Example:\n  portcullis templates show bucketRead")]
    Show {
        name: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Admins: create a template or a new version from a JSON file.
    #[command(after_help = "Example:\n  portcullis templates put examples/templates/bucketRead.json")]
    Put { file: PathBuf },
    /// Admins: stop a template from being used for new grants.
    #[command(after_help = "Example:\n  portcullis templates delete queueConsumer")]
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Create or update the stack named after `stack.prefix` of the workers' settings.
    #[command(
        after_help = "Example:\n  portcullis stack deploy --parameter OidcIssuerUrl=https://idp.example.com/realms/acme"
    )]
    Deploy {
        /// Template file (default: the one built into this binary).
        #[arg(long)]
        template: Option<PathBuf>,
        /// Extra parameters as Key=Value (repeatable).
        #[arg(long = "parameter", value_parser = parse_param)]
        parameters: Vec<(String, String)>,
        /// The workers' settings file (default: $PORTCULLIS_CONFIG, else the embedded default).
        #[arg(long)]
        worker_config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevIssuerCommand {
    /// Generate the signing key and JWKS (kept if present).
    #[command(after_help = "Example:\n  portcullis dev-issuer init --dir .portcullis/dev-issuer")]
    Init {
        #[arg(long, default_value = ".portcullis/dev-issuer")]
        dir: PathBuf,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("`{s}` is not name=value"))
}

/// Seconds from `900`, `30s`, `45m`, `2h` or `1d`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is not a duration like 900, 45m or 2h"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too long"))
}

/// The clap command (for completions and tests).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parse the process arguments and run; returns the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return std::process::ExitCode::from(code);
        }
    };
    let json = cli.output == Format::Json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            if json {
                eprintln!("{}", e.to_json());
            } else {
                eprintln!("error: {e}");
                if let Some(h) = e.hint() {
                    eprintln!("hint: {h}");
                }
            }
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// Run one parsed command.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let ctx = Ctx { now: Utc::now(), cli };
    match &ctx.cli.command {
        Command::Init(args) => init(&ctx, args),
        Command::Login { device, no_browser, wait } => {
            ctx.login(*device, *no_browser, Duration::from_secs(*wait)).await
        }
        Command::Logout => ctx.logout().await,
        Command::Whoami => ctx.whoami().await,
        Command::Templates { action } => ctx.templates(action.as_ref().unwrap_or(&TemplatesAction::List)).await,
        Command::Request { template, params, account, ttl, reason, break_glass } => {
            ctx.request(template, params, account.as_deref(), *ttl, reason.clone(), *break_glass).await
        }
        Command::Grants { account, all } => ctx.grants(account.as_deref(), *all).await,
        Command::Revoke { grant_id, reason } => ctx.revoke(grant_id, reason).await,
        Command::RevokeUser { user, reason } => {
            ctx.decision(Kind::GrantRevokeAll, json!({ "user": user, "reason": reason })).await
        }
        Command::Pending => ctx.pending().await,
        Command::Approve { grant_id } => ctx.decision(Kind::GrantApprove, json!({ "grant_id": grant_id })).await,
        Command::Deny { grant_id, reason } => {
            ctx.decision(Kind::GrantDeny, json!({ "grant_id": grant_id, "reason": reason })).await
        }
        Command::Review { grant_id, verdict, note } => {
            let verdict = match verdict {
                VerdictArg::Justified => "justified",
                VerdictArg::Unjustified => "unjustified",
            };
            ctx.decision(Kind::GrantReview, json!({ "grant_id": grant_id, "verdict": verdict, "note": note })).await
        }
        Command::Credentials(args) => {
            let creds = ctx.credentials(args).await?;
            println!("{}", serde_json::to_string_pretty(&creds).map_err(|e| CliError::local(e.to_string()))?);
            Ok(0)
        }
        Command::ConfigureProfile { name, account, profile_region } => {
            ctx.configure_profile(name, account.as_deref(), profile_region.as_deref())
        }
        Command::Exec { credentials, command } => ctx.exec(credentials, command).await,
        Command::Console { credentials, no_browser, destination } => {
            ctx.console(credentials, *no_browser, destination).await
        }
        Command::Posture { account, region } => ctx.posture(account.as_deref(), region.as_deref()).await,
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut command(), "portcullis", &mut std::io::stdout());
            Ok(0)
        }
        Command::Stack(StackCommand::Deploy { template, parameters, worker_config }) => {
            crate::operator::stack_deploy(template.as_deref(), parameters, worker_config.as_deref()).await
        }
        Command::DevIssuer(DevIssuerCommand::Init { dir }) => crate::operator::dev_issuer_init(dir),
        Command::DevToken { user, team, groups, ttl, dir, worker_config } => {
            crate::operator::dev_token(user, team.as_deref(), groups, *ttl, dir, worker_config.as_deref())
        }
    }
}

/// One command's context.
#[derive(Debug)]
pub struct Ctx {
    pub cli: Cli,
    pub now: DateTime<Utc>,
}

fn local_io(what: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |e| CliError::local(format!("{}: {e}", what.display()))
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask on the terminal; `None` when stdin is not one.
fn prompt(question: &str) -> Option<String> {
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

fn init(ctx: &Ctx, a: &InitArgs) -> Result<u8, CliError> {
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
    let region =
        pick(&a.stack_region, previous.as_ref().map(|p| p.region.clone()), "AWS region of the Portcullis stack");
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
    };
    config.check().map_err(|m| CliError::usage(m, "portcullis init --help shows an example"))?;
    config.save(&path)?;
    match ctx.cli.output {
        Format::Json => println!("{}", json!({ "config": path, "written": true })),
        Format::Table => println!("wrote {}\nnext: portcullis login", path.display()),
    }
    Ok(0)
}

impl Ctx {
    fn effective(&self) -> Result<Effective, CliError> {
        let overrides = Overrides { endpoint_url: self.cli.endpoint_url.clone(), region: self.cli.region.clone() };
        Ok(Effective::resolve(config_path(self.cli.config.as_deref()), &overrides)?)
    }

    fn provider(&self, eff: &Effective) -> Result<Provider, CliError> {
        Provider::new(&eff.file.issuer, &eff.file.client_id, &eff.file.scopes)
            .map_err(|e| CliError::local(e.to_string()))
    }

    fn print(&self, value: &Value, human: impl FnOnce() -> String) {
        match self.cli.output {
            Format::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
            Format::Table => print!("{}", human()),
        }
    }

    /// The logged-in session (refreshed when near expiry), or the `--token` given.
    async fn session(&self, eff: &Effective) -> Result<Session, CliError> {
        if let Some(token) = &self.cli.token {
            return login::session_from_raw_token(token).ok_or_else(|| {
                CliError::usage("--token / PORTCULLIS_TOKEN is not a JWT with `sub` and `exp`", "pass an ID token")
            });
        }
        let provider = self.provider(eff)?;
        match login::current_session(&provider, &cache_dir(), eff.token_refresh_seconds(), self.now).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(CliError::local_hint(
                format!("not logged in to {}", eff.file.issuer),
                "run `portcullis login` (or `portcullis login --device` without a browser)",
            )),
            Err(login::LoginError::Unreachable { url, message }) => Err(CliError::Unreachable {
                what: "the identity provider".into(),
                endpoint: url,
                source: format!("issuer in {}", eff.path.display()),
                message,
                fix: "check issuer in the configuration, and your network".into(),
            }),
            Err(e) => Err(CliError::local_hint(
                format!("your session could not be refreshed: {e}"),
                "run `portcullis login` again",
            )),
        }
    }

    /// Send one request as the logged-in person and return its result.
    async fn ask(&self, kind: Kind, body: Value) -> Result<(Value, Session, Effective), CliError> {
        let eff = self.effective()?;
        let session = self.session(&eff).await?;
        let result = self.ask_as(&eff, &session, kind, body).await?;
        Ok((result, session, eff))
    }

    async fn ask_as(&self, eff: &Effective, session: &Session, kind: Kind, body: Value) -> Result<Value, CliError> {
        let requester = requester::connect(eff, session, &cache_dir(), self.now).await?;
        let timeout = Duration::from_secs(self.cli.timeout);
        let spinner = Spinner::start(&format!("waiting for Portcullis ({})", kind.as_str()));
        let reply = requester.client.request(kind, body, Some(&session.id_token), timeout).await;
        spinner.stop().await;
        let reply = reply.map_err(|e| match e {
            ClientError::Timeout { message_id, timeout } => CliError::Timeout {
                message: format!(
                    "no answer from Portcullis to {message_id} within {}",
                    human_seconds(timeout.as_secs())
                ),
                hint: "is the access worker running? (`make run` starts one); try again with a longer --timeout".into(),
            },
            ClientError::Sqs { op, message } if message.contains("dispatch") || message.contains("timeout") => {
                let (endpoint, source) = eff.sqs_endpoint();
                CliError::Unreachable {
                    what: "SQS".into(),
                    endpoint,
                    source: source.to_string(),
                    message: format!("{op}: {message}"),
                    fix: "check endpoint_url/region in the configuration, and that the service runs there".into(),
                }
            }
            other => CliError::local(other.to_string()),
        })?;
        match reply.outcome {
            ReplyOutcome::Ok { result } => Ok(result),
            ReplyOutcome::Error { error } => Err(CliError::Refused {
                code: error.code.as_str().to_owned(),
                message: error.message,
                details: error.details,
            }),
        }
    }

    fn account(&self, eff: &Effective, flag: Option<&str>) -> Result<AccountId, CliError> {
        let text = match (flag, &eff.file.default_account) {
            (Some(a), _) => a.to_owned(),
            (None, Some(a)) => return Ok(a.clone()),
            (None, None) => {
                return Err(CliError::usage(
                    "no --account given and no default_account configured",
                    "pass --account 123456789012 (or `portcullis init --default-account ...`)",
                ));
            }
        };
        AccountId::parse(&text)
            .map_err(|e| CliError::usage(format!("--account {text}: {e}"), "use the 12-digit account id"))
    }

    async fn login(&self, device: bool, no_browser: bool, wait: Duration) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let provider = self.provider(&eff)?;
        let result = if device {
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
                        let opened = !no_browser && login::open_browser(url);
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
        let session = result.map_err(|e| match e {
            login::LoginError::Unreachable { url, message } => CliError::Unreachable {
                what: "the identity provider".into(),
                endpoint: url,
                source: format!("issuer in {}", eff.path.display()),
                message,
                fix: "check issuer in the configuration (`portcullis init`), and your network".into(),
            },
            login::LoginError::TimedOut(d) => CliError::Timeout {
                message: format!("the login was not completed within {}", human_seconds(d.as_secs())),
                hint: "run `portcullis login` again (--wait gives more time)".into(),
            },
            login::LoginError::Refused(m) | login::LoginError::BadToken(m) => {
                CliError::Refused { code: "login_refused".into(), message: m, details: None }
            }
            login::LoginError::Other(m) => CliError::local(m),
        })?;
        // A subject SQS cannot name has no reply queue: say so now, not at the first request.
        portcullis_domain::reply_policy::own_reply_queue_name(&eff.names.reply_queue_prefix(), &session.subject)
            .map_err(|e| CliError::local_hint(e.to_string(), "see docs/messages.md#reply-queues"))?;
        let cache = cache_dir();
        if let Some(old) = login::stored_session(&cache)
            && (old.subject != session.subject || old.issuer != session.issuer)
        {
            forget_caches(&cache);
        }
        login::store_session(&cache, &session).map_err(local_io(&login::session_path(&cache)))?;
        self.print(&whoami_json(&session, self.now), || {
            format!("logged in as {} ({}), until {}\n", session.subject, session.flow, session.expires_at.to_rfc3339())
        });
        Ok(0)
    }

    async fn logout(&self) -> Result<u8, CliError> {
        let cache = cache_dir();
        let session = login::stored_session(&cache);
        let mut revoked = false;
        if let (Some(s), Ok(eff)) = (&session, self.effective())
            && let Ok(p) = self.provider(&eff)
        {
            revoked = p.revoke(s).await;
        }
        files::remove(&login::session_path(&cache)).map_err(local_io(&login::session_path(&cache)))?;
        forget_caches(&cache);
        self.print(&json!({ "logged_out": session.is_some(), "refresh_token_revoked": revoked }), || match &session {
            Some(s) => format!("logged out {} (session and cached credentials removed)\n", s.subject),
            None => "not logged in; cached credentials removed\n".into(),
        });
        Ok(0)
    }

    async fn whoami(&self) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let session = self.session(&eff).await?;
        self.print(&whoami_json(&session, self.now), || {
            let rows = vec![
                vec!["user".into(), session.subject.clone()],
                vec!["team".into(), session.team.clone().unwrap_or_else(|| "-".into())],
                vec!["groups".into(), if session.groups.is_empty() { "-".into() } else { session.groups.join(", ") }],
                vec!["issuer".into(), session.issuer.clone()],
                vec![
                    "expires".into(),
                    format!("{} (in {})", session.expires_at.to_rfc3339(), until(session.expires_at, self.now)),
                ],
                vec!["refreshable".into(), if session.refresh_token.is_some() { "yes".into() } else { "no".into() }],
            ];
            table(&["", ""], &rows).lines().skip(1).map(|l| format!("{l}\n")).collect()
        });
        Ok(0)
    }

    async fn templates(&self, action: &TemplatesAction) -> Result<u8, CliError> {
        match action {
            TemplatesAction::List => {
                let (result, ..) = self.ask(Kind::TemplateList, json!({})).await?;
                self.print(&result, || {
                    let rows: Vec<Vec<String>> = result["templates"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| {
                            vec![
                                t["name"].as_str().unwrap_or_default().to_owned(),
                                t["latest_version"].to_string(),
                                human_seconds(t["max_ttl_seconds"].as_u64().unwrap_or(0)),
                                t["parameters"]
                                    .as_array()
                                    .map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                                    .unwrap_or_default(),
                                approval_text(t),
                                t["description"].as_str().unwrap_or_default().to_owned(),
                            ]
                        })
                        .collect();
                    table(&["NAME", "VERSION", "MAX TTL", "PARAMETERS", "APPROVAL", "DESCRIPTION"], &rows)
                });
            }
            TemplatesAction::Show { name, version } => {
                let mut body = json!({ "name": name });
                if let Some(v) = version {
                    body["version"] = json!(v);
                }
                let (result, ..) = self.ask(Kind::TemplateGet, body).await?;
                self.print(&result, || show_template(&result["template"]));
            }
            TemplatesAction::Put { file } => {
                let text = std::fs::read_to_string(file).map_err(local_io(file))?;
                let template: Value = serde_json::from_str(&text).map_err(|e| {
                    CliError::usage(
                        format!("{} is not JSON: {e}", file.display()),
                        "see docs/messages.md#templateput-admins",
                    )
                })?;
                let (result, ..) = self.ask(Kind::TemplatePut, json!({ "template": template })).await?;
                self.print(&result, || {
                    format!("template {} version {}\n", result["name"].as_str().unwrap_or_default(), result["version"])
                });
            }
            TemplatesAction::Delete { name } => {
                let (result, ..) = self.ask(Kind::TemplateDelete, json!({ "name": name })).await?;
                self.print(&result, || format!("template {name} deleted\n"));
            }
        }
        Ok(0)
    }

    async fn request(
        &self,
        template: &str,
        params: &[(String, String)],
        account: Option<&str>,
        ttl: Option<u64>,
        reason: Option<String>,
        break_glass: bool,
    ) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let account = self.account(&eff, account)?;
        let session = self.session(&eff).await?;
        let stored = self.ask_as(&eff, &session, Kind::TemplateGet, json!({ "name": template })).await?;
        let stored: StoredTemplate = serde_json::from_value(stored["template"].clone())
            .map_err(|e| CliError::local(format!("the template could not be read: {e}")))?;
        let compiled = CompiledTemplate::compile(stored.spec.clone())
            .map_err(|e| CliError::local(format!("template {template} is invalid: {e}")))?;
        let mut values: BTreeMap<String, String> = params.iter().cloned().collect();
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
        let ttl = match ttl.or_else(|| {
            prompt(&format!("ttl (e.g. 1h; at most {})", human_seconds(stored.spec.max_ttl_seconds)))
                .and_then(|t| parse_duration(&t).ok())
        }) {
            Some(t) => t,
            None => return Err(CliError::usage("--ttl is required", "e.g. --ttl 1h")),
        };
        let reason = match reason.or_else(|| prompt("reason (why you need it)")) {
            Some(r) => r,
            None => {
                return Err(CliError::usage("--reason is required", "e.g. --reason \"INC-4711: reconcile payouts\""));
            }
        };
        let mut body =
            json!({ "template": template, "params": values, "account": account, "ttl": ttl, "reason": reason });
        if break_glass {
            body["break_glass"] = json!(true);
        }
        let result = self.ask_as(&eff, &session, Kind::GrantRequest, body).await?;
        let grant = &result["grant"];
        // Only an active grant changes what credentials are worth (a pending one confers nothing yet).
        if let (Some(id), Some(exp), Some("active")) =
            (grant["id"].as_str(), grant["expires_at"].as_str(), grant["status"].as_str())
            && let Ok(exp) = DateTime::parse_from_rfc3339(exp)
        {
            let path = credentials::known_grants_path(&cache_dir(), &session.issuer, &session.subject);
            let mut known = credentials::load_known(&path);
            known.add(&account, id, exp.with_timezone(&Utc));
            files::write_json(&path, &known).map_err(local_io(&path))?;
        }
        self.print(&result, || {
            let mut out = grants_table(std::slice::from_ref(grant), self.now);
            if grant["status"] == "pending" {
                let groups = grant["approval"]["approver_groups"].as_array().cloned().unwrap_or_default();
                let groups: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
                out.push_str(&format!(
                    "waiting for approval by {} of {}; `portcullis grants` shows when it is active\n",
                    grant["approval"]["required"],
                    groups.join(", ")
                ));
            }
            if grant["break_glass"].is_object() {
                out.push_str("break glass: active now, announced, and to be reviewed by the approvers\n");
            }
            out
        });
        Ok(0)
    }

    async fn grants(&self, account: Option<&str>, all: bool) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let account = account.map(|a| self.account(&eff, Some(a))).transpose()?;
        let session = self.session(&eff).await?;
        let mut body = match &account {
            Some(a) => json!({ "account": a }),
            None => json!({}),
        };
        if all {
            body["include_ended"] = json!(true);
        }
        let result = self.ask_as(&eff, &session, Kind::GrantList, body).await?;
        let grants = result["grants"].as_array().cloned().unwrap_or_default();
        let path = credentials::known_grants_path(&cache_dir(), &session.issuer, &session.subject);
        let mut known = credentials::load_known(&path);
        let mut by_account: BTreeMap<String, Vec<(String, DateTime<Utc>)>> = BTreeMap::new();
        for g in grants.iter().filter(|g| g["status"] == "active") {
            if let (Some(a), Some(id), Some(exp)) = (g["account"].as_str(), g["id"].as_str(), g["expires_at"].as_str())
                && let Ok(exp) = DateTime::parse_from_rfc3339(exp)
            {
                by_account.entry(a.to_owned()).or_default().push((id.to_owned(), exp.with_timezone(&Utc)));
            }
        }
        match &account {
            Some(a) => known.replace(a, by_account.remove(a.as_str()).unwrap_or_default()),
            None => {
                known.accounts.clear();
                for (a, list) in by_account {
                    if let Ok(a) = AccountId::parse(&a) {
                        known.replace(&a, list);
                    }
                }
            }
        }
        files::write_json(&path, &known).map_err(local_io(&path))?;
        self.print(&result, || if grants.is_empty() { "no grants\n".into() } else { grants_table(&grants, self.now) });
        Ok(0)
    }

    /// `grant.revoke`; the cached credentials of the grant's account die with it.
    async fn revoke(&self, grant_id: &str, reason: &str) -> Result<u8, CliError> {
        let (result, session, _) =
            self.ask(Kind::GrantRevoke, json!({ "grant_id": grant_id, "reason": reason })).await?;
        let cache = cache_dir();
        for account in result["accounts"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Ok(account) = AccountId::parse(account) {
                let _ = files::remove(&credentials::path_for(&cache, &session.issuer, &session.subject, &account));
            }
        }
        self.print(&result, || revocation_text(&result));
        Ok(0)
    }

    /// Approve, deny, review, revoke a user: one request, its result shown.
    async fn decision(&self, kind: Kind, body: Value) -> Result<u8, CliError> {
        let (result, _, _) = self.ask(kind, body).await?;
        self.print(&result, || match result.get("grant") {
            Some(grant) => grants_table(std::slice::from_ref(grant), self.now),
            None => revocation_text(&result),
        });
        Ok(0)
    }

    async fn pending(&self) -> Result<u8, CliError> {
        let (result, _, _) = self.ask(Kind::GrantPending, json!({})).await?;
        self.print(&result, || {
            let list = |key: &str| result[key].as_array().cloned().unwrap_or_default();
            let (approvals, reviews) = (list("approvals"), list("reviews"));
            let mut out = String::new();
            out.push_str(&match approvals.is_empty() {
                true => "nothing waits for your approval\n".to_owned(),
                false => format!(
                    "waiting for your approval (portcullis approve <id>):\n{}",
                    pending_table(&approvals, self.now)
                ),
            });
            out.push_str(&match reviews.is_empty() {
                true => "no break-glass use waits for your review\n".to_owned(),
                false => format!(
                    "break glass to review (portcullis review <id> --verdict ...):\n{}",
                    pending_table(&reviews, self.now)
                ),
            });
            out
        });
        Ok(0)
    }

    /// Cached credentials when still good (see [`credentials`]), else fresh ones (cached).
    async fn credentials(&self, args: &CredentialsArgs) -> Result<ProcessCredentials, CliError> {
        let eff = self.effective()?;
        let account = self.account(&eff, args.account.as_deref())?;
        let session = self.session(&eff).await?;
        let cache = cache_dir();
        let path = credentials::path_for(&cache, &session.issuer, &session.subject, &account);
        let known = credentials::load_known(&credentials::known_grants_path(&cache, &session.issuer, &session.subject));
        let live = known.live(&account, self.now);
        let margin = eff.credentials_refresh_seconds();
        let good = |c: &CachedCredentials| {
            !args.refresh && args.duration.is_none() && credentials::still_good(c, &live, self.now, margin)
        };
        if let Some(c) = files::read_json::<CachedCredentials>(&path).filter(good) {
            return Ok(c.credentials);
        }
        // One process asks; concurrent ones (several AWS commands at once) wait and reuse its answer.
        let _lock = files::FileLock::acquire(&path).map_err(local_io(&path))?;
        if let Some(c) = files::read_json::<CachedCredentials>(&path).filter(good) {
            return Ok(c.credentials);
        }
        let mut body = json!({ "account": account });
        if let Some(d) = args.duration {
            body["duration"] = json!(d);
        }
        let result = self.ask_as(&eff, &session, Kind::CredentialsRequest, body).await?;
        let issued: ProcessCredentials = serde_json::from_value(result["credentials"].clone())
            .map_err(|e| CliError::local(format!("the credentials reply could not be read: {e}")))?;
        let grant_ids = result["grant_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect();
        let cached = CachedCredentials { credentials: issued.clone(), grant_ids, issued_at: self.now };
        files::write_json(&path, &cached).map_err(local_io(&path))?;
        Ok(issued)
    }

    fn configure_profile(&self, name: &str, account: Option<&str>, region: Option<&str>) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let account = self.account(&eff, account)?;
        let exe = std::env::current_exe().map_err(|e| CliError::local(e.to_string()))?;
        let path = aws_profile::aws_config_path();
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let mut lines = vec![(
            "credential_process".to_owned(),
            aws_profile::credential_process(&exe.display().to_string(), account.as_str(), self.cli.config.as_deref()),
        )];
        lines.push(("region".to_owned(), region.unwrap_or(&eff.region.0).to_owned()));
        if let Some((endpoint, _)) = &eff.endpoint_url {
            lines.push(("endpoint_url".to_owned(), endpoint.clone()));
        }
        let after = aws_profile::upsert_profile(&before, name, &lines);
        let changed = after != before;
        if changed {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(local_io(dir))?;
            }
            std::fs::write(&path, &after).map_err(local_io(&path))?;
        }
        self.print(&json!({ "profile": name, "file": path, "changed": changed }), || {
            format!(
                "{} profile {name} in {}\ntry: aws --profile {name} sts get-caller-identity\n",
                if changed { "wrote" } else { "unchanged:" },
                path.display()
            )
        });
        Ok(0)
    }

    async fn exec(&self, args: &CredentialsArgs, command: &[String]) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let creds = self.credentials(args).await?;
        let (program, rest) = command.split_first().ok_or_else(|| {
            CliError::usage("no command given", "portcullis exec --account A -- aws sts get-caller-identity")
        })?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(rest)
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
            .env("AWS_SESSION_TOKEN", &creds.session_token)
            .env("AWS_CREDENTIAL_EXPIRATION", creds.expiration.to_rfc3339())
            .env("AWS_REGION", &eff.region.0)
            .env("AWS_DEFAULT_REGION", &eff.region.0);
        if let Some((endpoint, _)) = &eff.endpoint_url {
            cmd.env("AWS_ENDPOINT_URL", endpoint);
        }
        let status = cmd
            .status()
            .map_err(|e| CliError::local_hint(format!("cannot run {program}: {e}"), "is it installed and on PATH?"))?;
        Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
    }

    async fn console(&self, args: &CredentialsArgs, no_browser: bool, destination: &str) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let creds = self.credentials(args).await?;
        let federation = eff.file.federation_url.clone().unwrap_or_else(|| console::FEDERATION_URL.into());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| CliError::local(e.to_string()))?;
        let response = http.get(console::signin_token_url(&federation, &creds)).send().await.map_err(|e| {
            CliError::Unreachable {
                what: "the AWS federation endpoint".into(),
                endpoint: federation.clone(),
                source: if eff.file.federation_url.is_some() {
                    format!("federation_url in {}", eff.path.display())
                } else {
                    "the default".into()
                },
                message: e.to_string(),
                fix: "check your network (or federation_url in the configuration)".into(),
            }
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body["SigninToken"].as_str().filter(|_| status.is_success()).ok_or_else(|| {
            CliError::local_hint(
                format!("the federation endpoint answered {status} without a SigninToken"),
                "the console needs credentials from AssumeRole; try --refresh",
            )
        })?;
        let url = console::login_url(&federation, token, destination);
        if !no_browser && login::open_browser(&url) {
            eprintln!("opened the console in your browser");
        }
        self.print(&json!({ "url": url }), || format!("{url}\n"));
        Ok(0)
    }

    async fn posture(&self, account: Option<&str>, region: Option<&str>) -> Result<u8, CliError> {
        let eff = self.effective()?;
        let mut body = json!({});
        if let Some(a) = account {
            body["account"] = json!(self.account(&eff, Some(a))?);
        }
        if let Some(r) = region {
            body["region"] = json!(r);
        }
        let session = self.session(&eff).await?;
        let result = self.ask_as(&eff, &session, Kind::PostureStatus, body).await?;
        self.print(&result, || {
            let rows: Vec<Vec<String>> = result["controls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let checked = c["checked_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                    vec![
                        c["account"].as_str().unwrap_or_default().to_owned(),
                        c["region"].as_str().unwrap_or_default().to_owned(),
                        c["control_id"].as_str().unwrap_or_default().to_owned(),
                        c["status"].as_str().unwrap_or_default().to_uppercase(),
                        c["failing_count"].to_string(),
                        checked
                            .map(|t| {
                                format!(
                                    "{} ago",
                                    human_seconds(
                                        u64::try_from((self.now - t.with_timezone(&Utc)).num_seconds().max(0))
                                            .unwrap_or(0)
                                    )
                                )
                            })
                            .unwrap_or_else(|| "-".into()),
                        c["reason"].as_str().unwrap_or(c["title"].as_str().unwrap_or_default()).to_owned(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                "no posture evidence yet (is the posture worker running?)\n".into()
            } else {
                table(&["ACCOUNT", "REGION", "CONTROL", "STATUS", "FAILING", "CHECKED", "REASON"], &rows)
            }
        });
        Ok(0)
    }
}

fn forget_caches(cache: &std::path::Path) {
    let _ = files::remove(&requester::cache_path(cache));
    let _ = std::fs::remove_dir_all(cache.join("credentials"));
    if let Ok(entries) = std::fs::read_dir(cache) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("grants-") {
                let _ = files::remove(&e.path());
            }
        }
    }
}

fn whoami_json(s: &Session, now: DateTime<Utc>) -> Value {
    json!({
        "user": s.subject, "team": s.team, "groups": s.groups, "issuer": s.issuer,
        "expires_at": s.expires_at, "expires_in_seconds": (s.expires_at - now).num_seconds().max(0),
        "refreshable": s.refresh_token.is_some(), "flow": s.flow,
    })
}

fn grants_table(grants: &[Value], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            let exp = g["expires_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let expires = match (g["status"].as_str(), g["ttl_seconds"].as_u64()) {
                (Some("pending"), Some(ttl)) => format!("{} once approved", human_seconds(ttl)),
                _ => exp.map(|e| until(e, now)).unwrap_or_else(|| "-".into()),
            };
            let status = grant_status(g, exp, now);
            let params = params_text(g);
            vec![
                g["id"].as_str().unwrap_or_default().to_owned(),
                g["template"].as_str().unwrap_or_default().to_owned(),
                g["account"].as_str().unwrap_or_default().to_owned(),
                expires,
                status.to_owned(),
                params,
            ]
        })
        .collect();
    table(&["ID", "TEMPLATE", "ACCOUNT", "EXPIRES IN", "STATUS", "PARAMS"], &rows)
}

/// A grant's parameters as `k=v k=v`.
fn params_text(g: &Value) -> String {
    g["params"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A grant's status as its reply says (older workers: from its expiry), with the approvals so far or
/// the break glass.
fn grant_status(g: &Value, exp: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let status = match g["status"].as_str() {
        Some(s) => s.to_owned(),
        None if exp.is_some_and(|e| e > now) => "active".into(),
        None => "expired".into(),
    };
    if status == "pending" {
        let count = g["approval"]["approvals"].as_array().map_or(0, Vec::len);
        return format!("pending ({count}/{})", g["approval"]["required"]);
    }
    match g["break_glass"].get("review") {
        Some(r) if r.is_object() => format!("{status}, break glass {}", r["verdict"].as_str().unwrap_or("reviewed")),
        _ if g["break_glass"].is_object() => format!("{status}, break glass"),
        _ => status,
    }
}

/// Grants waiting for someone: who asked, for what, and why.
fn pending_table(grants: &[Value], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            let params = params_text(g);
            let due = g["break_glass"]["review_due"].as_str().or(g["approval"]["pending_until"].as_str());
            let due = due
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| until(t.with_timezone(&Utc), now))
                .unwrap_or_else(|| "-".into());
            vec![
                g["id"].as_str().unwrap_or_default().to_owned(),
                g["user"].as_str().unwrap_or_default().to_owned(),
                g["template"].as_str().unwrap_or_default().to_owned(),
                g["account"].as_str().unwrap_or_default().to_owned(),
                params,
                due,
                g["reason"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    table(&["ID", "USER", "TEMPLATE", "ACCOUNT", "PARAMS", "DUE IN", "REASON"], &rows)
}

/// A revocation's result in words.
fn revocation_text(result: &Value) -> String {
    let grants: Vec<&str> = result["grants"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let accounts: Vec<&str> = result["accounts"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut out = match grants.is_empty() {
        true => "no grant was revoked (already revoked?)\n".to_owned(),
        false => format!("revoked {}\n", grants.join(", ")),
    };
    if !accounts.is_empty() {
        out.push_str(&format!(
            "sessions issued before {} no longer work in {}\n",
            result["sessions_issued_before"].as_str().unwrap_or("now"),
            accounts.join(", ")
        ));
    }
    out
}

/// "1 of portcullis-approvers, break glass", or "-" for self-service.
fn approval_text(t: &Value) -> String {
    let Some(approval) = t["approval"].as_object() else { return "-".into() };
    let groups = approval.get("approver_groups").and_then(Value::as_array).cloned().unwrap_or_default();
    let groups: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
    let mut text = format!("{} of {}", approval.get("required").cloned().unwrap_or_default(), groups.join("|"));
    if t["break_glass"] == true {
        text.push_str(", break glass");
    }
    text
}

fn show_template(t: &Value) -> String {
    let mut out = format!(
        "{} (version {}): {}\nmax ttl: {}\n",
        t["name"].as_str().unwrap_or_default(),
        t["version"],
        t["description"].as_str().unwrap_or_default(),
        human_seconds(t["max_ttl_seconds"].as_u64().unwrap_or(0))
    );
    if let Some(accounts) = t["allowed_accounts"].as_array() {
        out.push_str(&format!(
            "accounts: {}\n",
            accounts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        ));
    }
    if t["approval"].is_object() {
        out.push_str(&format!("approval: {}\n", approval_text(t)));
    }
    let rows: Vec<Vec<String>> = t["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["pattern"].as_str().unwrap_or_default().to_owned(),
                p["description"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&table(&["PARAMETER", "PATTERN", "DESCRIPTION"], &rows));
    }
    out
}

#[doc = "Exit codes, as documented in `--help` and the README."]
pub const EXIT_CODE_TABLE: &str = EXIT_CODES;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("900").unwrap(), 900);
        assert_eq!(parse_duration("45m").unwrap(), 2700);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("18446744073709551615d").unwrap_err().contains("too long"));
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_subcommands().next().is_some() {
                    walk(sub, &name);
                    continue;
                }
                let after = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(after.contains("Example"), "`{name} --help` has no example");
            }
        }
        let cmd = command();
        cmd.clone().debug_assert();
        walk(&cmd, "portcullis");
    }
}
