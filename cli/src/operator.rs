//! Operator and development commands: deploying the stack and the local development issuer. These
//! read the *workers'* settings (`$PORTCULLIS_CONFIG` or `--worker-config`, else the embedded
//! default), and `stack deploy` needs AWS credentials of an operator; the everyday commands need
//! neither.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use portcullis_domain::naming::StackNames;
use portcullis_runtime::config::Settings;

use crate::dev_issuer as dev;
use crate::error::CliError;

fn settings(path: Option<&Path>) -> Result<(Settings, String), CliError> {
    let (settings, source) = match path {
        Some(p) => (Settings::load_from(Some(p)), p.display().to_string()),
        None => match std::env::var_os("PORTCULLIS_CONFIG") {
            Some(p) => (Settings::load(), format!("PORTCULLIS_CONFIG={}", PathBuf::from(p).display())),
            None => (Settings::load(), "the embedded default settings (config/local.toml)".to_owned()),
        },
    };
    Ok((settings.map_err(|e| CliError::local_hint(e.to_string(), "fix the workers' settings file"))?, source))
}

/// `portcullis stack deploy`.
pub async fn stack_deploy(
    template: Option<&Path>,
    parameters: &[(String, String)],
    worker_config: Option<&Path>,
) -> Result<u8, CliError> {
    let (s, source) = settings(worker_config)?;
    let sdk = portcullis_runtime::aws::sdk_config(&s.aws).await;
    let endpoint =
        s.aws.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()).unwrap_or_else(|| "AWS".into());
    // Deploying needs an operator's AWS credentials: say so before CloudFormation does, less clearly.
    let has_credentials = match sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await.is_ok(),
        None => false,
    };
    if !has_credentials {
        return Err(CliError::local_hint(
            format!("no AWS credentials found to deploy the stack to {endpoint} (endpoint from {source})"),
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for an operator (for the local emulator: \
             export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)",
        ));
    }
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let body = match template {
        Some(p) => std::fs::read_to_string(p).map_err(|e| CliError::local(format!("reading {}: {e}", p.display())))?,
        None => crate::stack::TEMPLATE.to_owned(),
    };
    let names = StackNames::new(&s.stack.prefix);
    let mut params: Vec<(&str, &str)> = vec![("Prefix", names.prefix())];
    params.extend(parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let caller;
    if !params.iter().any(|(k, _)| *k == "WorkerPrincipalArn") {
        caller = crate::stack::caller_principal_arn(&aws_sdk_sts::Client::new(&sdk))
            .await
            .map_err(|e| deploy_error(e, &endpoint, &source))?;
        eprintln!("WorkerPrincipalArn not given: the broker role will trust {caller}");
        params.push(("WorkerPrincipalArn", caller.as_str()));
    }
    let status = crate::stack::deploy(&cfn, &names.stack(), &body, &params, Duration::from_secs(600))
        .await
        .map_err(|e| deploy_error(e, &endpoint, &source))?;
    crate::output::emit(&format!("stack {}: {status}\n", names.stack()));
    Ok(0)
}

fn deploy_error(e: crate::stack::DeployError, endpoint: &str, source: &str) -> CliError {
    let text = e.to_string();
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

/// `portcullis dev-issuer init`.
pub fn dev_issuer_init(dir: &Path) -> Result<u8, CliError> {
    let jwks = dev::init(dir).map_err(|e| CliError::local(e.to_string()))?;
    crate::output::emit(&format!("{}\n", jwks.display()));
    Ok(0)
}

/// `portcullis dev-token`.
pub fn dev_token(
    user: &str,
    team: Option<&str>,
    groups: &[String],
    ttl: u64,
    dir: &Path,
    worker_config: Option<&Path>,
) -> Result<u8, CliError> {
    let (s, _) = settings(worker_config)?;
    let token = dev::mint(
        dir,
        &dev::DevClaims {
            issuer: s.identity.issuer.clone(),
            audience: s.identity.audience.clone(),
            user: user.to_owned(),
            team: team.map(str::to_owned),
            groups: groups.to_vec(),
            ttl: Duration::from_secs(ttl),
            issued_at: None,
        },
    )
    .map_err(|e| CliError::local(e.to_string()))?;
    crate::output::emit(&format!("{token}\n"));
    Ok(0)
}
