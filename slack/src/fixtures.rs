//! The recorded Slack payloads under `tests/payloads/` (bodies as Slack sends them, with `{{name}}`
//! placeholders for what changes per test), filled in and signed as Slack signs them. Used by the
//! unit tests, the end-to-end tests and the demo's fake Slack.

use std::path::PathBuf;

use crate::verify::sign;

/// The workspace and app the fixtures come from.
pub const TEAM: &str = "T0PORTCUL";
pub const APP: &str = "A0PORTCUL";

/// `slack/tests/payloads`.
pub fn payload_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/payloads")
}

/// A fixture's text with `vars` filled in, `{{team}}` and `{{app}}` defaulted, and `{{trigger}}`
/// a fresh trigger id unless given: Slack gives every invocation its own (a retry of one delivery
/// repeats its body, trigger id included).
pub fn fill(name: &str, vars: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(payload_dir().join(name)).unwrap_or_default();
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    text.replace("{{team}}", TEAM).replace("{{app}}", APP).replace("{{trigger}}", &trigger_id())
}

/// A trigger id in Slack's shape (`<digits>.<digits>.<hex>`).
fn trigger_id() -> String {
    let (a, b, c) = rand::random::<(u32, u32, u32)>();
    format!("{a}.{b}.{c:08x}")
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A slash command body (`command_*.form`): each value form-encoded.
pub fn command(name: &str, vars: &[(&str, &str)]) -> Vec<u8> {
    let encoded: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), encode(v))).collect();
    let refs: Vec<(&str, &str)> = encoded.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    fill(name, &refs).into_bytes()
}

/// An interaction body: `payload=<the JSON fixture, form-encoded>`.
pub fn interaction(name: &str, vars: &[(&str, &str)]) -> Vec<u8> {
    format!("payload={}", encode(&fill(name, vars))).into_bytes()
}

/// An Events API body (JSON as is).
pub fn event(name: &str, vars: &[(&str, &str)]) -> Vec<u8> {
    fill(name, vars).into_bytes()
}

/// The headers Slack would send with `body` at `timestamp`.
pub fn signature_headers(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("x-slack-request-timestamp", timestamp.to_string()), ("x-slack-signature", sign(secret, timestamp, body))]
}
