//! What can go wrong when asking Portcullis: a refusal (Portcullis answered no, with a code and a
//! sentence) is told apart from a failure to get or read an answer at all.

use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use portcullis_domain::{ErrorCode, MessageId};
use serde_json::Value;

/// The answer to [`crate::AccessClient::ask`] when it is not the typed result.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Portcullis answered, and said no.
    #[error("{0}")]
    Refused(Refusal),
    /// No usable answer: the queues, the wait, or the reply itself.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A refused request: the reply's `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: RefusalCode,
    /// The worker's sentence: what went wrong and what to do.
    pub message: String,
    /// Structured details, e.g. `{"param": "bucketName"}`.
    pub details: Option<Value>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused ({}): {}", self.code.as_str(), self.message)
    }
}

/// A refusal's code. Codes are only ever added to the contract, never renamed, so a worker newer
/// than this client may send one it does not know: that is still a refusal, with its sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalCode {
    Known(ErrorCode),
    /// A code this client does not know, as sent.
    Unknown(String),
}

impl RefusalCode {
    /// Parse the wire form.
    pub fn from_wire(code: &str) -> Self {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == code)
            .map_or_else(|| RefusalCode::Unknown(code.to_owned()), RefusalCode::Known)
    }

    /// The wire form, e.g. `template_not_found`.
    pub fn as_str(&self) -> &str {
        match self {
            RefusalCode::Known(code) => code.as_str(),
            RefusalCode::Unknown(code) => code,
        }
    }

    /// The code, when this client knows it.
    pub fn known(&self) -> Option<ErrorCode> {
        match self {
            RefusalCode::Known(code) => Some(*code),
            RefusalCode::Unknown(_) => None,
        }
    }
}

/// No usable answer (a refusal is not one of these: it is an answer).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An AWS call (SQS, STS) failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("no reply to {message_id} within {timeout:?}; is `portcullis-worker access` running?")]
    Timeout { message_id: MessageId, timeout: Duration },
    #[error("the request could not be encoded: {0}")]
    Encode(String),
    #[error("the stack's request queue has no URL: {0}")]
    NoQueueUrl(String),
    /// A directory kind, from a client that knows no directory-events queue.
    #[error("`{kind}` is sent on the directory-events queue, which this client was not given")]
    NoQueueFor { kind: &'static str },
    #[error("the credentials reply could not be opened: {0}")]
    Sealed(String),
    /// The reply to our request arrived but does not read as the contract says: a field renamed,
    /// added or missing, a kind that is not ours. Never read as an empty value.
    #[error(
        "the reply to `{kind}` could not be read: {message}; this client and the Portcullis workers may speak \
         different versions of the contract (see docs/messages.md)"
    )]
    Decode { kind: String, message: String },
}

/// A failed AWS call, classified once: unreachable (no answer: connection, timeout), refused by the
/// service (with its code), or anything else.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{service} {op} failed: {message}")]
pub struct AwsError {
    /// `SQS` or `STS`.
    pub service: &'static str,
    /// The API operation, e.g. `SendMessage`.
    pub op: &'static str,
    pub kind: AwsErrorKind,
    /// The error and its sources, one after another.
    pub message: String,
}

/// See [`AwsError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Nothing answered: the endpoint cannot be reached, or did not answer in time.
    Unreachable,
    /// The service answered with an error.
    Service {
        code: String,
        message: String,
    },
    Other,
}

impl AwsError {
    pub(crate) fn from_sdk<E, R>(service: &'static str, op: &'static str, e: &SdkError<E, R>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        let kind = match e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsErrorKind::Unreachable,
            SdkError::ServiceError(s) => AwsErrorKind::Service {
                code: s.err().code().unwrap_or("error").to_owned(),
                message: s.err().message().unwrap_or_default().to_owned(),
            },
            _ => AwsErrorKind::Other,
        };
        AwsError { service, op, kind, message: chain(e) }
    }

    /// A call that succeeded without what it must return.
    pub(crate) fn missing(service: &'static str, op: &'static str, what: &str) -> Self {
        AwsError { service, op, kind: AwsErrorKind::Other, message: format!("the answer has no {what}") }
    }

    pub fn is_unreachable(&self) -> bool {
        self.kind == AwsErrorKind::Unreachable
    }
}

/// An error and its sources, `: `-separated (the SDK's own `Display` says only "dispatch failure").
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// `SQS <op>` errors, as a closure for `map_err`.
pub(crate) fn sqs<E, R>(op: &'static str) -> impl FnOnce(SdkError<E, R>) -> ClientError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    move |e| ClientError::Aws(AwsError::from_sdk("SQS", op, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_this_client_does_not_know_are_still_refusals() {
        assert_eq!(RefusalCode::from_wire("no_grants"), RefusalCode::Known(ErrorCode::NoGrants));
        let newer = RefusalCode::from_wire("quota_exceeded");
        assert_eq!(newer.as_str(), "quota_exceeded");
        assert_eq!(newer.known(), None);
        for code in ErrorCode::ALL {
            assert_eq!(RefusalCode::from_wire(code.as_str()).known(), Some(*code));
        }
    }
}
