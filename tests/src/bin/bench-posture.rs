//! Posture scan benchmark (`make bench-posture`).
//!
//! Fills a private moto_server with 300 users with 2 active access keys each, 60 customer KMS keys
//! (every 10th without rotation), one logging multi-region trail and one GuardDuty detector; then
//! times full scans (`posture scan --once`: collection, metrics, evidence) and counts their AWS calls.
//! For comparison it also runs the seed's approach on the same data: per-user `ListAccessKeys`,
//! per-key `DescribeKey` and `GetKeyRotationStatus`, one call at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use portcullis_tests::portcullis_domain::posture::{ControlId, Status};
use portcullis_tests::portcullis_runtime::aws::ApiCallCounter;
use portcullis_tests::portcullis_runtime::config::Settings;
use portcullis_tests::portcullis_worker::app::scan_once_counted;
use portcullis_tests::*;

const USERS: usize = 300;
const KEYS: usize = 60;
const RUNS: usize = 7;

#[tokio::main]
async fn main() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto.endpoint).await;
    let prefix = random_prefix();
    deploy_stack(&sdk, &prefix).await;
    let filled = Instant::now();
    fixtures::benchmark_account(
        &sdk,
        &fixtures::BenchmarkSize { users: USERS, keys: KEYS, extra_trails: 4, vpcs: 10, security_groups: 100 },
    )
    .await;
    eprintln!("emulator filled in {:.1} s", filled.elapsed().as_secs_f64());
    let jwks = std::env::temp_dir().join("portcullis-bench-jwks.json");
    let toml = settings_toml(&prefix, &moto.endpoint, &jwks, "", "[posture]\nregions = [\"us-east-1\"]\n");
    let settings = Settings::from_toml(&toml).unwrap();
    let metrics = MetricsProbe::new();

    let mut walls = Vec::new();
    let mut calls = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let counter = ApiCallCounter::new();
        let (reports, wall) = scan_once_counted(&settings, &sdk, &metrics.meter(), &counter).await.unwrap();
        walls.push(wall);
        calls.push(counter.total());
        last = Some((reports, counter.snapshot()));
    }
    let (reports, by_op) = last.unwrap();
    let report = &reports[0];
    let kms4 = report.result(ControlId::Kms4).unwrap();
    let iam3 = report.result(ControlId::Iam3).unwrap();
    assert_eq!(kms4.status, Status::Fail);
    assert_eq!(kms4.failing_resources.len(), KEYS / 10, "every 10th key does not rotate");
    assert_eq!(iam3.status, Status::Pass);
    assert_eq!(report.result(ControlId::CloudTrail1).unwrap().status, Status::Pass);
    assert_eq!(report.result(ControlId::GuardDuty1).unwrap().status, Status::Pass);

    walls.sort();
    let median = walls[RUNS / 2];
    println!("posture scan (portcullis): {} runs", RUNS);
    println!("  wall time: median {:.0} ms, min {:.0} ms, max {:.0} ms", ms(median), ms(walls[0]), ms(walls[RUNS - 1]));
    println!("  AWS calls per scan: {} (runs: {:?})", calls[RUNS - 1], calls);
    for (op, n) in &by_op {
        println!("    {op:<45} {n}");
    }
    println!(
        "  findings: KMS.4 {} failing of {} keys; IAM.3 {} over {} active keys; CloudTrail.1 pass; GuardDuty.1 pass",
        kms4.failing_resources.len(),
        KEYS,
        iam3.status.as_str(),
        USERS * 2
    );

    let (naive_calls, naive_wall, naive_failing) = seed_approach(&sdk).await;
    println!("seed approach (sequential, per user and per key) on the same data:");
    println!("  wall time {:.0} ms, AWS calls {naive_calls}, KMS.4 failing {naive_failing}", ms(naive_wall));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The seed's scan: sequential, `ListAccessKeys` per user, `DescribeKey` and rotation per key.
async fn seed_approach(sdk: &aws_config::SdkConfig) -> (u64, Duration, usize) {
    let counter = ApiCallCounter::new();
    let iam =
        aws_sdk_iam::Client::from_conf(aws_sdk_iam::config::Builder::from(sdk).interceptor(counter.clone()).build());
    let kms =
        aws_sdk_kms::Client::from_conf(aws_sdk_kms::config::Builder::from(sdk).interceptor(counter.clone()).build());
    let ct = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::from(sdk).interceptor(counter.clone()).build(),
    );
    let gd = aws_sdk_guardduty::Client::from_conf(
        aws_sdk_guardduty::config::Builder::from(sdk).interceptor(counter.clone()).build(),
    );
    let started = Instant::now();
    for t in ct.describe_trails().send().await.unwrap().trail_list.unwrap_or_default() {
        ct.get_trail_status().name(t.trail_arn.unwrap()).send().await.unwrap();
    }
    for d in gd.list_detectors().send().await.unwrap().detector_ids.unwrap_or_default() {
        gd.get_detector().detector_id(d).send().await.unwrap();
    }
    let mut marker = None;
    loop {
        let page = iam.list_users().set_marker(marker.clone()).send().await.unwrap();
        for u in page.users {
            iam.list_access_keys().user_name(u.user_name).send().await.unwrap();
        }
        match page.marker {
            Some(m) if page.is_truncated => marker = Some(m),
            _ => break,
        }
    }
    let mut failing = 0;
    for k in kms.list_keys().limit(1000).send().await.unwrap().keys.unwrap_or_default() {
        let id = k.key_id.unwrap();
        let meta = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
        let rotation = kms.get_key_rotation_status().key_id(&id).send().await.map(|r| r.key_rotation_enabled);
        if meta.key_manager.map(|m| m.as_str() == "CUSTOMER").unwrap_or(false) && matches!(rotation, Ok(false)) {
            failing += 1;
        }
    }
    (counter.total(), started.elapsed(), failing)
}
