//! `portcullis`: ask for access from a terminal, and development helpers.
//!
//! Requests go to the stack's access-requests queue with a private reply queue; the reply is printed
//! as JSON. `portcullis credentials` prints exactly the AWS CLI `credential_process` shape, so it can be
//! used as `credential_process = portcullis credentials --account 123456789012`.
//!
//! Exit codes: 0 ok, 1 local or transport error, 3 the request was refused (the error reply is
//! printed on stderr with its code).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use portcullis_cli::client::AccessClient;
use portcullis_cli::dev_issuer as dev;
use portcullis_domain::messages::{Kind, Reply, ReplyOutcome};
use portcullis_domain::naming::StackNames;
use portcullis_runtime::config::Settings;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about = "Just-in-time AWS access: request grants and credentials")]
struct Cli {
    /// Configuration file (default: $PORTCULLIS_CONFIG, else the embedded config/local.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Seconds to wait for a reply.
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct TokenArg {
    /// OIDC ID token from your identity provider.
    #[arg(long, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage statement templates (admins).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Request and list grants.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Temporary credentials for your live grants in one account (credential_process JSON).
    Credentials {
        #[command(flatten)]
        token: TokenArg,
        /// 12-digit AWS account id.
        #[arg(long)]
        account: String,
        /// Session length, e.g. 900, 30m, 1h (default: until your latest grant expires, capped).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<u64>,
        /// Print the whole reply with the secrets redacted, instead of credential_process JSON.
        #[arg(long)]
        redacted: bool,
    },
    /// Deploy the CloudFormation stack (create or update).
    #[command(subcommand)]
    Stack(StackCommand),
    /// The local development identity issuer.
    #[command(subcommand)]
    DevIssuer(DevIssuerCommand),
    /// Mint an ID token from the local development issuer.
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
    },
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// Create a template or a new version of it from a JSON file.
    Put {
        #[command(flatten)]
        token: TokenArg,
        file: PathBuf,
    },
    Get {
        #[command(flatten)]
        token: TokenArg,
        name: String,
        #[arg(long)]
        version: Option<u32>,
    },
    List {
        #[command(flatten)]
        token: TokenArg,
    },
    Delete {
        #[command(flatten)]
        token: TokenArg,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum GrantCommand {
    /// Ask for access from a template.
    Request {
        #[command(flatten)]
        token: TokenArg,
        #[arg(long)]
        template: String,
        /// Parameter as name=value (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        #[arg(long)]
        account: String,
        /// Lifetime, e.g. 3600, 45m, 2h.
        #[arg(long, value_parser = parse_duration)]
        ttl: u64,
        #[arg(long)]
        reason: String,
    },
    /// Your live grants.
    List {
        #[command(flatten)]
        token: TokenArg,
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StackCommand {
    /// Create or update the stack named after `stack.prefix`.
    Deploy {
        /// Template file (default: the one built into this binary).
        #[arg(long)]
        template: Option<PathBuf>,
        /// Extra parameters as Key=Value (repeatable).
        #[arg(long = "parameter", value_parser = parse_param)]
        parameters: Vec<(String, String)>,
    },
}

#[derive(Debug, Subcommand)]
enum DevIssuerCommand {
    /// Generate the signing key and JWKS (kept if present).
    Init {
        #[arg(long, default_value = ".portcullis/dev-issuer")]
        dir: PathBuf,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("`{s}` is not name=value"))
}

/// Seconds from `900`, `30s`, `45m`, `2h` or `1d`.
fn parse_duration(s: &str) -> Result<u64, String> {
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    Ok(match &cli.config {
        Some(p) => Settings::load_from(Some(p)),
        None => Settings::load(),
    }?)
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let timeout = Duration::from_secs(cli.timeout);
    match &cli.command {
        Command::DevIssuer(DevIssuerCommand::Init { dir }) => {
            let jwks = dev::init(dir)?;
            println!("{}", jwks.display());
            Ok(0)
        }
        Command::DevToken { user, team, groups, ttl, dir } => {
            let s = settings(&cli)?;
            let token = dev::mint(
                dir,
                &dev::DevClaims {
                    issuer: s.identity.issuer.clone(),
                    audience: s.identity.audience.clone(),
                    user: user.clone(),
                    team: team.clone(),
                    groups: groups.clone(),
                    ttl: Duration::from_secs(*ttl),
                    issued_at: None,
                },
            )?;
            println!("{token}");
            Ok(0)
        }
        Command::Stack(StackCommand::Deploy { template, parameters }) => {
            let s = settings(&cli)?;
            let sdk = portcullis_runtime::aws::sdk_config(&s.aws).await;
            let cfn = aws_sdk_cloudformation::Client::new(&sdk);
            let body = match template {
                Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                None => portcullis_cli::stack::TEMPLATE.to_owned(),
            };
            let names = StackNames::new(&s.stack.prefix);
            let mut params: Vec<(&str, &str)> = vec![("Prefix", names.prefix())];
            params.extend(parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            // The broker role trusts exactly one principal: by default, whoever deploys.
            let caller;
            if !params.iter().any(|(k, _)| *k == "WorkerPrincipalArn") {
                caller = portcullis_cli::stack::caller_principal_arn(&aws_sdk_sts::Client::new(&sdk)).await?;
                eprintln!("WorkerPrincipalArn not given: the broker role will trust {caller}");
                params.push(("WorkerPrincipalArn", caller.as_str()));
            }
            let status =
                portcullis_cli::stack::deploy(&cfn, &names.stack(), &body, &params, Duration::from_secs(600)).await?;
            println!("stack {}: {status}", names.stack());
            Ok(0)
        }
        Command::Template(t) => {
            let (kind, token, body) = match t {
                TemplateCommand::Put { token, file } => {
                    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                    let template: Value =
                        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
                    (Kind::TemplatePut, token, json!({ "template": template }))
                }
                TemplateCommand::Get { token, name, version } => {
                    let mut body = json!({ "name": name });
                    if let Some(v) = version {
                        body["version"] = json!(v);
                    }
                    (Kind::TemplateGet, token, body)
                }
                TemplateCommand::List { token } => (Kind::TemplateList, token, json!({})),
                TemplateCommand::Delete { token, name } => (Kind::TemplateDelete, token, json!({ "name": name })),
            };
            let reply = request(&cli, kind, &token.token, body, timeout).await?;
            Ok(print_reply(&reply, false))
        }
        Command::Grant(g) => {
            let (kind, token, body) = match g {
                GrantCommand::Request { token, template, params, account, ttl, reason } => {
                    let params: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    (
                        Kind::GrantRequest,
                        token,
                        json!({ "template": template, "params": params, "account": account, "ttl": ttl, "reason": reason }),
                    )
                }
                GrantCommand::List { token, account } => {
                    let body = match account {
                        Some(a) => json!({ "account": a }),
                        None => json!({}),
                    };
                    (Kind::GrantList, token, body)
                }
            };
            let reply = request(&cli, kind, &token.token, body, timeout).await?;
            Ok(print_reply(&reply, false))
        }
        Command::Credentials { token, account, duration, redacted } => {
            let mut body = json!({ "account": account });
            if let Some(d) = duration {
                body["duration"] = json!(d);
            }
            let reply = request(&cli, Kind::CredentialsRequest, &token.token, body, timeout).await?;
            if *redacted {
                return Ok(print_reply(&reply, true));
            }
            match &reply.outcome {
                ReplyOutcome::Ok { result } => {
                    println!("{}", serde_json::to_string_pretty(&result["credentials"])?);
                    Ok(0)
                }
                ReplyOutcome::Error { .. } => Ok(print_reply(&reply, false)),
            }
        }
    }
}

async fn request(cli: &Cli, kind: Kind, token: &str, body: Value, timeout: Duration) -> anyhow::Result<Reply<Value>> {
    let s = settings(cli)?;
    let sdk = portcullis_runtime::aws::sdk_config(&s.aws).await;
    let client = AccessClient::connect(aws_sdk_sqs::Client::new(&sdk), &StackNames::new(&s.stack.prefix)).await?;
    let result = client.request(kind, body, Some(token), timeout).await;
    if let Err(e) = client.close().await {
        eprintln!("warning: could not delete the reply queue: {e}");
    }
    Ok(result?)
}

/// Print a reply; returns the exit code.
fn print_reply(reply: &Reply<Value>, redact: bool) -> u8 {
    match &reply.outcome {
        ReplyOutcome::Ok { result } => {
            let mut result = result.clone();
            if redact {
                redact_secrets(&mut result);
            }
            println!("{result:#}");
            0
        }
        ReplyOutcome::Error { error } => {
            eprintln!("refused: {}: {}", error.code, error.message);
            if let Some(d) = &error.details {
                eprintln!("details: {d}");
            }
            3
        }
    }
}

fn redact_secrets(v: &mut Value) {
    if let Some(c) = v.get_mut("credentials").and_then(Value::as_object_mut) {
        for key in ["SecretAccessKey", "SessionToken"] {
            if let Some(Value::String(s)) = c.get_mut(key) {
                let shown: String = s.chars().take(4).collect();
                *s = format!("{shown}…<redacted {} chars>", s.chars().count());
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
    fn secrets_are_redacted() {
        let mut v = json!({"credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "abcdefgh", "SessionToken": "tok123456"}});
        redact_secrets(&mut v);
        assert_eq!(v["credentials"]["AccessKeyId"], "ASIA1");
        assert!(!v.to_string().contains("abcdefgh"));
        assert!(!v.to_string().contains("tok123456"));
    }
}
