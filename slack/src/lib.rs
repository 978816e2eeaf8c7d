//! `portcullis-slack`: the Slack edge of Portcullis. People request, approve, deny, review and
//! revoke access from Slack; the edge verifies every Slack request, maps the Slack user to the
//! IdP identity they linked once, and sends the request to the workers as a trusted producer
//! acting `on_behalf_of` that person (`portcullis-client`). It keeps every Slack copy of a grant's
//! message in step with the audit events on the Portcullis bus, whoever decided.
//!
//! ```text
//! Slack ──signed HTTP──▶ edge (verify, bind, ack < 1 s) ──SQS access-requests──▶ access worker
//!   ▲                      │  spawned: ask on_behalf_of, wait on <prefix>-reply-slack ◀── reply
//!   └── chat.update ◀──────┴── <prefix>-slack-events ◀── EventBridge rule ◀── audit events (bus)
//! ```
//!
//! # Layout
//!
//! - `verify`: the request signature, the 300 s window, replays (pure).
//! - `inbound`: slash commands, interactions and events parsed from the verified body (pure).
//! - `command`: the `/portcullis …` text (pure). `form`: the request modal's values checked
//!   against the template's patterns (pure).
//! - `card` and `render`: what a grant's messages, the App Home and the modals show (pure).
//! - `ports`: Slack's Web API, Portcullis, the edge's records, the audit bus; `memory`: fakes.
//! - `edge`: what each request, browser visit and bus event does, over the ports.
//! - `link`: the one-time OIDC account link (authorization code + PKCE + nonce).
//! - `adapters`: Slack over HTTP, Portcullis over SQS, DynamoDB, EventBridge; `bus`: the events
//!   queue consumer.
//! - `http`: the axum router (the raw body is verified before anything is parsed).
//! - `fake_slack`: a local fake of Slack's Web API (tests, `make run`); `fixtures`: the recorded
//!   payloads, signed.
//! - `settings`, `app`: configuration and wiring; `main.rs` only calls `app`.

pub mod adapters;
pub mod app;
pub mod bus;
pub mod card;
pub mod command;
pub mod edge;
pub mod fake_slack;
pub mod fixtures;
pub mod form;
pub mod http;
pub mod inbound;
pub mod link;
pub mod memory;
pub mod ports;
pub mod render;
pub mod settings;
pub mod socket;
pub mod verify;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
