//! The `portcullis` command, as a library: `main.rs` only calls [`commands::main`].
//!
//! People log in with the company's OpenID provider, reach the Portcullis queues with nothing but
//! their ID token (the stack's requester role, assumed with `AssumeRoleWithWebIdentity`), and get
//! credentials that work in the AWS CLI and SDKs (`credential_process`), cached so that a profile
//! costs one round trip per session. Everything said to Portcullis goes through the typed client,
//! `portcullis_client`: typed bodies out, typed results (or refusals) back.
//!
//! # Layout
//!
//! - [`commands`]: the global flags and the dispatch; one module per command with its flags and
//!   what it does (`commands/request.rs`, `commands/grants.rs`, ...). Exit codes in [`error`].
//! - [`context`]: what commands share: the configuration in force, the session, asking Portcullis,
//!   printing a result as JSON or text.
//! - [`render`]: the text and tables each typed result reads as.
//! - [`config`]: the CLI's own configuration (XDG), with where each value came from.
//! - [`login`]: authorization code + PKCE with a loopback redirect, the device flow, the session
//!   and its refresh (`openidconnect`).
//! - [`requester`]: the requester binding (`portcullis_client::requester`), cached.
//! - [`credentials`]: the credentials cache; [`aws_profile`]: `~/.aws/config` profiles;
//!   [`console`]: console sign-in URLs.
//! - [`output`]: `--output`, the spinner; [`files`]: private (0600) files and locks.
//! - [`operator`]: `stack deploy` ([`stack`]) and the development issuer ([`dev_issuer`], from
//!   `portcullis_client`).

pub mod aws_profile;
pub mod commands;
pub mod config;
pub mod console;
pub mod context;
pub mod credentials;
pub mod error;
pub mod files;
pub mod login;
pub mod operator;
pub mod output;
pub mod render;
pub mod requester;
pub mod stack;

/// The development issuer, from the client crate (the operator commands use it).
pub use portcullis_client::dev_issuer;
