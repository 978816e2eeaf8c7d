//! What Slack sent, parsed from the verified raw body into the few fields the edge acts on.
//!
//! slack-morphism's inbound types are not used here: its slash-command, shortcut and view
//! submission types have no `api_app_id`, which the edge must check on every request. Its Block
//! Kit and Web API types are used for everything the edge sends.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A body that is not what Slack sends to this endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Slack {what}: {why}")]
pub struct InboundError {
    pub what: &'static str,
    pub why: String,
}

/// Where a request comes from: checked against the configured workspace and app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub team_id: String,
    pub api_app_id: String,
}

/// A slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub origin: Origin,
    pub user_id: String,
    pub channel_id: String,
    pub command: String,
    pub text: String,
    pub response_url: String,
    pub trigger_id: String,
}

/// Parse `/slack/commands`' form body.
pub fn command(body: &[u8]) -> Result<Command, InboundError> {
    let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let need = |k: &'static str| {
        fields
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(InboundError { what: "slash command", why: format!("no `{k}`") })
    };
    Ok(Command {
        origin: Origin { team_id: need("team_id")?, api_app_id: need("api_app_id")? },
        user_id: need("user_id")?,
        channel_id: get("channel_id"),
        command: get("command"),
        text: get("text"),
        response_url: get("response_url"),
        trigger_id: get("trigger_id"),
    })
}

/// A button click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub action_id: String,
    /// The button's value: a grant id.
    pub value: String,
    pub action_ts: String,
}

/// An interaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    /// Buttons in a message, the App Home or a modal.
    BlockActions {
        origin: Origin,
        user_id: String,
        clicks: Vec<Click>,
        response_url: Option<String>,
        trigger_id: String,
        /// Where the clicked message is (channel, ts), when it is a message.
        message: Option<(String, String)>,
    },
    /// The global shortcut.
    Shortcut { origin: Origin, user_id: String, callback_id: String, trigger_id: String },
    /// A modal submitted.
    ViewSubmission {
        origin: Origin,
        user_id: String,
        callback_id: String,
        private_metadata: String,
        /// block_id → action_id → the value typed or picked.
        values: BTreeMap<String, BTreeMap<String, String>>,
    },
    /// Anything else (view closed, block suggestions): acknowledged, nothing done.
    Other { origin: Origin, kind: String },
}

impl Interaction {
    pub fn origin(&self) -> &Origin {
        match self {
            Interaction::BlockActions { origin, .. }
            | Interaction::Shortcut { origin, .. }
            | Interaction::ViewSubmission { origin, .. }
            | Interaction::Other { origin, .. } => origin,
        }
    }
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    team: Option<IdOnly>,
    api_app_id: Option<String>,
    user: Option<IdOnly>,
    trigger_id: Option<String>,
    response_url: Option<String>,
    callback_id: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
    container: Option<RawContainer>,
    view: Option<RawView>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    value: Option<String>,
    action_ts: Option<String>,
}

#[derive(Deserialize)]
struct RawContainer {
    channel_id: Option<String>,
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct RawView {
    callback_id: Option<String>,
    private_metadata: Option<String>,
    state: Option<RawState>,
}

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, Value>>,
}

/// The value of one input in a view's state: typed text, or the picked option's value.
fn state_value(v: &Value) -> Option<String> {
    v.get("value")
        .and_then(Value::as_str)
        .or_else(|| v.get("selected_option").and_then(|o| o.get("value")).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Parse `/slack/interactions`' form body (`payload=<JSON>`).
pub fn interaction(body: &[u8]) -> Result<Interaction, InboundError> {
    let bad = |why: String| InboundError { what: "interaction", why };
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| bad("no `payload`".into()))?;
    let raw: RawInteraction = serde_json::from_str(&payload).map_err(|e| bad(e.to_string()))?;
    let origin = Origin {
        team_id: raw.team.map(|t| t.id).ok_or_else(|| bad("no `team.id`".into()))?,
        api_app_id: raw.api_app_id.ok_or_else(|| bad("no `api_app_id`".into()))?,
    };
    let user_id = raw.user.map(|u| u.id).ok_or_else(|| bad("no `user.id`".into()))?;
    Ok(match raw.kind.as_str() {
        "block_actions" => Interaction::BlockActions {
            origin,
            user_id,
            clicks: raw
                .actions
                .into_iter()
                .map(|a| Click {
                    action_id: a.action_id,
                    value: a.value.unwrap_or_default(),
                    action_ts: a.action_ts.unwrap_or_default(),
                })
                .collect(),
            response_url: raw.response_url,
            trigger_id: raw.trigger_id.unwrap_or_default(),
            message: raw.container.and_then(|c| Some((c.channel_id?, c.message_ts?))),
        },
        "shortcut" => Interaction::Shortcut {
            origin,
            user_id,
            callback_id: raw.callback_id.unwrap_or_default(),
            trigger_id: raw.trigger_id.unwrap_or_default(),
        },
        "view_submission" => {
            let view = raw.view.ok_or_else(|| bad("no `view`".into()))?;
            let values = view
                .state
                .map(|s| s.values)
                .unwrap_or_default()
                .into_iter()
                .map(|(block, inputs)| {
                    (block, inputs.into_iter().filter_map(|(action, v)| state_value(&v).map(|s| (action, s))).collect())
                })
                .collect();
            Interaction::ViewSubmission {
                origin,
                user_id,
                callback_id: view.callback_id.unwrap_or_default(),
                private_metadata: view.private_metadata.unwrap_or_default(),
                values,
            }
        }
        other => Interaction::Other { origin, kind: other.to_owned() },
    })
}

/// An Events API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Slack checking the URL when it is configured: answer the challenge.
    UrlVerification { challenge: String },
    /// The person opened the app's Home tab.
    AppHomeOpened { origin: Origin, user_id: String, event_id: String },
    /// Any other event: acknowledged.
    Other { origin: Option<Origin>, kind: String },
}

#[derive(Deserialize)]
struct RawEvents {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    team_id: Option<String>,
    api_app_id: Option<String>,
    event_id: Option<String>,
    event: Option<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
    tab: Option<String>,
}

/// Parse `/slack/events`' JSON body.
pub fn event(body: &[u8]) -> Result<Event, InboundError> {
    let bad = |why: String| InboundError { what: "event", why };
    let raw: RawEvents = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    if raw.kind == "url_verification" {
        return Ok(Event::UrlVerification { challenge: raw.challenge.ok_or_else(|| bad("no `challenge`".into()))? });
    }
    let origin = match (raw.team_id, raw.api_app_id) {
        (Some(team_id), Some(api_app_id)) => Some(Origin { team_id, api_app_id }),
        _ => None,
    };
    let Some(event) = raw.event else { return Ok(Event::Other { origin, kind: raw.kind }) };
    match (event.kind.as_str(), origin, event.user) {
        ("app_home_opened", Some(origin), Some(user_id)) if event.tab.as_deref() != Some("messages") => {
            Ok(Event::AppHomeOpened { origin, user_id, event_id: raw.event_id.unwrap_or_default() })
        }
        (kind, origin, _) => Ok(Event::Other { origin, kind: kind.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::fixtures;

    #[test]
    fn the_recorded_payloads_parse() {
        let c = command(&fixtures::command(
            "command_request.form",
            &[("user", "U0ALICE"), ("text", "request bucketRead a=b"), ("slack", "https://hooks.test")],
        ))
        .unwrap();
        assert_eq!(
            (c.origin.team_id.as_str(), c.origin.api_app_id.as_str(), c.user_id.as_str()),
            ("T0PORTCUL", "A0PORTCUL", "U0ALICE")
        );
        assert!(c.text.starts_with("request bucketRead"), "{}", c.text);
        let vars = [
            ("user", "U0BOB"),
            ("action", "portcullis_approve"),
            ("grant", "g-1"),
            ("channel", "C1"),
            ("ts", "1.2"),
            ("action_ts", "1.3"),
            ("slack", "https://hooks.test"),
        ];
        let Interaction::BlockActions { clicks, message, .. } =
            interaction(&fixtures::interaction("approve_click.json", &vars)).unwrap()
        else {
            panic!()
        };
        assert_eq!((clicks[0].action_id.as_str(), clicks[0].value.as_str()), ("portcullis_approve", "g-1"));
        assert!(message.is_some());
        assert!(matches!(
            interaction(&fixtures::interaction("shortcut.json", &[("user", "U0ALICE")])).unwrap(),
            Interaction::Shortcut { .. }
        ));
        let vars = [("user", "U0ALICE"), ("metadata", "\"{}\""), ("bucket", "exports")];
        let Interaction::ViewSubmission { values, .. } =
            interaction(&fixtures::interaction("request_submission.json", &vars)).unwrap()
        else {
            panic!()
        };
        assert_eq!(values["param:bucketName"]["value"], "exports");
        let home = fixtures::event("app_home_opened.json", &[("user", "U0ALICE"), ("nonce", "1")]);
        assert!(matches!(event(&home).unwrap(), Event::AppHomeOpened { .. }));
        assert_eq!(
            event(br#"{"type":"url_verification","challenge":"abc","token":"x"}"#).unwrap(),
            Event::UrlVerification { challenge: "abc".into() }
        );
    }

    #[test]
    fn bodies_without_origin_are_refused() {
        assert!(command(b"user_id=U1&text=list").is_err());
        assert!(interaction(b"payload=%7B%22type%22%3A%22block_actions%22%7D").is_err());
        assert!(interaction(b"nothing=here").is_err());
        assert!(event(b"not json").is_err());
    }
}
