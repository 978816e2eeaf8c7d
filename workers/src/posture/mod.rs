//! The posture worker: security controls measured on a schedule and within seconds of change
//! events, exported as OTLP metrics, stored as evidence, and announced as `Posture Violation` events.
//!
//! # Layout
//!
//! - [`controls`]: control definitions and their evaluation over plain facts (pure).
//! - [`collect`]: the AWS adapters that read those facts, with bounded concurrency.
//! - [`scan`]: one scan of one account and region, full or targeted.
//! - [`events`]: EventBridge change events → what to rescan (pure).
//! - [`metrics`]: the gauges and counters, read from the latest state.
//! - [`evidence`]: evidence items, violation events and scan leases (DynamoDB, EventBridge).
//! - this module: the scheduler (leased, once per interval across replicas), the debounced event
//!   handler, and `posture scan --once`.

pub mod collect;
pub mod controls;
pub mod events;
pub mod evidence;
pub mod metrics;
pub mod scan;
#[cfg(test)]
mod tests_mocked;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::Utc;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use opentelemetry::metrics::Meter;
use portcullis_common::aws::ApiCallCounter;
use portcullis_common::config::Settings;
use portcullis_common::naming::StackNames;
use portcullis_common::queue::{Attempt, Handler, Outcome, ReceivedMessage};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::collect::AwsReader;
use self::controls::Status;
use self::events::{Parsed, parse_event};
use self::evidence::EvidenceStore;
use self::metrics::PostureMetrics;
use self::scan::{ScanReport, ScanTarget, Scanner, Scope};

/// Everything a posture replica needs.
#[derive(Debug)]
pub struct Posture {
    pub scanner: Scanner,
    pub metrics: PostureMetrics,
    pub evidence: EvidenceStore,
    pub interval: Duration,
    pub debounce: Duration,
}

/// Which regions to scan: the configured list, every enabled region for `["all"]`, else the SDK's.
pub async fn resolve_regions(settings: &Settings, sdk: &SdkConfig) -> anyhow::Result<Vec<String>> {
    let configured = &settings.posture.regions;
    let home = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    if configured.iter().any(|r| r == "all") {
        return enabled_regions(&aws_sdk_account::Client::new(sdk), &home).await;
    }
    if configured.is_empty() {
        return Ok(vec![home]);
    }
    Ok(configured.clone())
}

/// Every region enabled in the account (Account API `ListRegions`), `home` first (it is the home
/// region for IAM).
pub async fn enabled_regions(client: &aws_sdk_account::Client, home: &str) -> anyhow::Result<Vec<String>> {
    use aws_sdk_account::types::RegionOptStatus;
    let mut regions = Vec::new();
    let mut pages = client
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "listing enabled regions (posture.regions = [\"all\"]) needs account:ListRegions: {}",
                portcullis_common::store::aws_error_message(&e)
            )
        })?;
        regions.extend(page.regions.unwrap_or_default().into_iter().filter_map(|r| r.region_name));
    }
    regions.sort();
    regions.dedup();
    regions.retain(|r| r != home);
    regions.insert(0, home.to_owned());
    Ok(regions)
}

impl Posture {
    /// Build readers for the worker's own account and every configured account, in every region.
    pub async fn build(
        settings: &Settings,
        sdk: &SdkConfig,
        meter: &Meter,
        counter: Option<ApiCallCounter>,
    ) -> anyhow::Result<Self> {
        let regions = resolve_regions(settings, sdk).await?;
        let own = aws_sdk_sts::Client::new(sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("sts:GetCallerIdentity: {}", portcullis_common::store::aws_error_message(&e)))?
            .account
            .unwrap_or_default();
        let concurrency = settings.posture.scan_concurrency;
        let mut readers = Vec::new();
        for region in &regions {
            readers.push(AwsReader::new(sdk, &own, region, concurrency, counter.clone()));
        }
        for account in settings.posture.accounts.iter().filter(|a| a.account_id != own) {
            let provider = aws_config::sts::AssumeRoleProvider::builder(&account.role_arn)
                .session_name("portcullis-posture")
                .configure(sdk)
                .build()
                .await;
            let assumed = sdk
                .to_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                .build();
            for region in &regions {
                readers.push(AwsReader::new(&assumed, &account.account_id, region, concurrency, counter.clone()));
            }
        }
        let names = StackNames::new(&settings.stack.prefix);
        let (mut ddb, mut events) =
            (aws_sdk_dynamodb::config::Builder::from(sdk), aws_sdk_eventbridge::config::Builder::from(sdk));
        if let Some(c) = &counter {
            ddb = ddb.interceptor(c.clone());
            events = events.interceptor(c.clone());
        }
        let evidence = EvidenceStore::new(
            aws_sdk_dynamodb::Client::from_conf(ddb.build()),
            names.table(),
            aws_sdk_eventbridge::Client::from_conf(events.build()),
            names.event_bus(),
            settings.posture.publish_violations,
        );
        Ok(Self::from_parts(
            Scanner::new(readers, settings.posture.access_key_max_age_days),
            PostureMetrics::new(meter),
            evidence,
            Duration::from_secs(settings.posture.scan_interval_seconds),
            Duration::from_millis(settings.posture.debounce_ms),
        ))
    }

    pub fn from_parts(
        scanner: Scanner,
        metrics: PostureMetrics,
        evidence: EvidenceStore,
        interval: Duration,
        debounce: Duration,
    ) -> Self {
        // Every interval some replica rescans: this replica's facts serve targeted rescans, and its
        // series are exported, for two intervals after it last measured them.
        let two_intervals = interval.saturating_mul(2);
        let scanner = scanner.with_cache_ttl(two_intervals);
        metrics.set_stale_after(two_intervals.max(Duration::from_secs(60)));
        Self { scanner, metrics, evidence, interval, debounce }
    }

    /// Scan, update the metrics at once, publish violations and store the evidence.
    pub async fn scan_and_record(
        &self,
        scope: &Scope,
        target: &ScanTarget,
        trigger: &str,
    ) -> anyhow::Result<ScanReport> {
        let report = self
            .scanner
            .scan(scope, target, trigger)
            .await
            .ok_or_else(|| anyhow::anyhow!("{scope} is not a configured scope"))?;
        self.metrics.record(&report);
        for (region, r) in &report.results {
            match r.status {
                Status::Fail => {
                    info!(scope = %scope, region = %region, control = %r.control, failing = ?r.failing_resources,
                                      reason = ?r.reason, trigger, "control failing")
                }
                Status::Unknown => warn!(scope = %scope, region = %region, control = %r.control, reason = ?r.reason,
                                         code = ?r.error_code, trigger, "control unknown"),
                Status::Pass => {}
            }
        }
        let published = self.evidence.record(&report).await?;
        for (region, control) in published {
            self.metrics.violation_published(&scope.account_id, &region, control);
            info!(scope = %scope, control = %control, "posture violation published");
        }
        Ok(report)
    }

    /// Scan every scope whose lease this replica wins, every interval, until shutdown.
    pub async fn run_scheduler(self: Arc<Self>, owner: String, shutdown: CancellationToken) {
        let tick = (self.interval / 4).clamp(Duration::from_millis(500), Duration::from_secs(15));
        info!(interval = ?self.interval, scopes = self.scanner.scopes().len(), "posture scheduler started");
        loop {
            let now = Utc::now();
            let scans = self.scanner.scopes().into_iter().map(|scope| {
                let this = self.clone();
                let owner = owner.clone();
                async move {
                    match this.evidence.try_lease(&scope, &owner, this.interval, now).await {
                        Ok(true) => {
                            if let Err(e) = this.scan_and_record(&scope, &ScanTarget::Full, "scheduled").await {
                                warn!(scope = %scope, error = %e, "scheduled scan failed");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => warn!(scope = %scope, error = %e, "could not take the scan lease"),
                    }
                }
            });
            tokio::select! {
                _ = futures::future::join_all(scans) => {},
                _ = shutdown.cancelled() => break,
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(tick) => {},
            }
        }
        info!("posture scheduler stopped");
    }
}

type PendingScan = Shared<BoxFuture<'static, Result<(), String>>>;

/// Coalesces rescans: events for the same scope and target within the debounce window share one
/// scan, which starts when the window closes (so it reads the state after the burst).
#[derive(Debug, Default)]
pub struct Debouncer {
    pending: Mutex<HashMap<(Scope, ScanTarget), PendingScan>>,
}

impl Debouncer {
    pub async fn rescan(
        self: &Arc<Self>,
        posture: Arc<Posture>,
        scope: Scope,
        target: ScanTarget,
        trigger: String,
    ) -> Result<(), String> {
        let key = (scope.clone(), target.clone());
        let scan = {
            let Ok(mut pending) = self.pending.lock() else { return Err("debouncer poisoned".into()) };
            pending
                .entry(key.clone())
                .or_insert_with(|| {
                    let this = self.clone();
                    async move {
                        tokio::time::sleep(posture.debounce).await;
                        // Events arriving from now on need a scan that starts after them.
                        if let Ok(mut p) = this.pending.lock() {
                            p.remove(&key);
                        }
                        posture.scan_and_record(&scope, &target, &trigger).await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        scan.await
    }
}

/// Handles change events from the posture queue.
#[derive(Debug)]
pub struct PostureEventHandler {
    posture: Arc<Posture>,
    debouncer: Arc<Debouncer>,
}

impl PostureEventHandler {
    pub fn new(posture: Arc<Posture>) -> Self {
        Self { posture, debouncer: Arc::default() }
    }
}

#[async_trait]
impl Handler for PostureEventHandler {
    async fn handle(&self, message: &ReceivedMessage, attempt: Attempt) -> Outcome {
        let trigger = match parse_event(&message.body, self.posture.scanner.own_account()) {
            Ok(Parsed::Rescan(t)) => t,
            Ok(Parsed::Ignored { source, event_name, why }) => {
                info!(source, event_name, why, "event ignored");
                return Outcome::done("event.ignored");
            }
            Err(e) => return Outcome::rejected("event", "unrecognised_event", e.0),
        };
        self.posture.metrics.event_received(&trigger.account_id, &trigger.region, &trigger.source, &trigger.event_name);
        let global = matches!(trigger.target, ScanTarget::AccessKeysOf(_) | ScanTarget::Root);
        let region = if global {
            match self.posture.scanner.home_region(&trigger.account_id) {
                Some(home) => home.to_owned(),
                None => trigger.region.clone(),
            }
        } else {
            trigger.region.clone()
        };
        let scope = Scope { account_id: trigger.account_id.clone(), region };
        if !self.posture.scanner.scopes().contains(&scope) {
            return Outcome::rejected(
                "event",
                "scope_unknown",
                format!(
                    "account {} region {} is not in posture.accounts/posture.regions",
                    scope.account_id, scope.region
                ),
            );
        }
        let kind = format!("event.{}", trigger.target.label());
        info!(scope = %scope, event = %trigger.event_name, target = ?trigger.target, "change event: rescan scheduled");
        match self
            .debouncer
            .rescan(self.posture.clone(), scope, trigger.target, format!("event:{}", trigger.event_name))
            .await
        {
            Ok(()) => Outcome::done(kind),
            // Keep the event, with the reason, rather than let the redrive drop it there without one;
            // the next scheduled scan measures the control anyway.
            Err(e) if attempt.is_last => Outcome::rejected(kind, "rescan_failed", e),
            Err(e) => Outcome::retry(kind, e),
        }
    }
}

/// `posture scan --once` output.
pub fn reports_json(reports: &[ScanReport], api_calls: Option<u64>, wall: Duration) -> Value {
    let scopes: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "account_id": r.scope.account_id,
                "region": r.scope.region,
                "controls": r.results.iter().map(|(region, c)| json!({
                    "control_id": c.control.as_str(),
                    "title": c.control.title(),
                    "region": region,
                    "status": c.status.as_str(),
                    "failing_resource_count": c.failing_resources.len(),
                    "failing_resources": c.failing_resources,
                    "reason": c.reason,
                    "error_code": c.error_code,
                })).collect::<Vec<_>>(),
                "guardduty_findings": r.findings,
                "iam_access_key_max_age_days": r.key_age.as_ref().map(|(_, a)| a.max_age_days),
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            })
        })
        .collect();
    json!({ "scopes": scopes, "api_calls": api_calls, "wall_time_ms": wall.as_millis() as u64 })
}

/// `posture scan --once --format table` output.
pub fn reports_table(reports: &[ScanReport]) -> String {
    let mut out = format!(
        "{:<14} {:<11} {:<13} {:<8} {:>7}  {}\n",
        "ACCOUNT", "REGION", "CONTROL", "STATUS", "FAILING", "DETAIL"
    );
    for r in reports {
        for (region, c) in &r.results {
            let status = match c.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Unknown => "UNKNOWN",
            };
            let detail = match c.status {
                Status::Pass => c.control.title().to_owned(),
                _ => c.reason.clone().unwrap_or_default(),
            };
            let detail: String = detail.chars().take(140).collect();
            out.push_str(&format!(
                "{:<14} {:<11} {:<13} {:<8} {:>7}  {}\n",
                r.scope.account_id,
                region,
                c.control.as_str(),
                status,
                c.failing_resources.len(),
                detail
            ));
        }
        if let Some(f) = &r.findings {
            out.push_str(&format!(
                "{:<14} {:<11} {:<13} {:<8} {:>7}  active GuardDuty findings: {} high, {} critical\n",
                r.scope.account_id, r.scope.region, "", "", "", f.high, f.critical
            ));
        }
    }
    out
}
