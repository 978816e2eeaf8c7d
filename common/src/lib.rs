//! Shared core of Portcullis: the domain (statement templates, grants, session policies), the message
//! contract spoken over SQS, configuration, identity verification, AWS adapters, telemetry and the SQS
//! consumer runtime that every worker runs on.
//!
//! # Layout
//!
//! - [`error`]: the stable, machine-readable error codes every reply and dead-letter message carries.
//! - [`messages`]: the versioned JSON envelope, every request and reply body, and their JSON Schemas.
//! - [`config`]: typed settings from one TOML file plus `PORTCULLIS__` environment overrides.
//! - [`identity`]: OIDC ID-token verification against a JWKS, and the local development issuer.
//! - [`template`]: statement templates: validation, compilation and rendering (pure).
//! - [`policy`]: composition of live grants into one STS session policy (pure).
//! - [`grant`]: the grant record and its lifetime rules (pure).
//! - [`store`]: DynamoDB persistence of templates, grants and idempotency records.
//! - [`broker`]: the STS adapter that turns a session policy into temporary credentials.
//! - [`aws`]: SDK configuration and the API-call counter used by benchmarks and tests.
//! - [`queue`]: the `Queue` abstraction, its SQS implementation and the consumer runtime.
//! - [`telemetry`]: `tracing` logs plus OTLP metrics and traces, with a bounded shutdown.
//! - [`naming`]: how resource names derive from the stack prefix.
//! - [`client`]: send a request and wait for its reply (used by the CLI and the tests).
//! - [`stack`]: deploy the CloudFormation stack through the CloudFormation API.
//!
//! Pure modules (`template`, `policy`, `grant`, `messages`) do no I/O and are unit-tested next to the
//! code; the adapters are exercised by the integration tests in `tests/` against a real emulator.

pub mod aws;
pub mod broker;
pub mod client;
pub mod config;
pub mod error;
pub mod grant;
pub mod identity;
pub mod messages;
pub mod naming;
pub mod policy;
pub mod queue;
pub mod stack;
pub mod store;
pub mod telemetry;
pub mod template;

pub use error::ErrorCode;
