//! The typed wire client of Portcullis: what the `portcullis` command, a chat bot or an HR system
//! needs to ask the workers something over SQS and read the answer.
//!
//! ```no_run
//! # async fn demo(client: portcullis_client::AccessClient, id_token: String) -> Result<(), portcullis_client::AskError> {
//! use portcullis_client::Auth;
//! use portcullis_domain::messages::GrantList;
//!
//! let result = client.ask(&Auth::IdToken(id_token), &GrantList::default()).await?; // a GrantListResult
//! for grant in result.grants {
//!     println!("{} {}", grant.id, grant.status.as_str());
//! }
//! # Ok(()) }
//! ```
//!
//! Every request body is tied to its kind and its result type once, where the kind is declared
//! (`portcullis_domain::messages::KindRequest`), so [`AccessClient::ask`] takes a body and gives back
//! that kind's result or a [`Refusal`] with the worker's stable code and sentence. Results are read
//! strictly: a field renamed on either side is a [`ClientError::Decode`], never an empty value.
//!
//! # Layout
//!
//! - [`AccessClient`] (`client`): envelopes, the queue each kind goes on, waiting for one's own reply
//!   (matched by `in_reply_to`) on a shared or a private reply queue; [`Auth`]: who is asking.
//! - `answer`: one reply read as the typed result, a refusal, or a decode error.
//! - `sealing`: a fresh reply key per `credentials.request`, and the sealed credentials opened.
//! - [`requester`]: a person's binding: the requester role through `AssumeRoleWithWebIdentity`, the
//!   access queue, and their own `<prefix>-reply-<sub>` queue.
//! - `producer`: [`AccessClient::for_producer`], for trusted producers acting `on_behalf_of` people
//!   on their own queue with their own AWS credentials.
//! - [`error`]: [`AskError`] (refused, or no usable answer) and [`AwsError`], classified once.
//! - `dev_issuer` (feature `dev-issuer`): the local development issuer that mints ID tokens.
//!
//! It links SQS and STS only (`cargo tree -p portcullis-client -e normal`).

mod answer;
mod client;
pub mod error;
mod producer;
pub mod requester;
mod sealing;
#[cfg(test)]
mod wired;

#[cfg(feature = "dev-issuer")]
pub mod dev_issuer;

pub use client::{AccessClient, Auth, DEFAULT_REPLY_TIMEOUT, RequestQueues, STALE_REPLY, new_message_id};
pub use error::{AskError, AwsError, AwsErrorKind, ClientError, Refusal, RefusalCode};
pub use producer::PRODUCER_REPLY_RETENTION_SECONDS;

#[cfg(test)]
mod tests {
    /// What the CLI and a chat bot link stays small: SQS and STS, and no Portcullis crate but the
    /// pure domain (a worker crate would bring DynamoDB, IAM, KMS and EventBridge along).
    #[test]
    fn links_sqs_and_sts_and_the_domain_only() {
        let manifest = include_str!("../Cargo.toml");
        let section = manifest.split("\n[dependencies]\n").nth(1).unwrap_or_default();
        let section = section.split("\n[").next().unwrap_or_default();
        let names: Vec<&str> = section
            .lines()
            .filter_map(|l| l.split(['=', '.']).next().map(str::trim))
            .filter(|n| !n.is_empty() && !n.starts_with('#'))
            .collect();
        let aws: Vec<&str> = names.iter().copied().filter(|n| n.starts_with("aws-sdk-")).collect();
        assert_eq!(aws, ["aws-sdk-sqs", "aws-sdk-sts"]);
        let ours: Vec<&str> = names.iter().copied().filter(|n| n.starts_with("portcullis-")).collect();
        assert_eq!(ours, ["portcullis-domain"]);
        assert!(names.contains(&"aws-config") && names.len() > 5, "the [dependencies] section was read: {names:?}");
    }
}
