//! The STS adapter: a session policy in, temporary credentials out.
//!
//! The broker role of each account is the ceiling; the session policy narrows it to the requester's
//! live grants. `RoleSessionName` and `SourceIdentity` both carry the user (sanitised to STS's
//! character set), so CloudTrail ties every call made with the credentials to a person.

use aws_sdk_sts::Client;
use aws_sdk_sts::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::error::{ErrorCode, RequestError};
use crate::messages::ProcessCredentials;
use crate::store::aws_error_message;

/// STS's shortest session.
pub const MIN_SESSION_SECONDS: u64 = 900;
/// STS's longest session (the role's maximum may be lower).
pub const MAX_SESSION_SECONDS: u64 = 43_200;

/// What to ask STS for.
#[derive(Debug, Clone)]
pub struct AssumeRequest {
    pub role_arn: String,
    pub session_name: String,
    pub source_identity: String,
    pub policy: String,
    pub duration_seconds: u64,
}

/// What STS gave.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub credentials: ProcessCredentials,
    pub packed_policy_size: Option<i32>,
}

/// An STS failure, with STS's error code when it sent one.
#[derive(Debug, thiserror::Error)]
#[error("STS AssumeRole on {role_arn} failed: {message}")]
pub struct BrokerError {
    pub role_arn: String,
    pub code: Option<String>,
    pub message: String,
}

impl BrokerError {
    /// The answer for the requester when STS refused the request itself, so that sending it again
    /// cannot help; `None` when the failure may pass (throttling, a network error, an outage).
    pub fn permanent(&self) -> Option<RequestError> {
        match self.code.as_deref()? {
            "PackedPolicyTooLarge" => Some(RequestError::new(
                ErrorCode::PolicyTooLarge,
                "STS found the packed session policy too large (PackedPolicyTooLarge); let some grants expire \
                 or ask for narrower ones",
            )),
            code @ ("AccessDenied" | "MalformedPolicyDocument" | "RegionDisabledException" | "ValidationError") => {
                Some(RequestError::new(
                    ErrorCode::BrokerRefused,
                    format!(
                        "STS refused to issue credentials with the broker role {} ({code}); ask a Portcullis admin \
                         to check the role and its trust policy",
                        self.role_arn
                    ),
                ))
            }
            _ => None,
        }
    }
}

/// Calls STS AssumeRole.
#[derive(Debug, Clone)]
pub struct CredentialBroker {
    sts: Client,
}

impl CredentialBroker {
    pub fn new(sts: Client) -> Self {
        Self { sts }
    }

    pub async fn assume(&self, req: &AssumeRequest) -> Result<IssuedCredentials, BrokerError> {
        let err = |code: Option<&str>, message: String| BrokerError {
            role_arn: req.role_arn.clone(),
            code: code.map(str::to_owned),
            message,
        };
        let out = self
            .sts
            .assume_role()
            .role_arn(&req.role_arn)
            .role_session_name(&req.session_name)
            .source_identity(&req.source_identity)
            .policy(&req.policy)
            .duration_seconds(i32::try_from(req.duration_seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| err(e.code(), aws_error_message(&e)))?;
        let c = out.credentials.ok_or_else(|| err(None, "the response has no credentials".into()))?;
        let expiration = DateTime::<Utc>::from_timestamp(c.expiration.secs(), 0)
            .ok_or_else(|| err(None, "the response has an invalid expiration".into()))?;
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

/// A name STS accepts for `RoleSessionName` and `SourceIdentity`: 2–64 of `[A-Za-z0-9_+=,.@-]`.
/// When the user name had to be changed (other characters, too long or too short), a short hash of
/// the original is appended so two different users never share a session name.
pub fn sts_name_for(user: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let mut clean: String = user.chars().map(|c| if allowed(c) { c } else { '-' }).collect();
    if clean.to_ascii_lowercase().starts_with("aws:") {
        clean.insert(0, 'u');
    }
    if clean == user && (2..=64).contains(&clean.len()) {
        return clean;
    }
    let hash = fnv1a(user.as_bytes());
    let suffix = format!(".{hash:016x}");
    clean.truncate(64 - suffix.len());
    clean.push_str(&suffix);
    clean
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The session length: the requested duration (default: until the latest grant expires), never past
/// the latest grant's expiry, never above the role's or the configured maximum, and never below STS's
/// 900-second minimum (each statement's own `aws:CurrentTime` condition still ends its access on
/// time when the grant expires sooner).
pub fn session_duration(
    requested: Option<u64>,
    now: DateTime<Utc>,
    latest_expiry: DateTime<Utc>,
    role_max: u64,
    configured_max: u64,
) -> Result<u64, RequestError> {
    if let Some(r) = requested
        && !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&r)
    {
        return Err(RequestError::new(
            ErrorCode::DurationInvalid,
            format!("duration must be between {MIN_SESSION_SECONDS} and {MAX_SESSION_SECONDS} seconds"),
        ));
    }
    let until_expiry = u64::try_from((latest_expiry - now).num_seconds()).unwrap_or(0);
    let ceiling = role_max.min(configured_max).min(MAX_SESSION_SECONDS);
    let wanted = requested.unwrap_or(until_expiry);
    Ok(wanted.min(until_expiry).min(ceiling).max(MIN_SESSION_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn sts_names() {
        assert_eq!(sts_name_for("alice"), "alice");
        assert_eq!(sts_name_for("alice@example.com"), "alice@example.com");
        let spaced = sts_name_for("alice smith");
        assert!(spaced.starts_with("alice-smith."), "{spaced}");
        assert_ne!(spaced, sts_name_for("alice-smith"));
        let long = sts_name_for(&"x".repeat(100));
        assert_eq!(long.len(), 64);
        assert_eq!(sts_name_for("a").len(), 18);
        assert!(!sts_name_for("aws:root").to_ascii_lowercase().starts_with("aws:"));
        for name in [sts_name_for("Zoë/../x"), sts_name_for("a"), long] {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)), "{name}");
            assert!((2..=64).contains(&name.len()));
        }
    }

    fn sts_failing_with(code: &'static str) -> CredentialBroker {
        use aws_sdk_sts::operation::assume_role::AssumeRoleError;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let rule = mock!(Client::assume_role).then_error(move || {
            AssumeRoleError::generic(aws_sdk_sts::error::ErrorMetadata::builder().code(code).message("no").build())
        });
        CredentialBroker::new(mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]))
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
            ("Throttling", None),
            ("InternalFailure", None),
        ];
        for (code, expected) in cases {
            let err = sts_failing_with(code).assume(&request).await.unwrap_err();
            assert_eq!(err.code.as_deref(), Some(code));
            assert_eq!(err.permanent().map(|e| e.code), expected, "{code}");
        }
        let refusal = sts_failing_with("AccessDenied").assume(&request).await.unwrap_err().permanent().unwrap();
        assert!(refusal.message.contains("role/broker") && refusal.message.contains("AccessDenied"), "{refusal}");
    }

    #[test]
    fn durations() {
        let now = Utc::now();
        let in_2h = now + Duration::hours(2);
        assert_eq!(session_duration(None, now, in_2h, 3600, 43200).unwrap(), 3600);
        assert_eq!(session_duration(None, now, now + Duration::minutes(30), 3600, 43200).unwrap(), 1800);
        assert_eq!(session_duration(Some(1200), now, in_2h, 3600, 43200).unwrap(), 1200);
        // Never below STS's minimum, even when the grant ends sooner.
        assert_eq!(session_duration(None, now, now + Duration::minutes(5), 3600, 43200).unwrap(), 900);
        // The configured cap (role chaining) applies.
        assert_eq!(session_duration(None, now, now + Duration::hours(10), 43200, 3600).unwrap(), 3600);
        assert_eq!(session_duration(Some(60), now, in_2h, 3600, 3600).unwrap_err().code, ErrorCode::DurationInvalid);
    }
}
