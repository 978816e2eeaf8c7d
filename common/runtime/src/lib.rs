//! What every Portcullis worker runs on, whatever it does.
//!
//! # Layout
//!
//! - [`queue`]: the [`queue::Queue`] seam (receive, extend visibility, delete in batches,
//!   dead-letter) with its SQS implementation and, behind the `test-util` feature, an in-memory one.
//! - [`consumer`]: the receive loop: bounded concurrency, a heartbeat per in-flight message, batch
//!   deletes, dead-lettering with a code and without secrets, graceful shutdown. Handlers return one
//!   typed [`consumer::Disposition`].
//! - [`config`]: typed settings from one TOML file plus `PORTCULLIS__` environment overrides.
//! - [`telemetry`]: `tracing` logs plus OTLP metrics and traces, with a bounded shutdown.
//! - [`aws`]: SDK configuration, the one classification of SDK errors, and the API-call counter.
//! - [`clock`]: the time as a port, so tests set it instead of waiting.

pub mod aws;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod queue;
pub mod telemetry;
