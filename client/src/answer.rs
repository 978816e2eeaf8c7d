//! Reading one reply: the typed result of its kind, or a typed refusal, or a decode error. Pure.
//!
//! The result types of `portcullis_domain::messages` refuse unknown fields, as the committed JSON
//! Schemas say (`additionalProperties: false`), so a field renamed on one side is a decode error
//! here, never a value read as empty. The reply around the result is read leniently (the worker
//! may add envelope fields), and a refusal keeps a code this client does not know.

use chrono::{DateTime, Utc};
use portcullis_domain::MessageId;
use portcullis_domain::messages::{ENVELOPE_VERSION, Kind, Reply};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{AskError, ClientError, Refusal, RefusalCode};

/// What a waiting client needs to know of a reply before reading it: whose it is and how old.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    pub(crate) in_reply_to: Option<MessageId>,
    pub(crate) sent_at: Option<DateTime<Utc>>,
}

impl Head {
    /// `None` when the text is not a JSON object (nobody's reply).
    pub(crate) fn of(reply: &Value) -> Option<Head> {
        let object = reply.as_object()?;
        let text = |k: &str| object.get(k).and_then(Value::as_str);
        Some(Head {
            in_reply_to: text("in_reply_to").and_then(|m| MessageId::parse(m).ok()),
            sent_at: text("sent_at").and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc)),
        })
    }
}

/// The typed result of a reply to a `kind` request, or its refusal.
pub(crate) fn decode<R: DeserializeOwned>(kind: Kind, mut reply: Value) -> Result<R, AskError> {
    let bad = |message: String| AskError::Client(ClientError::Decode { kind: kind.as_str().to_owned(), message });
    let Some(object) = reply.as_object_mut() else {
        return Err(bad("it is not a JSON object".into()));
    };
    match object.get("version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(ENVELOPE_VERSION) => {}
        other => return Err(bad(format!("its version is {other:?}, this client reads {ENVELOPE_VERSION}"))),
    }
    match object.get("status").and_then(Value::as_str) {
        Some("ok") => {
            let answered = object.get("kind").and_then(Value::as_str).unwrap_or_default();
            if answered != kind.as_str() {
                return Err(bad(format!("it answers a `{answered}` request")));
            }
            let result = object.remove("result").ok_or_else(|| bad("an ok reply without `result`".into()))?;
            serde_json::from_value(result).map_err(|e| bad(format!("its result: {}", describe(kind, &e))))
        }
        Some("error") => {
            let error = object.get("error").and_then(Value::as_object);
            let text = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str);
            match (text("code"), text("message")) {
                (Some(code), Some(message)) => Err(AskError::Refused(Refusal {
                    code: RefusalCode::from_wire(code),
                    message: message.to_owned(),
                    details: error.and_then(|e| e.get("details")).filter(|d| !d.is_null()).cloned(),
                })),
                _ => Err(bad("an error reply without `error.code` and `error.message`".into())),
            }
        }
        other => Err(bad(format!("its status is {other:?}, not ok or error"))),
    }
}

/// What is wrong with a result. serde's message may quote a value; a credentials result's values
/// are secrets, so for it only the place is said.
fn describe(kind: Kind, e: &serde_json::Error) -> String {
    match kind {
        Kind::CredentialsRequest => format!("{:?} error at line {}, column {}", e.classify(), e.line(), e.column()),
        _ => e.to_string(),
    }
}

/// The reply as the domain's untyped [`Reply`] (tests and tools that look at any reply).
pub(crate) fn untyped(kind: &str, reply: Value) -> Result<Reply<Value>, ClientError> {
    serde_json::from_value(reply).map_err(|e| ClientError::Decode { kind: kind.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use portcullis_domain::ErrorCode;
    use portcullis_domain::messages::{GrantListResult, TemplateDeleteResult};
    use serde_json::json;

    fn ok(kind: &str, result: Value) -> Value {
        json!({"version": 1, "message_id": "r-1", "in_reply_to": "m-1", "kind": kind,
               "sent_at": "2026-11-22T12:00:00Z", "status": "ok", "result": result})
    }

    #[test]
    fn an_ok_reply_reads_as_its_kinds_result() {
        let r: TemplateDeleteResult =
            decode(Kind::TemplateDelete, ok("template.delete", json!({"name": "bucketRead", "deleted": true})))
                .unwrap();
        assert!(r.deleted);
        assert_eq!(r.name.as_str(), "bucketRead");
    }

    #[test]
    fn a_renamed_or_added_result_field_is_a_decode_error_not_an_empty_value() {
        let renamed = ok("grant.list", json!({"items": []}));
        let err = decode::<GrantListResult>(Kind::GrantList, renamed).unwrap_err();
        assert!(
            matches!(&err, AskError::Client(ClientError::Decode { kind, message })
            if kind == "grant.list" && message.contains("grants")),
            "{err}"
        );
        let added = ok("grant.list", json!({"grants": [], "next_page": "x"}));
        let err = decode::<GrantListResult>(Kind::GrantList, added).unwrap_err();
        assert!(err.to_string().contains("unknown field `next_page`"), "{err}");
        assert!(err.to_string().contains("docs/messages.md"), "{err}");
    }

    #[test]
    fn a_credentials_result_that_does_not_read_is_not_quoted() {
        let result = json!({"credentials": {"Version": "very-secret-value"}, "expires_at": "2026-11-22T13:00:00Z"});
        let err = decode::<portcullis_domain::messages::CredentialsResult>(
            Kind::CredentialsRequest,
            ok("credentials.request", result),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("could not be read") && !err.contains("very-secret"), "{err}");
    }

    #[test]
    fn the_reply_around_the_result_may_grow() {
        let mut reply = ok("grant.list", json!({"grants": []}));
        reply["trace_id"] = json!("abc");
        let r: GrantListResult = decode(Kind::GrantList, reply).unwrap();
        assert!(r.grants.is_empty());
    }

    #[test]
    fn another_kinds_reply_or_version_is_refused() {
        let err = decode::<GrantListResult>(Kind::GrantList, ok("grant.pending", json!({"grants": []}))).unwrap_err();
        assert!(err.to_string().contains("answers a `grant.pending` request"), "{err}");
        let mut v2 = ok("grant.list", json!({"grants": []}));
        v2["version"] = json!(2);
        assert!(decode::<GrantListResult>(Kind::GrantList, v2).unwrap_err().to_string().contains("version"));
        for broken in [json!("text"), json!({"version": 1, "status": "maybe"}), json!({"version": 1, "status": "ok"})] {
            let kind = "grant.list";
            let mut broken = broken;
            if let Some(o) = broken.as_object_mut() {
                o.insert("kind".into(), json!(kind));
            }
            assert!(matches!(
                decode::<GrantListResult>(Kind::GrantList, broken),
                Err(AskError::Client(ClientError::Decode { .. }))
            ));
        }
    }

    #[test]
    fn refusals_keep_code_sentence_and_details() {
        let reply = json!({"version": 1, "message_id": "r-1", "in_reply_to": "m-1", "kind": "grant.request",
            "sent_at": "2026-11-22T12:00:00Z", "status": "error",
            "error": {"code": "param_invalid", "message": "bucketName must match ...", "details": {"param": "bucketName"}}});
        let Err(AskError::Refused(r)) = decode::<GrantListResult>(Kind::GrantRequest, reply) else { panic!() };
        assert_eq!(r.code, RefusalCode::Known(ErrorCode::ParamInvalid));
        assert_eq!(r.message, "bucketName must match ...");
        assert_eq!(r.details, Some(json!({"param": "bucketName"})));
        assert_eq!(r.to_string(), "refused (param_invalid): bucketName must match ...");
        // A refusal of a request the worker could not read names kind `unknown`: still a refusal.
        let unknown = json!({"version": 1, "message_id": "r", "kind": "unknown", "sent_at": "2026-11-22T12:00:00Z",
            "status": "error", "error": {"code": "a_newer_code", "message": "m"}});
        let Err(AskError::Refused(r)) = decode::<GrantListResult>(Kind::GrantList, unknown) else { panic!() };
        assert_eq!((r.code.as_str(), r.code.known(), r.details), ("a_newer_code", None, None));
        let codeless = json!({"version": 1, "kind": "grant.list", "status": "error", "error": {"message": "m"}});
        assert!(matches!(
            decode::<GrantListResult>(Kind::GrantList, codeless),
            Err(AskError::Client(ClientError::Decode { .. }))
        ));
    }

    #[test]
    fn heads_name_whose_reply_it_is() {
        let head = Head::of(&ok("grant.list", json!({}))).unwrap();
        assert_eq!(head.in_reply_to, Some(MessageId::parse("m-1").unwrap()));
        assert!(head.sent_at.is_some());
        assert_eq!(Head::of(&json!([1])), None);
        let anonymous = Head::of(&json!({"in_reply_to": "has space", "sent_at": "yesterday"})).unwrap();
        assert_eq!(anonymous, Head { in_reply_to: None, sent_at: None });
    }
}
