//! What can go wrong in a command, how it is shown, and the exit code it gives.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | a local problem: no configuration, not logged in, a file that cannot be written |
//! | 2 | usage: a bad flag or value (also a parameter that fails its pattern, checked before sending) |
//! | 3 | refused: Portcullis (or the identity provider) said no; the code and sentence are shown |
//! | 4 | timeout or unreachable: nothing answered in time, or an endpoint could not be reached |
//!
//! Every error is printed on stderr as `error: <what>`, followed by `hint: <what to do>`.

use std::fmt;

use portcullis_client::{AwsError, AwsErrorKind};
use portcullis_domain::ErrorCode;

/// A command's failure.
#[derive(Debug)]
pub enum CliError {
    /// Exit 1.
    Local { message: String, hint: Option<String> },
    /// Exit 2.
    Usage { message: String, hint: Option<String> },
    /// Exit 3: the server's code and sentence.
    Refused { code: String, message: String, details: Option<serde_json::Value> },
    /// Exit 4: an endpoint that cannot be reached. `source` says where the endpoint came from.
    Unreachable { what: String, endpoint: String, source: String, message: String, fix: String },
    /// Exit 4.
    Timeout { message: String, hint: String },
}

impl CliError {
    pub fn local(message: impl Into<String>) -> Self {
        CliError::Local { message: message.into(), hint: None }
    }
    pub fn local_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Local { message: message.into(), hint: Some(hint.into()) }
    }
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Local { .. } => 1,
            CliError::Usage { .. } => 2,
            CliError::Refused { .. } => 3,
            CliError::Unreachable { .. } | CliError::Timeout { .. } => 4,
        }
    }

    /// The hint line.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Local { hint, .. } | CliError::Usage { hint, .. } => hint.clone(),
            CliError::Refused { code, details, .. } => Some(hint_for(code, details.as_ref()).to_owned()),
            CliError::Unreachable { fix, .. } => Some(fix.clone()),
            CliError::Timeout { hint, .. } => Some(hint.clone()),
        }
    }

    /// As JSON, for `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self.to_string(), "exit_code": self.exit_code() });
        if let CliError::Refused { code, message, details } = self {
            v = serde_json::json!({ "error": { "code": code, "message": message, "details": details },
                                    "exit_code": 3 });
        }
        if let Some(h) = self.hint() {
            v["hint"] = serde_json::json!(h);
        }
        v
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Local { message, .. } | CliError::Usage { message, .. } => f.write_str(message),
            CliError::Refused { code, message, .. } => write!(f, "refused ({code}): {message}"),
            CliError::Unreachable { what, endpoint, source, message, .. } => {
                write!(f, "cannot reach {what} at {endpoint} (from {source}): {message}")
            }
            CliError::Timeout { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::local(e.to_string())
    }
}

/// What to do about a refusal, by its code.
pub fn hint_for(code: &str, details: Option<&serde_json::Value>) -> &'static str {
    let code = serde_json::from_value::<ErrorCode>(serde_json::json!(code)).ok();
    let _ = details;
    match code {
        Some(ErrorCode::Unauthenticated) => "run `portcullis login` again (your ID token expired or is not accepted)",
        Some(ErrorCode::Forbidden) => "this needs a group you are not in; ask a Portcullis admin",
        Some(ErrorCode::ReplyForbidden) => "use your own reply queue: run the command with `portcullis`, not by hand",
        Some(ErrorCode::TemplateNotFound) => "`portcullis templates` lists the templates",
        Some(ErrorCode::ParamInvalid) => "`portcullis templates show <name>` shows each parameter's pattern",
        Some(ErrorCode::TtlTooLong) => "ask for a shorter --ttl (`portcullis templates` shows each maximum)",
        Some(ErrorCode::AccountForbidden) => "`portcullis templates show <name>` lists the accounts it allows",
        Some(ErrorCode::AccountUnknown) => "check --account (or default_account in your config)",
        Some(ErrorCode::NoGrants) => "ask for access first: `portcullis request <template> --account <id> ...`",
        Some(ErrorCode::PolicyTooLarge) => "let some grants expire (`portcullis grants`) or ask for narrower ones",
        Some(ErrorCode::GuardrailViolation) => "this access cannot be granted through Portcullis",
        Some(ErrorCode::DurationInvalid) => "--ttl is at least 60s; --duration is 900s to 12h",
        Some(ErrorCode::Unavailable) => "Portcullis could not finish; try again in a minute",
        Some(ErrorCode::BrokerRefused) => "ask a Portcullis admin to check the broker role",
        Some(ErrorCode::MessageIdReused) => "send the request again (portcullis picks a fresh id each time)",
        _ => "see docs/messages.md#error-codes",
    }
}

/// A failed AWS call (`op`, e.g. `sqs:GetQueueUrl`) against `endpoint` as a CLI error: connection
/// failures and timeouts are "unreachable" (exit 4) and name where the endpoint came from; a refusal
/// by AWS is local (1).
pub fn aws_error(what: &str, op: &str, endpoint: &(String, crate::config::Source), e: &AwsError) -> CliError {
    let fix = match &endpoint.1 {
        crate::config::Source::Flag(flag) => format!("check {flag}, and that the service runs there"),
        crate::config::Source::File(path) => format!(
            "check endpoint_url/region in {}, and that the service runs there (`make run` starts one locally)",
            path.display()
        ),
        crate::config::Source::Default => "check your network, or set endpoint_url in the config".into(),
    };
    match &e.kind {
        AwsErrorKind::Unreachable => CliError::Unreachable {
            what: what.into(),
            endpoint: endpoint.0.clone(),
            source: endpoint.1.to_string(),
            message: format!("{op}: {}", e.message),
            fix,
        },
        AwsErrorKind::Service { code, message } => CliError::local_hint(
            format!("{op} at {} was refused: {code}: {message}", endpoint.0),
            match code.as_str() {
                "AccessDenied" | "AccessDeniedException" => {
                    "your requester role may not do this; ask a Portcullis admin to check the stack's requester role"
                }
                "InvalidIdentityToken" | "ExpiredTokenException" | "ExpiredToken" => "run `portcullis login` again",
                "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => {
                    "check stack_prefix/stack_account in your config; is the stack deployed?"
                }
                _ => "see the message above",
            },
        ),
        AwsErrorKind::Other => CliError::local(format!("{op} at {}: {}", endpoint.0, e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_hints() {
        let refused = CliError::Refused { code: "ttl_too_long".into(), message: "too long".into(), details: None };
        assert_eq!(refused.exit_code(), 3);
        assert!(refused.hint().unwrap_or_default().contains("--ttl"));
        assert_eq!(refused.to_json()["error"]["code"], "ttl_too_long");
        assert_eq!(CliError::usage("x", "y").exit_code(), 2);
        assert_eq!(CliError::local("x").exit_code(), 1);
        let t = CliError::Timeout { message: "m".into(), hint: "h".into() };
        assert_eq!(t.exit_code(), 4);
        assert!(hint_for("not_a_code", None).contains("messages.md"));
    }
}
