//! The Portcullis workers, as a library: `main.rs` only parses the command line and wires.
//!
//! # Layout
//!
//! - [`access`]: the access handler (templates, grants, credentials) over the access-requests queue.
//! - [`posture`]: the posture worker (controls, scans, events, metrics, evidence).
//! - [`app`]: wiring: AWS clients, queues and consumers for each worker, run until shutdown.

pub mod access;
pub mod app;
pub mod posture;
