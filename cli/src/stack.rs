//! Deploying and deleting the CloudFormation stack (`infra/cloudformation/portcullis.yaml`) through the
//! CloudFormation API: the same path for moto, LocalStack and AWS.
//!
//! Progress comes from the stack's events, reported as they appear; the wait is bounded by the caller's
//! timeout, and a stack that rolls back is reported with the first resource that failed and CloudFormation's
//! reason for it. The polling is ours rather than the SDK's waiters: those poll every 30 s (a deploy to an
//! emulator finishes in one), report no events, and the model's `StackCreateComplete` waiter accepts
//! `UPDATE_FAILED` as success.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::client::Waiters;
use aws_sdk_cloudformation::types::{Capability, Parameter};

use portcullis_runtime::aws::error_message;

/// The template shipped with this build.
pub const TEMPLATE: &str = include_str!("../../infra/cloudformation/portcullis.yaml");

/// What `DeletionPolicy: Retain` keeps when the stack is deleted (`stack delete` says so).
pub const RETAINED_ON_DELETE: &str = "the state table (grants, approvals, evidence), the bus archive and the queues \
                                      with their dead-letter queues";

/// A deployment failure.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("CloudFormation {op} failed: {message}")]
    Api { op: &'static str, message: String },
    #[error("stack {stack} ended in {status}: {reason}")]
    Failed { stack: String, status: String, reason: String },
    #[error("stack {stack} still in progress after {timeout:?} (CloudFormation goes on; see its events)")]
    Timeout { stack: String, timeout: Duration },
}

/// One stack event, as reported while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub id: String,
    /// `2026-12-02T20:15:39Z`, as CloudFormation gives it.
    pub timestamp: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl std::fmt::Display for StackEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:<40} {:<28} {}", self.timestamp, self.logical_id, self.resource_type, self.status)?;
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// Where a stack operation stands, from the stack's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Running,
    Done,
    Failed,
}

/// What is being waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Deploy,
    Delete,
}

/// Where `operation` stands when the stack's status is `status`. A rollback that completes is a failure of
/// the deployment; `None` (no such stack) finishes a delete.
pub fn progress(operation: Operation, status: Option<&str>) -> Progress {
    match (operation, status) {
        (Operation::Delete, None | Some("DELETE_COMPLETE")) => Progress::Done,
        (Operation::Deploy, Some("CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE")) => Progress::Done,
        // UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: the update is done; CloudFormation is removing what it replaced.
        (Operation::Deploy, Some("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")) => Progress::Done,
        (_, Some(s)) if s.ends_with("_IN_PROGRESS") => Progress::Running,
        _ => Progress::Failed,
    }
}

/// The first resource that failed among `events` (oldest first) and why: what an operator needs from a
/// rollback. Cancellations caused by that first failure are skipped.
pub fn failure_reason(events: &[StackEvent]) -> Option<String> {
    events
        .iter()
        .filter(|e| e.status.ends_with("_FAILED"))
        .find(|e| !e.reason.as_deref().is_some_and(|r| r.contains("Resource creation cancelled")))
        .or_else(|| events.iter().find(|e| e.status.ends_with("_FAILED")))
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_id,
                e.resource_type,
                e.status,
                e.reason.as_deref().unwrap_or("no reason given")
            )
        })
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

/// Create the stack, or update it when it exists, and wait until it is complete (quietly).
pub async fn deploy(
    cfn: &Client,
    stack_name: &str,
    template_body: &str,
    parameters: &[(&str, &str)],
    timeout: Duration,
) -> Result<String, DeployError> {
    deploy_with_progress(cfn, stack_name, template_body, parameters, timeout, &mut |_| {}).await
}

/// [`deploy`], calling `on_event` with each stack event of this deployment as it appears.
pub async fn deploy_with_progress(
    cfn: &Client,
    stack_name: &str,
    template_body: &str,
    parameters: &[(&str, &str)],
    timeout: Duration,
    on_event: &mut (dyn FnMut(&StackEvent) + Send),
) -> Result<String, DeployError> {
    let params: Vec<Parameter> =
        parameters.iter().map(|(k, v)| Parameter::builder().parameter_key(*k).parameter_value(*v).build()).collect();
    // Events from earlier operations are not this deployment's.
    let mut seen = event_ids(cfn, stack_name).await;
    let created = cfn
        .create_stack()
        .stack_name(stack_name)
        .template_body(template_body)
        .set_parameters(Some(params.clone()))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await;
    let mut waiter = Waiter::Create;
    if let Err(e) = created {
        waiter = Waiter::Update;
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
    wait(cfn, stack_name, waiter, timeout, &mut seen, on_event).await
}

/// Delete the stack and wait until it is gone. What `DeletionPolicy: Retain` protects stays
/// ([`RETAINED_ON_DELETE`]). Deleting a stack that does not exist succeeds.
pub async fn delete(
    cfn: &Client,
    stack_name: &str,
    timeout: Duration,
    on_event: &mut (dyn FnMut(&StackEvent) + Send),
) -> Result<String, DeployError> {
    let mut seen = event_ids(cfn, stack_name).await;
    cfn.delete_stack()
        .stack_name(stack_name)
        .send()
        .await
        .map_err(|e| DeployError::Api { op: "DeleteStack", message: error_message(&e) })?;
    wait(cfn, stack_name, Waiter::Delete, timeout, &mut seen, on_event).await
}

/// The stack's status; `None` when there is no such stack (deleted stacks are not found by name).
async fn stack_status(cfn: &Client, stack_name: &str) -> Result<Option<(String, Option<String>)>, DeployError> {
    match cfn.describe_stacks().stack_name(stack_name).send().await {
        Ok(out) => Ok(out
            .stacks
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|s| s.stack_status.map(|st| (st.as_str().to_owned(), s.stack_status_reason)))),
        Err(e) => {
            let message = error_message(&e);
            if message.contains("does not exist") {
                return Ok(None);
            }
            Err(DeployError::Api { op: "DescribeStacks", message })
        }
    }
}

/// The ids of the stack's events so far (none when it does not exist yet).
async fn event_ids(cfn: &Client, stack_name: &str) -> HashSet<String> {
    stack_events(cfn, stack_name).await.unwrap_or_default().into_iter().map(|e| e.id).collect()
}

/// The stack's latest events (one page), oldest first.
async fn stack_events(cfn: &Client, stack_name: &str) -> Result<Vec<StackEvent>, DeployError> {
    let out = cfn
        .describe_stack_events()
        .stack_name(stack_name)
        .send()
        .await
        .map_err(|e| DeployError::Api { op: "DescribeStackEvents", message: error_message(&e) })?;
    let mut events: Vec<StackEvent> = out
        .stack_events
        .unwrap_or_default()
        .into_iter()
        .map(|e| StackEvent {
            id: e.event_id.unwrap_or_default(),
            timestamp: e
                .timestamp
                .and_then(|t| t.fmt(aws_sdk_cloudformation::primitives::DateTimeFormat::DateTime).ok())
                .unwrap_or_default(),
            logical_id: e.logical_resource_id.unwrap_or_default(),
            resource_type: e.resource_type.unwrap_or_default(),
            status: e.resource_status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            reason: e.resource_status_reason.filter(|r| !r.is_empty()),
        })
        .collect();
    events.reverse();
    Ok(events)
}

/// Which of the SDK's CloudFormation waiters decides when an operation has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    Create,
    Update,
    Delete,
}

impl Waiter {
    fn operation(self) -> Operation {
        match self {
            Waiter::Create | Waiter::Update => Operation::Deploy,
            Waiter::Delete => Operation::Delete,
        }
    }
}

/// Wait with the SDK's waiter (`StackCreateComplete`, `StackUpdateComplete`, `StackDeleteComplete`)
/// for at most `timeout`, reporting the stack's new events as they appear (every second at first,
/// backing off to every 10 s). When the waiter ends, the stack's status says how: done, or failed with
/// the first failing resource's reason.
async fn wait(
    cfn: &Client,
    stack_name: &str,
    waiter: Waiter,
    timeout: Duration,
    seen: &mut HashSet<String>,
    on_event: &mut (dyn FnMut(&StackEvent) + Send),
) -> Result<String, DeployError> {
    let waited = async {
        match waiter {
            Waiter::Create => {
                cfn.wait_until_stack_create_complete().stack_name(stack_name).wait(timeout).await.map(|_| ())
            }
            Waiter::Update => {
                cfn.wait_until_stack_update_complete().stack_name(stack_name).wait(timeout).await.map(|_| ())
            }
            Waiter::Delete => {
                cfn.wait_until_stack_delete_complete().stack_name(stack_name).wait(timeout).await.map(|_| ())
            }
        }
    };
    tokio::pin!(waited);
    let mut this_operation: Vec<StackEvent> = Vec::new();
    let mut report = |this_operation: &mut Vec<StackEvent>, events: Vec<StackEvent>| {
        for e in events {
            if seen.insert(e.id.clone()) {
                on_event(&e);
                this_operation.push(e);
            }
        }
    };
    let mut pause = Duration::from_secs(1);
    let outcome = loop {
        tokio::select! {
            outcome = &mut waited => break outcome,
            _ = tokio::time::sleep(pause) => {
                // Events are best effort (a deleted stack has none to list); the waiter decides.
                report(&mut this_operation, stack_events(cfn, stack_name).await.unwrap_or_default());
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    };
    report(&mut this_operation, stack_events(cfn, stack_name).await.unwrap_or_default());
    use aws_smithy_runtime_api::client::waiters::error::WaiterError;
    match outcome {
        Ok(()) | Err(WaiterError::FailureState(_)) => {}
        Err(WaiterError::ExceededMaxWait(_)) => {
            return Err(DeployError::Timeout { stack: stack_name.to_owned(), timeout });
        }
        Err(WaiterError::OperationFailed(e)) => {
            return Err(DeployError::Api { op: "DescribeStacks", message: error_message(e.error()) });
        }
        Err(e) => return Err(DeployError::Api { op: "DescribeStacks", message: e.to_string() }),
    }
    // The waiter ended in success or in a failure state: the status says which, and why.
    let status = stack_status(cfn, stack_name).await?;
    let name = status.as_ref().map(|(s, _)| s.as_str());
    match progress(waiter.operation(), name) {
        Progress::Done => Ok(name.unwrap_or("DELETE_COMPLETE").to_owned()),
        Progress::Failed | Progress::Running => {
            let (status, stack_reason) = status.unwrap_or_default();
            let reason = failure_reason(&this_operation)
                .or(stack_reason)
                .unwrap_or_else(|| "CloudFormation gave no reason; see the stack's events".into());
            Err(DeployError::Failed { stack: stack_name.to_owned(), status, reason })
        }
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

    #[test]
    fn a_rollback_is_a_failed_deployment_and_a_missing_stack_a_finished_delete() {
        use Operation::*;
        assert_eq!(progress(Deploy, Some("CREATE_COMPLETE")), Progress::Done);
        assert_eq!(progress(Deploy, Some("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")), Progress::Done);
        assert_eq!(progress(Deploy, Some("CREATE_IN_PROGRESS")), Progress::Running);
        assert_eq!(progress(Deploy, Some("ROLLBACK_IN_PROGRESS")), Progress::Running);
        assert_eq!(progress(Deploy, Some("ROLLBACK_COMPLETE")), Progress::Failed);
        assert_eq!(progress(Deploy, Some("UPDATE_ROLLBACK_COMPLETE")), Progress::Failed);
        assert_eq!(progress(Deploy, Some("CREATE_FAILED")), Progress::Failed);
        assert_eq!(progress(Deploy, None), Progress::Failed);
        assert_eq!(progress(Delete, None), Progress::Done);
        assert_eq!(progress(Delete, Some("DELETE_COMPLETE")), Progress::Done);
        assert_eq!(progress(Delete, Some("DELETE_IN_PROGRESS")), Progress::Running);
        assert_eq!(progress(Delete, Some("DELETE_FAILED")), Progress::Failed);
    }

    #[test]
    fn the_first_failed_resource_is_the_reason_not_the_cancellations_it_caused() {
        let event = |id: &str, status: &str, reason: Option<&str>| StackEvent {
            id: id.into(),
            timestamp: "2026-12-02T20:00:00Z".into(),
            logical_id: id.into(),
            resource_type: "AWS::IAM::Role".into(),
            status: status.into(),
            reason: reason.map(str::to_owned),
        };
        let events = [
            event("Stack", "CREATE_IN_PROGRESS", Some("User Initiated")),
            event("StateTable", "CREATE_FAILED", Some("Resource creation cancelled")),
            event("AccessWorkerRole", "CREATE_FAILED", Some("Access denied for iam:CreateRole")),
            event("Stack", "ROLLBACK_COMPLETE", None),
        ];
        assert_eq!(
            failure_reason(&events).as_deref(),
            Some("AccessWorkerRole (AWS::IAM::Role) CREATE_FAILED: Access denied for iam:CreateRole")
        );
        assert_eq!(failure_reason(&events[..1]), None);
        let line = events[2].to_string();
        assert!(line.contains("AccessWorkerRole") && line.ends_with("Access denied for iam:CreateRole"), "{line}");
    }
}
