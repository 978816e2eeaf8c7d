//! Secrets out of everything Portcullis keeps or logs about a message.
//!
//! An ID token is a bearer credential: whoever reads a dead-letter queue, a log line or an audit event
//! must not be able to act as the requester with it. [`redact_secrets`] removes every JWT-shaped
//! string wherever it sits (a field of any name, nested, inside another string, in a body that is not
//! even JSON) and the value of every field named like a secret.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Field names whose values are secrets whatever they look like.
const SECRET_FIELDS: [&str; 5] =
    ["identity_token", "SecretAccessKey", "SessionToken", "secret_access_key", "session_token"];

/// `text` with every JWT-shaped run (`eyJ…` base64url, `.`, base64url, `.`, optional base64url)
/// replaced by `[redacted]`, and, when `text` is JSON, the values of secret-named fields too. Linear
/// in the length of `text`; no recursion (nested JSON is handled by a loop over an explicit stack).
pub fn redact_secrets(text: &str) -> String {
    let jwt_free = redact_jwts(text);
    match serde_json::from_str::<serde_json::Value>(&jwt_free) {
        Ok(mut v) if v.is_object() || v.is_array() => {
            if redact_secret_fields(&mut v) {
                v.to_string()
            } else {
                jwt_free
            }
        }
        _ => jwt_free,
    }
}

/// Whether `text` holds anything [`redact_secrets`] would remove.
pub fn contains_secret(text: &str) -> bool {
    redact_secrets(text) != text
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Replace JWT-shaped runs. A JWT's header is base64url JSON, so it starts with `eyJ` (`{"`).
fn redact_jwts(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        let at_start = i == 0 || !is_b64url(bytes[i - 1]);
        if at_start
            && &bytes[i..i + 3] == b"eyJ"
            && let Some(end) = jwt_end(bytes, i)
        {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// The end of a JWT starting at `start`: three base64url segments separated by dots (the third may
/// be empty, as in an unsigned token), the first two at least 4 characters.
fn jwt_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    let segment = |i: &mut usize| {
        let from = *i;
        while *i < bytes.len() && is_b64url(bytes[*i]) {
            *i += 1;
        }
        *i - from
    };
    if segment(&mut i) < 4 || bytes.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    if segment(&mut i) < 4 || bytes.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    segment(&mut i);
    Some(i)
}

/// Blank secret-named fields anywhere in `v`; true when something changed.
fn redact_secret_fields(v: &mut serde_json::Value) -> bool {
    let mut changed = false;
    let mut stack = vec![v];
    while let Some(node) = stack.pop() {
        match node {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if SECRET_FIELDS.contains(&key.as_str()) && !value.is_null() && value.as_str() != Some(REDACTED) {
                        *value = serde_json::Value::String(REDACTED.into());
                        changed = true;
                    } else {
                        stack.push(value);
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

    #[test]
    fn tokens_go_wherever_they_sit() {
        let body = format!(r#"{{"version":1,"kind":"grant.list","identity_token":"{JWT}","body":{{}}}}"#);
        let kept = redact_secrets(&body);
        assert!(!kept.contains("c2lnbmF0dXJl") && kept.contains("grant.list"), "{kept}");
        // Somewhere else, nested, in another field name, inside a string.
        for body in [
            format!(r#"{{"body":{{"note":"{JWT}"}}}}"#),
            format!(r#"{{"token":"Bearer {JWT}"}}"#),
            format!(r#"[[[{{"x":["{JWT}"]}}]]]"#),
            format!("not json at all {JWT} trailing"),
            format!(r#"{{"broken": "{JWT}"#),
            format!("{JWT}.extra"),
        ] {
            let kept = redact_secrets(&body);
            assert!(!kept.contains("eyJzdWIiOiJhbGljZSJ9"), "{body} -> {kept}");
            assert!(kept.contains(REDACTED));
            assert!(contains_secret(&body));
        }
        // An unsigned token (alg none) has an empty third segment.
        assert_eq!(redact_secrets("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."), REDACTED);
    }

    #[test]
    fn secret_fields_go_whatever_they_hold_and_the_rest_stays() {
        let body = r#"{"identity_token":"not-a-jwt","body":{"SecretAccessKey":"abc","keep":"eyJ-short"}}"#;
        let kept: serde_json::Value = serde_json::from_str(&redact_secrets(body)).unwrap();
        assert_eq!(kept["identity_token"], REDACTED);
        assert_eq!(kept["body"]["SecretAccessKey"], REDACTED);
        assert_eq!(kept["body"]["keep"], "eyJ-short");
        assert_eq!(redact_secrets("plain text"), "plain text");
        assert_eq!(redact_secrets(r#"{"identity_token":null}"#), r#"{"identity_token":null}"#);
        assert!(!contains_secret(r#"{"kind":"grant.list"}"#));
    }

    /// serde_json stops at 128 levels of nesting, so even a debug build stays well inside a quarter
    /// of the 2 MiB a tokio worker thread has.
    #[test]
    fn deeply_nested_json_and_huge_bodies_do_not_overflow() {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(|| {
                let deep = format!("{}\"{JWT}\"{}", "[".repeat(100_000), "]".repeat(100_000));
                let kept = redact_secrets(&deep);
                assert!(!kept.contains("c2lnbmF0dXJl"));
                let huge = "eyJ".repeat(100_000);
                assert_eq!(redact_secrets(&huge), huge);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
