//! The access worker: templates, grants and credentials over the access-requests queue.
//!
//! # Layout
//!
//! - [`handler`]: the [`handler::AccessHandler`], one message in four steps (admit, authenticate,
//!   apply, answer), with its configuration and the [`handler::Ports`] it is built on.
//! - [`usecases`]: one use case per kind (template put/get/list/delete, grant request/list,
//!   credentials), over the ports; the decisions themselves are the domain's.
//! - [`ports`]: what the use cases need from the world: [`ports::AccessStore`],
//!   [`ports::CredentialBroker`], [`ports::ReplySink`], [`ports::IdentityVerifier`],
//!   [`ports::EvidenceReader`].
//! - [`approvals`]: the second person (`grant.approve`, `grant.deny`, `grant.pending`, `grant.review`).
//! - [`revoke`]: taking access away (grants, and live sessions through each broker role).
//! - [`posture_status`]: the read-only `posture.status` use case and who may use it.
//! - [`adapters`]: those ports over DynamoDB, STS, SQS and OIDC.
//! - [`fakes`] (tests, feature `test-util`): those ports in memory.
//! - [`metrics`]: the access worker's counters and histograms.

pub mod adapters;
pub mod approvals;
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

pub use handler::{AccessConfig, AccessHandler, Ports};
