//! The posture worker: security controls measured on a schedule and within seconds of change
//! events, exported as OTLP metrics, stored as evidence, and announced as `Posture Violation` events.
//! The controls themselves (definitions, evaluation, event classification) are the domain's
//! ([`portcullis_domain::posture`]); this crate reads the facts and keeps the results.
//!
//! # Layout
//!
//! - [`ports`]: the [`ports::FactReader`] collector and the [`ports::PostureStore`].
//! - [`collect`]: the AWS fact reader, one module per service family, with bounded concurrency.
//! - [`scan`]: one scan of one account and region, full or targeted: the readings its controls need.
//! - [`metrics`]: the gauges and counters, read from the latest state.
//! - [`evidence`]: evidence items, violation events and scan leases (DynamoDB, EventBridge).
//! - [`fakes`] (tests, feature `test-util`): a fact reader and a store in memory.
//! - this module: the scheduler (leased, once per interval across replicas), the debounced event
//!   handler, and `posture scan --once`.

pub mod collect;
pub mod evidence;
#[cfg(any(test, feature = "test-util"))]
pub mod fakes;
pub mod metrics;
pub mod ports;
pub mod scan;
#[cfg(test)]
mod tests_mocked;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use opentelemetry::metrics::Meter;
use portcullis_domain::naming::StackNames;
use portcullis_domain::posture::events::{Parsed, parse_event};
use portcullis_domain::posture::{Findings, ScanReport, ScanTarget, Scope, Status};
use portcullis_domain::{AccountId, ErrorCode};
use portcullis_runtime::aws::{ApiCallCounter, assumed_role_config, error_message};
use portcullis_runtime::clock::{Clock, SystemClock};
use portcullis_runtime::config::Settings;
use portcullis_runtime::consumer::{Handler, Outcome};
use portcullis_runtime::queue::{Attempt, ReceivedMessage};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::collect::AwsReader;
use self::evidence::EvidenceStore;
use self::metrics::PostureMetrics;
use self::ports::{FactReader, PostureStore};
use self::scan::Scanner;

/// Everything a posture replica needs.
#[derive(Debug)]
pub struct Posture {
    pub scanner: Scanner,
    pub metrics: PostureMetrics,
    pub store: Arc<dyn PostureStore>,
    pub interval: Duration,
    pub debounce: Duration,
    pub clock: Arc<dyn Clock>,
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
                error_message(&e)
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
        Self::build_with_clock(settings, sdk, meter, counter, Arc::new(SystemClock)).await
    }

    /// [`Posture::build`] reading the time from `clock`.
    pub async fn build_with_clock(
        settings: &Settings,
        sdk: &SdkConfig,
        meter: &Meter,
        counter: Option<ApiCallCounter>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let regions = resolve_regions(settings, sdk).await?;
        let own = aws_sdk_sts::Client::new(sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("sts:GetCallerIdentity: {}", error_message(&e)))?
            .account
            .ok_or_else(|| anyhow::anyhow!("sts:GetCallerIdentity returned no account"))?;
        let own = AccountId::parse(&own).map_err(|e| anyhow::anyhow!("sts:GetCallerIdentity: {e}"))?;
        let concurrency = settings.posture.scan_concurrency;
        let mut readers: Vec<Arc<dyn FactReader>> = Vec::new();
        for region in &regions {
            readers.push(Arc::new(AwsReader::new(sdk, &own, region, concurrency, counter.clone())));
        }
        for account in settings.posture.accounts.iter().filter(|a| a.account_id != own) {
            let assumed = assumed_role_config(sdk, &account.role_arn, "portcullis-posture").await;
            for region in &regions {
                readers.push(Arc::new(AwsReader::new(
                    &assumed,
                    &account.account_id,
                    region,
                    concurrency,
                    counter.clone(),
                )));
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
        let evidence = Arc::new(evidence);
        Ok(Self::from_parts(
            Scanner::new(readers, settings.posture.access_key_max_age_days)
                .with_user_reads(evidence.clone())
                .with_config_service_linked_role(settings.posture.config_require_service_linked_role),
            PostureMetrics::new(meter),
            evidence,
            Duration::from_secs(settings.posture.scan_interval_seconds),
            Duration::from_millis(settings.posture.debounce_ms),
            clock,
        ))
    }

    pub fn from_parts(
        scanner: Scanner,
        metrics: PostureMetrics,
        store: Arc<dyn PostureStore>,
        interval: Duration,
        debounce: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Every interval some replica rescans: this replica's facts serve targeted rescans, and its
        // series are exported, for two intervals after it last measured them.
        let two_intervals = interval.saturating_mul(2);
        let scanner = scanner.with_cache_ttl(two_intervals).with_clock(clock.clone());
        metrics.set_stale_after(two_intervals.max(Duration::from_secs(60)));
        Self { scanner, metrics, store, interval, debounce, clock }
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
        let published = self.store.record(&report).await?;
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
            let now = self.clock.now();
            let scans = self.scanner.scopes().into_iter().map(|scope| {
                let this = self.clone();
                let owner = owner.clone();
                async move {
                    match this.store.try_lease(&scope, &owner, this.interval, now).await {
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
            Err(e) => return Outcome::rejected("event", ErrorCode::UnrecognisedEvent, e.0),
        };
        self.posture.metrics.event_received(&trigger.account_id, &trigger.region, &trigger.source, &trigger.event_name);
        // Account-wide controls live in the home region, whichever region the event came from (IAM
        // events arrive in us-east-1, S3 Control's where the call was made).
        let region = if trigger.target.is_global() {
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
                ErrorCode::ScopeUnknown,
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
            Err(e) if attempt.is_last => Outcome::rejected(kind, ErrorCode::RescanFailed, e),
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
                    "error_code": c.error_code.map(ErrorCode::as_str),
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
        match &r.findings {
            Some(Findings::Counted(f)) => out.push_str(&format!(
                "{:<14} {:<11} {:<13} {:<8} {:>7}  active GuardDuty findings: {} high, {} critical\n",
                r.scope.account_id, r.scope.region, "", "", "", f.high, f.critical
            )),
            Some(Findings::Unknown { reason, .. }) => out.push_str(&format!(
                "{:<14} {:<11} {:<13} {:<8} {:>7}  active GuardDuty findings unknown: {}\n",
                r.scope.account_id,
                r.scope.region,
                "",
                "",
                "",
                reason.chars().take(120).collect::<String>()
            )),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{Facts, MemoryPostureStore, StaticReader};
    use chrono::TimeZone;
    use portcullis_domain::posture::TrailFacts;
    use portcullis_runtime::clock::TokioClock;

    fn healthy() -> Facts {
        Facts {
            trails: vec![TrailFacts {
                arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into(),
                is_multi_region: true,
                is_logging: true,
                home_region: "us-east-1".into(),
                ..TrailFacts::default()
            }],
            detectors: vec![("d-1".into(), "ENABLED".into())],
            root: (0, 1),
            ..Facts::default()
        }
    }

    /// Two replicas' schedulers over 5.2 s of (paused) time at a 2 s interval share one lease store:
    /// exactly three scans in all (at 0, 2 and 4 s), not one series per replica.
    #[tokio::test(start_paused = true)]
    async fn replicas_scan_each_scope_once_per_interval() {
        let account = AccountId::parse("123456789012").unwrap();
        let store = Arc::new(MemoryPostureStore::default());
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(start));
        let meter = opentelemetry::global::meter("test");
        let replica = || {
            let reader: Arc<dyn FactReader> = Arc::new(StaticReader::new(&account, "us-east-1", healthy()));
            Arc::new(Posture::from_parts(
                Scanner::new(vec![reader], 90),
                PostureMetrics::new(&meter),
                store.clone(),
                Duration::from_secs(2),
                Duration::from_millis(300),
                clock.clone(),
            ))
        };
        let stop = CancellationToken::new();
        let a = tokio::spawn(replica().run_scheduler("replica-a".into(), stop.clone()));
        let b = tokio::spawn(replica().run_scheduler("replica-b".into(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(5200)).await;
        stop.cancel();
        a.await.unwrap();
        b.await.unwrap();
        let scheduled: Vec<i64> = store
            .reports()
            .iter()
            .filter(|r| r.trigger == "scheduled")
            .map(|r| (r.started_at - start).num_seconds())
            .collect();
        assert_eq!(scheduled, vec![0, 2, 4], "one scan per interval across both replicas");
    }

    /// A user read by one replica after an event wins over the older credential report that another
    /// replica's scheduled scan reuses: the shared store carries it.
    #[tokio::test]
    async fn a_user_read_on_one_replica_is_honoured_by_another() {
        use portcullis_domain::posture::{AccessKeyFacts, CredentialReport, IamUserFacts};
        let account = AccountId::parse("123456789012").unwrap();
        let now = chrono::Utc::now();
        let bob = |active: bool| IamUserFacts {
            access_keys: vec![AccessKeyFacts {
                user: "bob".into(),
                key: "AKIABOB".into(),
                active,
                created: now - chrono::Duration::days(100),
                last_used: Some(now),
            }],
            ..IamUserFacts::named("bob")
        };
        // The report (an hour old) still shows bob's old key active; he has deactivated it since.
        let facts = Facts {
            users: vec![bob(false)],
            report: Some(CredentialReport { generated_at: now - chrono::Duration::hours(1), users: vec![bob(true)] }),
            ..healthy()
        };
        let store = Arc::new(MemoryPostureStore::default());
        let replica = || {
            let reader: Arc<dyn FactReader> = Arc::new(StaticReader::new(&account, "us-east-1", facts.clone()));
            Scanner::new(vec![reader], 90).with_user_reads(store.clone())
        };
        let (a, b) = (replica(), replica());
        let scope = Scope { account_id: account.clone(), region: "us-east-1".into() };
        let status = |r: ScanReport| r.result(portcullis_domain::posture::ControlId::Iam3).unwrap().status;
        assert_eq!(status(b.scan(&scope, &ScanTarget::Full, "scheduled").await.unwrap()), Status::Fail);
        let event = ScanTarget::User("bob".into());
        assert_eq!(status(a.scan(&scope, &event, "event:UpdateAccessKey").await.unwrap()), Status::Pass);
        assert_eq!(status(b.scan(&scope, &ScanTarget::Full, "scheduled").await.unwrap()), Status::Pass);
    }

    /// Account-wide controls live in the home region: an S3 Block Public Access event from another
    /// region rescans S3.1 there, and a regional event stays in its region.
    #[tokio::test(start_paused = true)]
    async fn account_wide_events_rescan_the_home_region() {
        use portcullis_domain::posture::ControlId;
        let account = AccountId::parse("123456789012").unwrap();
        let store = Arc::new(MemoryPostureStore::default());
        let readers: Vec<Arc<dyn FactReader>> = ["us-east-1", "eu-west-1"]
            .into_iter()
            .map(|r| Arc::new(StaticReader::new(&account, r, healthy())) as Arc<dyn FactReader>)
            .collect();
        let posture = Arc::new(Posture::from_parts(
            Scanner::new(readers, 90),
            PostureMetrics::new(&opentelemetry::global::meter("test")),
            store.clone(),
            Duration::from_secs(60),
            Duration::from_millis(300),
            Arc::new(SystemClock),
        ));
        let handler = PostureEventHandler::new(posture);
        let event = |source: &str, event_source: &str, name: &str| ReceivedMessage {
            message_id: name.into(),
            receipt_handle: name.into(),
            body: serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": source,
                "account": "123456789012", "region": "eu-west-1",
                "detail": {"eventSource": event_source, "eventName": name}})
            .to_string(),
            receive_count: 1,
            sender_id: None,
            attributes: Default::default(),
        };
        let first = Attempt { number: 1, is_last: false };
        let s3 = event("aws.s3", "s3.amazonaws.com", "DeleteAccountPublicAccessBlock");
        let ebs = event("aws.ec2", "ec2.amazonaws.com", "DisableEbsEncryptionByDefault");
        for m in [&s3, &ebs] {
            assert_eq!(handler.handle(m, first).await.disposition, portcullis_runtime::consumer::Disposition::Done);
        }
        let reports = store.reports();
        let seen: Vec<(&str, Vec<ControlId>)> = reports
            .iter()
            .map(|r| (r.scope.region.as_str(), r.results.iter().map(|(_, c)| c.control).collect()))
            .collect();
        assert_eq!(seen, vec![("us-east-1", vec![ControlId::S31]), ("eu-west-1", vec![ControlId::Ec27])]);
    }

    /// Events for the same scope and target within the debounce window share one scan.
    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_is_one_rescan() {
        let account = AccountId::parse("123456789012").unwrap();
        let reader = Arc::new(StaticReader::new(&account, "us-east-1", healthy()));
        let store = Arc::new(MemoryPostureStore::default());
        let posture = Arc::new(Posture::from_parts(
            Scanner::new(vec![reader.clone() as Arc<dyn FactReader>], 90),
            PostureMetrics::new(&opentelemetry::global::meter("test")),
            store.clone(),
            Duration::from_secs(60),
            Duration::from_millis(1500),
            Arc::new(SystemClock),
        ));
        let handler = PostureEventHandler::new(posture);
        let event = serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
            "account": "123456789012", "region": "us-east-1",
            "detail": {"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"}})
        .to_string();
        let message = |i: u32| ReceivedMessage {
            message_id: format!("e{i}"),
            receipt_handle: format!("r{i}"),
            body: event.clone(),
            receive_count: 1,
            sender_id: None,
            attributes: Default::default(),
        };
        let first = Attempt { number: 1, is_last: false };
        let (m1, m2, m3) = (message(1), message(2), message(3));
        let outcomes = tokio::join!(handler.handle(&m1, first), handler.handle(&m2, first), handler.handle(&m3, first));
        for o in [outcomes.0, outcomes.1, outcomes.2] {
            assert_eq!(o.disposition, portcullis_runtime::consumer::Disposition::Done);
        }
        assert_eq!(store.reports().len(), 1, "three events, one rescan");
        assert_eq!(store.reports()[0].trigger, "event:StopLogging");
        assert_eq!(reader.calls(), 1, "only the trails were read");
    }
}
