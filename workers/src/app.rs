//! Wiring: build the AWS clients, queues and handlers for each worker and run them until shutdown.
//! The integration tests call these functions in-process, exactly as `portcullis-worker` does.

use std::sync::Arc;

use aws_config::SdkConfig;
use opentelemetry::metrics::Meter;
use portcullis_common::broker::CredentialBroker;
use portcullis_common::config::Settings;
use portcullis_common::naming::StackNames;
use portcullis_common::queue::{ConsumerOptions, PipelineMetrics, SqsQueue, run_consumer};
use portcullis_common::store::Store;
use tokio_util::sync::CancellationToken;

use crate::access::AccessHandler;

/// Which workers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Access,
    All,
}

/// Run the access worker until `shutdown` is cancelled.
pub async fn run_access(
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let names = StackNames::new(&settings.stack.prefix);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = Arc::new(SqsQueue::connect(sqs.clone(), &names.access_queue()).await?);
    let store = Store::new(aws_sdk_dynamodb::Client::new(sdk), names.table());
    let broker = CredentialBroker::new(aws_sdk_sts::Client::new(sdk));
    let handler = Arc::new(AccessHandler::new(settings.clone(), store, broker, sqs, queue.url(), meter)?);
    run_consumer(queue, handler, ConsumerOptions::from(&settings.worker), PipelineMetrics::new(meter), shutdown).await;
    Ok(())
}

/// Run the selected workers until `shutdown` is cancelled; the first one to fail stops the others.
pub async fn run(
    workers: Workers,
    settings: Arc<Settings>,
    sdk: SdkConfig,
    meter: Meter,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match workers {
        Workers::Access | Workers::All => run_access(settings, &sdk, &meter, shutdown).await,
    }
}
