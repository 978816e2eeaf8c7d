//! The command line: the global flags, one module per command (its flags, with an example in its
//! `--help`, and what it does), and the dispatch.
//!
//! A command that asks Portcullis something builds the kind's typed body, sends it through
//! [`Ctx::ask`](crate::context::Ctx::ask) and hands the typed result to a renderer in
//! [`crate::render`]; adding one is a variant in [`Command`], a module here, and a renderer.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::context::Ctx;
use crate::error::CliError;
use crate::output::Format;

mod approve;
mod completions;
mod configure_profile;
mod console;
pub(crate) mod credentials;
mod deny;
mod dev;
mod exec;
mod grants;
mod init;
mod login;
mod logout;
mod pending;
mod posture;
mod request;
mod review;
mod revoke;
mod revoke_user;
mod stack;
mod templates;
mod whoami;

pub use approve::ApproveArgs;
pub use completions::{CompletionsArgs, Shell};
pub use configure_profile::ConfigureProfileArgs;
pub use console::ConsoleArgs;
pub use credentials::CredentialsArgs;
pub use deny::DenyArgs;
pub use dev::{DevIssuerCommand, DevTokenArgs};
pub use exec::ExecArgs;
pub use grants::GrantsArgs;
pub use init::InitArgs;
pub use login::LoginArgs;
pub use posture::PostureArgs;
pub use request::RequestArgs;
pub use review::{ReviewArgs, VerdictArg};
pub use revoke::RevokeArgs;
pub use revoke_user::RevokeUserArgs;
pub use stack::StackCommand;
pub use templates::{TemplatesAction, TemplatesArgs};

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 local error (no config, not logged in), 2 usage, \
3 refused (the server's code and sentence on stderr), 4 timeout or unreachable.";

/// `portcullis --version`: the CLI's version and the message contract (envelope version) it speaks.
pub static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (message contract version {})",
        env!("CARGO_PKG_VERSION"),
        portcullis_domain::messages::ENVELOPE_VERSION
    )
});

/// `portcullis`: just-in-time AWS access from a terminal.
#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version = VERSION.as_str(),
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
    /// A named profile of the configuration ([profiles.NAME]: account, template, region).
    #[arg(long, global = true, env = "PORTCULLIS_PROFILE")]
    pub profile: Option<String>,
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
    Login(LoginArgs),
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
    Templates(TemplatesArgs),
    /// Ask for access from a template (prompts for missing parameters on a terminal).
    #[command(
        after_help = "Examples:\n  portcullis request bucketRead --param bucketName=analytics-reports --account 123456789012 \\\n      --ttl 4h --reason \"INC-4711: reconcile payouts\"\n  portcullis --profile reports request --param bucketName=analytics-reports --ttl 1h --reason INC-4711   # [profiles.reports] in the config"
    )]
    Request(RequestArgs),
    /// Your pending and active grants (--all: also those that ended in the last week).
    #[command(after_help = "Examples:\n  portcullis grants --account 123456789012\n  portcullis grants --all")]
    Grants(GrantsArgs),
    /// End one of your grants now (admins: anyone's), and your sessions in its account.
    #[command(
        after_help = "Example:\n  portcullis revoke g-0123456789abcdef0123456789abcdef --reason \"INC-4711 closed\""
    )]
    Revoke(RevokeArgs),
    /// Admins: end every grant of a user, and their sessions in every account.
    #[command(after_help = "Example:\n  portcullis revoke-user alice --reason \"laptop stolen\"")]
    RevokeUser(RevokeUserArgs),
    /// Grants waiting for your approval, and break-glass uses waiting for your review.
    #[command(after_help = "Example:\n  portcullis pending")]
    Pending,
    /// Approve someone's pending grant (members of its approver groups).
    #[command(after_help = "Example:\n  portcullis approve g-0123456789abcdef0123456789abcdef")]
    Approve(ApproveArgs),
    /// Deny someone's pending grant (members of its approver groups).
    #[command(
        after_help = "Example:\n  portcullis deny g-0123456789abcdef0123456789abcdef --reason \"use the read replica\""
    )]
    Deny(DenyArgs),
    /// Review someone's break-glass grant (members of its approver groups); unjustified revokes it.
    #[command(
        after_help = "Example:\n  portcullis review g-0123456789abcdef0123456789abcdef --verdict justified --note \"SEV1 confirmed\""
    )]
    Review(ReviewArgs),
    /// Temporary credentials for your live grants, in the AWS `credential_process` shape (cached).
    #[command(
        after_help = "Examples:\n  portcullis credentials --account 123456789012\n  # ~/.aws/config:\n  [profile jit]\n  credential_process = portcullis credentials --account 123456789012"
    )]
    Credentials(CredentialsArgs),
    /// Write a `credential_process` profile into ~/.aws/config (idempotent; other profiles untouched).
    #[command(
        after_help = "Example:\n  portcullis configure-profile jit-prod --account 123456789012\n  aws --profile jit-prod sts get-caller-identity"
    )]
    ConfigureProfile(ConfigureProfileArgs),
    /// Run a command with your credentials in its environment.
    #[command(after_help = "Example:\n  portcullis exec --account 123456789012 -- aws s3 ls s3://analytics-reports")]
    Exec(ExecArgs),
    /// Print (and open) an AWS console sign-in URL for your credentials.
    #[command(after_help = "Example:\n  portcullis console --account 123456789012 --no-browser")]
    Console(ConsoleArgs),
    /// The latest posture evidence per control (for members of the posture reader groups).
    #[command(after_help = "Example:\n  portcullis posture --region us-east-1")]
    Posture(PostureArgs),
    /// Shell completions.
    #[command(
        after_help = "Examples:\n  portcullis completions bash > ~/.local/share/bash-completion/completions/portcullis\n  portcullis completions zsh > \"${fpath[1]}/_portcullis\"\n  portcullis completions fish > ~/.config/fish/completions/portcullis.fish"
    )]
    Completions(CompletionsArgs),
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
    DevToken(DevTokenArgs),
}

/// `name=value`.
pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("`{s}` is not name=value"))
}

/// Seconds from a duration the humantime way: `900` (seconds), `30s`, `45m`, `2h`, `1d`, and
/// sums of them such as `1h30m` or `1h 30min` (units: s, sec, m, min, h, hr, hour, d, day, w,
/// week, with an optional plural `s`).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let bad = || format!("`{text}` is not a duration like 900, 45m, 2h or 1h30m");
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("`{text}` is too long"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| format!("`{text}` is too long"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            "" => return Err(format!("`{text}`: every number needs a unit after the first (s, m, h, d or w)")),
            unit => return Err(format!("`{text}`: unknown unit `{unit}` (s, m, h, d or w)")),
        };
        rest = &rest[unit_len..];
        total =
            n.checked_mul(mult).and_then(|v| total.checked_add(v)).ok_or_else(|| format!("`{text}` is too long"))?;
    }
    Ok(total)
}

/// A grant's `--ttl`: a duration within the bounds every template has (60 s to 7 days), checked
/// here so that a value no template can accept is never sent. The template's own maximum is
/// checked once the template is known (`portcullis request`).
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    use portcullis_domain::template::{MAX_TEMPLATE_TTL_SECONDS, MIN_TEMPLATE_TTL_SECONDS};
    let ttl = parse_duration(s)?;
    if !(MIN_TEMPLATE_TTL_SECONDS..=MAX_TEMPLATE_TTL_SECONDS).contains(&ttl) {
        return Err(format!(
            "{} is out of range: a ttl is {} to {} (checked locally; nothing was sent)",
            crate::render::human_seconds(ttl),
            crate::render::human_seconds(MIN_TEMPLATE_TTL_SECONDS),
            crate::render::human_seconds(MAX_TEMPLATE_TTL_SECONDS)
        ));
    }
    Ok(ttl)
}

/// A credentials `--duration`: what STS allows for the broker's session (15 min to 12 h).
pub fn parse_session_duration(s: &str) -> Result<u64, String> {
    use portcullis_domain::session::{MAX_SESSION_SECONDS, MIN_SESSION_SECONDS};
    let d = parse_duration(s)?;
    if !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&d) {
        return Err(format!(
            "{} is out of range: a session is {} to {} (checked locally; nothing was sent)",
            crate::render::human_seconds(d),
            crate::render::human_seconds(MIN_SESSION_SECONDS),
            crate::render::human_seconds(MAX_SESSION_SECONDS)
        ));
    }
    Ok(d)
}

/// The clap command (for completions and tests).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parse the process arguments and run; returns the exit code.
pub fn main() -> std::process::ExitCode {
    crate::output::quiet_on_broken_pipe();
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
    let ctx = Ctx::new(cli);
    match &ctx.cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Login(args) => login::run(&ctx, args).await,
        Command::Logout => logout::run(&ctx).await,
        Command::Whoami => whoami::run(&ctx).await,
        Command::Templates(args) => templates::run(&ctx, args).await,
        Command::Request(args) => request::run(&ctx, args).await,
        Command::Grants(args) => grants::run(&ctx, args).await,
        Command::Revoke(args) => revoke::run(&ctx, args).await,
        Command::RevokeUser(args) => revoke_user::run(&ctx, args).await,
        Command::Pending => pending::run(&ctx).await,
        Command::Approve(args) => approve::run(&ctx, args).await,
        Command::Deny(args) => deny::run(&ctx, args).await,
        Command::Review(args) => review::run(&ctx, args).await,
        Command::Credentials(args) => credentials::run(&ctx, args).await,
        Command::ConfigureProfile(args) => configure_profile::run(&ctx, args),
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Console(args) => console::run(&ctx, args).await,
        Command::Posture(args) => posture::run(&ctx, args).await,
        Command::Completions(args) => completions::run(args),
        Command::Stack(command) => stack::run(command).await,
        Command::DevIssuer(command) => dev::run_issuer(command),
        Command::DevToken(args) => dev::run_token(args),
    }
}

#[doc = "Exit codes, as documented in `--help` and the README."]
pub const EXIT_CODE_TABLE: &str = EXIT_CODES;

/// Every example of every `--help`: (the command whose help shows it, its argument list). The tests
/// parse each one, and the end-to-end tests run each one against the emulator.
pub fn help_examples() -> Vec<(String, Vec<String>)> {
    let mut helps = Vec::new();
    all_help(&command(), &mut helps);
    helps.into_iter().flat_map(|(name, help)| examples(&help).into_iter().map(move |w| (name.clone(), w))).collect()
}

/// The `portcullis ...` commands in a help text's examples, as argument lists (continuation
/// lines joined; what follows `#`, `&&`, `|` or `>` is not part of the command).
fn examples(help: &str) -> Vec<Vec<String>> {
    let joined = help.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if !line.starts_with("portcullis ") {
            continue;
        }
        let mut words = Vec::new();
        let (mut word, mut quoted, mut any) = (String::new(), false, false);
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if any || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                c => word.push(c),
            }
        }
        if any || !word.is_empty() {
            words.push(word);
        }
        let end = words.iter().position(|w| ["#", "&&", "|", ">"].contains(&w.as_str())).unwrap_or(words.len());
        words.truncate(end);
        out.push(words);
    }
    out
}

fn all_help(cmd: &clap::Command, into: &mut Vec<(String, String)>) {
    let name = cmd.get_name().to_owned();
    if let Some(h) = cmd.get_after_help() {
        into.push((name, h.to_string()));
    }
    for sub in cmd.get_subcommands() {
        all_help(sub, into);
    }
}

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
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("1h 30min").unwrap(), 5400);
        assert_eq!(parse_duration("2 hours").unwrap(), 7200);
        assert_eq!(parse_duration("1w").unwrap(), 604_800);
        assert!(parse_duration("1h30").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn ttl_and_session_bounds_are_checked_before_sending() {
        assert_eq!(parse_ttl("1h30m").unwrap(), 5400);
        assert!(parse_ttl("10s").unwrap_err().contains("out of range"), "{:?}", parse_ttl("10s"));
        assert!(parse_ttl("8d").unwrap_err().contains("out of range"));
        assert_eq!(parse_session_duration("1h").unwrap(), 3600);
        assert!(parse_session_duration("5m").is_err() && parse_session_duration("13h").is_err());
    }

    #[test]
    fn every_help_example_parses_as_shown() {
        let mut helps = Vec::new();
        all_help(&command(), &mut helps);
        let mut seen = 0;
        for (name, help) in helps {
            for words in examples(&help) {
                seen += 1;
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("an example in `{name} --help` does not parse: {words:?}\n{e}");
                }
            }
        }
        assert!(seen > 20, "only {seen} examples found");
    }

    /// `init --help`'s examples (and the top-level ones) write a configuration as shown.
    #[tokio::test]
    async fn the_init_examples_write_a_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let mut helps = Vec::new();
        all_help(&command(), &mut helps);
        let inits: Vec<Vec<String>> = helps
            .iter()
            .flat_map(|(_, h)| examples(h))
            .filter(|w| w.get(1).map(String::as_str) == Some("init"))
            .collect();
        assert!(inits.len() >= 2, "{inits:?}");
        for (i, mut words) in inits.into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.toml"));
            words.extend(["--config".into(), path.display().to_string()]);
            let cli = Cli::try_parse_from(&words).unwrap();
            assert_eq!(run(cli).await.unwrap(), 0, "{words:?}");
            let written = crate::config::CliConfig::load(&path).unwrap();
            assert_eq!(written.region, "eu-west-1", "{words:?}");
        }
    }

    #[test]
    fn the_version_names_the_message_contract() {
        let version = command().render_version();
        assert!(
            version.contains(&format!("message contract version {}", portcullis_domain::messages::ENVELOPE_VERSION)),
            "{version}"
        );
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
