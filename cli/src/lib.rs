//! The `portcullis` command, as a library: `main.rs` only parses the command line.
//!
//! # Layout
//!
//! - [`client`]: send a request envelope on the access-requests queue and wait for its reply.
//! - [`stack`]: deploy the CloudFormation stack through the CloudFormation API.
//! - [`dev_issuer`]: the local development identity issuer (key, JWKS, tokens).

pub mod client;
pub mod dev_issuer;
pub mod stack;
