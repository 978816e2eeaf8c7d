//! AWS SDK configuration, the one classification of SDK errors, and an interceptor that counts API
//! calls.
//!
//! Endpoints come only from configuration (`aws.endpoint_url`) or the SDK's own `AWS_ENDPOINT_URL`,
//! so the same binary runs against moto, LocalStack and real AWS.
//!
//! Every adapter turns an SDK error into an [`SdkFailure`] with [`classify`], and decides from its
//! [`FailureKind`] whether to retry (throttling, outages) or give up (access denied, an invalid
//! request): one place says what each AWS error means.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use portcullis_domain::ErrorCode;

use crate::config::AwsSettings;

/// What kind of failure an AWS call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The caller may not do this (`AccessDenied*`, `Unauthorized*`, HTTP 403).
    AccessDenied,
    /// AWS asked to slow down (`Throttling*`, `TooManyRequests*`, `*LimitExceeded`, HTTP 429).
    Throttled,
    /// The endpoint does not implement the operation (HTTP 501, `NotImplemented`, `UnknownOperation`,
    /// `InvalidAction`, or a bare 404 as emulators give).
    Unsupported,
    /// The named resource does not exist (`*NotFound*`, `NoSuchEntity`, `NonExistentQueue`,
    /// `QueueDoesNotExist`).
    NotFound,
    /// The service refused the request itself (`ValidationException`, `MalformedPolicyDocument`,
    /// `InvalidParameter*`, `*TooLarge`): the same request can never succeed.
    Invalid,
    /// A conditional write found its condition false (`ConditionalCheckFailedException`).
    ConditionFailed,
    /// Anything else: a 5xx, a timeout, a connection error, an unreadable response. Worth retrying.
    Transient,
}

impl FailureKind {
    /// Whether sending the same request again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, FailureKind::Throttled | FailureKind::Transient)
    }

    /// The code a posture result that could not be measured carries.
    pub fn measurement_code(self) -> ErrorCode {
        match self {
            FailureKind::AccessDenied => ErrorCode::AccessDenied,
            FailureKind::Throttled => ErrorCode::Throttled,
            FailureKind::Unsupported => ErrorCode::Unsupported,
            FailureKind::NotFound => ErrorCode::NotFound,
            FailureKind::Invalid | FailureKind::ConditionFailed | FailureKind::Transient => ErrorCode::ReadFailed,
        }
    }
}

/// A classified SDK error: its kind, the service's error code when it sent one, and one readable line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SdkFailure {
    pub kind: FailureKind,
    pub code: Option<String>,
    pub message: String,
}

impl SdkFailure {
    /// A failure of `kind` that no service code came with (a client-side check, a fake).
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, code: None, message: message.into() }
    }

    /// The same failure with `context` (the call and its target) in front of the message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// Classify an SDK error. The one place that says which AWS errors are worth retrying.
pub fn classify<E>(e: &SdkError<E, HttpResponse>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().filter(|c| !c.is_empty()).map(str::to_owned);
    let lower = code.as_deref().unwrap_or_default().to_ascii_lowercase();
    let message = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => error_message(e),
    };
    let kind = if lower.contains("accessdenied") || lower.contains("unauthorized") || status == Some(403) {
        FailureKind::AccessDenied
    } else if lower.contains("throttl")
        || lower.contains("toomanyrequests")
        || lower.contains("limitexceeded")
        || lower.contains("throughputexceeded")
        || lower == "slowdown"
        || status == Some(429)
    {
        FailureKind::Throttled
    } else if (status == Some(404) && code.is_none())
        || status == Some(501)
        || lower.contains("notimplemented")
        || lower.contains("unknownoperation")
        || lower.contains("invalidaction")
    {
        FailureKind::Unsupported
    } else if lower.contains("notfound")
        || lower.contains("nosuchentity")
        || lower.contains("nonexistent")
        || lower.contains("doesnotexist")
    {
        FailureKind::NotFound
    } else if lower.contains("conditionalcheckfailed") {
        FailureKind::ConditionFailed
    } else if lower.contains("validation")
        || lower.contains("malformed")
        || lower.starts_with("invalid")
        || lower.contains("toolarge")
    {
        FailureKind::Invalid
    } else {
        FailureKind::Transient
    };
    SdkFailure { kind, code, message }
}

/// A readable one-line message from an SDK error (code and message when the service sent them, and
/// the chain of causes).
pub fn error_message<E: std::error::Error + 'static, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Region used when neither the configuration nor the environment names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Load the SDK configuration: default credential chain, the configured (or default) region, and
/// the configured endpoint override if any.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let region = match &settings.region {
        Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
        None => RegionProviderChain::default_provider().or_else(Region::new(FALLBACK_REGION)),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// `sdk` with the credentials of `role_arn`, assumed (and refreshed) through STS as `session_name`:
/// for reaching another account.
pub async fn assumed_role_config(sdk: &SdkConfig, role_arn: &str, session_name: &str) -> SdkConfig {
    let provider =
        aws_config::sts::AssumeRoleProvider::builder(role_arn).session_name(session_name).configure(sdk).build().await;
    sdk.to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
        .build()
}

/// Counts every HTTP attempt made by the clients it is attached to, per `Service.Operation`.
#[derive(Debug, Clone, Default)]
pub struct ApiCallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl ApiCallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls per `Service.Operation`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }
}

impl Intercept for ApiCallCounter {
    fn name(&self) -> &'static str {
        "ApiCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key =
            cfg.load::<Metadata>().map(|m| format!("{}.{}", m.service(), m.name())).unwrap_or_else(|| "unknown".into());
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::send_message::SendMessageError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<SendMessageError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(SendMessageError::generic(meta), raw)
    }

    #[test]
    fn every_kind_of_aws_error_is_classified_once() {
        for (code, status, kind) in [
            ("AccessDeniedException", 400, FailureKind::AccessDenied),
            ("AccessDenied", 403, FailureKind::AccessDenied),
            ("UnauthorizedOperation", 400, FailureKind::AccessDenied),
            ("ThrottlingException", 400, FailureKind::Throttled),
            ("Throttling", 400, FailureKind::Throttled),
            ("RequestLimitExceeded", 400, FailureKind::Throttled),
            ("ProvisionedThroughputExceededException", 400, FailureKind::Throttled),
            ("SomethingNew", 400, FailureKind::Transient),
            ("NotImplemented", 501, FailureKind::Unsupported),
            ("InvalidAction", 400, FailureKind::Unsupported),
            ("ResourceNotFoundException", 400, FailureKind::NotFound),
            ("NoSuchEntity", 404, FailureKind::NotFound),
            ("AWS.SimpleQueueService.NonExistentQueue", 400, FailureKind::NotFound),
            ("QueueDoesNotExist", 400, FailureKind::NotFound),
            ("ConditionalCheckFailedException", 400, FailureKind::ConditionFailed),
            ("ValidationException", 400, FailureKind::Invalid),
            ("MalformedPolicyDocument", 400, FailureKind::Invalid),
            ("InvalidParameterValue", 400, FailureKind::Invalid),
            ("PackedPolicyTooLarge", 400, FailureKind::Invalid),
            ("InternalFailure", 500, FailureKind::Transient),
            ("ServiceUnavailable", 503, FailureKind::Transient),
        ] {
            let f = classify(&service_error(code, status));
            assert_eq!(f.kind, kind, "{code}");
            assert_eq!(f.code.as_deref(), Some(code));
            assert!(f.message.contains(code), "{}", f.message);
        }
        assert!(FailureKind::Transient.is_retryable() && FailureKind::Throttled.is_retryable());
        assert!(!FailureKind::AccessDenied.is_retryable() && !FailureKind::Invalid.is_retryable());
        assert_eq!(FailureKind::Transient.measurement_code(), ErrorCode::ReadFailed);
    }

    #[test]
    fn a_bare_404_is_an_unsupported_api_and_a_timeout_is_transient() {
        let raw = HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::from("<html>Not Found</html>"));
        let e: SdkError<SendMessageError, HttpResponse> =
            SdkError::service_error(SendMessageError::generic(ErrorMetadata::builder().build()), raw);
        assert_eq!(classify(&e).kind, FailureKind::Unsupported);
        let timeout: SdkError<SendMessageError, HttpResponse> = SdkError::timeout_error("took too long");
        assert_eq!(classify(&timeout).kind, FailureKind::Transient);
    }
}
