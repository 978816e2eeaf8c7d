//! Benchmarks of the access pipeline's pure core: rendering one template and composing a session
//! policy from ten grants. Run with `cargo bench -p portcullis-domain`.

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_domain::grant::Grant;
use portcullis_domain::guardrails::Guardrails;
use portcullis_domain::policy::compose_session_policy;
use portcullis_domain::template::{CompiledTemplate, TemplateSpec};
use portcullis_domain::{AccountId, MessageId, TemplateName};

fn bucket_read() -> TemplateSpec {
    let text = include_str!("../../../examples/templates/bucketRead.json");
    serde_json::from_str(text).expect("example template parses")
}

fn render(c: &mut Criterion) {
    let template = CompiledTemplate::compile(bucket_read()).expect("compiles");
    let guardrails = Guardrails::default();
    let params = BTreeMap::from([("bucketName".to_string(), "analytics-reports-2026".to_string())]);
    let mut group = c.benchmark_group("template");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_bucketRead", |b| {
        b.iter(|| template.render(black_box(&params), &guardrails).expect("renders"))
    });
    // Wildcard actions are expanded against the IAM action catalog before the guardrails judge them.
    let mut wildcard = bucket_read();
    wildcard.statements[0]["Action"] = serde_json::json!(["s3:Get*", "s3:List*"]);
    let wildcard = CompiledTemplate::compile(wildcard).expect("compiles");
    group.bench_function("render_wildcard_actions", |b| {
        b.iter(|| wildcard.render(black_box(&params), &guardrails).expect("renders"))
    });
    // With the stack's own resources protected (what the worker runs with).
    let protected = Guardrails::new(
        &Guardrails::DEFAULT_DENIED,
        &portcullis_domain::naming::StackNames::new("prod").own_resources(),
    )
    .expect("valid");
    group.bench_function("render_bucketRead_protected", |b| {
        b.iter(|| template.render(black_box(&params), &protected).expect("renders"))
    });
    group.finish();
}

fn compose(c: &mut Criterion) {
    let template = CompiledTemplate::compile(bucket_read()).expect("compiles");
    let guardrails = Guardrails::default();
    let now = Utc::now();
    let grants: Vec<Grant> = (0..10)
        .map(|i| {
            let params = BTreeMap::from([("bucketName".to_string(), format!("bucket-{i}"))]);
            let message_id = MessageId::parse(&format!("m-{i}")).expect("valid");
            Grant {
                id: Grant::id_for("alice", &message_id),
                user: "alice".into(),
                team: Some("payments".into()),
                groups: vec![],
                account: AccountId::parse("123456789012").expect("valid"),
                template: TemplateName::parse("bucketRead").expect("valid"),
                template_version: 1,
                statements: template.render(&params, &guardrails).expect("renders"),
                params,
                reason: "bench".into(),
                created_at: now,
                expires_at: now + Duration::minutes(30 + i),
                request_message_id: message_id,
                via: None,
                revoked: None,
                status: portcullis_domain::grant::GrantStatus::Active,
                ttl_seconds: 3600,
                approval: None,
                break_glass: None,
                user_display_name: None,
                revision: 0,
            }
        })
        .collect();
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    group.bench_function("compose_10_grants", |b| {
        b.iter(|| compose_session_policy(black_box(&grants), now).expect("fits"))
    });
    group.finish();
}

criterion_group!(benches, render, compose);
criterion_main!(benches);
