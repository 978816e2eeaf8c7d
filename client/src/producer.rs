//! Trusted producers: systems (a chat bot, the HR system) that send on the stack's queues with their
//! own AWS credentials, recognised by the worker through the SQS `SenderId` of those credentials
//! (`[[producers]]` in the workers' settings, docs/messages.md "Trusted producers").
//!
//! A producer has no ID token. It sends [`Auth::OnBehalfOf`](crate::Auth::OnBehalfOf) a person (when its producer entry has
//! `on_behalf = true`; the actor must come from something the producer verified, such as a signed
//! chat payload), or [`Auth::Producer`](crate::Auth::Producer) for itself (directory events). Its replies come back on its
//! own reply queue, which every replica shares: each takes only the replies to its own requests.
//!
//! ```no_run
//! # async fn demo(sdk: aws_config::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use portcullis_client::{AccessClient, Auth};
//! use portcullis_domain::messages::{GrantList, OnBehalfOf};
//! use portcullis_domain::naming::StackNames;
//!
//! let names = StackNames::new("portcullis-prod");
//! let client =
//!     AccessClient::for_producer(aws_sdk_sqs::Client::new(&sdk), &names, "portcullis-prod-reply-slack").await?;
//! let alice = Auth::OnBehalfOf(OnBehalfOf { user: "alice".into(), team: None, groups: vec![] });
//! let grants = client.ask(&alice, &GrantList::default()).await?.grants;
//! # let _ = grants; Ok(()) }
//! ```

use aws_sdk_sqs::Client;
use portcullis_domain::naming::StackNames;

use crate::client::{AccessClient, RequestQueues, create_reply_queue, queue_url};
use crate::error::ClientError;

/// How long replies stay on a producer's reply queue.
pub const PRODUCER_REPLY_RETENTION_SECONDS: u32 = 3600;

impl AccessClient {
    /// A trusted producer's client on the stack `names`: both request queues, and its own reply
    /// queue `reply_queue_name` (created if missing; it must match the workers'
    /// `access.reply_queue_names`), shared by the producer's replicas. `sqs` carries the producer's
    /// own credentials, whose `SenderId` the workers know.
    pub async fn for_producer(sqs: Client, names: &StackNames, reply_queue_name: &str) -> Result<Self, ClientError> {
        let queues = RequestQueues {
            access: queue_url(&sqs, &names.access_queue()).await?,
            directory: Some(queue_url(&sqs, &names.directory_queue()).await?),
        };
        let reply_queue_url = create_reply_queue(&sqs, reply_queue_name, PRODUCER_REPLY_RETENTION_SECONDS).await?;
        Ok(AccessClient::shared(sqs, queues, reply_queue_url))
    }
}
