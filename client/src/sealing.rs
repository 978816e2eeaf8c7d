//! Sealed credentials on the client's side: a fresh X25519 key for every `credentials.request`, and
//! the reply's `sealed_credentials` opened with it (HPKE, see `portcullis_domain::sealed`). Pure.
//!
//! The secret never leaves the process that made it. A reply to a request that carried our key must
//! hold sealed credentials, sealed to that key for that request's message id and account: anything
//! else (another key, another request's reply, credentials in clear) is refused, never used.

use portcullis_domain::MessageId;
use portcullis_domain::messages::{Kind, ProcessCredentials};
use portcullis_domain::sealed::{ReplySecret, SealedBox, generate_reply_key, open_credentials};
use serde_json::Value;

use crate::error::ClientError;

/// A `credentials.request` body that names no `reply_key` gets a fresh one; the secret that opens
/// its reply is returned. Any other body is left alone.
pub(crate) fn prepare(kind: Kind, body: &mut Value) -> Option<ReplySecret> {
    if kind != Kind::CredentialsRequest {
        return None;
    }
    let object = body.as_object_mut()?;
    if object.contains_key("reply_key") {
        return None;
    }
    let (secret, key) = generate_reply_key();
    object.insert("reply_key".into(), Value::String(key.encode()));
    Some(secret)
}

/// Open the `sealed_credentials` of an ok reply to the request `message_id` in `account` into
/// `result.credentials`. A refusal is left as it is.
pub(crate) fn open_reply(
    reply: &mut Value,
    secret: &ReplySecret,
    message_id: &MessageId,
    account: &str,
) -> Result<(), ClientError> {
    if reply.get("status").and_then(Value::as_str) != Some("ok") {
        return Ok(());
    }
    let Some(result) = reply.get_mut("result").and_then(Value::as_object_mut) else {
        return Err(ClientError::Sealed("the reply has no result".into()));
    };
    if result.get("credentials").is_some_and(|c| !c.is_null()) {
        return Err(ClientError::Sealed(
            "the reply carries credentials in clear although the request asked for them sealed; they were not used \
             (tell the Portcullis admins: the reply queue held usable credentials)"
                .into(),
        ));
    }
    let sealed: SealedBox = serde_json::from_value(result.get("sealed_credentials").cloned().unwrap_or(Value::Null))
        .map_err(|e| ClientError::Sealed(format!("the reply has no usable sealed_credentials: {e}")))?;
    let opened = open_credentials(secret, message_id.as_str(), account, &sealed)
        .map_err(|e| ClientError::Sealed(e.to_string()))?;
    // Where, not what: serde's message may quote a value, and these values are secrets.
    let credentials: ProcessCredentials = serde_json::from_slice(&opened).map_err(|e| {
        ClientError::Sealed(format!(
            "the opened credentials are not the credential_process JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let credentials =
        serde_json::to_value(&credentials).map_err(|e| ClientError::Sealed(format!("re-encoding them: {e}")))?;
    result.insert("credentials".into(), credentials);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use portcullis_domain::sealed::seal_credentials;
    use serde_json::json;

    const ACCOUNT: &str = "123456789012";

    fn credentials() -> Value {
        json!({"Version": 1, "AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "very-secret",
               "SessionToken": "token", "Expiration": "2026-11-22T13:00:00Z"})
    }

    /// A credentials reply sealed to the key in `body`, for `message_id` in `account`.
    fn sealed_reply(body: &Value, message_id: &str, account: &str) -> Value {
        let key = portcullis_domain::sealed::ReplyKey::parse(body["reply_key"].as_str().unwrap()).unwrap();
        let plaintext = serde_json::to_vec(&credentials()).unwrap();
        let sealed = seal_credentials(&key, message_id, account, &plaintext).unwrap();
        json!({"version": 1, "message_id": "r", "in_reply_to": message_id, "kind": "credentials.request",
               "sent_at": "2026-11-22T12:00:00Z", "status": "ok",
               "result": {"sealed_credentials": sealed, "expires_at": "2026-11-22T13:00:00Z", "account": account,
                          "role_arn": "arn:aws:iam::123456789012:role/broker", "session_name": "alice",
                          "source_identity": "alice", "session_policy_size": 300, "grant_ids": []}})
    }

    fn mid(s: &str) -> MessageId {
        MessageId::parse(s).unwrap()
    }

    #[test]
    fn only_credentials_requests_without_a_key_get_one() {
        let mut body = json!({"account": ACCOUNT});
        assert!(prepare(Kind::CredentialsRequest, &mut body).is_some());
        assert_eq!(body["reply_key"].as_str().unwrap().len(), 43);
        let given = body.clone();
        assert!(prepare(Kind::CredentialsRequest, &mut body).is_none(), "a key the caller chose is kept");
        assert_eq!(body, given);
        let mut list = json!({});
        assert!(prepare(Kind::GrantList, &mut list).is_none());
        assert_eq!(list, json!({}));
        let mut odd = json!(["not", "an", "object"]);
        assert!(prepare(Kind::CredentialsRequest, &mut odd).is_none(), "no panic on a body that is not an object");
    }

    #[test]
    fn the_own_reply_opens_into_credentials() {
        let mut body = json!({"account": ACCOUNT});
        let secret = prepare(Kind::CredentialsRequest, &mut body).unwrap();
        let mut reply = sealed_reply(&body, "m-1", ACCOUNT);
        open_reply(&mut reply, &secret, &mid("m-1"), ACCOUNT).unwrap();
        assert_eq!(reply["result"]["credentials"], credentials());
        assert!(reply["result"]["sealed_credentials"].is_object(), "the sealed form stays");
    }

    #[test]
    fn another_key_message_id_or_account_is_refused() {
        let mut body = json!({"account": ACCOUNT});
        let secret = prepare(Kind::CredentialsRequest, &mut body).unwrap();
        let reply = sealed_reply(&body, "m-1", ACCOUNT);
        let mut other_body = json!({"account": ACCOUNT});
        let other_secret = prepare(Kind::CredentialsRequest, &mut other_body).unwrap();
        for (secret, message_id, account) in
            [(&other_secret, "m-1", ACCOUNT), (&secret, "m-2", ACCOUNT), (&secret, "m-1", "210987654321")]
        {
            let mut reply = reply.clone();
            let err = open_reply(&mut reply, secret, &mid(message_id), account).unwrap_err();
            assert!(matches!(err, ClientError::Sealed(_)), "{err}");
            assert!(reply["result"].get("credentials").is_none(), "nothing was put in the result");
        }
    }

    #[test]
    fn clear_or_missing_credentials_are_refused_when_sealed_ones_were_asked_for() {
        let mut body = json!({"account": ACCOUNT});
        let secret = prepare(Kind::CredentialsRequest, &mut body).unwrap();
        let mut clear = sealed_reply(&body, "m-1", ACCOUNT);
        clear["result"]["credentials"] = credentials();
        let err = open_reply(&mut clear, &secret, &mid("m-1"), ACCOUNT).unwrap_err();
        assert!(err.to_string().contains("in clear"), "{err}");
        let mut missing = sealed_reply(&body, "m-1", ACCOUNT);
        missing["result"].as_object_mut().unwrap().remove("sealed_credentials");
        let err = open_reply(&mut missing, &secret, &mid("m-1"), ACCOUNT).unwrap_err();
        assert!(err.to_string().contains("sealed_credentials"), "{err}");
        let mut tampered = sealed_reply(&body, "m-1", ACCOUNT);
        tampered["result"]["sealed_credentials"]["ciphertext"] = json!("AAAA");
        assert!(open_reply(&mut tampered, &secret, &mid("m-1"), ACCOUNT).is_err());
    }

    #[test]
    fn opened_credentials_that_do_not_read_are_refused_without_quoting_them() {
        let mut body = json!({"account": ACCOUNT});
        let secret = prepare(Kind::CredentialsRequest, &mut body).unwrap();
        let key = portcullis_domain::sealed::ReplyKey::parse(body["reply_key"].as_str().unwrap()).unwrap();
        let odd = json!({"Version": "very-secret-value", "AccessKeyId": "A", "SecretAccessKey": "very-secret-value",
                         "SessionToken": "t", "Expiration": "2026-11-22T13:00:00Z"});
        let sealed = seal_credentials(&key, "m-1", ACCOUNT, &serde_json::to_vec(&odd).unwrap()).unwrap();
        let mut reply = sealed_reply(&body, "m-1", ACCOUNT);
        reply["result"]["sealed_credentials"] = serde_json::to_value(sealed).unwrap();
        let err = open_reply(&mut reply, &secret, &mid("m-1"), ACCOUNT).unwrap_err().to_string();
        assert!(err.contains("not the credential_process JSON") && !err.contains("very-secret"), "{err}");
    }

    #[test]
    fn refusals_are_left_alone() {
        let mut body = json!({"account": ACCOUNT});
        let secret = prepare(Kind::CredentialsRequest, &mut body).unwrap();
        let mut refused = json!({"status": "error", "error": {"code": "no_grants", "message": "m"}});
        let before = refused.clone();
        open_reply(&mut refused, &secret, &mid("m-1"), ACCOUNT).unwrap();
        assert_eq!(refused, before);
    }
}
