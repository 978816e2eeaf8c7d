//! Deploying the CloudFormation stack (`infra/cloudformation/portcullis.yaml`) through the
//! CloudFormation API: the same path for moto, LocalStack and AWS.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

use portcullis_runtime::aws::error_message;

/// The template shipped with this build.
pub const TEMPLATE: &str = include_str!("../../infra/cloudformation/portcullis.yaml");

/// A deployment failure.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("CloudFormation {op} failed: {message}")]
    Api { op: &'static str, message: String },
    #[error("stack {stack} ended in {status}: {reason}")]
    Failed { stack: String, status: String, reason: String },
    #[error("stack {stack} still in progress after {timeout:?}")]
    Timeout { stack: String, timeout: Duration },
}

/// The IAM principal ARN of the caller, for the broker role's trust policy: an assumed-role session
/// (`arn:aws:sts::1:assumed-role/Name/session`) becomes its role (`arn:aws:iam::1:role/Name`; a role
/// path is not recoverable from the session ARN, so pass `WorkerPrincipalArn` for a role with one).
pub async fn caller_principal_arn(sts: &aws_sdk_sts::Client) -> Result<String, DeployError> {
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| DeployError::Api { op: "sts:GetCallerIdentity", message: error_message(&e) })?;
    let arn = me.arn.unwrap_or_default();
    principal_from_caller(&arn).ok_or_else(|| DeployError::Api {
        op: "sts:GetCallerIdentity",
        message: format!("cannot derive an IAM principal from {arn}; pass WorkerPrincipalArn"),
    })
}

/// See [`caller_principal_arn`].
pub fn principal_from_caller(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service, _, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if prefix != "arn" || account.len() != 12 {
        return None;
    }
    match (service, resource.split_once('/')) {
        ("iam", Some(("role" | "user", _))) => Some(arn.to_owned()),
        ("sts", Some(("assumed-role", rest))) => {
            let role = rest.split('/').next().filter(|r| !r.is_empty())?;
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        // moto reports an IAM user as `arn:aws:sts::<account>:user/<name>`.
        ("sts", Some(("user", name))) => Some(format!("arn:{partition}:iam::{account}:user/{name}")),
        _ => None,
    }
}

/// Create the stack, or update it when it exists, and wait until it is complete.
pub async fn deploy(
    cfn: &Client,
    stack_name: &str,
    template_body: &str,
    parameters: &[(&str, &str)],
    timeout: Duration,
) -> Result<String, DeployError> {
    let params: Vec<Parameter> =
        parameters.iter().map(|(k, v)| Parameter::builder().parameter_key(*k).parameter_value(*v).build()).collect();
    let created = cfn
        .create_stack()
        .stack_name(stack_name)
        .template_body(template_body)
        .set_parameters(Some(params.clone()))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await;
    if let Err(e) = created {
        let exists = e.as_service_error().is_some_and(|s| s.is_already_exists_exception());
        if !exists {
            return Err(DeployError::Api { op: "CreateStack", message: error_message(&e) });
        }
        let updated = cfn
            .update_stack()
            .stack_name(stack_name)
            .template_body(template_body)
            .set_parameters(Some(params))
            .capabilities(Capability::CapabilityNamedIam)
            .send()
            .await;
        if let Err(e) = updated {
            let message = error_message(&e);
            if message.contains("No updates are to be performed") {
                return Ok("UPDATE_COMPLETE".into());
            }
            return Err(DeployError::Api { op: "UpdateStack", message });
        }
    }
    wait(cfn, stack_name, timeout).await
}

async fn wait(cfn: &Client, stack_name: &str, timeout: Duration) -> Result<String, DeployError> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = cfn
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(|e| DeployError::Api { op: "DescribeStacks", message: error_message(&e) })?;
        let stack = out.stacks.unwrap_or_default().into_iter().next();
        let status = stack.as_ref().and_then(|s| s.stack_status.clone());
        match status {
            Some(StackStatus::CreateComplete) | Some(StackStatus::UpdateComplete) => {
                return Ok(status.map(|s| s.as_str().to_owned()).unwrap_or_default());
            }
            Some(s) if !s.as_str().ends_with("IN_PROGRESS") => {
                return Err(DeployError::Failed {
                    stack: stack_name.to_owned(),
                    status: s.as_str().to_owned(),
                    reason: stack.and_then(|s| s.stack_status_reason).unwrap_or_default(),
                });
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(DeployError::Timeout { stack: stack_name.to_owned(), timeout });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_principal_comes_from_the_caller() {
        let role = "arn:aws:iam::123456789012:role/portcullis-worker";
        assert_eq!(principal_from_caller(role).as_deref(), Some(role));
        assert_eq!(
            principal_from_caller("arn:aws:sts::123456789012:assumed-role/portcullis-worker/task-1").as_deref(),
            Some(role)
        );
        assert_eq!(
            principal_from_caller("arn:aws:sts::123456789012:user/moto").as_deref(),
            Some("arn:aws:iam::123456789012:user/moto")
        );
        assert_eq!(principal_from_caller("arn:aws:iam::123456789012:root"), None);
        assert_eq!(principal_from_caller("nonsense"), None);
    }
}
