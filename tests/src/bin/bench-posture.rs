//! Posture scan benchmark (`make bench-posture`).
//!
//! Fills a private moto_server with the account [`fixtures::benchmark_account`] describes (300 users
//! with 2 active access keys each, a third of them console users, 60 customer KMS keys, 5 trails,
//! 11 VPCs and 111 security groups, flow logs, Config, 40 buckets, 20 DB instances, 20 file systems,
//! 10 server certificates, the account-wide settings), then times full
//! scans (`posture scan --once`: collection, metrics, evidence) and one scan per control family, and
//! counts their AWS calls. Beside each it runs the seed's approach on the same data: sequential,
//! one call at a time, per resource where a per-resource API exists (per user `ListAccessKeys`,
//! `GetLoginProfile`, `ListMFADevices` and per key `GetAccessKeyLastUsed`; per key `DescribeKey` and
//! `GetKeyRotationStatus`; per VPC `DescribeSecurityGroups` and `DescribeFlowLogs`; per trail
//! `GetTrailStatus`, `GetEventSelectors` and the bucket's `GetBucketLogging`; per bucket its location,
//! policy, Block Public Access and versioning; per DB instance and file system a `DescribeDBInstances`
//! or `DescribeFileSystems` of that one; for the CIS family, per user `ListAccessKeys`, per
//! attached policy `GetPolicyVersion`, per log group `DescribeMetricFilters`, per filter metric
//! `DescribeAlarmsForMetric`, per alarm topic `ListSubscriptionsByTopic`).
//!
//! Then, for issue 17: the first full scan apart from the steady state (later scans find evidence
//! and per-user reads stored); the full scan again behind a 30 ms round-trip delay line
//! ([`proxy::FaultProxy`]), as AWS is from a deployment; and change event to violation: the posture
//! worker running in-process with the configured debounce (`BENCH_DEBOUNCE_MS` overrides it), the
//! multi-region trail stopped and CloudTrail's `StopLogging` event put on the default bus
//! `BENCH_EVENTS` times (default 50), each timed until the `CloudTrail.1` violation reaches a queue on
//! the Portcullis bus (the trail logs again, and the control is seen passing, between events).
//! Prints a table of these and writes every figure as JSON under
//! `bench/results/posture-<unix time>.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use portcullis_tests::bench::{count_from_env, ms, p50_p99_json, percentile, write_results};
use portcullis_tests::fixtures::BenchmarkSize;
use portcullis_tests::portcullis_domain::AccountId;
use portcullis_tests::portcullis_domain::posture::{ControlId, ScanTarget, Scope, Status};
use portcullis_tests::portcullis_posture::Posture;
use portcullis_tests::portcullis_runtime::aws::ApiCallCounter;
use portcullis_tests::portcullis_runtime::config::Settings;
use portcullis_tests::portcullis_worker::app::scan_once_counted;
use portcullis_tests::proxy::FaultProxy;
use portcullis_tests::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SIZE: BenchmarkSize = BenchmarkSize {
    users: 300,
    keys: 60,
    extra_trails: 4,
    vpcs: 10,
    security_groups: 100,
    buckets: 40,
    db_instances: 20,
    file_systems: 20,
    server_certificates: 10,
};
const RUNS: usize = 7;
/// Full scans behind the delay line.
const DELAY_RUNS: usize = 3;
/// The delay line's round trip (half each way).
const DELAY_ROUND_TRIP: Duration = Duration::from_millis(30);
const DEFAULT_EVENTS: usize = 50;
/// The logging multi-region trail of [`fixtures::benchmark_account`] (CloudTrail.1 passes on it alone).
const TRAIL: &str = "bench-trail";
/// The posture settings of every scan here.
const POSTURE: &str = "[posture]\nregions = [\"us-east-1\"]\n";
const FAMILIES: [&str; 10] = ["CloudTrail", "Config", "EC2", "EFS", "GuardDuty", "IAM", "KMS", "RDS", "S3", "CIS"];

#[tokio::main]
async fn main() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto.endpoint).await;
    let prefix = random_prefix();
    deploy_stack(&sdk, &prefix).await;
    let filled = Instant::now();
    fixtures::benchmark_account(&sdk, &SIZE).await;
    eprintln!("emulator filled in {:.1} s", filled.elapsed().as_secs_f64());
    let jwks = std::env::temp_dir().join("portcullis-bench-jwks.json");
    let toml = settings_toml(&prefix, &moto.endpoint, &jwks, "", POSTURE);
    let settings = Settings::from_toml(&toml).unwrap();
    let mut problems = Vec::new();
    let metrics = MetricsProbe::new();

    // Full scans.
    let mut walls: Vec<Duration> = Vec::new();
    let mut calls = Vec::new();
    let mut last = None;
    // One worker's scanner, as a running posture worker keeps it: what it keeps between scans (the
    // KMS key descriptions, the credential report) is part of its steady state.
    let counter = ApiCallCounter::new();
    let worker = Posture::build(&settings, &sdk, &metrics.meter(), Some(counter.clone())).await.unwrap();
    for _ in 0..RUNS {
        counter.reset();
        let started = Instant::now();
        let scans = worker.scanner.scopes().into_iter().map(|scope| {
            let worker = &worker;
            async move { worker.scan_and_record(&scope, &ScanTarget::Full, "bench").await }
        });
        let reports: Vec<_> = futures::future::join_all(scans).await.into_iter().collect::<Result<_, _>>().unwrap();
        let wall = started.elapsed();
        walls.push(wall);
        calls.push(counter.total());
        last = Some((reports, counter.snapshot()));
    }
    let walls_full = walls.clone();
    let (reports, by_op) = last.unwrap();
    let report = &reports[0];
    check_findings(report);
    println!("posture scan (portcullis), full, {RUNS} runs:");
    println!(
        "  wall time: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(median(&walls)),
        ms(min(&walls)),
        ms(max(&walls))
    );
    println!("  AWS calls per scan: {} (runs: {calls:?}), of which:", calls[RUNS - 1]);
    for (op, n) in &by_op {
        println!("    {op:<50} {n}");
    }
    println!("  results:");
    for (_, r) in &report.results {
        println!("    {:<13} {:<7} {:>4} failing", r.control.as_str(), r.status.as_str(), r.failing_resources.len());
    }
    // The first scan finds nothing stored (no evidence, no per-user reads); the others, the steady state.
    let first = (calls[0], walls_full[0]);
    let steady = (median_u64(&calls[1..]), median(&walls_full[1..]));

    // One scan per family, and the seed's approach per family.
    let counter = ApiCallCounter::new();
    let posture = Posture::build(&settings, &sdk, &metrics.meter(), Some(counter.clone())).await.unwrap();
    let scope = Scope { account_id: AccountId::parse(ACCOUNT).unwrap(), region: "us-east-1".into() };
    let mut rows = Vec::new();
    let (mut seed_calls_total, mut seed_wall_total) = (0, Duration::ZERO);
    for family in FAMILIES {
        let controls: Vec<ControlId> = ControlId::ALL.iter().copied().filter(|c| c.family() == family).collect();
        let target = ScanTarget::controls(controls.iter().copied());
        let mut walls = Vec::new();
        let mut scan_calls = 0;
        let mut reads = 0;
        for _ in 0..RUNS {
            counter.reset();
            let started = Instant::now();
            posture.scan_and_record(&scope, &target, "once").await.unwrap();
            walls.push(started.elapsed());
            scan_calls = counter.total();
            reads = counter.snapshot().iter().filter(|(op, _)| !is_bookkeeping(op)).map(|(_, n)| n).sum::<u64>();
        }
        let (seed_calls, seed_wall) = seed_approach(&sdk, family).await;
        seed_calls_total += seed_calls;
        seed_wall_total += seed_wall;
        let ids: Vec<&str> = controls.iter().map(|c| c.as_str()).collect();
        rows.push((family, ids.join(", "), reads, scan_calls, median(&walls), seed_calls, seed_wall));
    }
    println!("per control family (portcullis: median of {RUNS} targeted scans; seed approach: one sequential run):");
    println!(
        "  {:<11} {:<52} {:>9} {:>11} {:>8}   {:>10} {:>8}",
        "family", "controls", "AWS reads", "+bookkeep.", "wall ms", "seed calls", "seed ms"
    );
    for (family, ids, reads, scan_calls, wall, seed_calls, seed_wall) in &rows {
        println!(
            "  {family:<11} {ids:<52} {reads:>9} {:>11} {:>8.0}   {seed_calls:>10} {:>8.0}",
            scan_calls - reads,
            ms(*wall),
            ms(*seed_wall)
        );
    }
    println!(
        "full scan: portcullis {} AWS calls (reads and bookkeeping), {:.0} ms median; seed approach, every family in \
         turn on the same data: {seed_calls_total} AWS calls, {:.0} ms",
        calls[RUNS - 1],
        ms(median(&walls_full)),
        ms(seed_wall_total)
    );

    eprintln!("delay line: {DELAY_RUNS} full scans behind {} ms ...", DELAY_ROUND_TRIP.as_millis());
    let delayed = delayed_scans(&moto, &prefix, &jwks, report, &metrics, &mut problems).await;
    let events = count_from_env("BENCH_EVENTS", DEFAULT_EVENTS);
    let violations = if events > 0 {
        eprintln!("change events: {events} StopLogging events, one at a time ...");
        Some(event_to_violation(&sdk, &moto, &prefix, &jwks, events, &mut problems).await)
    } else {
        None
    };

    println!("{}", table(first, steady, &delayed, &violations));
    let path = write_results(
        "posture",
        &json!({
            "benchmark": "posture",
            "unix_time": bench::unix_time(),
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            "data_set": format!("{SIZE:?}"),
            "full_scan": {
                "runs": RUNS,
                "calls_per_run": calls,
                "wall_ms_per_run": walls_full.iter().map(|w| ms(*w)).collect::<Vec<_>>(),
                "first": {"calls": first.0, "wall_ms": ms(first.1)},
                "steady_median": {"calls": steady.0, "wall_ms": ms(steady.1)},
                "calls_by_operation_last_run": by_op,
            },
            "families": rows.iter().map(|(family, ids, reads, scan_calls, wall, seed_calls, seed_wall)| json!({
                "family": family, "controls": ids, "reads": reads, "calls": scan_calls, "wall_ms": ms(*wall),
                "seed_calls": seed_calls, "seed_wall_ms": ms(*seed_wall),
            })).collect::<Vec<_>>(),
            "seed_full": {"calls": seed_calls_total, "wall_ms": ms(seed_wall_total)},
            "delay_line": delayed.figures(),
            "event_to_violation": violations.as_ref().map(Violations::figures),
            "problems": problems,
        }),
    );
    println!("figures written to {}", path.display());
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("CHECK FAILED: {p}");
        }
        std::process::exit(1);
    }
}

/// Full scans behind the delay line.
#[derive(Debug)]
struct Delayed {
    walls: Vec<Duration>,
    calls: Vec<u64>,
}

impl Delayed {
    fn figures(&self) -> Value {
        json!({
            "round_trip_ms": ms(DELAY_ROUND_TRIP),
            "runs": self.walls.len(),
            "calls_per_run": self.calls,
            "wall_ms_per_run": self.walls.iter().map(|w| ms(*w)).collect::<Vec<_>>(),
            "wall_ms_median": ms(median(&self.walls)),
        })
    }
}

/// [`DELAY_RUNS`] full scans with every AWS call through a [`DELAY_ROUND_TRIP`] delay line; each
/// must measure what the direct scans measured (`direct`).
async fn delayed_scans(
    moto: &Moto,
    prefix: &str,
    jwks: &std::path::Path,
    direct: &portcullis_tests::portcullis_domain::posture::ScanReport,
    metrics: &MetricsProbe,
    problems: &mut Vec<String>,
) -> Delayed {
    let proxy = FaultProxy::start(&moto.endpoint).await;
    proxy.set_delay(DELAY_ROUND_TRIP / 2);
    let sdk = sdk_config(&proxy.endpoint()).await;
    let settings = Settings::from_toml(&settings_toml(prefix, &proxy.endpoint(), jwks, "", POSTURE)).unwrap();
    let statuses = |r: &portcullis_tests::portcullis_domain::posture::ScanReport| {
        r.results.iter().map(|(_, c)| (c.control, c.status, c.failing_resources.len())).collect::<Vec<_>>()
    };
    let mut out = Delayed { walls: Vec::new(), calls: Vec::new() };
    for _ in 0..DELAY_RUNS {
        let counter = ApiCallCounter::new();
        let (reports, wall) = scan_once_counted(&settings, &sdk, &metrics.meter(), &counter).await.unwrap();
        if statuses(&reports[0]) != statuses(direct) {
            problems.push("delay line: the scan measured something else than the direct scans".into());
        }
        out.walls.push(wall);
        out.calls.push(counter.total());
    }
    out
}

/// Change event to published violation.
#[derive(Debug)]
struct Violations {
    latencies: Vec<Duration>,
    debounce: Duration,
}

impl Violations {
    fn figures(&self) -> Value {
        json!({
            "event": "CloudTrail StopLogging on the default bus -> CloudTrail.1 Posture Violation on a queue",
            "debounce_ms": ms(self.debounce),
            "latency": p50_p99_json(&self.latencies),
            "p50_beyond_debounce_ms": ms(percentile(&self.latencies, 50).saturating_sub(self.debounce)),
        })
    }
}

/// `n` times: stop [`TRAIL`] and put CloudTrail's `StopLogging` event on the default bus, then time
/// until the `CloudTrail.1` violation arrives on a queue capturing the Portcullis bus; start the
/// trail again (with its event) and wait until the control passes.
async fn event_to_violation(
    sdk: &SdkConfig,
    moto: &Moto,
    prefix: &str,
    jwks: &std::path::Path,
    n: usize,
    problems: &mut Vec<String>,
) -> Violations {
    let mut posture = format!("{POSTURE}scan_interval_seconds = 3600\n");
    if let Ok(debounce) = std::env::var("BENCH_DEBOUNCE_MS") {
        posture.push_str(&format!("debounce_ms = {debounce}\n"));
    }
    let settings = Arc::new(Settings::from_toml(&settings_toml(prefix, &moto.endpoint, jwks, "", &posture)).unwrap());
    let debounce = Duration::from_millis(settings.posture.debounce_ms);
    let metrics = MetricsProbe::new();
    let capture = capture_bus(sdk, prefix).await;
    let stop = CancellationToken::new();
    let worker = {
        let (settings, sdk, meter, stop) = (settings.clone(), sdk.clone(), metrics.meter(), stop.clone());
        let posture = Arc::new(Posture::build(&settings, &sdk, &meter, None).await.unwrap());
        tokio::spawn(async move {
            portcullis_tests::portcullis_worker::app::run_posture_with(posture, settings, &sdk, &meter, stop).await
        })
    };
    let passing = || async {
        let status = metrics.find("portcullis_posture_control_status", &[("control_id", "CloudTrail.1")]);
        (status.first().map(|p| p.value) == Some(1.0)).then_some(())
    };
    eventually(Duration::from_secs(60), "the first scheduled scan", passing).await;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let ct = aws_sdk_cloudtrail::Client::new(sdk);
    let event = |name: &str| json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": name, "requestParameters": {"name": TRAIL}});
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        ct.stop_logging().name(TRAIL).send().await.unwrap();
        let started = Instant::now();
        put_event(sdk, "aws.cloudtrail", "AWS API Call via CloudTrail", event("StopLogging")).await;
        match wait_violation(&sqs, &capture, started).await {
            Some(latency) => latencies.push(latency),
            None => problems.push(format!("event {i}: no CloudTrail.1 violation within {VIOLATION_TIMEOUT:?}")),
        }
        ct.start_logging().name(TRAIL).send().await.unwrap();
        put_event(sdk, "aws.cloudtrail", "AWS API Call via CloudTrail", event("StartLogging")).await;
        eventually(Duration::from_secs(30), "CloudTrail.1 to pass again", passing).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), worker).await.unwrap().unwrap().unwrap();
    Violations { latencies, debounce }
}

/// Give up on one violation after this long.
const VIOLATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Receive (and delete) from `capture` until a failing `CloudTrail.1` violation arrives: how long
/// after `started`.
async fn wait_violation(sqs: &aws_sdk_sqs::Client, capture: &str, started: Instant) -> Option<Duration> {
    while started.elapsed() < VIOLATION_TIMEOUT {
        let out = sqs
            .receive_message()
            .queue_url(capture)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let mut found = None;
        for m in out.messages.unwrap_or_default() {
            let event: Value = serde_json::from_str(m.body.as_deref().unwrap_or("null")).unwrap_or_default();
            let detail = &event["detail"];
            if event["detail-type"] == "Posture Violation"
                && detail["control_id"] == "CloudTrail.1"
                && detail["status"] == "fail"
            {
                found = found.or(Some(started.elapsed()));
            }
            sqs.delete_message().queue_url(capture).receipt_handle(m.receipt_handle.unwrap()).send().await.unwrap();
        }
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The issue 17 figures of this benchmark.
fn table(
    first: (u64, Duration),
    steady: (u64, Duration),
    delayed: &Delayed,
    violations: &Option<Violations>,
) -> String {
    let mut out = String::new();
    let mut row = |figure: &str, value: String, floor: String, note: String| {
        out.push_str(&format!("  {figure:<58} {value:>12} {floor:>8}   {note}\n"));
    };
    row("figure", "portcullis".into(), "floor".into(), "".into());
    row("first full scan: AWS calls / wall ms", format!("{} / {:.0}", first.0, ms(first.1)), "".into(), "".into());
    row(
        &format!("steady full scan (median of {}): calls / ms", RUNS - 1),
        format!("{} / {:.0}", steady.0, ms(steady.1)),
        "".into(),
        "".into(),
    );
    let wall = median(&delayed.walls);
    row(
        &format!("full scan, {} ms delay line (median of {DELAY_RUNS}): calls / ms", DELAY_ROUND_TRIP.as_millis()),
        format!("{} / {:.0}", median_u64(&delayed.calls), ms(wall)),
        "".into(),
        format!("direct, same scans: {:.0} ms", ms(steady.1)),
    );
    match violations {
        Some(v) => {
            for p in [50, 99] {
                row(
                    &format!("change event -> violation p{p}, ms ({} events)", v.latencies.len()),
                    format!("{:.0}", ms(percentile(&v.latencies, p))),
                    format!("{:.0}", ms(v.debounce)),
                    format!(
                        "floor: the configured debounce; +{:.0} ms",
                        ms(percentile(&v.latencies, p).saturating_sub(v.debounce))
                    ),
                );
            }
        }
        None => row("change event -> violation", "skipped".into(), "".into(), "".into()),
    }
    format!("posture benchmark (issue 17 figures), moto, release build unless said otherwise\n{out}")
}

fn median_u64(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Evidence, violations and the per-user read store: the calls a scan makes to record, not to read.
fn is_bookkeeping(op: &str) -> bool {
    op.starts_with("DynamoDB.") || op.starts_with("EventBridge.")
}

/// The data set's known findings.
fn check_findings(report: &portcullis_tests::portcullis_domain::posture::ScanReport) {
    let failing = |c: ControlId| {
        let r = report.result(c).unwrap();
        (r.status, r.failing_resources.len())
    };
    assert_eq!(failing(ControlId::Kms4), (Status::Fail, SIZE.keys / 10), "every 10th key does not rotate");
    assert_eq!(failing(ControlId::Ec253), (Status::Fail, SIZE.security_groups / 10), "every 10th group is open");
    assert_eq!(failing(ControlId::Ec26), (Status::Fail, SIZE.vpcs / 5), "every 5th new VPC has no flow log");
    assert_eq!(failing(ControlId::Iam5), (Status::Fail, SIZE.users.div_ceil(30)), "console users without MFA");
    assert_eq!(failing(ControlId::CloudTrail4), (Status::Fail, SIZE.extra_trails / 2), "trails without validation");
    for c in [ControlId::S35, ControlId::S38] {
        assert_eq!(failing(c), (Status::Fail, SIZE.buckets / 5), "{c}: every 5th bucket is bare");
    }
    for c in [ControlId::Rds2, ControlId::Rds3, ControlId::Rds13] {
        assert_eq!(failing(c), (Status::Fail, SIZE.db_instances / 5), "{c}: every 5th DB instance");
    }
    assert_eq!(failing(ControlId::Efs1), (Status::Fail, SIZE.file_systems / 5), "every 5th file system");
    assert_eq!(failing(ControlId::Iam26), (Status::Fail, SIZE.server_certificates / 5), "every 5th certificate");
    // moto's GetBucketVersioning answers do not parse (S3.20 unknown); it has no IAM Access Analyzer
    // (IAM.28 unknown).
    assert_eq!(failing(ControlId::S320).0, Status::Unknown);
    assert_eq!(failing(ControlId::Iam28).0, Status::Unknown);
    for c in [
        ControlId::CloudTrail1,
        ControlId::CloudTrail2,
        ControlId::CloudTrail7,
        ControlId::Config1,
        ControlId::Ec22,
        ControlId::Ec254,
        ControlId::Ec27,
        ControlId::GuardDuty1,
        ControlId::Iam3,
        ControlId::Iam4,
        ControlId::Iam15,
        ControlId::Iam16,
        ControlId::Iam22,
        ControlId::Kms3,
        ControlId::S31,
    ] {
        assert_eq!(failing(c).0, Status::Pass, "{c}: {:?}", report.result(c));
    }
    // moto cannot answer aws-sdk-cloudwatch (Smithy RPC v2 CBOR): the chain stops, unknown, at the alarms.
    for c in ControlId::ALL.iter().filter(|c| c.as_str().starts_with("CIS3-4.")) {
        let expected = if *c == ControlId::Cis3_4_16 { Status::Pass } else { Status::Unknown };
        assert_eq!(failing(*c).0, expected, "{c}: {:?}", report.result(*c));
    }
}

/// A counted S3 client for the emulator (path-style).
fn s3_client(sdk: &SdkConfig, counter: &ApiCallCounter) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).interceptor(counter.clone()).build(),
    )
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

/// The seed's way of reading one family: sequential, per resource. Returns the calls and the wall
/// time.
async fn seed_approach(sdk: &SdkConfig, family: &str) -> (u64, Duration) {
    let counter = ApiCallCounter::new();
    macro_rules! client {
        ($krate:ident) => {
            $krate::Client::from_conf($krate::config::Builder::from(sdk).interceptor(counter.clone()).build())
        };
    }
    let started = Instant::now();
    match family {
        "CloudTrail" => {
            let ct = client!(aws_sdk_cloudtrail);
            let s3 = s3_client(sdk, &counter);
            for t in ct.describe_trails().send().await.unwrap().trail_list.unwrap_or_default() {
                let arn = t.trail_arn.unwrap();
                ct.get_trail_status().name(&arn).send().await.unwrap();
                ct.get_event_selectors().trail_name(&arn).send().await.unwrap();
                if let Some(bucket) = t.s3_bucket_name {
                    s3.get_bucket_logging().bucket(bucket).send().await.unwrap();
                }
            }
        }
        "RDS" => {
            let rds = client!(aws_sdk_rds);
            for i in rds.describe_db_instances().send().await.unwrap().db_instances() {
                let id = i.db_instance_identifier().unwrap();
                rds.describe_db_instances().db_instance_identifier(id).send().await.unwrap();
            }
        }
        "EFS" => {
            let efs = client!(aws_sdk_efs);
            for f in efs.describe_file_systems().send().await.unwrap().file_systems() {
                efs.describe_file_systems().file_system_id(f.file_system_id()).send().await.unwrap();
            }
        }
        "Config" => {
            let config = client!(aws_sdk_config);
            for r in config.describe_configuration_recorders().send().await.unwrap().configuration_recorders() {
                config
                    .describe_configuration_recorder_status()
                    .configuration_recorder_names(r.name().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        "EC2" => {
            use aws_sdk_ec2::types::Filter;
            let ec2 = client!(aws_sdk_ec2);
            ec2.get_ebs_encryption_by_default().send().await.unwrap();
            for v in ec2.describe_vpcs().send().await.unwrap().vpcs() {
                let id = v.vpc_id().unwrap();
                ec2.describe_security_groups()
                    .filters(Filter::builder().name("vpc-id").values(id).build())
                    .send()
                    .await
                    .unwrap();
                ec2.describe_flow_logs()
                    .filter(Filter::builder().name("resource-id").values(id).build())
                    .send()
                    .await
                    .unwrap();
            }
        }
        "GuardDuty" => {
            let gd = client!(aws_sdk_guardduty);
            for d in gd.list_detectors().send().await.unwrap().detector_ids.unwrap_or_default() {
                gd.get_detector().detector_id(d).send().await.unwrap();
            }
        }
        "IAM" => {
            let iam = client!(aws_sdk_iam);
            iam.get_account_summary().send().await.unwrap();
            iam.get_account_password_policy().send().await.unwrap();
            for c in iam.list_server_certificates().send().await.unwrap().server_certificate_metadata_list() {
                iam.get_server_certificate().server_certificate_name(c.server_certificate_name()).send().await.unwrap();
            }
            // moto has no IAM Access Analyzer: the call is counted, its answer a 404.
            let _ = client!(aws_sdk_accessanalyzer).list_analyzers().send().await;
            let mut marker = None;
            loop {
                let page = iam.list_users().set_marker(marker.clone()).send().await.unwrap();
                for u in page.users {
                    let keys = iam.list_access_keys().user_name(&u.user_name).send().await.unwrap();
                    for k in keys.access_key_metadata {
                        iam.get_access_key_last_used().access_key_id(k.access_key_id.unwrap()).send().await.unwrap();
                    }
                    let _ = iam.get_login_profile().user_name(&u.user_name).send().await;
                    iam.list_mfa_devices().user_name(&u.user_name).send().await.unwrap();
                }
                match page.marker {
                    Some(m) if page.is_truncated => marker = Some(m),
                    _ => break,
                }
            }
        }
        "KMS" => {
            let kms = client!(aws_sdk_kms);
            for k in kms.list_keys().limit(1000).send().await.unwrap().keys.unwrap_or_default() {
                let id = k.key_id.unwrap();
                kms.describe_key().key_id(&id).send().await.unwrap();
                let _ = kms.get_key_rotation_status().key_id(&id).send().await;
            }
        }
        "S3" => {
            let s3control =
                portcullis_tests::portcullis_posture::collect::Clients::new(sdk, "us-east-1", Some(&counter)).s3control;
            s3control.get_public_access_block().account_id(ACCOUNT).send().await.unwrap();
            let s3 = s3_client(sdk, &counter);
            for b in s3.list_buckets().send().await.unwrap().buckets() {
                let bucket = b.name().unwrap();
                s3.get_bucket_location().bucket(bucket).send().await.unwrap();
                let _ = s3.get_bucket_policy().bucket(bucket).send().await;
                let _ = s3.get_public_access_block().bucket(bucket).send().await;
                // moto's answer does not parse (as for S3.20): the call is counted, its answer unread.
                let _ = s3.get_bucket_versioning().bucket(bucket).send().await;
            }
        }
        "CIS" => {
            // CIS 1.13: every user's keys; CIS 1.16: every attached customer policy's default version.
            let iam = client!(aws_sdk_iam);
            let mut marker = None;
            loop {
                let page = iam.list_users().set_marker(marker.clone()).send().await.unwrap();
                for u in page.users {
                    iam.list_access_keys().user_name(&u.user_name).send().await.unwrap();
                }
                match page.marker {
                    Some(m) if page.is_truncated => marker = Some(m),
                    _ => break,
                }
            }
            let policies = iam
                .list_policies()
                .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                .only_attached(true)
                .send()
                .await
                .unwrap();
            for p in policies.policies() {
                iam.get_policy_version()
                    .policy_arn(p.arn().unwrap())
                    .version_id(p.default_version_id().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            // CIS 4.1-4.15: trail by trail, filter by filter, alarm by alarm; CIS 4.16: the hub.
            let ct = client!(aws_sdk_cloudtrail);
            let logs = client!(aws_sdk_cloudwatchlogs);
            let cloudwatch = client!(aws_sdk_cloudwatch);
            let sns = client!(aws_sdk_sns);
            for t in ct.describe_trails().send().await.unwrap().trail_list.unwrap_or_default() {
                let arn = t.trail_arn.unwrap();
                ct.get_trail_status().name(&arn).send().await.unwrap();
                ct.get_event_selectors().trail_name(&arn).send().await.unwrap();
                let Some(group) = t.cloud_watch_logs_log_group_arn else { continue };
                let name = group.split(":log-group:").nth(1).unwrap().trim_end_matches(":*");
                let filters = logs.describe_metric_filters().log_group_name(name).send().await.unwrap();
                for f in filters.metric_filters() {
                    for m in f.metric_transformations() {
                        // moto answers CloudWatch's CBOR with 404: the call is counted, its alarms unseen.
                        let Ok(alarms) = cloudwatch
                            .describe_alarms_for_metric()
                            .namespace(m.metric_namespace())
                            .metric_name(m.metric_name())
                            .send()
                            .await
                        else {
                            continue;
                        };
                        for a in alarms.metric_alarms() {
                            for topic in a.alarm_actions() {
                                sns.list_subscriptions_by_topic().topic_arn(topic).send().await.unwrap();
                            }
                        }
                    }
                }
            }
            client!(aws_sdk_securityhub).describe_hub().send().await.unwrap();
        }
        other => unreachable!("no family {other}"),
    }
    let per_op: BTreeMap<String, u64> = counter.snapshot();
    (per_op.values().sum(), started.elapsed())
}
