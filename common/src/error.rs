//! Stable error codes.
//!
//! Every error a requester can cause is answered with one of these codes (and a sentence saying what to
//! do), and the same code is attached to the message kept in the dead-letter queue. The codes are part
//! of the public message contract: never rename one, only add.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not valid JSON or does not match the envelope or the body schema of its kind.
    BadRequest,
    /// The envelope `version` is not one this worker understands.
    UnsupportedVersion,
    /// The envelope `kind` is not known.
    UnknownKind,
    /// The message is larger than the configured maximum.
    MessageTooLarge,
    /// The identity token is missing, malformed, expired, or not signed by the configured issuer.
    Unauthenticated,
    /// The verified identity may not perform this request (for example a non-admin putting a template).
    Forbidden,
    /// The producer (SQS `SenderId`) is not on the allowlist.
    SenderForbidden,
    /// The reply address is not a queue Portcullis may send to.
    ReplyForbidden,
    /// No template with that name (and version) exists.
    TemplateNotFound,
    /// The template definition is invalid (syntax, undeclared variable, statement shape).
    TemplateInvalid,
    /// A parameter is missing, undeclared, or does not match its declared pattern.
    ParamInvalid,
    /// A rendered statement breaks a configured guardrail (for example it allows `iam:*`).
    GuardrailViolation,
    /// The requested TTL is above the template's maximum.
    TtlTooLong,
    /// The template may not be used in the requested account.
    AccountForbidden,
    /// The account is not configured in Portcullis.
    AccountUnknown,
    /// The requester has no live grant for the account.
    NoGrants,
    /// The composed session policy is larger than STS accepts.
    PolicyTooLarge,
    /// A duration or TTL is out of range.
    DurationInvalid,
    /// A dependency kept failing; the request was given up after the last retry.
    Unavailable,
    /// STS refused to issue credentials with the account's broker role for a reason retrying cannot
    /// fix (for example `AccessDenied` on the role, or a session policy STS rejects).
    BrokerRefused,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::BadRequest,
        ErrorCode::UnsupportedVersion,
        ErrorCode::UnknownKind,
        ErrorCode::MessageTooLarge,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::SenderForbidden,
        ErrorCode::ReplyForbidden,
        ErrorCode::TemplateNotFound,
        ErrorCode::TemplateInvalid,
        ErrorCode::ParamInvalid,
        ErrorCode::GuardrailViolation,
        ErrorCode::TtlTooLong,
        ErrorCode::AccountForbidden,
        ErrorCode::AccountUnknown,
        ErrorCode::NoGrants,
        ErrorCode::PolicyTooLarge,
        ErrorCode::DurationInvalid,
        ErrorCode::Unavailable,
        ErrorCode::BrokerRefused,
    ];

    /// The wire form, e.g. `template_not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownKind => "unknown_kind",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::SenderForbidden => "sender_forbidden",
            ErrorCode::ReplyForbidden => "reply_forbidden",
            ErrorCode::TemplateNotFound => "template_not_found",
            ErrorCode::TemplateInvalid => "template_invalid",
            ErrorCode::ParamInvalid => "param_invalid",
            ErrorCode::GuardrailViolation => "guardrail_violation",
            ErrorCode::TtlTooLong => "ttl_too_long",
            ErrorCode::AccountForbidden => "account_forbidden",
            ErrorCode::AccountUnknown => "account_unknown",
            ErrorCode::NoGrants => "no_grants",
            ErrorCode::PolicyTooLarge => "policy_too_large",
            ErrorCode::DurationInvalid => "duration_invalid",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BrokerRefused => "broker_refused",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a requester caused: a stable code, a sentence that says what to do, and optional
/// structured details (for example the offending parameter or the grants that made a policy too large).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, code);
        }
    }
}
