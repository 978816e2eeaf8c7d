//! `portcullis stack deploy|delete` (operators): the flags, and the deployment through
//! [`crate::stack`] with its progress on stderr.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use clap::Subcommand;
use portcullis_domain::naming::StackNames;
use portcullis_runtime::config::Settings;

use super::{parse_duration, parse_param};
use crate::error::CliError;
use crate::stack::{DeployError, RETAINED_ON_DELETE, StackEvent};

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Create or update the stack named after `stack.prefix` of the workers' settings.
    #[command(
        after_help = "Without WorkerPrincipalArn the stack creates one role per worker (<prefix>-access-worker, \
                      -directory-worker, -posture-worker) holding only that worker's permissions; on an emulator \
                      (aws.endpoint_url set) the deploying identity is used instead.\n\nExample:\n  portcullis stack \
                      deploy --parameter OidcIssuerUrl=https://idp.example.com/realms/acme --timeout 30m"
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
        /// How long to wait for CloudFormation (900, 45m, 2h).
        #[arg(long, default_value = "30m", value_parser = parse_duration)]
        timeout: u64,
    },
    /// Delete the stack. The state table, the bus archive and the queues are kept (DeletionPolicy: Retain).
    #[command(
        after_help = "The kept resources keep their names: a stack with the same prefix cannot be created again \
                      until they are deleted by hand, once their data is no longer needed.\n\nExample:\n  portcullis stack delete --yes \
                      --timeout 45m"
    )]
    Delete {
        /// The workers' settings file (default: $PORTCULLIS_CONFIG, else the embedded default).
        #[arg(long)]
        worker_config: Option<PathBuf>,
        /// How long to wait for CloudFormation (900, 45m, 2h).
        #[arg(long, default_value = "30m", value_parser = parse_duration)]
        timeout: u64,
        /// Confirm: delete the stack named after `stack.prefix`.
        #[arg(long)]
        yes: bool,
    },
}

pub(crate) async fn run(command: &StackCommand) -> Result<u8, CliError> {
    match command {
        StackCommand::Deploy { template, parameters, worker_config, timeout } => {
            deploy(template.as_deref(), parameters, worker_config.as_deref(), Duration::from_secs(*timeout)).await
        }
        StackCommand::Delete { worker_config, timeout, yes } => {
            delete(worker_config.as_deref(), Duration::from_secs(*timeout), *yes).await
        }
    }
}

/// What a stack command works with.
struct OperatorSession {
    settings: Settings,
    /// Where the settings came from (for messages).
    source: String,
    cfn: aws_sdk_cloudformation::Client,
    sts: aws_sdk_sts::Client,
    /// The emulator's endpoint, when the settings or the environment name one.
    emulator: Option<String>,
}

/// The workers' settings and the AWS clients, after checking that there are credentials to deploy with.
async fn operator_session(worker_config: Option<&Path>) -> Result<OperatorSession, CliError> {
    let (s, source) = crate::operator::settings(worker_config)?;
    let sdk = portcullis_runtime::aws::sdk_config(&s.aws).await;
    let emulator = s.aws.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    // Deploying needs an operator's AWS credentials: say so before CloudFormation does, less clearly.
    let has_credentials = match sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await.is_ok(),
        None => false,
    };
    if !has_credentials {
        return Err(CliError::local_hint(
            format!(
                "no AWS credentials found to deploy the stack to {} (endpoint from {source})",
                emulator.as_deref().unwrap_or("AWS")
            ),
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for an operator (for the local emulator: \
             export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)",
        ));
    }
    Ok(OperatorSession {
        settings: s,
        source,
        cfn: aws_sdk_cloudformation::Client::new(&sdk),
        sts: aws_sdk_sts::Client::new(&sdk),
        emulator,
    })
}

fn print_event(e: &StackEvent) {
    eprintln!("{e}");
}

/// `portcullis stack deploy`.
async fn deploy(
    template: Option<&Path>,
    parameters: &[(String, String)],
    worker_config: Option<&Path>,
    timeout: Duration,
) -> Result<u8, CliError> {
    let OperatorSession { settings: s, source, cfn, sts, emulator } = operator_session(worker_config).await?;
    let endpoint = emulator.clone().unwrap_or_else(|| "AWS".into());
    let body = match template {
        Some(p) => std::fs::read_to_string(p).map_err(|e| CliError::local(format!("reading {}: {e}", p.display())))?,
        None => crate::stack::TEMPLATE.to_owned(),
    };
    let names = StackNames::new(&s.stack.prefix);
    let mut params: Vec<(&str, &str)> = vec![("Prefix", names.prefix())];
    params.extend(parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let caller;
    if !params.iter().any(|(k, _)| *k == "WorkerPrincipalArn") {
        if emulator.is_some() {
            // On an emulator the workers run on the host, as the deploying identity.
            caller = crate::stack::caller_principal_arn(&sts).await.map_err(|e| deploy_error(e, &endpoint, &source))?;
            eprintln!("emulator at {endpoint}: the broker role will trust {caller} (the workers run as you)");
            params.push(("WorkerPrincipalArn", caller.as_str()));
        } else {
            eprintln!(
                "WorkerPrincipalArn not given: the stack creates the roles {0}-access-worker, {0}-directory-worker \
                 and {0}-posture-worker, and the broker role trusts {0}-access-worker only",
                names.prefix()
            );
        }
    }
    let status = crate::stack::deploy_with_progress(&cfn, &names.stack(), &body, &params, timeout, &mut print_event)
        .await
        .map_err(|e| deploy_error(e, &endpoint, &source))?;
    crate::output::emit(&format!("stack {}: {status}\n", names.stack()));
    Ok(0)
}

/// `portcullis stack delete`.
async fn delete(worker_config: Option<&Path>, timeout: Duration, yes: bool) -> Result<u8, CliError> {
    let OperatorSession { settings: s, source, cfn, emulator, .. } = operator_session(worker_config).await?;
    let endpoint = emulator.unwrap_or_else(|| "AWS".into());
    let names = StackNames::new(&s.stack.prefix);
    if !yes {
        return Err(CliError::usage(
            format!("`stack delete` deletes the stack {} at {endpoint}", names.stack()),
            "add --yes to confirm",
        ));
    }
    let status = crate::stack::delete(&cfn, &names.stack(), timeout, &mut print_event)
        .await
        .map_err(|e| deploy_error(e, &endpoint, &source))?;
    crate::output::emit(&format!(
        "stack {}: {status}; kept (DeletionPolicy: Retain): {RETAINED_ON_DELETE}\n",
        names.stack()
    ));
    Ok(0)
}

fn deploy_error(e: DeployError, endpoint: &str, source: &str) -> CliError {
    let text = e.to_string();
    if let DeployError::Timeout { .. } = e {
        return CliError::Timeout {
            message: text,
            hint: "CloudFormation goes on: rerun with a longer --timeout, or watch the stack's events".into(),
        };
    }
    if text.contains("dispatch failure") || text.contains("io error") || text.contains("timeout") {
        return CliError::Unreachable {
            what: "CloudFormation".into(),
            endpoint: endpoint.into(),
            source: source.into(),
            message: text,
            fix: "start the emulator (`make run` does) or fix aws.endpoint_url / AWS_ENDPOINT_URL".into(),
        };
    }
    CliError::local(text)
}
