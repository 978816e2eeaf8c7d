//! Wiring: build the AWS clients, adapters, queues and handlers for each worker and run them until
//! shutdown. The integration tests call these functions in-process, exactly as `portcullis-worker`
//! does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use opentelemetry::metrics::Meter;
use portcullis_access::adapters::{
    DynamoEvidenceReader, DynamoStore, EventBridgeAudit, IamSessionRevoker, OidcVerifier, SqsReplySink, StsBroker,
    role_name,
};
use portcullis_access::front::Front;
use portcullis_access::metrics::AccessMetrics;
use portcullis_access::posture_status::PostureReading;
use portcullis_access::revoke::Revoker;
use portcullis_access::{AccessConfig, AccessHandler, Ports};
use portcullis_directory::DirectoryHandler;
use portcullis_domain::QueueUrl;
use portcullis_domain::messages::QueueRole;
use portcullis_domain::naming::StackNames;
use portcullis_domain::posture::{ScanReport, ScanTarget};
use portcullis_posture::{Posture, PostureEventHandler};
use portcullis_runtime::aws::{ApiCallCounter, assumed_role_config, classify};
use portcullis_runtime::clock::SystemClock;
use portcullis_runtime::config::Settings;
use portcullis_runtime::consumer::{ConsumerOptions, PipelineMetrics, run_consumer};
use portcullis_runtime::queue::SqsQueue;
use portcullis_runtime::telemetry::Flusher;

use crate::lambda::{self, Function};
use tokio_util::sync::CancellationToken;

/// Which workers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Access,
    Posture,
    Directory,
    All,
}

/// An `aws_sdk_*` client for `$sdk`; when `$counter` (an `Option<&ApiCallCounter>`) holds a counter,
/// the client counts its calls there (the benchmark's calls per operation). Without one it is
/// `Client::new`, as in production.
macro_rules! aws_client {
    ($krate:ident, $sdk:expr, $counter:expr) => {
        match $counter {
            Some(counter) => $krate::Client::from_conf(
                $krate::config::Builder::from($sdk).interceptor(ApiCallCounter::clone(counter)).build(),
            ),
            None => $krate::Client::new($sdk),
        }
    };
}

/// Run the access worker until `shutdown` is cancelled.
pub async fn run_access(
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_access_counted(settings, sdk, meter, shutdown, None).await
}

/// [`run_access`] with every AWS client counting its calls in `counter` when one is given
/// (`make bench-access`).
pub async fn run_access_counted(
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    shutdown: CancellationToken,
    counter: Option<ApiCallCounter>,
) -> anyhow::Result<()> {
    let (queue, handler) = build_access_worker(&settings, sdk, meter, counter.as_ref()).await?;
    let counter = tokio::spawn(count_reviews_owed(handler.clone(), shutdown.clone()));
    run_consumer(queue, handler, ConsumerOptions::from(&settings.worker), PipelineMetrics::new(meter), shutdown).await;
    let _ = counter.await;
    Ok(())
}

/// The access worker's queue and handler, as the consumer loop and the Lambda entry run them.
pub async fn access_worker(
    settings: &Settings,
    sdk: &SdkConfig,
    meter: &Meter,
) -> anyhow::Result<(Arc<SqsQueue>, Arc<AccessHandler>)> {
    build_access_worker(settings, sdk, meter, None).await
}

async fn build_access_worker(
    settings: &Settings,
    sdk: &SdkConfig,
    meter: &Meter,
    counter: Option<&ApiCallCounter>,
) -> anyhow::Result<(Arc<SqsQueue>, Arc<AccessHandler>)> {
    let names = StackNames::new(&settings.stack.prefix);
    let sqs = aws_client!(aws_sdk_sqs, sdk, counter);
    let queue = Arc::new(SqsQueue::connect(sqs.clone(), &names.access_queue()).await?);
    // Replies may only go where the request queue's URL says; a URL that does not parse is a
    // deployment problem to report now, not a reason to refuse every reply address later.
    let request_queue = QueueUrl::parse(queue.url())
        .ok_or_else(|| anyhow::anyhow!("the access queue URL `{}` is not an SQS queue URL", queue.url()))?;
    let config = AccessConfig::from_settings(settings, &request_queue)?;
    let ports = access_ports(settings, sdk, &names, counter).await?;
    let evidence = Arc::new(DynamoEvidenceReader::new(aws_client!(aws_sdk_dynamodb, sdk, counter), names.table()));
    let reading = PostureReading::from_settings(settings, request_queue.account(), evidence);
    let handler = Arc::new(AccessHandler::new(config, ports, AccessMetrics::new(meter)).with_posture_reading(reading));
    Ok((queue, handler))
}

/// How often the access worker counts the break-glass grants whose review is owed.
const REVIEWS_OWED_INTERVAL: Duration = Duration::from_secs(60);

/// Keep `portcullis_break_glass_unreviewed_grants` current until shutdown.
async fn count_reviews_owed(handler: Arc<AccessHandler>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(REVIEWS_OWED_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = count_reviews_owed_once(&handler).await {
            tracing::warn!(error = %e, "break-glass reviews could not be counted");
        }
    }
}

/// Count the break-glass grants whose review is owed once (the gauge), warning when some are overdue.
pub async fn count_reviews_owed_once(handler: &AccessHandler) -> anyhow::Result<()> {
    let owed = handler.count_reviews_owed().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if owed.overdue > 0 {
        tracing::warn!(owed = owed.all, overdue = owed.overdue, "break-glass reviews are overdue");
    }
    Ok(())
}

/// The ports the access and directory workers share, over AWS; every client counts its calls in
/// `counter` when one is given.
async fn access_ports(
    settings: &Settings,
    sdk: &SdkConfig,
    names: &StackNames,
    counter: Option<&ApiCallCounter>,
) -> anyhow::Result<Ports> {
    let identity = OidcVerifier::new(settings.identity.clone()).map_err(|e| anyhow::anyhow!("identity: {e}"))?;
    Ok(Ports {
        store: Arc::new(DynamoStore::new(aws_client!(aws_sdk_dynamodb, sdk, counter), names.table())),
        broker: Arc::new(StsBroker::new(aws_client!(aws_sdk_sts, sdk, counter))),
        replies: Arc::new(SqsReplySink::new(aws_client!(aws_sdk_sqs, sdk, counter))),
        identity: Arc::new(identity),
        sessions: Arc::new(session_revoker_counted(settings, sdk, counter).await?),
        audit: Arc::new(EventBridgeAudit::new(aws_client!(aws_sdk_eventbridge, sdk, counter), names.event_bus())),
        clock: Arc::new(SystemClock),
    })
}

/// Run the directory worker until `shutdown` is cancelled.
pub async fn run_directory(
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (queue, handler) = directory_worker(&settings, sdk).await?;
    let scheduler = tokio::spawn(apply_due_directory_changes(handler.clone(), shutdown.clone()));
    run_consumer(queue, handler, ConsumerOptions::from(&settings.worker), PipelineMetrics::new(meter), shutdown).await;
    let _ = scheduler.await;
    Ok(())
}

/// The directory worker's queue and handler, as the consumer loop and the Lambda entry run them.
pub async fn directory_worker(
    settings: &Settings,
    sdk: &SdkConfig,
) -> anyhow::Result<(Arc<SqsQueue>, Arc<DirectoryHandler>)> {
    let names = StackNames::new(&settings.stack.prefix);
    let queue = Arc::new(SqsQueue::connect(aws_sdk_sqs::Client::new(sdk), &names.directory_queue()).await?);
    let directory_queue = QueueUrl::parse(queue.url())
        .ok_or_else(|| anyhow::anyhow!("the directory queue URL `{}` is not an SQS queue URL", queue.url()))?;
    let config = AccessConfig::from_settings(settings, &directory_queue)?;
    let ports = access_ports(settings, sdk, &names, None).await?;
    let front = Front::new(QueueRole::Directory, &config, &ports);
    let revoker = Revoker::for_config(&config, &ports);
    Ok((queue, Arc::new(DirectoryHandler::new(front, ports.store.clone(), revoker))))
}

/// How often the directory worker applies the scheduled changes that became due: a change applies
/// at most this long after its `effective_at`.
pub const SCHEDULED_CHANGES_INTERVAL: Duration = Duration::from_secs(10);

/// Apply future-dated directory changes as they fall due, until shutdown (every replica does; each
/// change is idempotent, so two replicas applying one change at once do it once).
async fn apply_due_directory_changes(handler: Arc<DirectoryHandler>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SCHEDULED_CHANGES_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = handler.apply_due().await {
            tracing::warn!(error = ?e, "scheduled directory changes could not be applied; trying again");
        }
    }
}

/// IAM clients for the broker role of every configured account: the worker's own credentials, or the
/// account's `revoker_role_arn` when one is configured.
///
/// A revocation in account X must read and write X's broker role, with X's credentials: IAM role
/// names are per account, so credentials of another account would write *that* account's role of
/// the same name (the stack's default), wiping its revocations and leaving X's sessions alive. So
/// each account's credentials are checked with `sts:GetCallerIdentity` here, and an account they do
/// not belong to is a configuration error: the worker does not start.
pub async fn session_revoker(settings: &Settings, sdk: &SdkConfig) -> anyhow::Result<IamSessionRevoker> {
    session_revoker_counted(settings, sdk, None).await
}

/// [`session_revoker`] with its clients counting their calls in `counter` when one is given.
async fn session_revoker_counted(
    settings: &Settings,
    sdk: &SdkConfig,
    counter: Option<&ApiCallCounter>,
) -> anyhow::Result<IamSessionRevoker> {
    let mut revoker = IamSessionRevoker::default();
    for (account, a) in &settings.accounts {
        let role = role_name(&a.role_arn)
            .ok_or_else(|| anyhow::anyhow!("accounts.{account}.role_arn `{}` names no role", a.role_arn))?;
        let config = match &a.revoker_role_arn {
            Some(revoker_role) => assumed_role_config(sdk, revoker_role, "portcullis-revoker").await,
            None => sdk.clone(),
        };
        let caller = aws_client!(aws_sdk_sts, &config, counter).get_caller_identity().send().await.map_err(|e| {
            anyhow::anyhow!(
                "accounts.{account}: cannot tell which account the credentials for its broker role belong to \
                 (sts:GetCallerIdentity: {}); check accounts.{account}.revoker_role_arn and its trust policy",
                classify(&e).message
            )
        })?;
        let theirs = caller.account().unwrap_or("an unknown account");
        if theirs != account.as_str() {
            anyhow::bail!(
                "accounts.{account}: the credentials for its broker role `{role}` belong to account {theirs}, so \
                 revocations in {account} would be written to {theirs}'s role instead. Set \
                 accounts.{account}.revoker_role_arn to a role in {account} the worker may assume, allowed \
                 iam:GetRolePolicy and iam:PutRolePolicy on `{role}`"
            );
        }
        revoker = revoker.with_account(account.clone(), aws_client!(aws_sdk_iam, &config, counter), role);
    }
    Ok(revoker)
}

/// Run the posture worker (scheduler and change-event consumer) until `shutdown` is cancelled.
/// Returns the shared state so callers (tests) can look at it.
pub async fn run_posture(
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let posture = Arc::new(Posture::build(&settings, sdk, meter, None).await?);
    run_posture_with(posture, settings, sdk, meter, shutdown).await
}

/// Run an already built posture worker.
pub async fn run_posture_with(
    posture: Arc<Posture>,
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let names = StackNames::new(&settings.stack.prefix);
    let queue = Arc::new(SqsQueue::connect(aws_sdk_sqs::Client::new(sdk), &names.posture_queue()).await?);
    let owner = format!("{}-{}", hostname(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let scheduler = tokio::spawn(posture.clone().run_scheduler(owner, shutdown.clone()));
    let handler = Arc::new(PostureEventHandler::new(posture));
    run_consumer(queue, handler, ConsumerOptions::from(&settings.worker), PipelineMetrics::new(meter), shutdown).await;
    let _ = scheduler.await;
    Ok(())
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "portcullis".into())
}

/// One full scan of every scope, recorded like a scheduled one (metrics, evidence, violations).
/// Returns the reports, the AWS calls the scans made, and the wall time.
pub async fn scan_once(
    settings: &Settings,
    sdk: &SdkConfig,
    meter: &Meter,
) -> anyhow::Result<(Vec<ScanReport>, u64, Duration)> {
    let counter = ApiCallCounter::new();
    let (reports, wall) = scan_once_counted(settings, sdk, meter, &counter).await?;
    Ok((reports, counter.total(), wall))
}

/// [`scan_once`] with a caller's counter (calls per operation, for the benchmark). Only the scan is
/// counted: building the scanner (one `GetCallerIdentity`) is not.
pub async fn scan_once_counted(
    settings: &Settings,
    sdk: &SdkConfig,
    meter: &Meter,
    counter: &ApiCallCounter,
) -> anyhow::Result<(Vec<ScanReport>, Duration)> {
    let posture = Posture::build(settings, sdk, meter, Some(counter.clone())).await?;
    counter.reset();
    let started = Instant::now();
    let scans = posture.scanner.scopes().into_iter().map(|scope| {
        let posture = &posture;
        async move { posture.scan_and_record(&scope, &ScanTarget::Full, "once").await }
    });
    let reports = futures::future::join_all(scans).await.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok((reports, started.elapsed()))
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
        Workers::Access => run_access(settings, &sdk, &meter, shutdown).await,
        Workers::Posture => run_posture(settings, &sdk, &meter, shutdown).await,
        Workers::Directory => run_directory(settings, &sdk, &meter, shutdown).await,
        Workers::All => {
            // The first worker to fail stops the others.
            let stop_all = shutdown.clone();
            let guard = |r: anyhow::Result<()>| {
                if r.is_err() {
                    stop_all.cancel();
                }
                r
            };
            let (a, p, d) = tokio::join!(
                async { guard(run_access(settings.clone(), &sdk, &meter, shutdown.clone()).await) },
                async { guard(run_posture(settings.clone(), &sdk, &meter, shutdown.clone()).await) },
                async { guard(run_directory(settings.clone(), &sdk, &meter, shutdown.clone()).await) },
            );
            a.and(p).and(d)
        }
    }
}

/// Run one worker as an AWS Lambda function (SQS event source mapping with batch item failures, and
/// a schedule for its timed work) until the runtime stops: see [`crate::lambda`].
pub async fn run_lambda(
    workers: Workers,
    settings: Arc<Settings>,
    sdk: &SdkConfig,
    meter: &Meter,
    flusher: Flusher,
) -> anyhow::Result<()> {
    let options = ConsumerOptions::from(&settings.worker);
    let metrics = PipelineMetrics::new(meter);
    match workers {
        Workers::Access => {
            let (queue, handler) = access_worker(&settings, sdk, meter).await?;
            let counted = handler.clone();
            let function = Function::new(queue, handler, options, metrics).on_schedule(Arc::new(move || {
                let handler = counted.clone();
                Box::pin(async move { count_reviews_owed_once(&handler).await })
            }));
            lambda::serve(function, flusher).await
        }
        Workers::Directory => {
            let (queue, handler) = directory_worker(&settings, sdk).await?;
            let due = handler.clone();
            let function = Function::new(queue, handler, options, metrics).on_schedule(Arc::new(move || {
                let handler = due.clone();
                Box::pin(async move {
                    let applied = handler.apply_due().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    tracing::info!(applied, "scheduled directory changes applied");
                    Ok(())
                })
            }));
            lambda::serve(function, flusher).await
        }
        Workers::Posture => {
            let posture = Arc::new(Posture::build(&settings, sdk, meter, None).await?);
            let names = StackNames::new(&settings.stack.prefix);
            let queue = Arc::new(SqsQueue::connect(aws_sdk_sqs::Client::new(sdk), &names.posture_queue()).await?);
            let handler = Arc::new(PostureEventHandler::new(posture.clone()));
            let function = Function::new(queue, handler, options, metrics).on_schedule(Arc::new(move || {
                let posture = posture.clone();
                Box::pin(async move {
                    // One invocation per schedule tick: every scope, no lease to take.
                    let scans = posture.scanner.scopes().into_iter().map(|scope| {
                        let posture = posture.clone();
                        async move { posture.scan_and_record(&scope, &ScanTarget::Full, "scheduled").await }
                    });
                    futures::future::join_all(scans).await.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
                    Ok(())
                })
            }));
            lambda::serve(function, flusher).await
        }
        Workers::All => anyhow::bail!("a Lambda function runs one worker: access, directory or posture"),
    }
}
