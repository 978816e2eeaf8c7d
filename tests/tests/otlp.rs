//! Real OTLP: the workers' telemetry exported over OTLP/HTTP to a receiver that decodes it with the
//! official protobuf definitions (opentelemetry-proto), asserted by name, unit, attributes and value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use portcullis_tests::portcullis_domain::AccountId;
use portcullis_tests::portcullis_domain::posture::{ControlId, ControlResult, ScanReport, Scope};
use portcullis_tests::portcullis_posture::metrics::PostureMetrics;
use portcullis_tests::portcullis_runtime::config::TelemetrySettings;
use portcullis_tests::portcullis_runtime::telemetry::Telemetry;
use prost::Message;

struct Received {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// An OTLP/HTTP receiver on a loopback port that hands every request to the test.
fn receiver() -> (String, mpsc::Receiver<Received>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = Vec::new();
            request.as_reader().read_to_end(&mut body).unwrap();
            let content_type = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let _ = tx.send(Received { path: request.url().to_owned(), content_type, body });
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });
    (url, rx)
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| text(&kv.value))
}

fn gauge_points(m: &Metric) -> Vec<(i64, Vec<KeyValue>)> {
    match &m.data {
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => (v, p.attributes.clone()),
                Some(number_data_point::Value::AsDouble(v)) => (v as i64, p.attributes.clone()),
                None => (i64::MIN, p.attributes.clone()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn metrics_and_spans_reach_an_otlp_receiver() {
    let (url, rx) = receiver();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let telemetry = Telemetry::init_with_otlp_endpoint(&TelemetrySettings::default(), &url).unwrap();
    let meter = telemetry.meter();

    let posture = PostureMetrics::new(&meter);
    let now = Utc::now();
    posture.record(&ScanReport {
        scope: Scope { account_id: AccountId::parse("123456789012").unwrap(), region: "eu-west-1".into() },
        results: vec![
            ("eu-west-1".into(), ControlResult::pass(ControlId::CloudTrail1)),
            (
                "eu-west-1".into(),
                ControlResult::fail(ControlId::Kms4, vec!["arn:aws:kms:eu-west-1:123456789012:key/k".into()], "1 key"),
            ),
        ],
        findings: None,
        key_age: None,
        started_at: now,
        finished_at: now,
        trigger: "scheduled".into(),
    });
    runtime.block_on(async {
        tracing::info_span!("message", queue = "q", message_id = "m-1").in_scope(|| tracing::info!("handled"));
    });
    telemetry.shutdown(Duration::from_secs(5));

    let mut metrics = None;
    let mut traces = None;
    while let Ok(r) = rx.recv_timeout(Duration::from_secs(5)) {
        assert_eq!(r.content_type, "application/x-protobuf", "{}", r.path);
        match r.path.as_str() {
            "/v1/metrics" => metrics = Some(ExportMetricsServiceRequest::decode(r.body.as_slice()).unwrap()),
            "/v1/traces" => traces = Some(ExportTraceServiceRequest::decode(r.body.as_slice()).unwrap()),
            other => panic!("unexpected OTLP path {other}"),
        }
        if metrics.is_some() && traces.is_some() {
            break;
        }
    }
    let metrics = metrics.expect("an OTLP metrics export");
    let rm = &metrics.resource_metrics[0];
    let resource = rm.resource.as_ref().unwrap();
    assert_eq!(attr(&resource.attributes, "service.name").as_deref(), Some("portcullis"));
    let instance = attr(&resource.attributes, "service.instance.id").expect("replicas are told apart");
    assert_eq!(instance, portcullis_tests::portcullis_runtime::telemetry::instance_id());
    let all: Vec<&Metric> = rm.scope_metrics.iter().flat_map(|s| s.metrics.iter()).collect();
    let find = |name: &str| *all.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name} not exported"));

    let logging = find("aws_cloudtrail_logging_enabled");
    assert_eq!(logging.unit, "");
    let points = gauge_points(logging);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].0, 1);
    assert_eq!(attr(&points[0].1, "cloud.account.id").as_deref(), Some("123456789012"));
    assert_eq!(attr(&points[0].1, "cloud.region").as_deref(), Some("eu-west-1"));

    let status = gauge_points(find("portcullis_posture_control_status"));
    let kms = status.iter().find(|(_, a)| attr(a, "control_id").as_deref() == Some("KMS.4")).unwrap();
    assert_eq!(kms.0, 0);
    assert_eq!(gauge_points(find("aws_kms_rotation_all_enabled"))[0].0, 0);
    let last = find("portcullis_posture_scan_last_success_timestamp_seconds");
    assert_eq!(last.unit, "s");
    assert_eq!(gauge_points(last)[0].0, now.timestamp());
    let failing = gauge_points(find("portcullis_posture_failing_resources"));
    assert!(failing.iter().all(|(_, a)| a.iter().all(|kv| !text(&kv.value).starts_with("arn:"))), "no ARN labels");

    let traces = traces.expect("an OTLP traces export");
    let spans: Vec<String> = traces
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .map(|s| s.name.clone())
        .collect();
    assert!(spans.contains(&"message".to_owned()), "{spans:?}");
}
