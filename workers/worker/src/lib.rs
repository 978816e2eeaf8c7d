//! `portcullis-worker`, as a library: the wiring of every worker. `main.rs` only parses the command
//! line and calls [`app`].
//!
//! # Layout
//!
//! - [`app`]: AWS clients, adapters, queues and consumers for each worker, run until shutdown, and
//!   `posture scan --once`.
//! - [`lambda`]: the same workers as AWS Lambda functions (SQS batches with item failures, schedules).

pub mod app;
pub mod lambda;
