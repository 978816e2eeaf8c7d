//! Deploying the CloudFormation stack (`infra/cloudformation/portcullis.yaml`) through the
//! CloudFormation API: the same path for moto, LocalStack and AWS.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

use crate::store::aws_error_message;

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
            return Err(DeployError::Api { op: "CreateStack", message: aws_error_message(&e) });
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
            let message = aws_error_message(&e);
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
            .map_err(|e| DeployError::Api { op: "DescribeStacks", message: aws_error_message(&e) })?;
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
