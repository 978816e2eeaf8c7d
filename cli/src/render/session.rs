//! Who is logged in (`portcullis whoami`, and after `portcullis login`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{table, until};
use crate::login::Session;

/// The session as `--output json` shows it.
pub(crate) fn session_json(s: &Session, now: DateTime<Utc>) -> Value {
    json!({
        "user": s.subject, "display_name": s.name(), "team": s.team, "groups": s.groups, "issuer": s.issuer,
        "expires_at": s.expires_at, "expires_in_seconds": (s.expires_at - now).num_seconds().max(0),
        "refreshable": s.refresh_token.is_some(), "flow": s.flow,
    })
}

/// `portcullis whoami`: one `key  value` line per fact.
pub(crate) fn whoami(session: &Session, now: DateTime<Utc>) -> String {
    let rows = vec![
        vec!["user".into(), session.name().to_owned()],
        vec!["subject".into(), session.subject.clone()],
        vec!["team".into(), session.team.clone().unwrap_or_else(|| "-".into())],
        vec!["groups".into(), if session.groups.is_empty() { "-".into() } else { session.groups.join(", ") }],
        vec!["issuer".into(), session.issuer.clone()],
        vec!["expires".into(), format!("{} (in {})", session.expires_at.to_rfc3339(), until(session.expires_at, now))],
        vec!["refreshable".into(), if session.refresh_token.is_some() { "yes".into() } else { "no".into() }],
    ];
    table(&["", ""], &rows).lines().skip(1).map(|l| format!("{l}\n")).collect()
}

/// After a login.
pub(crate) fn logged_in(session: &Session) -> String {
    let flow = match &session.display_name {
        Some(name) if name != &session.subject => format!("{}, sub {}", session.flow, session.subject),
        _ => session.flow.clone(),
    };
    format!("logged in as {} ({flow}), until {}\n", session.name(), session.expires_at.to_rfc3339())
}
