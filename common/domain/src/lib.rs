//! The pure core of Portcullis: everything that decides, and nothing that talks to the world.
//!
//! This crate depends on no async runtime and no AWS SDK, so the compiler (not a comment) keeps it
//! free of I/O: it takes plain data, including the current time, and returns plain data. The workers
//! and the CLI call it through their adapters.
//!
//! # Layout
//!
//! - [`ids`]: identifiers parsed once (`AccountId`, `TemplateName`, `MessageId`, `GrantId`, `QueueUrl`).
//! - [`error`]: every stable error code Portcullis gives, requests and posture alike.
//! - [`messages`]: the versioned JSON envelope, every request and reply body, their JSON Schemas,
//!   and the digest that tells two requests with one message id apart.
//! - [`identity`]: the verified requester.
//! - [`template`]: statement templates: validation, compilation and rendering.
//! - [`guardrails`]: actions no template may allow; [`glob`]: the iterative matchers they use.
//! - [`iam_catalog`]: every IAM action, from a maintained public dataset, for wildcard expansion;
//!   [`iam_policy`]: the policy grammar (Allow/Deny, Action/NotAction) to judge what a policy allows.
//! - [`grant`]: the grant record; [`policy`]: live grants composed into one STS session policy;
//!   [`session`]: session names and lengths.
//! - [`reply_policy`]: where replies may go; [`redact`]: secrets out of anything kept or logged.
//! - [`naming`]: resource names from the stack prefix; [`table`]: the single table's key layout.
//! - [`directory`]: what the HR system says about each user, and stale tokens; [`producers`]: trusted
//!   producers and what they may send; [`revocation`]: the session-revocation policy on broker roles.
//! - [`audit`]: the audit events (who, on whose behalf, what, why, when).
//! - [`posture`]: the control catalog, control evaluation, scan reports, change-event classification,
//!   and what the catalog generates (stack rules, docs tables, dashboard tiles).

pub mod audit;
pub mod directory;
pub mod error;
pub mod glob;
pub mod grant;
pub mod guardrails;
pub mod iam_catalog;
pub mod iam_policy;
pub mod identity;
pub mod ids;
pub mod messages;
pub mod metrics;
pub mod naming;
pub mod policy;
pub mod posture;
pub mod producers;
pub mod redact;
pub mod reply_policy;
pub mod revocation;
pub mod sealed;
pub mod session;
pub mod table;
pub mod template;

pub use error::{ErrorCode, RequestError};
pub use ids::{AccountId, GrantId, MessageId, QueueUrl, TemplateName};

/// Property tests (proptest) in every module: how many cases each runs.
#[cfg(test)]
pub(crate) mod properties {
    use proptest::prelude::ProptestConfig;

    /// `default` cases, chosen so the property takes a few seconds at most in a debug build on two
    /// cores (`cargo test` in CI runs them all); `PROPTEST_CASES` raises or lowers every property at
    /// once for a longer fuzzing run. (`ProptestConfig::with_cases` alone ignores the variable.)
    pub(crate) fn config(default: u32) -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
        ProptestConfig { cases, ..ProptestConfig::default() }
    }
}
