//! Every branch of the access handler, over the in-memory ports and queue: milliseconds, no
//! emulator. (The emulator tests in `tests/` cover the adapters and the end-to-end paths.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use portcullis_domain::guardrails::Guardrails;
use portcullis_domain::messages::{ENVELOPE_VERSION, Kind, Reply, ReplyOutcome};
use portcullis_domain::naming::StackNames;
use portcullis_domain::producers::{Producer, Producers};
use portcullis_domain::reply_policy::ReplyPolicy;
use portcullis_domain::{AccountId, ErrorCode, QueueUrl};
use portcullis_runtime::clock::Clock;
use portcullis_runtime::clock::ManualClock;
use portcullis_runtime::consumer::{ConsumerOptions, Disposition, Outcome, PipelineMetrics, run_consumer};
use portcullis_runtime::queue::{Attempt, MemoryQueue, ReceivedMessage};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fakes::{FakeBroker, FakeSessions, FakeVerifier, MemoryStore, RecordingAudit, RecordingReplies};
use crate::handler::{AccessConfig, AccessHandler, BrokeredAccount, Ports};
use crate::metrics::AccessMetrics;
use crate::ports::{AccessStore, BrokerError, ReplyError, StoreError};

const ACCOUNT: &str = "123456789012";
const REPLY_TO: &str = "http://sqs.test/123456789012/p-reply-alice";
const FIRST: Attempt = Attempt { number: 1, is_last: false };
const LAST: Attempt = Attempt { number: 3, is_last: true };

struct Harness {
    handler: Arc<AccessHandler>,
    store: Arc<MemoryStore>,
    broker: Arc<FakeBroker>,
    replies: Arc<RecordingReplies>,
    sessions: Arc<FakeSessions>,
    audit: Arc<RecordingAudit>,
    clock: ManualClock,
    next: std::sync::atomic::AtomicUsize,
}

fn harness_with(allowed_sender_ids: Vec<String>, max_message_bytes: usize) -> Harness {
    harness_full(allowed_sender_ids, max_message_bytes, Vec::new())
}

fn harness_full(allowed_sender_ids: Vec<String>, max_message_bytes: usize, producers: Vec<Producer>) -> Harness {
    let request_queue = QueueUrl::parse("http://sqs.test/123456789012/p-access-requests").unwrap();
    let config = AccessConfig {
        admin_groups: vec!["portcullis-admins".into()],
        allowed_sender_ids,
        max_message_bytes,
        guardrails: Guardrails::new(&Guardrails::DEFAULT_DENIED, &StackNames::new("p").own_resources()).unwrap(),
        reply_policy: ReplyPolicy::new(&request_queue, &[], vec!["p-reply-*".into()]),
        accounts: BTreeMap::from([(
            AccountId::parse(ACCOUNT).unwrap(),
            BrokeredAccount { role_arn: format!("arn:aws:iam::{ACCOUNT}:role/p-broker"), max_session_seconds: 3600 },
        )]),
        max_credentials_seconds: 3600,
        idempotency_ttl_seconds: 7 * 86_400,
        producers: Producers::new(producers),
        revocation_policy_max_chars: 8192,
        require_sealed_credentials: true,
        pending_ttl_seconds: 3600,
        break_glass_review_seconds: 86_400,
    };
    let (store, broker, replies) =
        (Arc::new(MemoryStore::default()), Arc::new(FakeBroker::default()), Arc::new(RecordingReplies::default()));
    let (sessions, audit) = (Arc::new(FakeSessions::default()), Arc::new(RecordingAudit::default()));
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap());
    let ports = Ports {
        store: store.clone(),
        broker: broker.clone(),
        replies: replies.clone(),
        identity: Arc::new(FakeVerifier),
        sessions: sessions.clone(),
        audit: audit.clone(),
        clock: Arc::new(clock.clone()),
    };
    let meter = opentelemetry::global::meter("test");
    let handler = Arc::new(AccessHandler::new(config, ports, AccessMetrics::new(&meter)));
    Harness { handler, store, broker, replies, sessions, audit, clock, next: Default::default() }
}

fn harness() -> Harness {
    harness_with(Vec::new(), 262_144)
}

fn admin() -> String {
    FakeVerifier::token("admin", Some("security"), &["portcullis-admins"])
}

fn alice() -> String {
    FakeVerifier::token("alice", Some("payments"), &["engineers"])
}

fn bucket_read() -> Value {
    serde_json::from_str(include_str!("../../../examples/templates/bucketRead.json")).unwrap()
}

/// A `credentials.request` body with a fresh reply key (the secret is thrown away: see
/// [`Harness::credentials`] to open the reply).
fn creds(account: &str) -> Value {
    json!({"account": account, "reply_key": portcullis_domain::sealed::generate_reply_key().1.encode()})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn grant_body(bucket: &str, ttl: u64) -> Value {
    json!({"template": "bucketRead", "params": {"bucketName": bucket}, "account": ACCOUNT, "ttl": ttl, "reason": "incident 42"})
}

impl Harness {
    fn envelope(&self, id: &str, kind: &str, body: Value, token: Option<&str>) -> String {
        let mut env = json!({"version": ENVELOPE_VERSION, "message_id": id, "kind": kind,
                             "sent_at": "2026-11-22T12:00:00Z", "reply_to": REPLY_TO, "body": body});
        if let Some(t) = token {
            env["identity_token"] = json!(t);
        }
        env.to_string()
    }

    fn message(&self, body: &str) -> ReceivedMessage {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ReceivedMessage {
            message_id: format!("sqs-{n}"),
            receipt_handle: format!("r-{n}"),
            body: body.to_owned(),
            receive_count: 1,
            sender_id: Some("AIDAPRODUCER".into()),
            attributes: Default::default(),
        }
    }

    async fn handle_raw(&self, body: &str, attempt: Attempt) -> Outcome {
        use portcullis_runtime::consumer::Handler;
        self.handler.handle(&self.message(body), attempt).await
    }

    /// Send a request (fresh message id) and return the outcome and the reply it got.
    async fn request(&self, kind: Kind, body: Value, token: &str) -> (Outcome, Option<Reply>) {
        let id = format!("m-{}", self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        self.request_as(&id, kind, body, token, FIRST).await
    }

    async fn request_as(
        &self,
        id: &str,
        kind: Kind,
        body: Value,
        token: &str,
        attempt: Attempt,
    ) -> (Outcome, Option<Reply>) {
        let before = self.replies.sent().len();
        let outcome = self.handle_raw(&self.envelope(id, kind.as_str(), body, Some(token)), attempt).await;
        (outcome, self.last_reply_since(before))
    }

    fn last_reply_since(&self, before: usize) -> Option<Reply> {
        let sent = self.replies.sent();
        assert!(sent.len() <= before + 1, "at most one reply per delivery");
        sent.get(before).map(|r| serde_json::from_str(&r.text).unwrap())
    }

    async fn ok(&self, kind: Kind, body: Value, token: &str) -> Value {
        let (outcome, reply) = self.request(kind, body, token).await;
        assert_eq!(outcome.disposition, Disposition::Done, "{outcome:?} {reply:?}");
        result(&reply.unwrap())
    }

    async fn refused(&self, kind: Kind, body: Value, token: &str) -> (ErrorCode, String) {
        let (outcome, reply) = self.request(kind, body, token).await;
        let (code, message) = error(&reply.expect("a reply"));
        assert_eq!(outcome.disposition, Disposition::Reject { code, reason: message.clone() }, "{outcome:?}");
        (code, message)
    }

    /// Ask for credentials with a fresh key as `token`, and open the sealed reply: (result, credentials).
    async fn credentials(&self, token: &str) -> (Value, Value) {
        use portcullis_domain::sealed::{SealedBox, generate_reply_key, open_credentials};
        let (secret, key) = generate_reply_key();
        let id = format!("m-{}", self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let body = json!({"account": ACCOUNT, "reply_key": key.encode()});
        let (outcome, reply) = self.request_as(&id, Kind::CredentialsRequest, body, token, FIRST).await;
        assert_eq!(outcome.disposition, Disposition::Done, "{outcome:?} {reply:?}");
        let result = result(&reply.unwrap());
        assert!(result.get("credentials").is_none(), "never in clear: {result}");
        let sealed: SealedBox = serde_json::from_value(result["sealed_credentials"].clone()).unwrap();
        let opened = open_credentials(&secret, &id, ACCOUNT, &sealed).unwrap();
        (result, serde_json::from_slice(&opened).unwrap())
    }

    async fn put_bucket_read(&self) {
        self.ok(Kind::TemplatePut, json!({"template": bucket_read()}), &admin()).await;
    }
}

fn result(reply: &Reply) -> Value {
    match &reply.outcome {
        ReplyOutcome::Ok { result } => result.clone(),
        ReplyOutcome::Error { error } => panic!("expected ok, got {}: {}", error.code, error.message),
    }
}

fn error(reply: &Reply) -> (ErrorCode, String) {
    match &reply.outcome {
        ReplyOutcome::Error { error } => (error.code, error.message.clone()),
        ReplyOutcome::Ok { result } => panic!("expected an error, got {result}"),
    }
}

fn rejected_code(outcome: &Outcome) -> ErrorCode {
    match &outcome.disposition {
        Disposition::Reject { code, .. } => *code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------- admit

#[tokio::test]
async fn an_unlisted_producer_is_refused_and_never_answered() {
    let h = harness_with(vec!["AIDA-SOMEONE-ELSE".into()], 262_144);
    let body = h.envelope("m1", "grant.list", json!({}), Some(&alice()));
    let outcome = h.handle_raw(&body, FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::SenderForbidden);
    assert!(h.replies.sent().is_empty());
}

#[tokio::test]
async fn oversized_malformed_and_unknown_messages_are_answered_with_their_codes() {
    let h = harness_with(Vec::new(), 2000);
    let cases = [
        (
            h.envelope("m-big", "grant.list", json!({"padding": "x".repeat(3000)}), Some(&alice())),
            ErrorCode::MessageTooLarge,
        ),
        (
            json!({"version": 1, "message_id": "m-broken", "reply_to": REPLY_TO, "body": {}}).to_string(),
            ErrorCode::BadRequest,
        ),
        (
            h.envelope("m-v2", "grant.list", json!({}), Some(&alice())).replace("\"version\":1", "\"version\":2"),
            ErrorCode::UnsupportedVersion,
        ),
        (h.envelope("m-kind", "grant.steal", json!({}), Some(&alice())), ErrorCode::UnknownKind),
        (h.envelope("m bad id", "grant.list", json!({}), Some(&alice())), ErrorCode::BadRequest),
    ];
    for (body, code) in cases {
        let before = h.replies.sent().len();
        let outcome = h.handle_raw(&body, FIRST).await;
        assert_eq!(rejected_code(&outcome), code, "{body:.80}");
        let reply = h.last_reply_since(before).expect("answered");
        assert_eq!(error(&reply).0, code);
    }
    // The invalid message id is not echoed back.
    let last = serde_json::from_str::<Reply>(&h.replies.sent().last().unwrap().text).unwrap();
    assert_eq!(last.in_reply_to, None);
}

#[tokio::test]
async fn not_json_without_an_address_is_rejected_unanswered() {
    let h = harness();
    let outcome = h.handle_raw("this is not json", FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::BadRequest);
    assert!(h.replies.sent().is_empty());
}

#[tokio::test]
async fn a_forbidden_reply_address_gets_nothing() {
    let h = harness();
    for to in [
        "http://sqs.test/123456789012/p-access-requests",
        "http://evil.test/123456789012/p-reply-x",
        "http://sqs.test/999999999999/p-reply-x",
        &format!("http://sqs.test/123456789012/p-reply-{}", "a".repeat(100_000)),
    ] {
        let mut env: Value = serde_json::from_str(&h.envelope("m1", "grant.list", json!({}), Some(&alice()))).unwrap();
        env["reply_to"] = json!(to);
        let outcome = h.handle_raw(&env.to_string(), FIRST).await;
        assert_eq!(rejected_code(&outcome), ErrorCode::ReplyForbidden, "{to:.60}");
    }
    assert!(h.replies.sent().is_empty());
}

// ---------------------------------------------------------------------------------------- authenticate

#[tokio::test]
async fn identity_comes_only_from_a_verified_token() {
    let h = harness();
    let body = h.envelope("m1", "grant.list", json!({}), None);
    assert_eq!(rejected_code(&h.handle_raw(&body, FIRST).await), ErrorCode::Unauthenticated);
    let (code, _) = h.refused(Kind::GrantList, json!({}), "forged").await;
    assert_eq!(code, ErrorCode::Unauthenticated);
    // A name in the body is refused, not used.
    let (code, message) = h.refused(Kind::GrantList, json!({"user": "bob"}), &alice()).await;
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(message.contains("user"), "{message}");
}

#[tokio::test]
async fn an_unavailable_issuer_is_retried_then_answered_unavailable() {
    let h = harness();
    let (outcome, reply) = h.request_as("m1", Kind::GrantList, json!({}), "keys-down", FIRST).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }), "{outcome:?}");
    assert!(reply.is_none(), "not answered while it may still work");
    let (outcome, reply) = h.request_as("m1", Kind::GrantList, json!({}), "keys-down", LAST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::Unavailable);
    assert_eq!(error(&reply.unwrap()).0, ErrorCode::Unavailable);
}

// ---------------------------------------------------------------------------------------- templates

#[tokio::test]
async fn templates_put_get_list_delete_with_versions() {
    let h = harness();
    assert_eq!(h.ok(Kind::TemplatePut, json!({"template": bucket_read()}), &admin()).await["version"], 1);
    let mut v2 = bucket_read();
    v2["description"] = json!("v2");
    assert_eq!(h.ok(Kind::TemplatePut, json!({"template": v2}), &admin()).await["version"], 2);
    let latest = h.ok(Kind::TemplateGet, json!({"name": "bucketRead"}), &alice()).await;
    assert_eq!(
        (latest["template"]["version"].clone(), latest["template"]["created_by"].clone()),
        (json!(2), json!("admin"))
    );
    let v1 = h.ok(Kind::TemplateGet, json!({"name": "bucketRead", "version": 1}), &alice()).await;
    assert_eq!(v1["template"]["description"], bucket_read()["description"]);
    let (code, _) = h.refused(Kind::TemplateGet, json!({"name": "bucketRead", "version": 3}), &alice()).await;
    assert_eq!(code, ErrorCode::TemplateNotFound);
    let list = h.ok(Kind::TemplateList, json!({}), &alice()).await;
    assert_eq!(list["templates"][0]["latest_version"], 2);

    assert_eq!(h.ok(Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin()).await["deleted"], true);
    let (code, _) = h.refused(Kind::TemplateGet, json!({"name": "bucketRead"}), &alice()).await;
    assert_eq!(code, ErrorCode::TemplateNotFound);
    let (code, _) = h.refused(Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin()).await;
    assert_eq!(code, ErrorCode::TemplateNotFound);
    assert_eq!(h.ok(Kind::TemplateList, json!({}), &alice()).await["templates"], json!([]));
    // Putting it again brings it back as the next version.
    assert_eq!(h.ok(Kind::TemplatePut, json!({"template": bucket_read()}), &admin()).await["version"], 3);
}

#[tokio::test]
async fn only_admins_change_templates_and_bad_templates_are_refused() {
    let h = harness();
    let (code, _) = h.refused(Kind::TemplatePut, json!({"template": bucket_read()}), &alice()).await;
    assert_eq!(code, ErrorCode::Forbidden);
    let (code, _) = h.refused(Kind::TemplateDelete, json!({"name": "bucketRead"}), &alice()).await;
    assert_eq!(code, ErrorCode::Forbidden);
    let mut undeclared = bucket_read();
    undeclared["statements"][0]["Resource"] = json!("arn:aws:s3:::{{ bucketName }}/{{ prefix }}/*");
    let (code, message) = h.refused(Kind::TemplatePut, json!({"template": undeclared}), &admin()).await;
    assert_eq!(code, ErrorCode::TemplateInvalid);
    assert!(message.contains("prefix"), "{message}");
    let mut wide = bucket_read();
    wide["statements"][0]["Action"] = json!(["s3:GetObject", "iam:PassRole"]);
    let (code, message) = h.refused(Kind::TemplatePut, json!({"template": wide}), &admin()).await;
    assert_eq!(code, ErrorCode::GuardrailViolation);
    assert!(message.contains("iam:PassRole"), "{message}");
}

#[tokio::test]
async fn a_concurrent_version_bump_is_retried_at_once() {
    let h = harness();
    h.put_bucket_read().await;
    // The first write loses a race with another put; the use case reads the index again.
    h.store.fail_writes_next([StoreError::Conflict("TEMPLATES/bucketRead".into())]);
    let mut v2 = bucket_read();
    v2["description"] = json!("v2");
    assert_eq!(h.ok(Kind::TemplatePut, json!({"template": v2}), &admin()).await["version"], 2);
    // Three lost races in a row: retried later.
    h.store.fail_writes_next(vec![StoreError::Conflict("TEMPLATES/bucketRead".into()); 3]);
    let (outcome, reply) = h.request(Kind::TemplatePut, json!({"template": bucket_read()}), &admin()).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }) && reply.is_none(), "{outcome:?}");
}

/// The shipped templates cannot be turned on Portcullis itself, and no template can name its
/// resources literally; every action must exist.
#[tokio::test]
async fn portcullis_can_never_be_granted_to_itself_and_actions_must_exist() {
    let h = harness();
    for name in ["queueConsumer", "tableReader"] {
        let text =
            std::fs::read_to_string(format!("{}/../../examples/templates/{name}.json", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        h.ok(Kind::TemplatePut, json!({"template": serde_json::from_str::<Value>(&text).unwrap()}), &admin()).await;
    }
    let grant = |template: &str, params: Value| json!({"template": template, "params": params, "account": ACCOUNT, "ttl": 600, "reason": "r"});
    for (template, params, own) in [
        (
            "queueConsumer",
            json!({"region": "us-east-1", "account": ACCOUNT, "queueName": "p-access-requests"}),
            "p-access-requests",
        ),
        (
            "queueConsumer",
            json!({"region": "eu-west-1", "account": "999999999999", "queueName": "p-directory-events"}),
            "p-directory-events",
        ),
        ("tableReader", json!({"region": "us-east-1", "account": ACCOUNT, "tableName": "p-state"}), "p-state"),
    ] {
        let (code, message) = h.refused(Kind::GrantRequest, grant(template, params), &alice()).await;
        assert_eq!(code, ErrorCode::GuardrailViolation, "{template}: {message}");
        assert!(message.contains(own) && message.contains("never be granted to itself"), "{message}");
    }
    // Other people's queues and tables are fine.
    h.ok(
        Kind::GrantRequest,
        grant("tableReader", json!({"region": "us-east-1", "account": ACCOUNT, "tableName": "orders"})),
        &alice(),
    )
    .await;
    // A template naming the stack's resources literally is refused when it is put.
    let mut literal: Value = bucket_read();
    literal["name"] = json!("stealQueue");
    literal["parameters"] = json!([]);
    literal["statements"] = json!([{"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:p-access-requests"}]);
    let (code, message) = h.refused(Kind::TemplatePut, json!({"template": literal}), &admin()).await;
    assert_eq!(code, ErrorCode::GuardrailViolation, "{message}");
    // Every action must exist, literal or rendered.
    let mut typo = bucket_read();
    typo["statements"][0]["Action"] = json!(["s3:GetObjekt"]);
    let (code, message) = h.refused(Kind::TemplatePut, json!({"template": typo}), &admin()).await;
    assert_eq!(code, ErrorCode::ActionUnknown);
    assert!(message.contains("s3:GetObjekt"), "{message}");
    let any_action = json!({"name": "anyAction", "description": "d",
        "parameters": [{"name": "a", "description": "d", "pattern": "[a-z0-9]+:[A-Za-z]+"}],
        "statements": [{"Effect": "Allow", "Action": "{{ a }}", "Resource": "*"}], "max_ttl_seconds": 3600});
    h.ok(Kind::TemplatePut, json!({"template": any_action}), &admin()).await;
    let (code, _) = h.refused(Kind::GrantRequest, grant("anyAction", json!({"a": "s3:Nope"})), &alice()).await;
    assert_eq!(code, ErrorCode::ActionUnknown);
}

// ---------------------------------------------------------------------------------------- idempotency

#[tokio::test]
async fn a_redelivered_change_gets_the_recorded_reply_byte_for_byte_and_acts_once() {
    let h = harness();
    h.put_bucket_read().await;
    for (kind, body) in [
        (Kind::GrantRequest, grant_body("reports", 600)),
        (Kind::TemplatePut, json!({"template": bucket_read()})),
        (Kind::TemplateDelete, json!({"name": "bucketRead"})),
    ] {
        let token = if kind == Kind::GrantRequest { alice() } else { admin() };
        let id = format!("m-{}", kind.as_str());
        let first = h.request_as(&id, kind, body.clone(), &token, FIRST).await;
        h.clock.advance(chrono::Duration::seconds(5));
        let again = h.request_as(&id, kind, body.clone(), &token, FIRST).await;
        assert_eq!(first.0.disposition, Disposition::Done, "{kind:?}");
        assert_eq!(again.0.disposition, Disposition::Done, "{kind:?}");
        let texts: Vec<String> = h.replies.sent().iter().rev().take(2).map(|r| r.text.clone()).collect();
        assert_eq!(texts[0], texts[1], "{kind:?}: the same reply, message_id and sent_at included");
    }
    assert_eq!(h.store.grants().len(), 1, "one grant, not two");
    // The put delivered twice added one version (2), so putting again makes 3.
    assert_eq!(h.ok(Kind::TemplatePut, json!({"template": bucket_read()}), &admin()).await["version"], 3);
}

#[tokio::test]
async fn a_reused_message_id_with_another_body_is_refused_and_does_nothing() {
    let h = harness();
    h.put_bucket_read().await;
    let (outcome, _) = h.request_as("m-1", Kind::GrantRequest, grant_body("reports", 600), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let mut other_account = grant_body("reports", 600);
    other_account["ttl"] = json!(900);
    let (outcome, reply) = h.request_as("m-1", Kind::GrantRequest, other_account, &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused);
    assert_eq!(error(&reply.unwrap()).0, ErrorCode::MessageIdReused);
    assert_eq!(h.store.grants().len(), 1);
    // A template.put id reused for template.delete deletes nothing.
    let (outcome, _) =
        h.request_as("m-2", Kind::TemplatePut, json!({"template": bucket_read()}), &admin(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let (outcome, _) = h.request_as("m-2", Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused);
    h.ok(Kind::TemplateGet, json!({"name": "bucketRead"}), &alice()).await;
    // Someone else reusing alice's id acts for themselves only.
    let (outcome, _) = h
        .request_as(
            "m-1",
            Kind::GrantRequest,
            grant_body("reports", 600),
            &FakeVerifier::token("mallory", None, &[]),
            FIRST,
        )
        .await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let owners: Vec<String> = h.store.grants().into_iter().map(|g| g.user).collect();
    assert_eq!(owners.len(), 2);
    assert!(owners.contains(&"mallory".to_owned()));
}

/// A `message_id` names one request of its requester whatever the kind: credentials asked with the
/// id of a grant request are not issued, a change with the id of a credentials request or a read
/// does nothing, and a repeat of the same credentials request is served afresh.
#[tokio::test]
async fn a_message_id_reused_across_kinds_is_refused_and_does_nothing() {
    let h = harness();
    h.put_bucket_read().await;
    let (outcome, _) = h.request_as("m-1", Kind::GrantRequest, grant_body("reports", 600), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let (outcome, reply) = h.request_as("m-1", Kind::CredentialsRequest, creds(ACCOUNT), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused);
    assert_eq!(error(&reply.unwrap()).0, ErrorCode::MessageIdReused);
    assert!(h.broker.requests().is_empty(), "STS was not asked");

    let body = creds(ACCOUNT);
    let (outcome, _) = h.request_as("m-2", Kind::CredentialsRequest, body.clone(), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let (outcome, _) = h.request_as("m-2", Kind::CredentialsRequest, body, &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done, "a redelivery is served again");
    let (outcome, _) = h.request_as("m-2", Kind::CredentialsRequest, creds(ACCOUNT), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused, "another body");
    let (outcome, _) = h.request_as("m-2", Kind::GrantRequest, grant_body("other", 600), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused);
    assert_eq!(h.store.grants().len(), 1, "no second grant");
    assert_eq!(h.broker.requests().len(), 2);

    let (outcome, _) = h.request_as("m-3", Kind::GrantList, json!({}), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let (outcome, _) = h.request_as("m-3", Kind::GrantRequest, grant_body("third", 600), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused);
    let (outcome, _) = h.request_as("m-3", Kind::CredentialsRequest, creds(ACCOUNT), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::MessageIdReused);
    assert_eq!((h.store.grants().len(), h.broker.requests().len()), (1, 2));
}

#[tokio::test]
async fn a_redelivered_grant_request_finds_its_grant_after_the_template_is_gone() {
    let h = harness();
    h.put_bucket_read().await;
    let (_, first) = h.request_as("m-g", Kind::GrantRequest, grant_body("reports", 600), &alice(), FIRST).await;
    h.ok(Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin()).await;
    let (outcome, again) = h.request_as("m-g", Kind::GrantRequest, grant_body("reports", 600), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    assert_eq!(first, again);
}

// ---------------------------------------------------------------------------------------- grants

#[tokio::test]
async fn grant_request_errors_have_stable_codes() {
    let h = harness();
    h.put_bucket_read().await;
    let mut pinned = bucket_read();
    pinned["name"] = json!("pinned");
    pinned["allowed_accounts"] = json!(["111111111111"]);
    h.ok(Kind::TemplatePut, json!({"template": pinned}), &admin()).await;
    let grant = |template: &str, params: Value, account: &str, ttl: u64, reason: &str| json!({"template": template, "params": params, "account": account, "ttl": ttl, "reason": reason});
    let ok_params = json!({"bucketName": "ok-bucket"});
    let cases = [
        (grant("nope", json!({}), ACCOUNT, 600, "r"), ErrorCode::TemplateNotFound, "nope"),
        (
            grant("bucketRead", json!({"bucketName": "Bad Bucket"}), ACCOUNT, 600, "r"),
            ErrorCode::ParamInvalid,
            "bucketName",
        ),
        (grant("bucketRead", json!({"bucketName": "*"}), ACCOUNT, 600, "r"), ErrorCode::ParamInvalid, "bucketName"),
        (grant("bucketRead", json!({}), ACCOUNT, 600, "r"), ErrorCode::ParamInvalid, "bucketName"),
        (grant("bucketRead", ok_params.clone(), ACCOUNT, 86_400, "r"), ErrorCode::TtlTooLong, "43200"),
        (grant("bucketRead", ok_params.clone(), "999999999999", 600, "r"), ErrorCode::AccountUnknown, "999999999999"),
        (grant("pinned", ok_params.clone(), ACCOUNT, 600, "r"), ErrorCode::AccountForbidden, "111111111111"),
        (grant("bucketRead", ok_params.clone(), ACCOUNT, 10, "r"), ErrorCode::DurationInvalid, "60"),
        (grant("bucketRead", ok_params.clone(), ACCOUNT, 600, "  "), ErrorCode::BadRequest, "reason"),
        (grant("bucketRead", ok_params.clone(), ACCOUNT, 600, &"x".repeat(513)), ErrorCode::BadRequest, "reason"),
        (grant("bucketRead", ok_params.clone(), "12345", 600, "r"), ErrorCode::BadRequest, "12-digit"),
        (grant(&"x".repeat(2000), json!({}), ACCOUNT, 600, "r"), ErrorCode::BadRequest, "template name"),
    ];
    for (body, code, mentions) in cases {
        let (got, message) = h.refused(Kind::GrantRequest, body.clone(), &alice()).await;
        assert_eq!(got, code, "{body:.100}");
        assert!(message.contains(mentions), "{code}: `{message}` should mention {mentions}");
    }
    assert!(h.store.grants().is_empty(), "no refused request created a grant");
}

#[tokio::test]
async fn a_grant_records_who_what_why_and_until_when_and_expires() {
    let h = harness();
    h.put_bucket_read().await;
    let grant = h.ok(Kind::GrantRequest, grant_body("analytics-reports", 1800), &alice()).await["grant"].clone();
    assert_eq!(
        (grant["user"].clone(), grant["team"].clone(), grant["groups"].clone()),
        (json!("alice"), json!("payments"), json!(["engineers"]))
    );
    assert_eq!(grant["expires_at"], "2026-11-22T12:30:00Z");
    assert_eq!(grant["reason"], "incident 42");
    assert_eq!(grant["statements"][0]["Resource"], "arn:aws:s3:::analytics-reports/*");
    let bob = FakeVerifier::token("bob", None, &[]);
    assert_eq!(h.ok(Kind::GrantList, json!({}), &bob).await["grants"], json!([]));
    assert_eq!(
        h.ok(Kind::GrantList, json!({"account": ACCOUNT}), &alice()).await["grants"].as_array().unwrap().len(),
        1
    );
    h.clock.advance(chrono::Duration::seconds(1800));
    assert_eq!(h.ok(Kind::GrantList, json!({}), &alice()).await["grants"], json!([]), "expired at its expiry");
}

// ---------------------------------------------------------------------------------------- credentials

#[tokio::test]
async fn credentials_compose_live_grants_and_name_the_session_after_the_user() {
    let h = harness();
    h.put_bucket_read().await;
    h.ok(Kind::GrantRequest, grant_body("short", 900), &alice()).await;
    h.ok(Kind::GrantRequest, grant_body("long", 3000), &alice()).await;
    let (result, credentials) = h.credentials(&alice()).await;
    assert_eq!(credentials["AccessKeyId"], "ASIAFAKE00000001");
    assert_eq!((result["session_name"].clone(), result["source_identity"].clone()), (json!("alice"), json!("alice")));
    assert_eq!(result["grant_ids"].as_array().unwrap().len(), 2);
    let asked = h.broker.requests();
    assert_eq!(asked[0].duration_seconds, 3000, "until the latest grant expires");
    assert_eq!(asked[0].role_arn, format!("arn:aws:iam::{ACCOUNT}:role/p-broker"));
    assert!(asked[0].policy.contains("arn:aws:s3:::short/*") && asked[0].policy.contains("2026-11-22T12:15:00Z"));
    // Once the short grant expires it is no longer in the policy.
    h.clock.advance(chrono::Duration::seconds(900));
    h.ok(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await;
    assert!(!h.broker.requests()[1].policy.contains("short"));
}

#[tokio::test]
async fn credentials_errors_have_stable_codes() {
    let h = harness();
    h.put_bucket_read().await;
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await.0, ErrorCode::NoGrants);
    assert_eq!(h.refused(Kind::CredentialsRequest, creds("999999999999"), &alice()).await.0, ErrorCode::AccountUnknown);
    h.ok(Kind::GrantRequest, grant_body("reports", 900), &alice()).await;
    assert_eq!(
        h.refused(Kind::CredentialsRequest, with(creds(ACCOUNT), "duration", json!(60)), &alice()).await.0,
        ErrorCode::DurationInvalid
    );
    for i in 0..14 {
        h.ok(
            Kind::GrantRequest,
            grant_body(&format!("a-rather-long-bucket-name-for-policy-size-{i:02}"), 900),
            &alice(),
        )
        .await;
    }
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await.0, ErrorCode::PolicyTooLarge);
    assert!(h.broker.requests().is_empty(), "STS is not asked for what cannot be issued");
}

#[tokio::test]
async fn sts_refusals_are_answered_and_outages_retried() {
    let h = harness();
    h.put_bucket_read().await;
    h.ok(Kind::GrantRequest, grant_body("reports", 900), &alice()).await;
    let refusal = portcullis_domain::RequestError::new(ErrorCode::BrokerRefused, "no");
    h.broker.fail_next([BrokerError::Refused(refusal), BrokerError::Unavailable("throttled".into())]);
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await.0, ErrorCode::BrokerRefused);
    let (outcome, reply) = h.request(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }) && reply.is_none(), "{outcome:?}");
}

// ---------------------------------------------------------------------------------------- store failures

#[tokio::test]
async fn store_failures_retry_or_refuse_by_kind() {
    let h = harness();
    h.store.fail_next([StoreError::Unavailable("down".into())]);
    let (outcome, reply) = h.request(Kind::GrantList, json!({}), &alice()).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }) && reply.is_none());
    h.store.fail_next([StoreError::Unavailable("down".into())]);
    let (outcome, reply) = h.request_as("m-last", Kind::GrantList, json!({}), &alice(), LAST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::Unavailable);
    assert_eq!(error(&reply.unwrap()).0, ErrorCode::Unavailable);
    // Stored data that cannot be read is permanent, not retried for ever.
    h.store.fail_next([StoreError::Corrupt { key: "GRANTS#alice/x".into(), message: "bad json".into() }]);
    assert_eq!(h.refused(Kind::GrantList, json!({}), &alice()).await.0, ErrorCode::StoredDataInvalid);
    h.store.fail_next([StoreError::Invalid("key too long".into())]);
    assert_eq!(h.refused(Kind::GrantList, json!({}), &alice()).await.0, ErrorCode::BadRequest);
}

/// One failure model: whatever the port, a throttled or unavailable dependency is retried and a call
/// the deployment refuses (denied, a missing resource) is refused at the first delivery as
/// `worker_denied`, with the call named and no retry in vain. Nothing is lost: redelivered after the
/// fix (a redrive), the same message finishes the work exactly once.
#[tokio::test]
async fn a_denied_call_is_refused_at_once_and_an_outage_is_retried_whatever_the_port() {
    use crate::ports::{FailureKind, SdkFailure};
    let h = harness();
    h.put_bucket_read().await;

    // Store.
    h.store.fail_next([StoreError::Denied("DynamoDB Query: AccessDeniedException: not authorized".into())]);
    let (code, message) = h.refused(Kind::GrantList, json!({}), &alice()).await;
    assert_eq!(code, ErrorCode::WorkerDenied);
    assert!(message.contains("DynamoDB Query") && message.contains("redrive"), "{message}");

    // Audit bus: denied at once, yet the grant is durable and a redelivery finishes exactly once.
    h.audit.fail_next_with([SdkFailure::new(FailureKind::AccessDenied, "events:PutEvents: AccessDeniedException")]);
    let (outcome, reply) = h.request_as("m-a", Kind::GrantRequest, grant_body("one", 600), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::WorkerDenied);
    assert_eq!(error(&reply.unwrap()).0, ErrorCode::WorkerDenied);
    assert_eq!(h.store.grants().len(), 1, "the grant is durable");
    let (outcome, reply) = h.request_as("m-a", Kind::GrantRequest, grant_body("one", 600), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    assert_eq!(result(&reply.unwrap())["grant"]["user"], "alice");
    assert_eq!(h.store.grants().len(), 1, "no second grant");
    assert_eq!(h.audit.detail_types().iter().filter(|t| *t == "Grant Created").count(), 1);
    let g = h.store.grants()[0].id.to_string();

    // IAM on the broker role: throttled is retried, denied is refused at once, and after the fix the
    // revocation completes.
    let revoke = json!({"grant_id": g, "reason": "done"});
    h.sessions.fail_next([SdkFailure::new(FailureKind::Throttled, "iam:PutRolePolicy: Throttling")]);
    let (outcome, reply) = h.request_as("m-r", Kind::GrantRevoke, revoke.clone(), &alice(), FIRST).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }) && reply.is_none(), "{outcome:?}");
    h.sessions.fail_next([SdkFailure::new(FailureKind::AccessDenied, "iam:PutRolePolicy on p-broker: AccessDenied")]);
    let (outcome, reply) = h.request_as("m-r", Kind::GrantRevoke, revoke.clone(), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::WorkerDenied);
    assert!(error(&reply.unwrap()).1.contains("iam:PutRolePolicy on p-broker"));
    assert!(h.sessions.policy(&AccountId::parse(ACCOUNT).unwrap()).is_none(), "nothing written while denied");
    let (outcome, reply) = h.request_as("m-r", Kind::GrantRevoke, revoke, &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done, "{outcome:?}");
    assert_eq!(result(&reply.unwrap())["grants"], json!([g]), "revoked by the first delivery, reported by this one");
    assert!(h.sessions.policy(&AccountId::parse(ACCOUNT).unwrap()).is_some(), "sessions killed after the fix");

    // A missing broker role is the deployment's too; an invalid call is refused, not retried.
    for (kind, expected) in
        [(FailureKind::NotFound, ErrorCode::WorkerDenied), (FailureKind::Invalid, ErrorCode::BadRequest)]
    {
        h.audit.fail_next_with([SdkFailure::new(kind, "events:PutEvents: x")]);
        let (outcome, _) = h.request(Kind::GrantRequest, grant_body("two", 600), &alice()).await;
        assert_eq!(rejected_code(&outcome), expected, "{kind:?}");
    }
}

/// A template version is immutable, so it is read from the store once per worker; the index (latest
/// version, deleted) is read every time, so a new version or a delete takes effect at once.
#[tokio::test]
async fn a_template_version_is_read_once_and_a_new_version_or_a_delete_is_seen_at_once() {
    let h = harness();
    h.put_bucket_read().await;
    for bucket in ["one", "two", "three"] {
        h.ok(Kind::GrantRequest, grant_body(bucket, 600), &alice()).await;
    }
    assert_eq!(h.store.template_version_reads(), 1);
    let mut v2 = bucket_read();
    v2["description"] = json!("version two");
    assert_eq!(h.ok(Kind::TemplatePut, json!({"template": v2}), &admin()).await["version"], 2);
    let g = h.ok(Kind::GrantRequest, grant_body("four", 600), &alice()).await;
    assert_eq!(g["grant"]["template_version"], 2, "{g}");
    assert_eq!(h.store.template_version_reads(), 2);
    h.ok(Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin()).await;
    assert_eq!(h.refused(Kind::GrantRequest, grant_body("five", 600), &alice()).await.0, ErrorCode::TemplateNotFound);
}

// ---------------------------------------------------------------------------------------- answer

#[tokio::test]
async fn a_reply_that_cannot_be_delivered_is_dead_lettered_with_its_own_code() {
    let h = harness();
    h.put_bucket_read().await;
    // The reply queue is gone: the grant exists, the message is kept with `reply_undeliverable`.
    h.replies.fail_next([ReplyError::Undeliverable("QueueDoesNotExist".into())]);
    let (outcome, _) = h.request_as("m-1", Kind::GrantRequest, grant_body("reports", 900), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::ReplyUndeliverable);
    // Sending it again to a working queue gets the recorded reply.
    let (outcome, reply) = h.request_as("m-1", Kind::GrantRequest, grant_body("reports", 900), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    assert_eq!(result(&reply.unwrap())["grant"]["user"], "alice");
    // SQS down: retried, and on the last delivery kept as undeliverable.
    h.replies.fail_next([ReplyError::Unavailable("throttled".into()), ReplyError::Unavailable("throttled".into())]);
    let (outcome, _) = h.request_as("m-2", Kind::GrantList, json!({}), &alice(), FIRST).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }));
    let (outcome, _) = h.request_as("m-2", Kind::GrantList, json!({}), &alice(), LAST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::ReplyUndeliverable);
    // A refusal keeps its own code when its reply cannot be delivered either.
    h.replies.fail_next([ReplyError::Undeliverable("gone".into())]);
    let (outcome, _) = h.request_as("m-3", Kind::TemplateGet, json!({"name": "nope"}), &alice(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::TemplateNotFound);
}

// ---------------------------------------------------------------------------------------- through the runtime

/// The whole consumer over the in-memory queue: refusals land in the dead-letter queue with their
/// code and without the token, redeliveries act once.
#[tokio::test(start_paused = true)]
async fn through_the_consumer_nothing_is_lost_and_nothing_secret_is_kept() {
    let h = harness();
    let queue = Arc::new(MemoryQueue::new("p-access-requests", Some(3)));
    let token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    queue.push(&h.envelope("m-forged", "grant.list", json!({}), Some(token)));
    queue.push(&h.envelope("m-put", "template.put", json!({"template": bucket_read()}), Some(&admin())));
    queue.push(&h.envelope("m-put", "template.put", json!({"template": bucket_read()}), Some(&admin())));
    let meter = opentelemetry::global::meter("test");
    let shutdown = CancellationToken::new();
    let options = ConsumerOptions {
        concurrency: 1,
        wait: Duration::from_millis(10),
        visibility_timeout: Duration::from_secs(30),
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(5),
    };
    let task = tokio::spawn(run_consumer(
        queue.clone(),
        h.handler.clone(),
        options,
        PipelineMetrics::new(&meter),
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while queue.depth() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the queue drains");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].code, ErrorCode::Unauthenticated);
    assert!(!dead[0].body.contains("c2lnbmF0dXJl") && dead[0].body.contains("[redacted]"), "{}", dead[0].body);
    assert_eq!(queue.deleted().len(), 3);
    let versions: Vec<Value> = h
        .replies
        .sent()
        .iter()
        .filter_map(|r| {
            let reply: Reply = serde_json::from_str(&r.text).ok()?;
            matches!(reply.outcome, ReplyOutcome::Ok { .. }).then(|| result(&reply)["version"].clone())
        })
        .collect();
    assert_eq!(versions, vec![json!(1), json!(1)], "one version, answered twice");
}

// ---------------------------------------------------------------------------------------- revocation

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

/// The `Deny` statements of the revocation policy on the account's broker role: (users, cutoff).
fn denies(h: &Harness) -> Vec<(Vec<String>, String)> {
    let Some(doc) = h.sessions.policy(&account()) else { return Vec::new() };
    let v: Value = serde_json::from_str(&doc).unwrap();
    v["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|s| {
            let users = s["Condition"]["StringEquals"]["aws:SourceIdentity"]
                .as_array()
                .map(|u| u.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            (users, s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_owner_or_an_admin_revokes_a_grant_and_its_sessions_die() {
    let h = harness();
    h.put_bucket_read().await;
    let g1 = h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await["grant"]["id"].clone();
    let g2 = h.ok(Kind::GrantRequest, grant_body("two", 3600), &alice()).await["grant"]["id"].clone();
    // Someone else cannot, and learns nothing about the grant.
    let bob = FakeVerifier::token("bob", None, &[]);
    let (code, _) = h.refused(Kind::GrantRevoke, json!({"grant_id": g1, "reason": "mine now"}), &bob).await;
    assert_eq!(code, ErrorCode::GrantNotFound);
    // The owner can.
    h.clock.advance(chrono::Duration::seconds(60));
    let result = h.ok(Kind::GrantRevoke, json!({"grant_id": g1, "reason": "done"}), &alice()).await;
    assert_eq!(result["grants"], json!([g1]));
    assert_eq!(result["accounts"], json!([ACCOUNT]));
    // Sessions issued before the revocation plus the clock-skew allowance are denied.
    assert_eq!(result["sessions_issued_before"], "2026-11-22T12:06:00Z");
    assert_eq!(denies(&h), vec![(vec!["alice".to_owned()], "2026-11-22T12:06:00Z".to_owned())]);
    // Until then a new session would be denied: none is issued.
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await.0, ErrorCode::AccessRevoked);
    h.clock.advance(chrono::Duration::seconds(300));
    // The revoked grant is never composed again; the other still is.
    h.ok(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await;
    let policy = h.broker.requests().last().unwrap().policy.clone();
    assert!(policy.contains("arn:aws:s3:::two/*") && !policy.contains("arn:aws:s3:::one/*"), "{policy}");
    // Listed only with include_revoked, with who, when and why.
    let live = h.ok(Kind::GrantList, json!({}), &alice()).await;
    assert_eq!(live["grants"].as_array().unwrap().len(), 1);
    let all = h.ok(Kind::GrantList, json!({"include_revoked": true}), &alice()).await;
    let revoked = all["grants"].as_array().unwrap().iter().find(|g| g["id"] == g1).unwrap().clone();
    assert_eq!(revoked["revoked"], json!({"at": "2026-11-22T12:01:00Z", "by": "alice", "reason": "done"}));
    // An admin revokes the other one; revoking it again covers nothing more.
    let admin_result = h.ok(Kind::GrantRevoke, json!({"grant_id": g2, "reason": "audit"}), &admin()).await;
    assert_eq!(admin_result["grants"], json!([g2]));
    let again = h.ok(Kind::GrantRevoke, json!({"grant_id": g2, "reason": "audit again"}), &admin()).await;
    assert_eq!(again["grants"], json!([]));
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await.0, ErrorCode::NoGrants);
    let types = h.audit.detail_types();
    for t in ["Grant Created", "Grant Revoked", "Sessions Revoked", "Credentials Issued", "Request Refused"] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
}

// ---------------------------------------------------------------------------------------- secrets

/// A secret in any free text (a reason, a note, a parameter) is refused at admission with
/// `secret_in_request`: nothing is stored or published, and neither the reply, the refusal's event
/// nor the dead-letter reason quotes it.
#[tokio::test]
async fn secrets_in_free_text_are_refused_before_anything_keeps_them() {
    let h = harness();
    h.put_bucket_read().await;
    let g = h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await["grant"]["id"].clone();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA";
    let secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let session = format!("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD{}", "xY7".repeat(40));
    let key_id = "ASIAIOSFODNN7EXAMPLE";
    let before = (h.store.grants().len(), h.audit.events().len());
    for secret in [jwt, secret_key, session.as_str(), key_id] {
        let cases = [
            (Kind::GrantRequest, with(grant_body("two", 600), "reason", json!(format!("see {secret}")))),
            (Kind::GrantRevoke, json!({"grant_id": g, "reason": secret})),
            (Kind::GrantReview, json!({"grant_id": g, "verdict": "justified", "note": format!("ok {secret}.")})),
            (Kind::GrantRequest, with(grant_body("two", 600), "params", json!({"bucketName": secret}))),
        ];
        for (kind, body) in cases {
            let (outcome, reply) = h.request(kind, body, &alice()).await;
            let reply = reply.expect("answered");
            assert_eq!(error(&reply).0, ErrorCode::SecretInRequest, "{kind:?}");
            let Disposition::Reject { code, reason } = &outcome.disposition else { panic!("{outcome:?}") };
            assert_eq!(*code, ErrorCode::SecretInRequest);
            let text = serde_json::to_string(&reply).unwrap();
            assert!(!text.contains(secret) && !reason.contains(secret), "{text}");
        }
    }
    assert_eq!(h.store.grants().len(), before.0, "nothing stored");
    let events = h.audit.events();
    assert!(events[before.1..].iter().all(|e| e.detail_type == "Request Refused"));
    for e in &events {
        for secret in [jwt, secret_key, session.as_str(), key_id] {
            assert!(!e.detail.contains(secret), "{}", e.detail);
        }
    }
    assert!(denies(&h).is_empty(), "nothing revoked");
}

// ---------------------------------------------------------------------------------------- races

/// Start a sealed `credentials.request` by alice whose STS call is held; returns the task (its
/// outcome and reply) once the call is in STS.
async fn credentials_held_in_sts(
    h: &Harness,
) -> (Arc<crate::fakes::BrokerGate>, tokio::task::JoinHandle<Outcome>, usize) {
    use portcullis_runtime::consumer::Handler;
    let gate = h.broker.hold_next();
    let body = h.envelope("m-held", Kind::CredentialsRequest.as_str(), creds(ACCOUNT), Some(&alice()));
    let message = h.message(&body);
    let before = h.replies.sent().len();
    let handler = h.handler.clone();
    let task = tokio::spawn(async move { handler.handle(&message, FIRST).await });
    gate.entered().await;
    (gate, task, before)
}

/// No credentials of the held call went anywhere: not in a reply, not in an audit event.
fn assert_nothing_sent(h: &Harness) {
    for reply in h.replies.sent() {
        assert!(!reply.text.contains("sealed_credentials") && !reply.text.contains("ASIAFAKE"), "{}", reply.text);
    }
    assert!(!h.audit.detail_types().iter().any(|t| t == "Credentials Issued"));
}

/// A revocation (of the grant, of all grants, an offboarding, or of the sessions alone, as a team
/// change cuts them in an account where this grant stays) lands while STS is answering: the
/// credentials are refused with `access_revoked` and thrown away unsent.
#[tokio::test]
async fn a_revocation_landing_while_sts_answers_wins() {
    use portcullis_domain::directory::{DirectoryChange, DirectoryRecord};
    use portcullis_domain::revocation::{SessionRevocation, revocation_cutoff};
    for case in ["grant.revoke", "grant.revoke_all", "user.offboarded", "sessions only"] {
        let h = harness();
        // STS's clock is the worker's (a session issued now, by both).
        h.broker.set_clock(Arc::new(h.clock.clone()));
        h.put_bucket_read().await;
        let g = h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await["grant"]["id"].clone();
        let (gate, task, before) = credentials_held_in_sts(&h).await;
        match case {
            "grant.revoke" => {
                h.ok(Kind::GrantRevoke, json!({"grant_id": g, "reason": "done"}), &alice()).await;
            }
            "grant.revoke_all" => {
                h.ok(Kind::GrantRevokeAll, json!({"user": "alice", "reason": "laptop stolen"}), &admin()).await;
            }
            "user.offboarded" => {
                let mut record = DirectoryRecord::new("alice");
                record.apply(&DirectoryChange::Offboarded { effective_at: h.clock.now() }, h.clock.now());
                h.store.put_directory_record(&record, None).await.unwrap();
            }
            _ => {
                let cut = SessionRevocation {
                    source_identity: portcullis_domain::session::sts_name_for("alice"),
                    cutoff: revocation_cutoff(h.clock.now()),
                };
                let keep = (h.clock.now() + chrono::Duration::hours(12)).timestamp();
                h.store.add_session_revocation(&AccountId::parse(ACCOUNT).unwrap(), &cut, keep).await.unwrap();
            }
        }
        let revocation_replies = h.replies.sent().len() - before;
        gate.release();
        let outcome = task.await.unwrap();
        assert_eq!(rejected_code(&outcome), ErrorCode::AccessRevoked, "{case}: {outcome:?}");
        let sent = h.replies.sent();
        let reply: Reply = serde_json::from_str(&sent[before + revocation_replies].text).unwrap();
        let (code, message) = error(&reply);
        assert_eq!(code, ErrorCode::AccessRevoked, "{case}");
        assert!(message.contains("not sent"), "{message}");
        assert_eq!(h.broker.requests().len(), 1, "{case}: STS was asked once");
        assert_nothing_sent(&h);
    }
}

/// A revocation lands after the re-check, while the reply is on its way: the credentials went out,
/// and the session STS issued is denied by the revocation policy, even with STS's clock ahead of the
/// worker's by almost the whole allowance.
#[tokio::test]
async fn a_revocation_after_the_reply_covers_the_session_just_issued() {
    let h = harness();
    h.put_bucket_read().await;
    let g = h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await["grant"]["id"].clone();
    let sts_clock = ManualClock::new(h.clock.now() + chrono::Duration::seconds(299));
    h.broker.set_clock(Arc::new(sts_clock.clone()));
    let (result, credentials) = h.credentials(&alice()).await;
    let expiration: chrono::DateTime<Utc> = credentials["Expiration"].as_str().unwrap().parse().unwrap();
    let issued_at = expiration - chrono::Duration::seconds(h.broker.requests()[0].duration_seconds as i64);
    assert_eq!(result["expires_at"], credentials["Expiration"]);
    // The revocation comes at the same instant by the worker's clock.
    let revoked = h.ok(Kind::GrantRevoke, json!({"grant_id": g, "reason": "done"}), &alice()).await;
    let cutoff: chrono::DateTime<Utc> = revoked["sessions_issued_before"].as_str().unwrap().parse().unwrap();
    assert!(issued_at < cutoff, "the session issued at {issued_at} (STS clock) is denied by the cutoff {cutoff}");
    assert_eq!(denies(&h), vec![(vec!["alice".to_owned()], cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))]);
}

/// While the cutoff is still ahead, a new session would be denied at once: credentials are refused
/// (saying until when), without asking STS; after it, a new grant works again.
#[tokio::test]
async fn sessions_revoked_until_a_time_to_come_are_not_issued_until_then() {
    let h = harness();
    h.put_bucket_read().await;
    let g = h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await["grant"]["id"].clone();
    h.ok(Kind::GrantRevoke, json!({"grant_id": g, "reason": "done"}), &alice()).await;
    h.ok(Kind::GrantRequest, grant_body("two", 3600), &alice()).await;
    let (code, message) = h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await;
    assert_eq!(code, ErrorCode::AccessRevoked);
    assert!(message.contains("2026-11-22T12:05:00+00:00"), "{message}");
    assert!(h.broker.requests().is_empty());
    h.clock.advance(chrono::Duration::seconds(300));
    h.credentials(&alice()).await;
    assert_eq!(h.broker.requests().len(), 1);
}

#[tokio::test]
async fn revoke_all_is_for_admins_and_covers_every_account() {
    let h = harness();
    h.put_bucket_read().await;
    h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await;
    h.ok(Kind::GrantRequest, grant_body("two", 3600), &alice()).await;
    let (code, _) = h.refused(Kind::GrantRevokeAll, json!({"user": "alice", "reason": "x"}), &alice()).await;
    assert_eq!(code, ErrorCode::Forbidden);
    let result = h.ok(Kind::GrantRevokeAll, json!({"user": "alice", "reason": "laptop stolen"}), &admin()).await;
    assert_eq!(result["grants"].as_array().unwrap().len(), 2);
    assert_eq!(result["accounts"], json!([ACCOUNT]));
    assert_eq!(h.ok(Kind::GrantList, json!({}), &alice()).await["grants"], json!([]));
    assert_eq!(denies(&h).len(), 1);
}

#[tokio::test]
async fn a_redelivered_revocation_answers_the_same_and_publishes_the_same_events() {
    let h = harness();
    h.put_bucket_read().await;
    let g = h.ok(Kind::GrantRequest, grant_body("one", 3600), &alice()).await["grant"]["id"].clone();
    let body = json!({"grant_id": g, "reason": "done"});
    let (first, r1) = h.request_as("m-revoke", Kind::GrantRevoke, body.clone(), &alice(), FIRST).await;
    h.clock.advance(chrono::Duration::seconds(30));
    let (again, r2) = h.request_as("m-revoke", Kind::GrantRevoke, body, &alice(), FIRST).await;
    assert_eq!((first.disposition, again.disposition), (Disposition::Done, Disposition::Done));
    assert_eq!(r1, r2);
    let revoked: Vec<String> =
        h.audit.events().iter().filter(|e| e.detail_type == "Grant Revoked").map(|e| e.detail.clone()).collect();
    assert_eq!(revoked.len(), 2, "published again");
    assert_eq!(revoked[0], revoked[1], "with the same event id and content");
    assert_eq!(denies(&h).len(), 1, "one cutoff");
}

#[tokio::test]
async fn a_stale_token_is_refused_and_admin_rights_follow_the_directory() {
    use portcullis_domain::directory::{DirectoryChange, DirectoryRecord};
    let h = harness();
    h.put_bucket_read().await;
    let issued = h.clock.now();
    let mut record = DirectoryRecord::new("alice");
    h.clock.advance(chrono::Duration::minutes(5));
    record.apply(
        &DirectoryChange::TeamChanged { from: "payments".into(), to: "growth".into(), effective_at: h.clock.now() },
        h.clock.now(),
    );
    h.store.put_directory_record(&record, None).await.unwrap();
    let old = FakeVerifier::token_issued("alice", Some("payments"), &[], issued);
    assert_eq!(h.refused(Kind::GrantList, json!({}), &old).await.0, ErrorCode::TokenStale);
    // Credentials read the record beside their other first reads, and nothing is issued on it.
    h.ok(Kind::GrantRequest, grant_body("stale", 600), &FakeVerifier::token("alice", Some("growth"), &[])).await;
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &old).await.0, ErrorCode::TokenStale);
    assert!(h.broker.requests().is_empty(), "STS was not asked");
    h.ok(Kind::GrantList, json!({}), &FakeVerifier::token("alice", Some("growth"), &[])).await;
    // The directory took the admin group away after the admin's token was issued.
    let admin_issued = h.clock.now();
    let mut former_admin = DirectoryRecord::new("admin");
    h.clock.advance(chrono::Duration::minutes(1));
    former_admin.apply(&DirectoryChange::GroupsChanged { groups: vec![], effective_at: h.clock.now() }, h.clock.now());
    h.store.put_directory_record(&former_admin, None).await.unwrap();
    let token = FakeVerifier::token_issued("admin", Some("security"), &["portcullis-admins"], admin_issued);
    let (code, _) = h.refused(Kind::TemplateDelete, json!({"name": "bucketRead"}), &token).await;
    assert_eq!(code, ErrorCode::Forbidden);
}

/// A requester's next grant request is decided on the directory record and template index kept
/// from their last one, without reading them; the grant's write checks they still hold. When the
/// directory or the template moved meanwhile, the request is decided again on fresh reads: an
/// offboarding, a team change after the token, a deleted template or a new version all take
/// effect at once, with nothing written on the stale decision.
#[tokio::test]
async fn kept_reads_decide_a_grant_only_while_they_still_hold() {
    use portcullis_domain::directory::{DirectoryChange, DirectoryRecord};
    let h = harness();
    h.put_bucket_read().await;
    h.ok(Kind::GrantRequest, grant_body("first", 600), &alice()).await;
    let reads = h.store.directory_reads();
    h.ok(Kind::GrantRequest, grant_body("second", 600), &alice()).await;
    assert_eq!(h.store.directory_reads(), reads, "the second request reads no directory record");
    assert_eq!(h.store.grants().len(), 2);

    // A new template version: the grant uses it (the kept index is refreshed by the retry).
    let mut v2 = bucket_read();
    v2["description"] = json!("version 2");
    h.ok(Kind::TemplatePut, json!({"template": v2}), &admin()).await;
    let reply = h.ok(Kind::GrantRequest, grant_body("third", 600), &alice()).await;
    assert_eq!(reply["grant"]["template_version"], 2, "{reply}");
    assert!(h.store.directory_reads() > reads, "decided again on fresh reads");

    // The directory moved alice to another team after her token was issued: refused at once.
    let issued = h.clock.now();
    let token = FakeVerifier::token_issued("alice", Some("payments"), &["engineers"], issued);
    h.ok(Kind::GrantRequest, grant_body("fourth", 600), &token).await;
    h.clock.advance(chrono::Duration::minutes(1));
    let mut record = DirectoryRecord::new("alice");
    let now = h.clock.now();
    record
        .apply(&DirectoryChange::TeamChanged { from: "payments".into(), to: "growth".into(), effective_at: now }, now);
    h.store.put_directory_record(&record, None).await.unwrap();
    assert_eq!(h.refused(Kind::GrantRequest, grant_body("fifth", 600), &token).await.0, ErrorCode::TokenStale);

    // Offboarded while her record was kept (a token for the new team is accepted first, which
    // keeps that record): refused at once.
    let growth = FakeVerifier::token("alice", Some("growth"), &["engineers"]);
    h.ok(Kind::GrantRequest, grant_body("sixth", 600), &growth).await;
    let (mut current, revision) = h.store.directory_record("alice").await.unwrap().unwrap();
    current.apply(&DirectoryChange::Offboarded { effective_at: h.clock.now() }, h.clock.now());
    h.store.put_directory_record(&current, Some(revision)).await.unwrap();
    assert_eq!(h.refused(Kind::GrantRequest, grant_body("seventh", 600), &growth).await.0, ErrorCode::TokenStale);

    // Bob's kept template index says bucketRead exists; it was deleted since.
    let bob = FakeVerifier::token("bob", Some("payments"), &["engineers"]);
    h.ok(Kind::GrantRequest, grant_body("bob-1", 600), &bob).await;
    h.ok(Kind::TemplateDelete, json!({"name": "bucketRead"}), &admin()).await;
    assert_eq!(h.refused(Kind::GrantRequest, grant_body("bob-2", 600), &bob).await.0, ErrorCode::TemplateNotFound);
    let users: Vec<(String, String)> =
        h.store.grants().iter().map(|g| (g.user.clone(), g.params["bucketName"].clone())).collect();
    assert_eq!(users.len(), 6, "nothing written on a stale decision: {users:?}");
    assert!(!users.iter().any(|(_, b)| ["fifth", "seventh", "bob-2"].contains(&b.as_str())), "{users:?}");
}

fn producer(kinds: &[&str], on_behalf: bool) -> Producer {
    Producer {
        name: "slack-bot".into(),
        sender_ids: vec!["AIDAPRODUCER".into()],
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        on_behalf,
    }
}

#[tokio::test]
async fn trusted_producers_send_their_kinds_and_may_act_for_people() {
    let h = harness_full(Vec::new(), 262_144, vec![producer(&["grant.*", "template.put"], true)]);
    h.put_bucket_read().await;
    let mut env: Value =
        serde_json::from_str(&h.envelope("m-obo", "grant.request", grant_body("one", 600), None)).unwrap();
    env["on_behalf_of"] = json!({"user": "alice", "team": "payments", "groups": []});
    let outcome = h.handle_raw(&env.to_string(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    let grant = h.store.grants().pop().unwrap();
    assert_eq!((grant.user.as_str(), grant.via.as_deref()), ("alice", Some("slack-bot")));
    // The name people read is the user the producer is trusted to name: a relay has no field for a
    // display name (it would be free text from the message), so one sent is refused.
    assert_eq!(grant.user_display_name.as_deref(), Some("alice"));
    let mut named = env.clone();
    named["message_id"] = json!("m-obo-named");
    named["on_behalf_of"]["display_name"] = json!("The CEO");
    assert_eq!(rejected_code(&h.handle_raw(&named.to_string(), FIRST).await), ErrorCode::BadRequest);
    // Not one of its kinds.
    let (code, _) = h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await;
    assert_eq!(code, ErrorCode::ProducerForbidden);
    // A producer that may not act for people.
    let strict = harness_full(Vec::new(), 262_144, vec![producer(&["grant.*"], false)]);
    let outcome = strict.handle_raw(&env.to_string(), FIRST).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::ProducerForbidden);
    // Anyone not listed.
    let other = harness_full(
        Vec::new(),
        262_144,
        vec![Producer { sender_ids: vec!["AIDAOTHER".into()], ..producer(&["*"], true) }],
    );
    assert_eq!(other.refused(Kind::GrantList, json!({}), &alice()).await.0, ErrorCode::ProducerForbidden);
    // With none configured, people act for themselves only.
    let none = harness();
    assert_eq!(rejected_code(&none.handle_raw(&env.to_string(), FIRST).await), ErrorCode::ProducerForbidden);
    // Directory kinds never go on the access queue.
    let offboard = json!({"user": "alice", "effective_at": "2026-11-22T12:00:00Z"});
    assert_eq!(h.refused(Kind::UserOffboarded, offboard, &alice()).await.0, ErrorCode::UnknownKind);
}

#[tokio::test]
async fn an_audit_bus_outage_is_retried_and_never_loses_the_event() {
    let h = harness();
    h.put_bucket_read().await;
    h.audit.fail_next(1);
    let (outcome, reply) = h.request_as("m-g", Kind::GrantRequest, grant_body("one", 600), &alice(), FIRST).await;
    assert!(matches!(outcome.disposition, Disposition::Retry { .. }) && reply.is_none(), "{outcome:?}");
    assert_eq!(h.store.grants().len(), 1, "the grant is durable");
    let (outcome, reply) = h.request_as("m-g", Kind::GrantRequest, grant_body("one", 600), &alice(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    assert_eq!(result(&reply.unwrap())["grant"]["user"], "alice");
    assert_eq!(h.audit.detail_types().iter().filter(|t| *t == "Grant Created").count(), 1);
}

// ---------------------------------------------------------------------------------------- reply binding, posture.status

/// The default harness with replies bound to the requester's `sub` and posture evidence to read.
fn bound_harness() -> (Harness, Arc<crate::fakes::FixedEvidence>) {
    let h = harness();
    let mut config = h.handler.config.clone();
    config.reply_policy = config.reply_policy.clone().bound_to_subject("p-reply-");
    let evidence = Arc::new(crate::fakes::FixedEvidence::default());
    let reading = crate::posture_status::PostureReading {
        reader: evidence.clone(),
        reader_groups: vec!["security".into()],
        accounts: vec![AccountId::parse(ACCOUNT).unwrap()],
        regions: vec!["us-east-1".into()],
    };
    let meter = opentelemetry::global::meter("test");
    let handler =
        AccessHandler::new(config, h.handler.ports.clone(), AccessMetrics::new(&meter)).with_posture_reading(reading);
    (Harness { handler: Arc::new(handler), ..h }, evidence)
}

#[tokio::test]
async fn a_reply_queue_of_somebody_else_is_refused_after_authentication_and_never_answered() {
    let (h, _) = bound_harness();
    // REPLY_TO is p-reply-alice: alice's own queue works...
    h.ok(Kind::GrantList, json!({}), &alice()).await;
    // ...but mallory may not have her replies (or anything) sent there.
    let mallory = FakeVerifier::token("mallory", None, &[]);
    let before = h.replies.sent().len();
    let (outcome, reply) = h.request(Kind::GrantList, json!({}), &mallory).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::ReplyForbidden);
    assert!(reply.is_none(), "nothing is sent to alice's queue");
    assert_eq!(h.replies.sent().len(), before);
    // Credentials are not issued either.
    let (outcome, _) = h.request(Kind::CredentialsRequest, creds(ACCOUNT), &mallory).await;
    assert_eq!(rejected_code(&outcome), ErrorCode::ReplyForbidden);
    assert!(h.broker.requests().is_empty());
}

#[tokio::test]
async fn posture_status_is_for_the_reader_groups_and_reads_the_configured_scopes() {
    let (h, evidence) = bound_harness();
    let item =
        |account: &str, region: &str, control: &str, status: &str| portcullis_domain::messages::ControlEvidence {
            account: AccountId::parse(account).unwrap(),
            region: region.into(),
            control_id: control.into(),
            title: "t".into(),
            status: status.into(),
            failing_count: 0,
            failing_resources: vec![],
            reason: None,
            error_code: None,
            checked_at: None,
            trigger: None,
        };
    evidence.items.lock().unwrap().extend([
        item(ACCOUNT, "us-east-1", "KMS.4", "pass"),
        item(ACCOUNT, "us-east-1", "CloudTrail.1", "fail"),
        item(ACCOUNT, "eu-west-1", "CloudTrail.1", "pass"),
    ]);
    let (code, _) = h.refused(Kind::PostureStatus, json!({}), &alice()).await;
    assert_eq!(code, ErrorCode::Forbidden);
    let reader = FakeVerifier::token("alice", Some("payments"), &["security"]);
    let result = h.ok(Kind::PostureStatus, json!({}), &reader).await;
    let ids: Vec<&str> =
        result["controls"].as_array().unwrap().iter().map(|c| c["control_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["CloudTrail.1", "KMS.4"], "sorted, and only the configured region");
    let (code, _) = h.refused(Kind::PostureStatus, json!({"account": "999999999999"}), &reader).await;
    assert_eq!(code, ErrorCode::AccountUnknown);
    let (code, _) = h.refused(Kind::PostureStatus, json!({"region": "Mars"}), &reader).await;
    assert_eq!(code, ErrorCode::BadRequest);
    let (code, _) = harness().refused(Kind::PostureStatus, json!({}), &reader).await;
    assert_eq!(code, ErrorCode::Unavailable, "a worker without a posture reading says so");
}

#[tokio::test]
async fn a_trusted_producer_acting_for_someone_answers_on_its_own_queue() {
    let (h, _) = bound_harness();
    let mut config = h.handler.config.clone();
    config.producers = portcullis_domain::producers::Producers::new(vec![producer(&["grant.*"], true)]);
    let meter = opentelemetry::global::meter("test");
    let h = Harness {
        handler: Arc::new(AccessHandler::new(config, h.handler.ports.clone(), AccessMetrics::new(&meter))),
        ..h
    };
    // The bot's reply queue (p-reply-alice here) is not bob's, yet the bot may use it for bob.
    let mut env: Value = serde_json::from_str(&h.envelope("m-bot", "grant.list", json!({}), None)).unwrap();
    env["on_behalf_of"] = json!({"user": "bob", "groups": []});
    let outcome = h.handle_raw(&env.to_string(), FIRST).await;
    assert_eq!(outcome.disposition, Disposition::Done);
    // Bob with his own token may not.
    let bob = FakeVerifier::token("bob", None, &[]);
    assert_eq!(rejected_code(&h.request(Kind::GrantList, json!({}), &bob).await.0), ErrorCode::ReplyForbidden);
}

// ---------------------------------------------------------------------------------------- sealed credentials

#[tokio::test]
async fn credentials_go_out_sealed_or_not_at_all() {
    let h = harness();
    h.put_bucket_read().await;
    h.ok(Kind::GrantRequest, grant_body("reports", 900), &alice()).await;
    // No key: refused before STS is asked.
    let (code, message) = h.refused(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice()).await;
    assert_eq!(code, ErrorCode::ReplyKeyRequired, "{message}");
    // Keys that are not X25519 public keys, or a low-order point.
    let zero = base64_zeros();
    for bad in ["", "AAAA", "not a key at all, not at all, not at all, no", zero.as_str()] {
        let (code, _) =
            h.refused(Kind::CredentialsRequest, json!({"account": ACCOUNT, "reply_key": bad}), &alice()).await;
        assert_eq!(code, ErrorCode::ReplyKeyInvalid, "{bad:?}");
    }
    assert!(h.broker.requests().is_empty(), "nothing was issued");
    // A good key: the reply carries only the sealed box, and the audit event says so.
    let (result, credentials) = h.credentials(&alice()).await;
    assert!(credentials["SecretAccessKey"].as_str().is_some_and(|s| s.starts_with("secret-")), "{credentials}");
    let text = h.replies.sent().last().unwrap().text.clone();
    assert!(!text.contains(credentials["SecretAccessKey"].as_str().unwrap()), "the secret never travels in clear");
    assert!(!text.contains(credentials["SessionToken"].as_str().unwrap()));
    assert_eq!(result["sealed_credentials"]["suite"], "HPKE-Base-X25519-SHA256-ChaCha20Poly1305");
    let issued = h.audit.events().into_iter().rfind(|e| e.detail_type == "Credentials Issued").unwrap();
    assert!(issued.detail.contains("\"sealed\":true"), "{}", issued.detail);
}

fn base64_zeros() -> String {
    "A".repeat(43)
}

#[tokio::test]
async fn clear_credentials_only_where_the_worker_allows_them() {
    let h = harness();
    let mut config = h.handler.config.clone();
    config.require_sealed_credentials = false;
    let meter = opentelemetry::global::meter("test");
    let h = Harness {
        handler: Arc::new(AccessHandler::new(config, h.handler.ports.clone(), AccessMetrics::new(&meter))),
        ..h
    };
    h.put_bucket_read().await;
    h.ok(Kind::GrantRequest, grant_body("reports", 900), &alice()).await;
    let result = h.ok(Kind::CredentialsRequest, json!({"account": ACCOUNT}), &alice()).await;
    assert_eq!(result["credentials"]["AccessKeyId"], "ASIAFAKE00000001");
    assert!(result.get("sealed_credentials").is_none());
    // A key is still honoured.
    let (_, credentials) = h.credentials(&alice()).await;
    assert_eq!(credentials["Version"], 1);
}

// ---------------------------------------------------------------------------------------- approvals, break glass

fn bucket_write() -> Value {
    serde_json::from_str(include_str!("../../../examples/templates/bucketWrite.json")).unwrap()
}

fn approver(user: &str) -> String {
    FakeVerifier::token(user, Some("security"), &["portcullis-approvers"])
}

fn write_body(bucket: &str, ttl: u64, break_glass: bool) -> Value {
    json!({"template": "bucketWrite", "params": {"bucketName": bucket}, "account": ACCOUNT, "ttl": ttl,
           "reason": "INC-7: repair the export", "break_glass": break_glass})
}

/// bucketWrite with `required` approvals.
async fn put_bucket_write(h: &Harness, required: u32) {
    let mut template = bucket_write();
    template["approval"]["required"] = json!(required);
    h.ok(Kind::TemplatePut, json!({"template": template}), &admin()).await;
}

#[tokio::test]
async fn a_second_and_third_person_activate_a_grant_whose_ttl_counts_from_activation() {
    let h = harness();
    put_bucket_write(&h, 2).await;
    let grant = h.ok(Kind::GrantRequest, write_body("exports", 1800, false), &alice()).await["grant"].clone();
    assert_eq!(grant["status"], "pending");
    assert_eq!(grant["expires_at"], "2026-11-22T13:00:00Z", "lapses after access.pending_ttl_seconds");
    let id = grant["id"].clone();
    assert_eq!(h.refused(Kind::CredentialsRequest, creds(ACCOUNT), &alice()).await.0, ErrorCode::NoGrants);
    // alice is an approver herself, yet cannot approve her own grant; eve is no approver.
    let alice_approver = FakeVerifier::token("alice", Some("payments"), &["portcullis-approvers"]);
    let (code, _) = h.refused(Kind::GrantApprove, json!({"grant_id": id}), &alice_approver).await;
    assert_eq!(code, ErrorCode::ApprovalForbidden);
    let eve = FakeVerifier::token("eve", Some("payments"), &["engineers"]);
    assert_eq!(h.refused(Kind::GrantApprove, json!({"grant_id": id}), &eve).await.0, ErrorCode::ApprovalForbidden);
    // bob sees it waiting, approves it, and approving again counts once.
    let waiting = h.ok(Kind::GrantPending, json!({}), &approver("bob")).await;
    assert_eq!(waiting["approvals"][0]["id"], id);
    assert_eq!(h.ok(Kind::GrantPending, json!({}), &alice_approver).await["approvals"], json!([]), "not her own");
    h.clock.advance(chrono::Duration::minutes(10));
    let once = h.ok(Kind::GrantApprove, json!({"grant_id": id}), &approver("bob")).await;
    let twice = h.ok(Kind::GrantApprove, json!({"grant_id": id}), &approver("bob")).await;
    assert_eq!(once["grant"]["approval"]["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(twice["grant"]["approval"]["approvals"], once["grant"]["approval"]["approvals"]);
    assert_eq!(twice["grant"]["status"], "pending");
    // carol's approval activates it: 30 minutes from now, not from the request.
    h.clock.advance(chrono::Duration::minutes(10));
    let active = h.ok(Kind::GrantApprove, json!({"grant_id": id}), &approver("carol")).await["grant"].clone();
    assert_eq!(active["status"], "active");
    assert_eq!(active["expires_at"], "2026-11-22T12:50:00Z");
    let (_, credentials) = h.credentials(&alice()).await;
    assert_eq!(credentials["Version"], 1);
    assert!(h.broker.requests().last().unwrap().policy.contains("arn:aws:s3:::exports/*"));
    let types = h.audit.detail_types();
    assert_eq!(types.iter().filter(|t| *t == "Grant Approved").count(), 2, "{types:?}");
    for t in ["Grant Pending Approval", "Grant Activated"] {
        assert_eq!(types.iter().filter(|x| *x == t).count(), 1, "{t} in {types:?}");
    }
    assert!(!types.iter().any(|t| t == "Grant Created"), "a pending grant is announced as pending");
    // Too late for a third approval.
    let (code, _) = h.refused(Kind::GrantApprove, json!({"grant_id": id}), &approver("dave")).await;
    assert_eq!(code, ErrorCode::GrantNotPending);
}

#[tokio::test]
async fn a_pending_grant_lapses_and_a_denied_one_never_activates() {
    let h = harness();
    put_bucket_write(&h, 1).await;
    let lapsing = h.ok(Kind::GrantRequest, write_body("one", 1800, false), &alice()).await["grant"]["id"].clone();
    let denied = h.ok(Kind::GrantRequest, write_body("two", 1800, false), &alice()).await["grant"]["id"].clone();
    let result =
        h.ok(Kind::GrantDeny, json!({"grant_id": denied, "reason": "use the replica"}), &approver("bob")).await;
    assert_eq!(result["grant"]["status"], "denied");
    assert_eq!(result["grant"]["approval"]["denied"]["reason"], "use the replica");
    let (code, _) = h.refused(Kind::GrantApprove, json!({"grant_id": denied}), &approver("carol")).await;
    assert_eq!(code, ErrorCode::GrantNotPending);
    h.clock.advance(chrono::Duration::seconds(3600));
    let (code, message) = h.refused(Kind::GrantApprove, json!({"grant_id": lapsing}), &approver("bob")).await;
    assert_eq!(code, ErrorCode::GrantNotPending, "{message}");
    assert!(message.contains("expired"), "{message}");
    assert_eq!(h.ok(Kind::GrantPending, json!({}), &approver("bob")).await["approvals"], json!([]));
    // The requester still sees how both ended.
    assert_eq!(h.ok(Kind::GrantList, json!({}), &alice()).await["grants"], json!([]));
    let ended = h.ok(Kind::GrantList, json!({"include_ended": true}), &alice()).await;
    let statuses: Vec<&str> =
        ended["grants"].as_array().unwrap().iter().map(|g| g["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["expired", "denied"]);
    assert!(h.audit.detail_types().iter().any(|t| t == "Grant Denied"));
}

#[tokio::test]
async fn approvals_racing_on_one_grant_both_count_and_a_redelivery_acts_once() {
    let h = harness();
    put_bucket_write(&h, 2).await;
    let id = h.ok(Kind::GrantRequest, write_body("exports", 1800, false), &alice()).await["grant"]["id"].clone();
    // bob's write loses a race: he reads again and is counted.
    h.store.fail_writes_next([StoreError::Conflict("GRANTS#alice".into())]);
    let (first, r1) = h.request_as("m-bob", Kind::GrantApprove, json!({"grant_id": id}), &approver("bob"), FIRST).await;
    assert_eq!(first.disposition, Disposition::Done);
    let (again, r2) = h.request_as("m-bob", Kind::GrantApprove, json!({"grant_id": id}), &approver("bob"), FIRST).await;
    assert_eq!((again.disposition, r1.clone()), (Disposition::Done, r2), "the same reply");
    let approved = h.audit.events().into_iter().filter(|e| e.detail_type == "Grant Approved").collect::<Vec<_>>();
    assert_eq!(approved.len(), 2, "published again on the redelivery");
    assert_eq!(approved[0], approved[1], "with the same event id");
    let stored = h.store.grants().into_iter().find(|g| g.id.as_str() == id.as_str().unwrap()).unwrap();
    assert_eq!(stored.approval.unwrap().approvals.len(), 1);
}

#[tokio::test]
async fn break_glass_is_active_at_once_announced_and_reviewed_by_someone_else() {
    let h = harness();
    put_bucket_write(&h, 1).await;
    h.put_bucket_read().await;
    let (code, _) =
        h.refused(Kind::GrantRequest, with(grant_body("reports", 900), "break_glass", json!(true)), &alice()).await;
    assert_eq!(code, ErrorCode::BreakGlassForbidden, "bucketRead does not allow it");
    let grant = h.ok(Kind::GrantRequest, write_body("exports", 1800, true), &alice()).await["grant"].clone();
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["break_glass"]["review_due"], "2026-11-23T12:00:00Z");
    let id = grant["id"].clone();
    h.credentials(&alice()).await;
    let used = h.audit.events().into_iter().find(|e| e.detail_type == "Break Glass Used").expect("announced");
    assert!(used.detail.contains("INC-7"), "{}", used.detail);
    // Owed to the approvers, not to alice.
    assert_eq!(h.ok(Kind::GrantPending, json!({}), &approver("bob")).await["reviews"][0]["id"], id);
    let alice_approver = FakeVerifier::token("alice", Some("payments"), &["portcullis-approvers"]);
    let review = json!({"grant_id": id, "verdict": "justified", "note": "mine"});
    assert_eq!(h.refused(Kind::GrantReview, review, &alice_approver).await.0, ErrorCode::ApprovalForbidden);
    let eve = FakeVerifier::token("eve", None, &["engineers"]);
    let review = json!({"grant_id": id, "verdict": "justified", "note": "x"});
    assert_eq!(h.refused(Kind::GrantReview, review, &eve).await.0, ErrorCode::ApprovalForbidden);
    // bob finds it unjustified: the grant is revoked and alice's sessions in the account die.
    h.clock.advance(chrono::Duration::minutes(5));
    let review = json!({"grant_id": id, "verdict": "unjustified", "note": "no incident on record"});
    let reviewed = h.ok(Kind::GrantReview, review, &approver("bob")).await["grant"].clone();
    assert_eq!(reviewed["status"], "revoked");
    assert_eq!(reviewed["break_glass"]["review"]["verdict"], "unjustified");
    assert_eq!(denies(&h), vec![(vec!["alice".to_owned()], "2026-11-22T12:10:00Z".to_owned())], "5 + 5 minutes");
    let types = h.audit.detail_types();
    for t in ["Break Glass Reviewed", "Grant Revoked", "Sessions Revoked"] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    assert_eq!(h.ok(Kind::GrantPending, json!({}), &approver("bob")).await["reviews"], json!([]));
    let review = json!({"grant_id": id, "verdict": "justified", "note": "second opinion"});
    assert_eq!(h.refused(Kind::GrantReview, review, &approver("carol")).await.0, ErrorCode::ReviewNotNeeded);
}

#[tokio::test]
async fn revoking_a_pending_grant_withdraws_it_without_touching_sessions() {
    let h = harness();
    put_bucket_write(&h, 1).await;
    let id = h.ok(Kind::GrantRequest, write_body("exports", 1800, false), &alice()).await["grant"]["id"].clone();
    let result = h.ok(Kind::GrantRevoke, json!({"grant_id": id, "reason": "not needed"}), &alice()).await;
    assert_eq!(result["grants"], json!([id]));
    assert_eq!(result["accounts"], json!([]), "it never conferred access");
    assert!(denies(&h).is_empty());
    let (code, _) = h.refused(Kind::GrantApprove, json!({"grant_id": id}), &approver("bob")).await;
    assert_eq!(code, ErrorCode::GrantNotPending);
}

#[tokio::test]
async fn unreviewed_break_glass_grants_are_counted_until_reviewed() {
    use crate::approvals::ReviewsOwed;
    let h = harness();
    put_bucket_write(&h, 1).await;
    assert_eq!(h.handler.count_reviews_owed().await.unwrap(), ReviewsOwed { all: 0, overdue: 0 });
    let id = h.ok(Kind::GrantRequest, write_body("exports", 1800, true), &alice()).await["grant"]["id"].clone();
    h.ok(Kind::GrantRequest, write_body("other", 1800, false), &alice()).await;
    assert_eq!(h.handler.count_reviews_owed().await.unwrap(), ReviewsOwed { all: 1, overdue: 0 });
    // Long after the grant expired, its review is still owed, and now overdue.
    h.clock.advance(chrono::Duration::hours(25));
    assert_eq!(h.handler.count_reviews_owed().await.unwrap(), ReviewsOwed { all: 1, overdue: 1 });
    let review = json!({"grant_id": id, "verdict": "justified", "note": "SEV1 confirmed"});
    let reviewed = h.ok(Kind::GrantReview, review, &approver("bob")).await["grant"].clone();
    assert_eq!(reviewed["status"], "expired");
    assert_eq!(h.handler.count_reviews_owed().await.unwrap(), ReviewsOwed { all: 0, overdue: 0 });
    let event = h.audit.events().into_iter().find(|e| e.detail_type == "Break Glass Reviewed").unwrap();
    assert!(event.detail.contains("\"overdue\":true"), "{}", event.detail);
}

#[tokio::test]
async fn a_grant_nobody_decides_on_is_not_revealed_to_would_be_approvers() {
    let h = harness();
    h.put_bucket_read().await;
    let id = h.ok(Kind::GrantRequest, grant_body("reports", 900), &alice()).await["grant"]["id"].clone();
    let (code, _) = h.refused(Kind::GrantApprove, json!({"grant_id": id}), &approver("bob")).await;
    assert_eq!(code, ErrorCode::GrantNotFound, "as grant.revoke: someone else's plain grant does not exist for bob");
    let review = json!({"grant_id": id, "verdict": "justified", "note": "x"});
    assert_eq!(h.refused(Kind::GrantReview, review, &approver("bob")).await.0, ErrorCode::GrantNotFound);
    // Its owner learns why.
    assert_eq!(h.refused(Kind::GrantApprove, json!({"grant_id": id}), &alice()).await.0, ErrorCode::GrantNotPending);
}
