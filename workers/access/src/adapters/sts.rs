//! [`CredentialBroker`] over STS `AssumeRole`.
//!
//! The broker role of each account is the ceiling; the session policy narrows it to the requester's
//! live grants. STS refusals that retrying cannot fix become a reply (`policy_too_large`,
//! `broker_refused`); throttling and outages are retried.

use async_trait::async_trait;
use aws_sdk_sts::Client;
use chrono::{DateTime, Utc};
use portcullis_domain::messages::ProcessCredentials;
use portcullis_domain::{ErrorCode, RequestError};
use portcullis_runtime::aws::{FailureKind, SdkFailure, classify};

use crate::ports::{AssumeRequest, BrokerError, CredentialBroker, IssuedCredentials};

/// Calls STS AssumeRole.
#[derive(Debug, Clone)]
pub struct StsBroker {
    sts: Client,
}

impl StsBroker {
    pub fn new(sts: Client) -> Self {
        Self { sts }
    }
}

/// The answer for a failed AssumeRole: a refusal when STS refused the request itself, else
/// unavailable (retried).
fn broker_error(role_arn: &str, failure: SdkFailure) -> BrokerError {
    let code = failure.code.as_deref().unwrap_or("error");
    if code == "PackedPolicyTooLarge" {
        return BrokerError::Refused(RequestError::new(
            ErrorCode::PolicyTooLarge,
            "STS found the packed session policy too large (PackedPolicyTooLarge); let some grants expire or ask \
             for narrower ones",
        ));
    }
    let refused =
        matches!(failure.kind, FailureKind::AccessDenied | FailureKind::Invalid) || code == "RegionDisabledException";
    if refused {
        return BrokerError::Refused(RequestError::new(
            ErrorCode::BrokerRefused,
            format!(
                "STS refused to issue credentials with the broker role {role_arn} ({code}); ask a Portcullis admin to \
                 check the role and its trust policy"
            ),
        ));
    }
    BrokerError::Unavailable(format!("STS AssumeRole on {role_arn}: {}", failure.message))
}

#[async_trait]
impl CredentialBroker for StsBroker {
    async fn assume(&self, req: &AssumeRequest) -> Result<IssuedCredentials, BrokerError> {
        let duration = i32::try_from(req.duration_seconds)
            .map_err(|_| BrokerError::Refused(RequestError::new(ErrorCode::DurationInvalid, "duration is too long")))?;
        let out = self
            .sts
            .assume_role()
            .role_arn(&req.role_arn)
            .role_session_name(&req.session_name)
            .source_identity(&req.source_identity)
            .policy(&req.policy)
            .duration_seconds(duration)
            .send()
            .await
            .map_err(|e| broker_error(&req.role_arn, classify(&e)))?;
        let malformed = |what: &str| BrokerError::Unavailable(format!("STS AssumeRole on {}: {what}", req.role_arn));
        let c = out.credentials.ok_or_else(|| malformed("the response has no credentials"))?;
        let expiration = DateTime::<Utc>::from_timestamp(c.expiration.secs(), 0)
            .ok_or_else(|| malformed("the response has an invalid expiration"))?;
        Ok(IssuedCredentials {
            credentials: ProcessCredentials {
                version: 1,
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
                expiration,
            },
            // Deprecated in the SDK model in favour of SessionTokenUtilization, but still what STS
            // (and the emulators) report, and what operators know.
            #[allow(deprecated)]
            packed_policy_size: out.packed_policy_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts_failing_with(code: &'static str) -> StsBroker {
        use aws_sdk_sts::operation::assume_role::AssumeRoleError;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let rule = mock!(Client::assume_role).then_error(move || {
            AssumeRoleError::generic(aws_sdk_sts::error::ErrorMetadata::builder().code(code).message("no").build())
        });
        StsBroker::new(mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]))
    }

    #[tokio::test]
    async fn sts_refusals_are_permanent_and_outages_are_not() {
        let request = AssumeRequest {
            role_arn: "arn:aws:iam::123456789012:role/broker".into(),
            session_name: "alice".into(),
            source_identity: "alice".into(),
            policy: "{}".into(),
            duration_seconds: 900,
        };
        let cases = [
            ("PackedPolicyTooLarge", Some(ErrorCode::PolicyTooLarge)),
            ("AccessDenied", Some(ErrorCode::BrokerRefused)),
            ("MalformedPolicyDocument", Some(ErrorCode::BrokerRefused)),
            ("RegionDisabledException", Some(ErrorCode::BrokerRefused)),
            ("ValidationError", Some(ErrorCode::BrokerRefused)),
            ("Throttling", None),
            ("InternalFailure", None),
        ];
        for (code, expected) in cases {
            let err = sts_failing_with(code).assume(&request).await.unwrap_err();
            let got = match &err {
                BrokerError::Refused(r) => Some(r.code),
                BrokerError::Unavailable(why) => {
                    assert!(why.contains(code), "{why}");
                    None
                }
            };
            assert_eq!(got, expected, "{code}");
        }
        let BrokerError::Refused(refusal) = sts_failing_with("AccessDenied").assume(&request).await.unwrap_err() else {
            panic!("refused")
        };
        assert!(refusal.message.contains("role/broker") && refusal.message.contains("AccessDenied"), "{refusal}");
    }
}
