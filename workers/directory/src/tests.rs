//! The directory handler over in-memory ports: every branch in milliseconds.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis_access::fakes::{FakeSessions, MemoryStore, RecordingAudit, RecordingReplies};
use portcullis_access::front::Front;
use portcullis_access::handler::BrokeredAccount;
use portcullis_access::ports::AccessStore;
use portcullis_access::revoke::Revoker;
use portcullis_domain::grant::Grant;
use portcullis_domain::messages::{Kind, QueueRole, Reply, ReplyOutcome};
use portcullis_domain::producers::{Producer, Producers};
use portcullis_domain::reply_policy::ReplyPolicy;
use portcullis_domain::{AccountId, ErrorCode, MessageId, QueueUrl, TemplateName};
use portcullis_runtime::clock::ManualClock;
use portcullis_runtime::consumer::{Disposition, Handler, Outcome};
use portcullis_runtime::queue::{Attempt, ReceivedMessage};
use serde_json::{Value, json};

use super::DirectoryHandler;

const FIRST: Attempt = Attempt { number: 1, is_last: false };
const HR: &str = "AIDAHRSYSTEM";
const REPLY_TO: &str = "http://sqs.test/123456789012/p-reply-hr";

fn accounts() -> [AccountId; 2] {
    [AccountId::parse("123456789012").unwrap(), AccountId::parse("210987654321").unwrap()]
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

struct Harness {
    handler: DirectoryHandler,
    store: Arc<MemoryStore>,
    sessions: Arc<FakeSessions>,
    audit: Arc<RecordingAudit>,
    replies: Arc<RecordingReplies>,
    clock: ManualClock,
}

fn harness(producers: Vec<Producer>) -> Harness {
    let store = Arc::new(MemoryStore::default());
    let sessions = Arc::new(FakeSessions::default());
    let audit = Arc::new(RecordingAudit::default());
    let replies = Arc::new(RecordingReplies::default());
    let clock = ManualClock::new(t(30));
    let brokered: BTreeMap<AccountId, BrokeredAccount> = accounts()
        .into_iter()
        .map(|a| {
            (
                a.clone(),
                BrokeredAccount { role_arn: format!("arn:aws:iam::{a}:role/p-broker"), max_session_seconds: 3600 },
            )
        })
        .collect();
    let request_queue = QueueUrl::parse("http://sqs.test/123456789012/p-directory-events").unwrap();
    let front = Front {
        role: QueueRole::Directory,
        allowed_sender_ids: Vec::new(),
        max_message_bytes: 262_144,
        reply_policy: ReplyPolicy::new(&request_queue, &[], vec!["p-reply-*".into()]),
        producers: Producers::new(producers),
        replies: replies.clone(),
        audit: audit.clone(),
        clock: Arc::new(clock.clone()),
    };
    let revoker = Revoker::new(store.clone(), sessions.clone(), brokered, 8192);
    let handler = DirectoryHandler::new(front, store.clone(), revoker);
    Harness { handler, store, sessions, audit, replies, clock }
}

fn hr() -> Producer {
    Producer { name: "hr".into(), sender_ids: vec![HR.into()], kinds: vec!["user.*".into()], on_behalf: false }
}

fn grant(user: &str, team: &str, account: &AccountId, n: u32) -> Grant {
    Grant {
        id: Grant::id_for(user, &MessageId::parse(&format!("m-{team}-{n}")).unwrap()),
        user: user.into(),
        team: Some(team.into()),
        groups: vec![],
        account: account.clone(),
        template: TemplateName::parse("bucketRead").unwrap(),
        template_version: 1,
        params: BTreeMap::new(),
        statements: vec![json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})],
        reason: "r".into(),
        created_at: t(0),
        expires_at: t(600),
        request_message_id: MessageId::parse(&format!("m-{team}-{n}")).unwrap(),
        via: None,
        revoked: None,
        status: portcullis_domain::grant::GrantStatus::Active,
        ttl_seconds: 3600,
        approval: None,
        break_glass: None,
        user_display_name: None,
        revision: 0,
    }
}

impl Harness {
    async fn send(&self, id: &str, kind: Kind, body: Value, sender: &str) -> (Outcome, Option<Reply>) {
        let before = self.replies.sent().len();
        let env = json!({"version": 1, "message_id": id, "kind": kind.as_str(), "sent_at": "2026-11-22T12:00:00Z",
                         "reply_to": REPLY_TO, "body": body});
        let message = ReceivedMessage {
            message_id: format!("sqs-{id}"),
            receipt_handle: format!("r-{id}"),
            body: env.to_string(),
            receive_count: 1,
            sender_id: Some(sender.into()),
            attributes: Default::default(),
        };
        let outcome = self.handler.handle(&message, FIRST).await;
        let reply = self.replies.sent().get(before).map(|r| serde_json::from_str(&r.text).unwrap());
        (outcome, reply)
    }

    async fn ok(&self, id: &str, kind: Kind, body: Value) -> Value {
        let (outcome, reply) = self.send(id, kind, body, HR).await;
        assert_eq!(outcome.disposition, Disposition::Done, "{outcome:?}");
        match reply.unwrap().outcome {
            ReplyOutcome::Ok { result } => result,
            ReplyOutcome::Error { error } => panic!("{}: {}", error.code, error.message),
        }
    }

    fn live(&self, user: &str) -> Vec<Grant> {
        self.store.grants().into_iter().filter(|g| g.user == user && g.is_live(self.clock.now())).collect()
    }

    fn denied_users(&self, account: &AccountId) -> Vec<String> {
        let Some(doc) = self.sessions.policy(account) else { return Vec::new() };
        let v: Value = serde_json::from_str(&doc).unwrap();
        v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["Condition"]["StringEquals"]["aws:SourceIdentity"].as_array().cloned())
            .flatten()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect()
    }
}

use portcullis_runtime::clock::Clock;

#[tokio::test]
async fn a_team_change_revokes_only_the_old_teams_grants_and_their_sessions() {
    let h = harness(vec![hr()]);
    let [a, b] = accounts();
    h.store.insert_grant(grant("alice", "payments", &a, 1));
    h.store.insert_grant(grant("alice", "growth", &b, 2));
    h.store.insert_grant(grant("bob", "payments", &a, 3));
    let body = json!({"user": "alice", "from_team": "payments", "to_team": "growth", "effective_at": t(20)});
    let result = h.ok("hr-1", Kind::UserTeamChanged, body.clone()).await;
    assert_eq!(result["applied"], true);
    assert_eq!(result["revoked_grants"].as_array().unwrap().len(), 1);
    assert_eq!(result["session_accounts"], json!([a.as_str()]));
    let live = h.live("alice");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].team.as_deref(), Some("growth"));
    assert_eq!(h.live("bob").len(), 1, "other users keep theirs");
    assert_eq!(h.denied_users(&a), vec!["alice"]);
    assert!(h.denied_users(&b).is_empty(), "no grant of the old team there");
    let types: Vec<String> = h.audit.detail_types();
    assert_eq!(types, vec!["Directory Change Applied", "Grant Revoked", "Sessions Revoked"]);
    // A redelivery answers the same and publishes the same events (same ids).
    let again = h.ok("hr-1", Kind::UserTeamChanged, body).await;
    assert_eq!(again, result);
    let events = h.audit.events();
    assert_eq!(events.len(), 6);
    assert_eq!(events[..3], events[3..]);
}

#[tokio::test]
async fn events_out_of_order_settle_on_the_newest() {
    let h = harness(vec![hr()]);
    let [a, _] = accounts();
    h.store.insert_grant(grant("alice", "payments", &a, 1));
    h.store.insert_grant(grant("alice", "growth", &a, 2));
    // The newer move (to payments at 20) arrives before the older one (payments -> growth at 10).
    let newer = json!({"user": "alice", "from_team": "growth", "to_team": "payments", "effective_at": t(20)});
    let older = json!({"user": "alice", "from_team": "payments", "to_team": "growth", "effective_at": t(10)});
    assert_eq!(h.ok("hr-2", Kind::UserTeamChanged, newer).await["applied"], true);
    let late = h.ok("hr-1", Kind::UserTeamChanged, older).await;
    assert_eq!(late["applied"], false, "an older change is not applied");
    assert_eq!(late["revoked_grants"], json!([]), "and does not revoke the current team's grants");
    let live = h.live("alice");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].team.as_deref(), Some("payments"));
    let (record, _) = h.store.directory_record("alice").await.unwrap().unwrap();
    assert_eq!(record.team.unwrap().value, "payments");
}

#[tokio::test]
async fn offboarding_revokes_everything_and_kills_sessions_everywhere() {
    let h = harness(vec![hr()]);
    let [a, b] = accounts();
    h.store.insert_grant(grant("alice", "payments", &a, 1));
    h.store.insert_grant(grant("alice", "growth", &b, 2));
    let result = h.ok("hr-off", Kind::UserOffboarded, json!({"user": "alice", "effective_at": t(25)})).await;
    assert_eq!(result["revoked_grants"].as_array().unwrap().len(), 2);
    assert_eq!(result["session_accounts"], json!([a.as_str(), b.as_str()]));
    assert!(h.live("alice").is_empty());
    for account in [&a, &b] {
        assert_eq!(h.denied_users(account), vec!["alice"]);
        let doc: Value = serde_json::from_str(&h.sessions.policy(account).unwrap()).unwrap();
        // Applied at 12:30, plus the 5-minute clock-skew allowance.
        assert_eq!(doc["Statement"][1]["Condition"]["DateLessThan"]["aws:TokenIssueTime"], "2026-11-22T12:35:00Z");
    }
    // A repeat (with a later effective time) changes nothing and keeps the first cutoff.
    h.clock.advance(Duration::minutes(5));
    let again = h.ok("hr-off-2", Kind::UserOffboarded, json!({"user": "alice", "effective_at": t(26)})).await;
    assert_eq!(again["applied"], false);
    let doc: Value = serde_json::from_str(&h.sessions.policy(&a).unwrap()).unwrap();
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn groups_are_recorded() {
    let h = harness(vec![hr()]);
    h.ok("hr-g", Kind::UserGroupsChanged, json!({"user": "alice", "groups": ["b", "a", "a"], "effective_at": t(1)}))
        .await;
    let (record, _) = h.store.directory_record("alice").await.unwrap().unwrap();
    assert_eq!(record.groups.unwrap().value, vec!["a", "b"]);
}

#[tokio::test]
async fn only_a_producer_allowed_the_kind_may_send_it() {
    let body = json!({"user": "alice", "effective_at": t(1)});
    // Not on the list.
    let h = harness(vec![hr()]);
    let (outcome, _) = h.send("x-1", Kind::UserOffboarded, body.clone(), "AIDASOMEONEELSE").await;
    assert!(
        matches!(outcome.disposition, Disposition::Reject { code: ErrorCode::ProducerForbidden, .. }),
        "{outcome:?}"
    );
    // On the list, but not for this kind.
    let slack =
        Producer { name: "slack".into(), sender_ids: vec![HR.into()], kinds: vec!["grant.*".into()], on_behalf: true };
    let h = harness(vec![slack]);
    let (outcome, _) = h.send("x-2", Kind::UserOffboarded, body.clone(), HR).await;
    assert!(
        matches!(outcome.disposition, Disposition::Reject { code: ErrorCode::ProducerForbidden, .. }),
        "{outcome:?}"
    );
    // No producers at all.
    let h = harness(vec![]);
    let (outcome, _) = h.send("x-3", Kind::UserOffboarded, body, HR).await;
    assert!(
        matches!(outcome.disposition, Disposition::Reject { code: ErrorCode::ProducerForbidden, .. }),
        "{outcome:?}"
    );
    assert!(h.store.directory_record("alice").await.unwrap().is_none(), "nothing recorded");
    // Access kinds do not belong here.
    let h = harness(vec![Producer { kinds: vec!["*".into()], ..hr() }]);
    let (outcome, _) = h.send("x-4", Kind::GrantList, json!({}), HR).await;
    assert!(matches!(outcome.disposition, Disposition::Reject { code: ErrorCode::UnknownKind, .. }), "{outcome:?}");
}

/// A change dated ahead is kept, not applied: the record, the grants and the sessions stay as they
/// are until it is due; then it applies (rights granted or removed, grants revoked, sessions killed
/// at that moment), once, whichever replica gets there.
#[tokio::test]
async fn future_dated_changes_apply_when_due_and_not_before() {
    let h = harness(vec![hr()]);
    let [a, _] = accounts();
    h.store.insert_grant(grant("alice", "payments", &a, 1));
    // Admin rights a week ahead (now is t(30)).
    let week = t(30) + Duration::days(7);
    let groups = json!({"user": "alice", "groups": ["portcullis-admins"], "effective_at": week});
    let result = h.ok("hr-groups", Kind::UserGroupsChanged, groups).await;
    assert_eq!(result["applied"], false);
    assert_eq!(result["scheduled_for"], json!(week));
    // Offboarding in an hour.
    let hour = t(90);
    let off = h.ok("hr-off", Kind::UserOffboarded, json!({"user": "alice", "effective_at": hour})).await;
    assert_eq!((off["applied"].clone(), off["scheduled_for"].clone()), (json!(false), json!(hour)));
    assert!(h.store.directory_record("alice").await.unwrap().is_none(), "nothing applied yet");
    assert_eq!(h.live("alice").len(), 1);
    assert!(h.denied_users(&a).is_empty());
    assert_eq!(h.store.scheduled_changes().len(), 2);
    assert_eq!(h.handler.apply_due().await.unwrap(), 0, "nothing due");

    // One second before the hour: still nothing.
    h.clock.advance(Duration::minutes(60) - Duration::seconds(1));
    assert_eq!(h.handler.apply_due().await.unwrap(), 0);
    assert_eq!(h.live("alice").len(), 1);
    // At the hour: offboarded, the grant revoked and sessions killed then.
    h.clock.advance(Duration::seconds(1));
    assert_eq!(h.handler.apply_due().await.unwrap(), 1);
    let (record, _) = h.store.directory_record("alice").await.unwrap().unwrap();
    let offboarding = record.offboarded.unwrap();
    assert_eq!((offboarding.effective_at, offboarding.applied_at), (hour, hour));
    assert!(record.groups.is_none(), "the groups change is not due yet");
    assert!(h.live("alice").is_empty());
    assert_eq!(h.denied_users(&a), vec!["alice"]);
    assert!(h.audit.detail_types().contains(&"Sessions Revoked".to_owned()));
    assert_eq!(h.handler.apply_due().await.unwrap(), 0, "applied once");

    // A week on, the groups change applies too.
    h.clock.advance(Duration::days(7));
    assert_eq!(h.handler.apply_due().await.unwrap(), 1);
    let (record, _) = h.store.directory_record("alice").await.unwrap().unwrap();
    assert_eq!(record.groups.unwrap().value, vec!["portcullis-admins"]);
    assert!(h.store.scheduled_changes().is_empty());
}

/// Dated further ahead than the bound: refused with its code, nothing kept.
#[tokio::test]
async fn a_change_dated_too_far_ahead_is_refused() {
    let h = harness(vec![hr()]);
    let far = t(30) + Duration::days(32);
    let body = json!({"user": "alice", "groups": ["portcullis-admins"], "effective_at": far});
    let (outcome, reply) = h.send("hr-far", Kind::UserGroupsChanged, body, HR).await;
    let Disposition::Reject { code, .. } = outcome.disposition else { panic!("{outcome:?}") };
    assert_eq!(code, ErrorCode::EffectiveAtTooFar);
    match reply.unwrap().outcome {
        ReplyOutcome::Error { error } => assert_eq!(error.code, ErrorCode::EffectiveAtTooFar),
        ReplyOutcome::Ok { result } => panic!("{result}"),
    }
    assert!(h.store.scheduled_changes().is_empty());
    assert!(h.store.directory_record("alice").await.unwrap().is_none());
}
