//! What can go wrong in a command, how it is shown, and the exit code it gives.
//!
//! The exit codes, one per failure class, are the README's table ("Exit codes"), which a test walks
//! row by row (`cli/tests/login_e2e.rs`):
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | a local problem: no configuration, not logged in, a session that expired, a file that cannot be written |
//! | 2 | usage: a bad flag or value, or one outside a bound the CLI knows (checked before sending) |
//! | 3 | refused: Portcullis or the identity provider said no; the code and sentence are shown |
//! | 4 | timeout or unavailable: nothing answered in time, an endpoint could not be reached or failed (HTTP 5xx) |
//!
//! Every error is printed on stderr as `error: <what>`, followed by `hint: <what to do>`: a command
//! to run or a setting to change, never a path in the source repository.

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
    /// Exit 3: the identity provider said no (code `login_refused`).
    LoginRefused { message: String, hint: String },
    /// Exit 4: an endpoint answered, but failed (an HTTP 5xx); the message names it.
    Unavailable { message: String, hint: String },
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
            CliError::Refused { .. } | CliError::LoginRefused { .. } => 3,
            CliError::Unreachable { .. } | CliError::Timeout { .. } | CliError::Unavailable { .. } => 4,
        }
    }

    /// The hint line.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Local { hint, .. } | CliError::Usage { hint, .. } => hint.clone(),
            CliError::Refused { code, details, .. } => Some(hint_for(code, details.as_ref()).to_owned()),
            CliError::Unreachable { fix, .. } => Some(fix.clone()),
            CliError::Timeout { hint, .. }
            | CliError::LoginRefused { hint, .. }
            | CliError::Unavailable { hint, .. } => Some(hint.clone()),
        }
    }

    /// As JSON, for `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self.to_string(), "exit_code": self.exit_code() });
        if let CliError::Refused { code, message, details } = self {
            v = serde_json::json!({ "error": { "code": code, "message": message, "details": details },
                                    "exit_code": 3 });
        }
        if let CliError::LoginRefused { message, .. } = self {
            v = serde_json::json!({ "error": { "code": ErrorCode::LoginRefused.as_str(), "message": message },
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
            CliError::Timeout { message, .. } | CliError::Unavailable { message, .. } => f.write_str(message),
            CliError::LoginRefused { message, .. } => write!(f, "refused ({}): {message}", ErrorCode::LoginRefused),
        }
    }
}

impl std::error::Error for CliError {}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        let hint = match &e {
            crate::config::ConfigError::Write { .. } => "check that the directory exists and is yours to write",
            _ => "`portcullis init --help` shows an example",
        };
        CliError::local_hint(e.to_string(), hint)
    }
}

/// What to do about a refusal, by its code: a command to run, or whom to ask. Every code has one
/// (the match is exhaustive); a code this CLI does not know came from newer workers.
pub fn hint_for(code: &str, details: Option<&serde_json::Value>) -> &'static str {
    let _ = details;
    let Ok(code) = serde_json::from_value::<ErrorCode>(serde_json::json!(code)) else {
        return "newer workers gave a code this portcullis does not know: upgrade it (`portcullis --version` \
                shows the message contract it speaks)";
    };
    match code {
        ErrorCode::Unauthenticated => "run `portcullis login` again (your ID token expired or is not accepted)",
        ErrorCode::TokenStale => "run `portcullis login` again (the directory changed since your token was issued)",
        ErrorCode::LoginRefused => "run `portcullis login` again",
        ErrorCode::Forbidden => "this needs a group you are not in; ask a Portcullis admin",
        ErrorCode::ReplyForbidden | ErrorCode::SenderForbidden | ErrorCode::ProducerForbidden => {
            "send requests with `portcullis`, which uses your own reply queue; ask a Portcullis admin otherwise"
        }
        ErrorCode::TemplateNotFound => "`portcullis templates` lists the templates",
        ErrorCode::GrantNotFound => "`portcullis grants --all` lists your grants (`portcullis pending`: others')",
        ErrorCode::ApprovalForbidden => "someone else in the template's approver groups must do it",
        ErrorCode::GrantNotPending => "`portcullis grants --all` shows where the grant stands",
        ErrorCode::BreakGlassForbidden => "ask without --break-glass; `portcullis templates` shows which allow it",
        ErrorCode::ReviewNotNeeded => "`portcullis pending` lists the reviews that are owed",
        ErrorCode::ParamInvalid => "`portcullis templates show <name>` shows each parameter's pattern",
        ErrorCode::TtlTooLong => "ask for a shorter --ttl (`portcullis templates` shows each maximum)",
        ErrorCode::AccountForbidden => "`portcullis templates show <name>` lists the accounts it allows",
        ErrorCode::AccountUnknown => "check --account (or `portcullis init --default-account ...`)",
        ErrorCode::NoGrants => "ask for access first: `portcullis request <template> --account <id> ...`",
        ErrorCode::PolicyTooLarge => "let some grants expire (`portcullis grants`) or ask for narrower ones",
        ErrorCode::GuardrailViolation | ErrorCode::ActionUnknown => {
            "this access cannot be granted through Portcullis; ask a Portcullis admin about the template"
        }
        ErrorCode::TemplateInvalid => "`portcullis templates show <name>` shows a valid one to start from",
        ErrorCode::DurationInvalid => "--ttl is 60s to 7d (and at most the template's maximum)",
        ErrorCode::Unavailable | ErrorCode::ReplyUndeliverable | ErrorCode::InternalError => {
            "Portcullis could not finish; try the same command again in a minute"
        }
        ErrorCode::BrokerRefused => "ask a Portcullis admin to check the broker role",
        ErrorCode::WorkerDenied => "ask a Portcullis admin to fix the workers' permissions; your request was kept",
        ErrorCode::MessageIdReused => "send the request again (portcullis picks a fresh id each time)",
        ErrorCode::ReplyKeyRequired | ErrorCode::ReplyKeyInvalid => "upgrade portcullis (`portcullis --version`)",
        ErrorCode::BadRequest | ErrorCode::UnsupportedVersion | ErrorCode::UnknownKind | ErrorCode::MessageTooLarge => {
            "this portcullis and the workers speak different contracts: compare `portcullis --version` with the \
             workers' and upgrade the older"
        }
        ErrorCode::StoredDataInvalid => "ask a Portcullis admin: a stored record does not read",
        ErrorCode::AccessRevoked => {
            "your access was revoked while the credentials were being issued: `portcullis grants --all` shows \
             where your grants stand"
        }
        ErrorCode::SecretInRequest => {
            "remove the token or key from the reason or note (never paste secrets into free text) and send it again"
        }
        ErrorCode::EffectiveAtTooFar => "date the directory change at most 31 days ahead",
        ErrorCode::SlackSignatureInvalid
        | ErrorCode::SlackRequestStale
        | ErrorCode::SlackWorkspaceUnknown
        | ErrorCode::SlackNotLinked
        | ErrorCode::SlackLinkInvalid => {
            "this is the Slack edge's code, not the workers'; in Slack, run `/portcullis link` or ask a Portcullis admin"
        }
        ErrorCode::UnrecognisedEvent
        | ErrorCode::ScopeUnknown
        | ErrorCode::RescanFailed
        | ErrorCode::AccessDenied
        | ErrorCode::Unsupported
        | ErrorCode::Throttled
        | ErrorCode::NotFound
        | ErrorCode::ReadFailed => "ask a Portcullis admin (`portcullis posture` shows what was measured)",
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
        assert!(hint_for("not_a_code", None).contains("portcullis --version"));
        // A hint is a command or a person to ask, never a path in the source repository.
        for code in ErrorCode::ALL {
            let hint = hint_for(code.as_str(), None);
            assert!(!hint.contains(".md") && !hint.contains("docs/"), "{code}: {hint}");
        }
        let refused = CliError::LoginRefused { message: "m".into(), hint: "h".into() };
        assert_eq!((refused.exit_code(), refused.to_json()["error"]["code"].as_str()), (3, Some("login_refused")));
        assert_eq!(CliError::Unavailable { message: "m".into(), hint: "h".into() }.exit_code(), 4);
    }
}
