//! Stable error codes: the one list of every code Portcullis gives, with where it is used.
//!
//! Every refused request is answered with one of these codes (and a sentence saying what to do), and
//! the same code is attached to the message kept in a dead-letter queue; posture results that could
//! not be measured carry one as well. The codes are part of the public contract: never rename one,
//! only add. `docs/messages.md` and `docs/posture.md` list them, and a test keeps both in step with
//! this file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a code is used, which also says which document lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeArea {
    /// Replies to requests and the access-requests dead-letter queue (`docs/messages.md`).
    Request,
    /// The posture-events dead-letter queue (`docs/posture.md`, "Change events").
    Event,
    /// Why a posture control is `unknown` (`docs/posture.md`, "Error codes"; evidence and metrics).
    Measurement,
    /// Any queue's dead-letter queue, whatever the worker (`docs/messages.md`).
    Runtime,
    /// Given by the `portcullis` CLI itself, never on the wire (`docs/messages.md`).
    Cli,
    /// Given by the Slack edge (`portcullis-slack`) to Slack, never on the wire (`docs/messages.md`).
    Slack,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal, $area:ident; )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum ErrorCode {
            $( $(#[$doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire form, e.g. `template_not_found`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $wire,)* }
            }

            /// Where the code is used.
            pub fn area(self) -> CodeArea {
                match self { $(ErrorCode::$variant => CodeArea::$area,)* }
            }
        }
    };
}

error_codes! {
    /// The message is not valid JSON or does not match the envelope or the body schema of its kind.
    BadRequest = "bad_request", Request;
    /// The envelope `version` is not one this worker understands.
    UnsupportedVersion = "unsupported_version", Request;
    /// The envelope `kind` is not known.
    UnknownKind = "unknown_kind", Request;
    /// The message is larger than the configured maximum.
    MessageTooLarge = "message_too_large", Request;
    /// The identity token is missing, malformed, expired, or not signed by the configured issuer.
    Unauthenticated = "unauthenticated", Request;
    /// The verified identity may not perform this request (for example a non-admin putting a template).
    Forbidden = "forbidden", Request;
    /// The producer (SQS `SenderId`) is not on the allowlist.
    SenderForbidden = "sender_forbidden", Request;
    /// The reply address is not a queue Portcullis may send to.
    ReplyForbidden = "reply_forbidden", Request;
    /// A configured producer sent a kind it may not send, or acted for a person without being allowed
    /// to; or an unconfigured sender sent what only a producer may.
    ProducerForbidden = "producer_forbidden", Request;
    /// The ID token was issued before a directory change that contradicts it (the user was offboarded,
    /// or moved to another team): log in again.
    TokenStale = "token_stale", Request;
    /// No template with that name (and version) exists.
    TemplateNotFound = "template_not_found", Request;
    /// No grant with that id exists (any more), or it is not the requester's to act on.
    GrantNotFound = "grant_not_found", Request;
    /// The requester may not approve, deny or review this grant: it is their own, or they are not in
    /// its approver groups.
    ApprovalForbidden = "approval_forbidden", Request;
    /// The grant does not wait for approval (any more): it is active, denied, expired or revoked, or
    /// its template needs none.
    GrantNotPending = "grant_not_pending", Request;
    /// The template does not allow break-glass requests.
    BreakGlassForbidden = "break_glass_forbidden", Request;
    /// The grant is not a break-glass grant, or it was reviewed already.
    ReviewNotNeeded = "review_not_needed", Request;
    /// `credentials.request` carries no `reply_key`, and credentials are only sent sealed.
    ReplyKeyRequired = "reply_key_required", Request;
    /// `reply_key` is not a usable X25519 public key (32 bytes, base64url without padding).
    ReplyKeyInvalid = "reply_key_invalid", Request;
    /// The template definition is invalid (syntax, undeclared variable, statement shape).
    TemplateInvalid = "template_invalid", Request;
    /// A parameter is missing, undeclared, or does not match its declared pattern.
    ParamInvalid = "param_invalid", Request;
    /// A rendered statement breaks a configured guardrail (for example it allows `iam:*`).
    GuardrailViolation = "guardrail_violation", Request;
    /// An action in a template (literal or rendered) names no IAM action, or a wildcard matches none.
    ActionUnknown = "action_unknown", Request;
    /// The requested TTL is above the template's maximum.
    TtlTooLong = "ttl_too_long", Request;
    /// The template may not be used in the requested account.
    AccountForbidden = "account_forbidden", Request;
    /// The account is not configured in Portcullis.
    AccountUnknown = "account_unknown", Request;
    /// The requester has no live grant for the account.
    NoGrants = "no_grants", Request;
    /// The composed session policy is larger than STS accepts.
    PolicyTooLarge = "policy_too_large", Request;
    /// A duration or TTL is out of range.
    DurationInvalid = "duration_invalid", Request;
    /// A dependency kept failing; the request was given up after the last retry.
    Unavailable = "unavailable", Request;
    /// The deployment, not the request, refused a call Portcullis needs to do this: the worker's role
    /// may not make it (`AccessDenied`, a service control policy, a key policy), or what it names does
    /// not exist (the table, the bus, an account's broker role). Retrying cannot help, so the request is
    /// refused at the first delivery and kept in the dead-letter queue: an operator fixes the
    /// permissions (`docs/deploy.md`) and redrives it.
    WorkerDenied = "worker_denied", Request;
    /// STS refused to issue credentials with the account's broker role for a reason retrying cannot
    /// fix (for example `AccessDenied` on the role, or a session policy STS rejects).
    BrokerRefused = "broker_refused", Request;
    /// The `message_id` was used before by the same requester for a different request (another kind
    /// or body): nothing was done.
    MessageIdReused = "message_id_reused", Request;
    /// The request was handled but its reply could not be delivered to `reply_to` (the queue is gone
    /// or cannot take it). Re-send the same message id to a working reply queue to get the reply.
    ReplyUndeliverable = "reply_undeliverable", Request;
    /// A record Portcullis stored cannot be read back; retrying cannot help.
    StoredDataInvalid = "stored_data_invalid", Request;
    /// Access was revoked (the grant revoked, the user offboarded, or the user's sessions in the
    /// account revoked until a time still to come) while the credentials were being issued: the
    /// credentials were thrown away unsent.
    AccessRevoked = "access_revoked", Request;
    /// A free-text field (a reason, a note) holds something shaped like a secret: an ID token (JWT),
    /// an AWS access key id, secret access key or session token. Nothing was stored or published.
    SecretInRequest = "secret_in_request", Request;
    /// A directory change is dated more than 31 days ahead (`directory::MAX_SCHEDULE_AHEAD_SECONDS`).
    EffectiveAtTooFar = "effective_at_too_far", Request;

    /// The identity provider refused a login or a refresh token (denied, revoked, reused), or its
    /// answer cannot be used (no ID token, a token that does not verify): the CLI exits 3. Never on
    /// the wire, so not in the message schemas.
    #[schemars(skip)]
    LoginRefused = "login_refused", Cli;

    /// A request to the Slack edge whose `X-Slack-Signature` does not verify with the signing
    /// secret (or that has none): refused with 401, nothing done. Never on the wire.
    #[schemars(skip)]
    SlackSignatureInvalid = "slack_signature_invalid", Slack;
    /// A signed Slack request whose `X-Slack-Request-Timestamp` is more than 300 s from now, or
    /// the same signature again inside that window (a replay): refused, nothing done.
    #[schemars(skip)]
    SlackRequestStale = "slack_request_stale", Slack;
    /// A signed Slack request from a workspace (`team_id`) or an app (`api_app_id`) this edge is
    /// not configured for.
    #[schemars(skip)]
    SlackWorkspaceUnknown = "slack_workspace_unknown", Slack;
    /// The Slack user has no linked Portcullis identity (`/portcullis link` first).
    #[schemars(skip)]
    SlackNotLinked = "slack_not_linked", Slack;
    /// An account-link URL that is unknown, used already, expired, or finished in another browser
    /// than the one that started it; or an identity provider answer that does not verify.
    #[schemars(skip)]
    SlackLinkInvalid = "slack_link_invalid", Slack;

    /// The worker failed on the message at every delivery (a bug): it is kept for inspection.
    InternalError = "internal_error", Runtime;

    /// The message on the posture-events queue is not an EventBridge event Portcullis handles.
    UnrecognisedEvent = "unrecognised_event", Event;
    /// The event names an account and region that is not in `posture.accounts`/`posture.regions`.
    ScopeUnknown = "scope_unknown", Event;
    /// The targeted rescan an event asked for kept failing until the last delivery.
    RescanFailed = "rescan_failed", Event;

    /// The worker's role may not call the API (a missing permission, an SCP).
    AccessDenied = "access_denied", Measurement;
    /// The endpoint does not implement the API (an emulator, an unsupported region).
    Unsupported = "unsupported", Measurement;
    /// AWS throttled the call.
    Throttled = "throttled", Measurement;
    /// A resource the control reads does not exist (any more).
    NotFound = "not_found", Measurement;
    /// The call failed for another reason (network, service error, an unreadable response).
    ReadFailed = "error", Measurement;
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
    use std::collections::HashSet;

    #[test]
    fn wire_form_matches_serde_and_is_unique() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, *code);
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }

    /// Each document lists exactly the codes of its areas, in a table row of their own.
    #[test]
    fn the_documents_list_every_code() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/");
        let messages = std::fs::read_to_string(format!("{docs}messages.md")).unwrap();
        let posture = std::fs::read_to_string(format!("{docs}posture.md")).unwrap();
        for code in ErrorCode::ALL {
            let row = format!("| `{}` |", code.as_str());
            let (doc, name) = match code.area() {
                CodeArea::Request | CodeArea::Runtime | CodeArea::Cli | CodeArea::Slack => {
                    (&messages, "docs/messages.md")
                }
                CodeArea::Event | CodeArea::Measurement => (&posture, "docs/posture.md"),
            };
            assert!(doc.contains(&row), "{name} lacks a table row for {code}");
        }
        // And nothing else: every code-looking row in the tables is a known code.
        let known: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for (doc, heading) in [(&messages, "## Error codes"), (&posture, "## Error codes")] {
            let table = doc.split(heading).nth(1).unwrap_or_else(|| panic!("no `{heading}` section"));
            for line in
                table.lines().take_while(|l| l.starts_with('|') || l.is_empty()).filter(|l| l.starts_with("| `"))
            {
                let code = line.trim_start_matches("| `").split('`').next().unwrap_or_default();
                assert!(known.contains(code), "the docs list `{code}`, which is not an ErrorCode");
            }
        }
    }
}
