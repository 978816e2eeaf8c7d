//! The access worker: templates, grants and credentials over the access-requests queue.
//!
//! # Layout
//!
//! Lower modules first; each imports only those above it in this list:
//!
//! - [`config`]: [`config::AccessConfig`], the access rules from the settings (imports nothing of
//!   this crate).
//! - [`failure`]: [`failure::Failure`] (refused with a code, or retry) and the one conversion of every
//!   classified port failure into it (imports nothing of this crate).
//! - [`ports`]: what the use cases need from the world, and [`ports::Ports`], the set of them.
//! - [`front`]: admission and answering, shared with the directory worker.
//! - [`handler`]: the [`handler::AccessHandler`], one message in four steps (admit, authenticate,
//!   apply, answer).
//! - [`usecases`]: one use case per kind (template put/get/list/delete, grant request/list,
//!   credentials), over the ports; the decisions themselves are the domain's.
//! - [`approvals`]: the second person (`grant.approve`, `grant.deny`, `grant.pending`, `grant.review`).
//! - [`revoke`]: taking access away (grants, and live sessions through each broker role).
//! - [`posture_status`]: the read-only `posture.status` use case and who may use it.
//! - [`adapters`]: those ports over DynamoDB, STS, SQS and OIDC.
//! - [`fakes`] (tests, feature `test-util`): those ports in memory.
//! - [`metrics`]: the access worker's counters and histograms.

pub mod adapters;
pub mod approvals;
pub mod config;
pub mod failure;
#[cfg(any(test, feature = "test-util"))]
pub mod fakes;
pub mod front;
pub mod handler;
pub mod metrics;
pub mod ports;
pub mod posture_status;
pub mod revoke;
#[cfg(test)]
mod tests;
mod usecases;

pub use config::AccessConfig;
pub use handler::AccessHandler;
pub use ports::Ports;
