//! Is this request from our Slack app, now, and the first time? Checked on the raw body, before
//! anything is parsed.
//!
//! - The signature: `X-Slack-Signature` is `v0=` + hex HMAC-SHA256(signing secret,
//!   `v0:{X-Slack-Request-Timestamp}:{raw body}`), compared in constant time
//!   ([`hmac::Mac::verify_slice`]). slack-morphism's own verifier also compares in constant time,
//!   but its error's `Display` carries the expected signature, one log line away from a forgery
//!   oracle; this one keeps nothing of it.
//! - The window: the timestamp within [`WINDOW_SECONDS`] of the edge's clock, either way.
//! - Replays: a valid signature proves origin, not uniqueness. A signature seen inside the window
//!   is refused ([`ReplayGuard`], in memory per replica: a replay sent to another replica is
//!   caught by the idempotent message ids the edge sends, not here).
//! - Slack's own retries (`X-Slack-Retry-Num`, Events API) are acknowledged without acting again:
//!   the first delivery was acted on (the edge acknowledges before it works).

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use portcullis_domain::ErrorCode;
use sha2::Sha256;

/// Slack's replay window, seconds.
pub const WINDOW_SECONDS: i64 = 300;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request is not signed by this Slack app")]
    BadSignature,
    #[error("the request's timestamp is missing or more than {WINDOW_SECONDS} s from now")]
    Stale,
    #[error("the request was seen already (a replay)")]
    Replayed,
}

impl VerifyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            VerifyError::BadSignature => ErrorCode::SlackSignatureInvalid,
            VerifyError::Stale | VerifyError::Replayed => ErrorCode::SlackRequestStale,
        }
    }
}

/// The signature headers of one request.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Slack-Signature`.
    pub signature: Option<&'a str>,
}

/// Check the signature over `body` and the timestamp against `now` (epoch seconds).
pub fn verify_signature(secret: &str, headers: Signed<'_>, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let ts_text = headers.timestamp.ok_or(VerifyError::Stale)?;
    let signature = headers.signature.ok_or(VerifyError::BadSignature)?;
    let given = signature.strip_prefix("v0=").and_then(|h| hex::decode(h).ok()).ok_or(VerifyError::BadSignature)?;
    if secret.is_empty() {
        return Err(VerifyError::BadSignature);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| VerifyError::BadSignature)?;
    mac.update(b"v0:");
    mac.update(ts_text.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| VerifyError::BadSignature)?;
    // Only a signed timestamp is read: an unsigned one says nothing.
    let ts: i64 = ts_text.parse().map_err(|_| VerifyError::Stale)?;
    if (now - ts).abs() > WINDOW_SECONDS {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

/// `v0=` + the hex signature of `body` at `timestamp` (the fake Slack and the tests sign with it).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Signatures seen inside the window, so a captured request cannot be played again.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    /// signature → the request's timestamp.
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayGuard {
    /// Record a verified request; `Err(Replayed)` when its signature was seen inside the window.
    pub fn first_time(&self, signature: &str, timestamp: i64, now: i64) -> Result<(), VerifyError> {
        let mut seen = self.seen.lock().map_err(|_| VerifyError::Replayed)?;
        // Forget what has left the window: a replay of it is stale anyway.
        seen.retain(|_, ts| (now - *ts).abs() <= WINDOW_SECONDS);
        if seen.insert(signature.to_owned(), timestamp).is_some() {
            return Err(VerifyError::Replayed);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers<'a>(ts: &'a str, sig: &'a str) -> Signed<'a> {
        Signed { timestamp: Some(ts), signature: Some(sig) }
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(verify_signature(SECRET, headers(TS, SIG), BODY.as_bytes(), 1531420618 + 10), Ok(()));
        assert_eq!(sign(SECRET, 1531420618, BODY.as_bytes()), SIG);
    }

    #[test]
    fn a_changed_body_secret_or_signature_is_refused() {
        let now = 1531420618;
        let bad = verify_signature(SECRET, headers(TS, SIG), b"token=other", now);
        assert_eq!(bad, Err(VerifyError::BadSignature));
        assert_eq!(verify_signature("another-secret-0000", headers(TS, SIG), BODY.as_bytes(), now), bad);
        let flipped = format!("{}0", &SIG[..SIG.len() - 1]);
        assert_eq!(verify_signature(SECRET, headers(TS, &flipped), BODY.as_bytes(), now), bad);
        assert_eq!(verify_signature(SECRET, headers(TS, "v1=00"), BODY.as_bytes(), now), bad);
        assert_eq!(verify_signature(SECRET, headers(TS, ""), BODY.as_bytes(), now), bad);
        let none = Signed { timestamp: Some(TS), signature: None };
        assert_eq!(verify_signature(SECRET, none, BODY.as_bytes(), now), bad);
        assert_eq!(bad.unwrap_err().code(), ErrorCode::SlackSignatureInvalid);
    }

    #[test]
    fn a_timestamp_outside_five_minutes_is_stale_either_way() {
        let ts = 1531420618;
        assert_eq!(verify_signature(SECRET, headers(TS, SIG), BODY.as_bytes(), ts + 300), Ok(()));
        assert_eq!(verify_signature(SECRET, headers(TS, SIG), BODY.as_bytes(), ts + 301), Err(VerifyError::Stale));
        assert_eq!(verify_signature(SECRET, headers(TS, SIG), BODY.as_bytes(), ts - 301), Err(VerifyError::Stale));
        // The timestamp is signed: moving it breaks the signature.
        let moved = (ts + 400).to_string();
        let got = verify_signature(SECRET, headers(&moved, SIG), BODY.as_bytes(), ts + 400);
        assert_eq!(got, Err(VerifyError::BadSignature));
        let none = Signed { timestamp: None, signature: Some(SIG) };
        assert_eq!(verify_signature(SECRET, none, BODY.as_bytes(), ts), Err(VerifyError::Stale));
    }

    #[test]
    fn a_signature_is_accepted_once_inside_the_window() {
        let guard = ReplayGuard::default();
        assert_eq!(guard.first_time("v0=aa", 1000, 1000), Ok(()));
        assert_eq!(guard.first_time("v0=aa", 1000, 1100), Err(VerifyError::Replayed));
        assert_eq!(guard.first_time("v0=bb", 1000, 1100), Ok(()));
        // Past the window the entry is forgotten (such a request is refused as stale before).
        assert_eq!(guard.first_time("v0=cc", 1400, 1400), Ok(()));
        assert_eq!(guard.len(), 1);
    }
}
