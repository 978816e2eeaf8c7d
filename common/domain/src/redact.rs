//! Secrets out of everything Portcullis keeps or logs about a message.
//!
//! An ID token is a bearer credential: whoever reads a dead-letter queue, a log line or an audit event
//! must not be able to act as the requester with it; so are an AWS secret access key and session
//! token. [`redact_secrets`] removes every JWT-shaped string, every run shaped like an AWS secret
//! access key (40 characters of base64 mixing upper and lower case) or session token
//! (100 or more such characters) wherever it sits (a field of any name, nested, inside another string,
//! in a body that is not even JSON) and the value of every field named like a secret. It is the one
//! redaction function: dead letters, refusal replies, audit events and the free text the workers log
//! go through it.
//!
//! Free text is checked at admission too ([`secret_in_body`]): a request whose reason or note holds
//! a secret (or an AWS access key id, which is not a secret but names one) is refused with
//! `secret_in_request` rather than redacted, so the requester learns that they pasted a secret (and
//! must rotate it), and what is stored is exactly what they sent: an audit trail whose reasons were
//! silently rewritten would say less than it seems to.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Field names whose values are secrets whatever they look like.
const SECRET_FIELDS: [&str; 5] =
    ["identity_token", "SecretAccessKey", "SessionToken", "secret_access_key", "session_token"];

/// `text` with every JWT-shaped run (`eyJ…` base64url, `.`, base64url, `.`, optional base64url)
/// replaced by `[redacted]`, and, when `text` is JSON, the values of secret-named fields too. Linear
/// in the length of `text`; no recursion (nested JSON is handled by a loop over an explicit stack).
pub fn redact_secrets(text: &str) -> String {
    let jwt_free = redact_aws_secrets(&redact_jwts(text));
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

/// What kind of secret `text` holds, if any (the first found): JWT-shaped strings, AWS access key
/// ids (`AKIA`/`ASIA` and 16 upper-case letters or digits), AWS secret access keys and session tokens.
pub fn secret_in_text(text: &str) -> Option<&'static str> {
    if redact_jwts(text) != text {
        return Some("an ID token (JWT)");
    }
    if let Some(what) = aws_secret_runs(text).first().map(|(_, _, what)| *what) {
        return Some(what);
    }
    if has_access_key_id(text) {
        return Some("an AWS access key id");
    }
    None
}

/// The first string of a request `body` (any field, nested) that holds a secret: its path and what
/// it holds. `reply_key` (a public key) is not free text and is not looked at.
pub fn secret_in_body(body: &serde_json::Value) -> Option<(String, &'static str)> {
    let mut stack = vec![("body".to_owned(), body)];
    while let Some((path, node)) = stack.pop() {
        match node {
            serde_json::Value::String(text) => {
                if let Some(what) = secret_in_text(text) {
                    return Some((path, what));
                }
            }
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter().filter(|(k, _)| k.as_str() != "reply_key") {
                    stack.push((format!("{path}.{key}"), value));
                }
            }
            serde_json::Value::Array(items) => {
                stack.extend(items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)));
            }
            _ => {}
        }
    }
    None
}

/// Standard base64 without padding: what AWS secret access keys and session tokens are made of.
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Maximal base64 runs shaped like an AWS secret (40 characters: a secret access key; 100 or more: a
/// session token) that mix upper and lower case (so hex digests and lower-case words are left
/// alone): (start, end, what).
fn aws_secret_runs(text: &str) -> Vec<(usize, usize, &'static str)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_b64(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_b64(bytes[i]) {
            i += 1;
        }
        let run = &bytes[start..i];
        let mixed = run.iter().any(u8::is_ascii_uppercase) && run.iter().any(u8::is_ascii_lowercase);
        let what = match run.len() {
            40 => Some("an AWS secret access key"),
            n if n >= 100 => Some("an AWS session token"),
            _ => None,
        };
        if let Some(what) = what.filter(|_| mixed) {
            runs.push((start, i, what));
        }
    }
    runs
}

fn redact_aws_secrets(text: &str) -> String {
    let runs = aws_secret_runs(text);
    if runs.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end, _) in runs {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether `text` holds an AWS access key id: `AKIA` or `ASIA` and 16 upper-case letters or digits,
/// not part of a longer such run.
fn has_access_key_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let mut i = 0;
    while i < bytes.len() {
        if !word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        let run = &bytes[start..i];
        if run.len() == 20 && (run.starts_with(b"AKIA") || run.starts_with(b"ASIA")) {
            return true;
        }
    }
    false
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

    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn aws_secrets_go_and_what_merely_resembles_them_stays() {
        let token = format!("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD{}", "aB3".repeat(40));
        for text in [
            format!("reason: {SECRET_KEY}"),
            format!("secret={SECRET_KEY} rest"),
            format!("token {token} trailing"),
            format!(r#"{{"note":"{token}"}}"#),
        ] {
            let kept = redact_secrets(&text);
            assert!(!kept.contains(SECRET_KEY) && !kept.contains(&token), "{kept}");
            assert!(kept.contains(REDACTED), "{kept}");
            assert!(secret_in_text(&text).is_some(), "{text}");
        }
        // A SHA-1 in hex, a word, an ARN, a base64url public key: not secrets.
        for text in [
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "incident 42: the payments database is down",
            "arn:aws:s3:::payments-reports/2026/11/*",
            "5Y0bqO3wXJv9mK2lT8rN1cA7dE4fG6hI0jK-L_mNoPq",
        ] {
            assert_eq!(redact_secrets(text), text);
            assert_eq!(secret_in_text(text), None, "{text}");
        }
        // Access key ids are refused in free text (they name a secret), but not redacted: the
        // `Credentials Issued` event names the session's key id on purpose.
        assert_eq!(secret_in_text("key AKIAIOSFODNN7EXAMPLE leaked"), Some("an AWS access key id"));
        assert_eq!(redact_secrets("ASIAIOSFODNN7EXAMPLE"), "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(secret_in_text("AKIAIOSFODNN7EXAMPLEX"), None, "a longer run is something else");
        let body = serde_json::json!({"reason": "ok", "params": {"x": ["fine", format!("Bearer {JWT}")]},
                                      "reply_key": "not looked at"});
        assert_eq!(secret_in_body(&body), Some(("body.params.x[1]".to_owned(), "an ID token (JWT)")));
        assert_eq!(secret_in_body(&serde_json::json!({"reason": "incident 42"})), None);
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
                // Not a JWT, but one 300,000-character base64 run: gone as a session token would be.
                let huge = "eyJ".repeat(100_000);
                assert_eq!(redact_secrets(&huge), REDACTED);
                let dotted = "eyJ.".repeat(100_000);
                assert_eq!(redact_secrets(&dotted), dotted);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
