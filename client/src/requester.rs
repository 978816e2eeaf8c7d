//! The reply-queue binding: reaching the access queue with nothing but a person's ID token.
//!
//! A person assumes the stack's requester role with STS `AssumeRoleWithWebIdentity` (an unsigned
//! call: no AWS credentials on the laptop), then sends requests on the access-requests queue and
//! reads replies from their own reply queue, `<prefix>-reply-<sub>`, created on first use and kept.
//! The role's IAM policy names that queue with the policy variable `${<issuer>:sub}`, and the worker
//! checks the same binding, so nobody reads another person's replies. What is worth caching (the
//! role's credentials until they expire, the two URLs) is the caller's to keep: the CLI keeps them
//! in a private file.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::{DateTime, Utc};
use portcullis_domain::AccountId;
use portcullis_domain::naming::StackNames;
use portcullis_domain::reply_policy::{ReplyQueueNameError, own_reply_queue_name};
use portcullis_domain::session::sts_name_for;

use crate::client::create_reply_queue;
use crate::error::AwsError;

/// How long replies stay on a person's reply queue (a reply nobody took in an hour is nobody's).
pub const REPLY_RETENTION_SECONDS: u32 = 3600;

/// The requester role's temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// Why a person has no reply queue.
#[derive(Debug, thiserror::Error)]
pub enum ReplyQueueError {
    /// Their `sub` cannot name an SQS queue (see `portcullis_domain::reply_policy`).
    #[error(transparent)]
    Name(#[from] ReplyQueueNameError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The SDK configuration of a person's machine: the stack's region, one endpoint for every service
/// (emulators), the requester role's credentials or none at all, two attempts per call, and short
/// timeouts so that an unreachable endpoint is said within seconds.
pub async fn sdk_config(region: &str, endpoint: Option<&str>, credentials: Option<&RoleCredentials>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(25))
                .build(),
        );
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader = match credentials {
        Some(c) => loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            Some(c.session_token.clone()),
            None,
            "portcullis-requester",
        )),
        None => loader.no_credentials(),
    };
    loader.load().await
}

/// Assume the requester role `role_arn` with `id_token` (whose `sub` is `subject`) for
/// `duration_seconds`. `sdk` needs no credentials: the call is unsigned.
pub async fn assume_requester_role(
    sdk: &SdkConfig,
    role_arn: &str,
    subject: &str,
    id_token: &str,
    duration_seconds: i32,
) -> Result<RoleCredentials, AwsError> {
    const OP: &str = "AssumeRoleWithWebIdentity";
    let out = aws_sdk_sts::Client::new(sdk)
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(sts_name_for(subject))
        .web_identity_token(id_token)
        .duration_seconds(duration_seconds)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("STS", OP, &e))?;
    let c = out.credentials.ok_or_else(|| AwsError::missing("STS", OP, "credentials"))?;
    let expiration = DateTime::<Utc>::from_timestamp(c.expiration.secs(), 0).unwrap_or_else(Utc::now);
    Ok(RoleCredentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expiration,
    })
}

/// The URL of the stack's access-requests queue in `stack_account`.
pub async fn request_queue_url(
    sqs: &aws_sdk_sqs::Client,
    names: &StackNames,
    stack_account: &AccountId,
) -> Result<String, AwsError> {
    const OP: &str = "GetQueueUrl";
    sqs.get_queue_url()
        .queue_name(names.access_queue())
        .queue_owner_aws_account_id(stack_account.as_str())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SQS", OP, &e))?
        .queue_url
        .ok_or_else(|| AwsError::missing("SQS", OP, "queue URL"))
}

/// The person's own reply queue, `<prefix>-reply-<subject>`, created if it does not exist yet.
pub async fn own_reply_queue(
    sqs: &aws_sdk_sqs::Client,
    names: &StackNames,
    subject: &str,
) -> Result<String, ReplyQueueError> {
    let name = own_reply_queue_name(&names.reply_queue_prefix(), subject)?;
    Ok(create_reply_queue(sqs, &name, REPLY_RETENTION_SECONDS).await?)
}
