//! The `portcullis` command, as a library: `main.rs` only calls [`commands::main`].
//!
//! People log in with the company's OpenID provider, reach the Portcullis queues with nothing but
//! their ID token (the stack's requester role, assumed with `AssumeRoleWithWebIdentity`), and get
//! credentials that work in the AWS CLI and SDKs (`credential_process`), cached so that a profile
//! costs one round trip per session.
//!
//! # Layout
//!
//! - [`commands`]: every command's flags and behaviour; exit codes in [`error`].
//! - [`config`]: the CLI's own configuration (XDG), with where each value came from.
//! - [`login`]: authorization code + PKCE with a loopback redirect, the device flow, the session
//!   and its refresh (`openidconnect`).
//! - [`requester`]: the requester role and the person's own reply queue; [`client`]: send a request
//!   envelope and wait for its reply.
//! - [`credentials`]: the credentials cache; [`aws_profile`]: `~/.aws/config` profiles;
//!   [`console`]: console sign-in URLs.
//! - [`output`]: tables, JSON, the spinner; [`files`]: private (0600) files and locks.
//! - [`operator`]: `stack deploy` ([`stack`]) and the development issuer ([`dev_issuer`]).

pub mod aws_profile;
pub mod client;
pub mod commands;
pub mod config;
pub mod console;
pub mod credentials;
pub mod error;
pub mod files;
pub mod login;
pub mod operator;
pub mod output;
pub mod requester;
pub mod stack;

/// The development issuer now lives in the client crate.
pub use portcullis_client::dev_issuer;
