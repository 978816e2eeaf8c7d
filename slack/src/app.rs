//! Wiring: the adapters on the stack named by the settings, the HTTP server and the bus consumer.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use aws_config::SdkConfig;
use chrono::Utc;
use portcullis_client::AccessClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::adapters::{DynamoEdgeStore, EventBridgeLinkAudit, SlackWebApi, SqsPortcullis};
use crate::edge::{Clock, Edge, Ports};
use crate::link::OidcProvider;
use crate::settings::EdgeSettings;

/// The edge on real adapters.
pub async fn build(settings: Arc<EdgeSettings>, sdk: &SdkConfig, clock: Clock) -> anyhow::Result<Arc<Edge>> {
    let names = settings.names();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let client = AccessClient::for_producer(sqs, &names, &settings.reply_queue())
        .await
        .context("the stack's queues (is the stack deployed, and the prefix right?)")?;
    let ports = Ports {
        slack: Arc::new(SlackWebApi::new(&settings)?),
        portcullis: Arc::new(SqsPortcullis::new(client)),
        store: Arc::new(DynamoEdgeStore::new(aws_sdk_dynamodb::Client::new(sdk), names.table())),
        idp: Arc::new(OidcProvider::new(&settings)?),
        audit: Arc::new(EventBridgeLinkAudit::new(aws_sdk_eventbridge::Client::new(sdk), names.event_bus())),
    };
    Ok(Edge::new(settings, ports, clock))
}

/// A running edge.
#[derive(Debug)]
pub struct Running {
    pub edge: Arc<Edge>,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and consuming, and wait for the spawned work.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.edge.drain().await;
    }
}

/// Serve `edge` on `listener` and consume the bus's grant events (unless turned off).
pub async fn start(edge: Arc<Edge>, sdk: &SdkConfig, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let router = crate::http::router(edge.clone());
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(target: "portcullis::slack", "the HTTP server stopped: {e}");
        }
    }));
    if let Some(queue) = edge.settings().events_queue() {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let url = sqs
            .get_queue_url()
            .queue_name(&queue)
            .send()
            .await
            .with_context(|| format!("the events queue {queue} (set queues.events_queue = \"\" to run without it)"))?
            .queue_url
            .unwrap_or_default();
        tasks.push(tokio::spawn(crate::bus::run(edge.clone(), sqs, url, shutdown.clone())));
    }
    tasks.push(tokio::spawn(sweep_expiries(edge.clone(), shutdown.clone())));
    if let Some(token) = &edge.settings().slack.app_token {
        tasks.push(tokio::spawn(crate::socket::run(edge.clone(), token.expose().to_owned(), shutdown.clone())));
    }
    tracing::info!(target: "portcullis::slack", %addr, "the Slack edge is listening");
    Ok(Running { edge, addr, shutdown, tasks })
}

/// Every `expiry_sweep_seconds`, update the copies of grants that ended by themselves.
async fn sweep_expiries(edge: Arc<Edge>, shutdown: CancellationToken) {
    let every = std::time::Duration::from_secs(edge.settings().slack.expiry_sweep_seconds.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match edge.sweep_expiries().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(target: "portcullis::slack", grants = n, "expired grants' messages updated"),
            Err(e) => tracing::warn!(target: "portcullis::slack", "expiry sweep: {e}"),
        }
    }
}

/// The binary: settings, AWS, serve until SIGINT/SIGTERM.
pub async fn run(settings: EdgeSettings) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    let sdk = portcullis_runtime::aws::sdk_config(&settings.aws).await;
    let edge = build(settings.clone(), &sdk, Arc::new(Utc::now)).await?;
    let listener =
        TcpListener::bind(settings.http.listen).await.with_context(|| format!("listen on {}", settings.http.listen))?;
    let running = start(edge, &sdk, listener).await?;
    shutdown_signal().await;
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending::<()>().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
