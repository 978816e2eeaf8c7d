//! Faults (`make chaos`): access workers as real OS processes behind a fault-injecting proxy in front
//! of the emulator ([`portcullis_tests::fleet`], [`portcullis_tests::proxy`]).
//!
//! Each test fails if a message is lost (a request without a reply, or left in a queue), a grant is
//! duplicated (two grants for one request, two different answers to one request), a message is
//! dead-lettered that should not be, or a denied call is retried. They kill processes and wait out
//! outages, so they are `#[ignore]`d in `cargo test --workspace` and run one at a time by
//! `make chaos` (`cargo test --workspace --test chaos -- --ignored --test-threads=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use portcullis_runtime::queue::DeadLetters;
use portcullis_tests::fleet::{Fleet, bucket};
use portcullis_tests::portcullis_domain::messages::{Envelope, Kind};
use portcullis_tests::proxy::{Fault, FaultRule};
use portcullis_tests::{ACCOUNT, REPLY_TIMEOUT, error_code, ok};
use rand::Rng;
use serde_json::{Value, json};

const WORKER: &str = env!("CARGO_BIN_EXE_worker-under-test");

fn ids(envelopes: &[Envelope<Value>]) -> BTreeSet<String> {
    envelopes.iter().map(|e| e.message_id.as_str().to_owned()).collect()
}

/// A fleet of `workers` processes with the example templates in place.
async fn fleet(workers: usize, overrides: &[(&str, &str)]) -> Fleet {
    let mut fleet = Fleet::start(WORKER.as_ref(), overrides).await;
    for _ in 0..workers {
        fleet.spawn();
    }
    fleet.wait_polling(workers as u64).await;
    fleet.put_example_templates().await;
    fleet
}

/// Nothing in the access dead-letter queue, and the access queue empty.
async fn nothing_left_behind(fleet: &Fleet) {
    fleet.wait_drained(Duration::from_secs(60)).await;
    let dead = fleet.dead_letters().await;
    assert!(dead.is_empty(), "dead letters that should not be: {dead:?}\n{}", fleet.logs());
}

#[tokio::test]
#[ignore = "kills processes: make chaos runs it"]
async fn sigkill_mid_stream_loses_nothing_and_duplicates_no_grant() {
    const N: usize = 300;
    // A short lease, so what a killed worker held comes back within seconds.
    let mut fleet = fleet(3, &[("WORKER__VISIBILITY_TIMEOUT_SECONDS", "10")]).await;
    let envelopes = fleet.grant_requests("kill", N, 10);
    let ids = ids(&envelopes);
    let replies = fleet.collect_replies();
    let started = Instant::now();
    fleet.send_all(&envelopes).await;

    // Three SIGKILLs at random moments while the stream is being worked: each after a random share
    // (10 %–85 %) of the replies, of a random worker, restarted after a random pause.
    let mut rng = rand::rng();
    let mut moments: Vec<usize> = (0..3).map(|_| rng.random_range(N / 10..N * 85 / 100)).collect();
    moments.sort();
    let mut kills = Vec::new();
    for at in moments {
        let deadline = Instant::now() + Duration::from_secs(120);
        while replies.answered(&ids) < at {
            assert!(Instant::now() < deadline, "stuck at {} replies:\n{}", replies.answered(&ids), fleet.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let victim = rng.random_range(0..3);
        fleet.kill(victim);
        kills.push((replies.answered(&ids), victim));
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
        fleet.restart(victim);
    }
    let all = replies.wait_all(&ids, Duration::from_secs(180)).await;
    let wall = started.elapsed();
    // Redeliveries of what the killed workers held (replayed answers included) are over once the
    // queue is empty.
    nothing_left_behind(&fleet).await;
    let tally = replies.finish(&ids).await;
    eprintln!(
        "sigkill: {N} requests, kills at (replies, worker) {kills:?}; all answered in {:.1} s; {} repeated answers; \
         {} emulator 5xx",
        wall.as_secs_f64(),
        tally.repeated,
        fleet.proxy.emulator_errors()
    );
    assert!(all && tally.unanswered.is_empty(), "unanswered: {:?}\n{}", tally.unanswered, fleet.logs());
    assert!(tally.conflicting.is_empty(), "requests answered two ways: {:?}", tally.conflicting);
    assert!(tally.errors.is_empty(), "refused: {:?}", tally.errors);
    assert_eq!(tally.strangers, 0);
    fleet.assert_one_grant_each("kill", N, 10).await;
}

#[tokio::test]
#[ignore = "signals processes: make chaos runs it"]
async fn sigterm_during_a_batch_finishes_or_releases_every_message() {
    const N: usize = 60;
    // A long lease: a message the worker kept hidden on its way out would take a minute to come back.
    let mut fleet = fleet(1, &[("WORKER__VISIBILITY_TIMEOUT_SECONDS", "60")]).await;
    let envelopes = fleet.grant_requests("term", N, 3);
    let ids = ids(&envelopes);
    let replies = fleet.collect_replies();
    fleet.send_all(&envelopes).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while replies.answered(&ids) < 8 {
        assert!(Instant::now() < deadline, "no progress:\n{}", fleet.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = fleet.terminate(0, Duration::from_secs(15)).await;
    assert!(status.success(), "SIGTERM is a clean exit: {status}\n{}", fleet.logs());
    let answered_at_exit = replies.answered(&ids);
    assert!(answered_at_exit < N, "the worker stopped mid-stream ({answered_at_exit} answered)");
    // Everything the worker held is either finished (deleted) or released (visible at once).
    let hidden = fleet.hidden(&fleet.stack.names.access_queue()).await;
    assert_eq!(hidden, 0, "messages left hidden by a stopped worker:\n{}", fleet.logs());

    fleet.restart(0);
    let restarted = Instant::now();
    let all = replies.wait_all(&ids, Duration::from_secs(40)).await;
    let rest = restarted.elapsed();
    nothing_left_behind(&fleet).await;
    let tally = replies.finish(&ids).await;
    eprintln!(
        "sigterm: {answered_at_exit} of {N} answered before the exit, the rest in {:.1} s after the restart \
         (lease 60 s); {} repeated answers",
        rest.as_secs_f64(),
        tally.repeated
    );
    assert!(all && tally.unanswered.is_empty(), "unanswered {:?}\n{}", tally.unanswered, fleet.logs());
    assert!(tally.conflicting.is_empty() && tally.errors.is_empty(), "{tally:?}");
    fleet.assert_one_grant_each("term", N, 3).await;
}

#[tokio::test]
#[ignore = "waits out a throttle window: make chaos runs it"]
async fn throttling_is_retried_with_bounded_jittered_backoff_not_a_tight_loop() {
    const N: usize = 12;
    const WINDOW: Duration = Duration::from_secs(5);
    // The consumer's backoff: 3 s ±20 % after the first failed delivery, 6 s after the second, so a
    // message meets at most two deliveries in the window, each at most the SDK's three attempts.
    const MAX_ATTEMPTS_IN_WINDOW: usize = 2 * 3;
    let fleet =
        fleet(1, &[("WORKER__RETRY_BACKOFF_BASE_MS", "3000"), ("WORKER__RETRY_BACKOFF_MAX_SECONDS", "10")]).await;
    let envelopes = fleet.grant_requests("throttle", N, 2);
    let ids = ids(&envelopes);
    let replies = fleet.collect_replies();
    let rule = fleet.proxy.add(FaultRule::always("dynamodb:TransactWriteItems", Fault::Throttle));
    let window_start = fleet.proxy.now();
    fleet.send_all(&envelopes).await;
    tokio::time::sleep(WINDOW).await;
    let throttled = fleet.proxy.injected(rule);
    fleet.proxy.remove(rule);

    // Every throttled call, by the message it was for (the request record's key holds its id).
    let mut attempts: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for call in fleet.proxy.log() {
        if call.fault.is_none() || call.operation != "dynamodb:TransactWriteItems" || call.at < window_start {
            continue;
        }
        let body = String::from_utf8_lossy(call.body.as_deref().unwrap_or_default()).into_owned();
        let id = ids.iter().find(|id| body.contains(id.as_str())).expect("a throttled call for one of the messages");
        attempts.entry(id.clone()).or_default().push(call.at);
    }
    let all = replies.wait_all(&ids, Duration::from_secs(60)).await;
    nothing_left_behind(&fleet).await;
    let tally = replies.finish(&ids).await;

    let per_message: Vec<usize> = attempts.values().map(Vec::len).collect();
    // Jitter: the wait before each message's second attempt differs from message to message.
    let second_gaps: Vec<u128> =
        attempts.values().filter(|a| a.len() >= 2).map(|a| (a[1] - a[0]).as_millis()).collect();
    eprintln!(
        "throttling: {throttled} throttled TransactWriteItems in the {WINDOW:?} window for {} messages, per \
         message {per_message:?} (bound {MAX_ATTEMPTS_IN_WINDOW}); first retry after (ms) {second_gaps:?}",
        attempts.len()
    );
    assert!(attempts.len() >= 4, "the window throttled the messages being worked: {attempts:?}");
    assert!(
        per_message.iter().all(|n| *n <= MAX_ATTEMPTS_IN_WINDOW),
        "more attempts than backoff allows: {per_message:?}"
    );
    assert!(throttled as usize <= N * MAX_ATTEMPTS_IN_WINDOW, "a tight loop: {throttled} calls");
    assert!(per_message.iter().any(|n| *n >= 2), "throttled calls are retried: {per_message:?}");
    let spread = second_gaps.iter().max().unwrap_or(&0) - second_gaps.iter().min().unwrap_or(&0);
    assert!(second_gaps.len() >= 3 && spread >= 50, "retries are jittered: {second_gaps:?}");
    assert!(all && tally.unanswered.is_empty(), "unanswered {:?}\n{}", tally.unanswered, fleet.logs());
    assert!(tally.conflicting.is_empty() && tally.errors.is_empty(), "{tally:?}");
    fleet.assert_one_grant_each("throttle", N, 2).await;
}

#[tokio::test]
#[ignore = "injects faults into worker processes: make chaos runs it"]
async fn throttling_and_5xx_on_dynamodb_sts_sqs_and_eventbridge_are_ridden_out() {
    const N: usize = 30;
    let fleet = fleet(2, &[]).await;
    // Credentials first (the client waits for each reply on the reply queue the collector reads later).
    let user = fleet.token("creds-u000");
    let granted = fleet
        .client
        .request(
            Kind::GrantRequest,
            json!({"template": "bucketRead", "params": {"bucketName": "creds"}, "account": ACCOUNT, "ttl": 3600, "reason": "faults"}),
            Some(&user),
            REPLY_TIMEOUT,
        )
        .await
        .unwrap();
    ok(&granted);
    let sts = fleet.proxy.add(FaultRule::first(4, "sts:AssumeRole", Fault::Throttle));
    for _ in 0..3 {
        let reply = fleet
            .client
            .request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), Some(&user), REPLY_TIMEOUT)
            .await
            .unwrap();
        assert!(ok(&reply)["credentials"]["AccessKeyId"].is_string(), "{reply:?}");
    }
    assert_eq!(fleet.proxy.injected(sts), 4);

    let rules = [
        ("dynamodb:* sometimes", fleet.proxy.add(FaultRule::sometimes(0.1, "dynamodb:*", Fault::Throttle))),
        (
            "dynamodb:BatchGetItem 503",
            fleet.proxy.add(FaultRule::first(3, "dynamodb:BatchGetItem", Fault::Unavailable)),
        ),
        ("sqs:SendMessage 503", fleet.proxy.add(FaultRule::first(4, "sqs:SendMessage", Fault::Unavailable))),
        ("sqs:ReceiveMessage 500", fleet.proxy.add(FaultRule::first(3, "sqs:ReceiveMessage", Fault::InternalError))),
        (
            "sqs:DeleteMessageBatch throttled",
            fleet.proxy.add(FaultRule::first(2, "sqs:DeleteMessage*", Fault::Throttle)),
        ),
        ("events:PutEvents 500", fleet.proxy.add(FaultRule::first(4, "events:PutEvents", Fault::InternalError))),
    ];
    let envelopes = fleet.grant_requests("faults", N, 3);
    let ids = ids(&envelopes);
    let replies = fleet.collect_replies();
    fleet.send_all(&envelopes).await;
    let all = replies.wait_all(&ids, Duration::from_secs(90)).await;
    nothing_left_behind(&fleet).await;
    let tally = replies.finish(&ids).await;
    let injected: Vec<(&str, u64)> = rules.iter().map(|(name, id)| (*name, fleet.proxy.injected(*id))).collect();
    eprintln!("faults: injected {injected:?}; {} repeated answers; calls {:?}", tally.repeated, fleet.proxy.calls());
    assert!(injected.iter().skip(1).all(|(_, n)| *n > 0), "every fault was met: {injected:?}");
    assert!(all && tally.unanswered.is_empty(), "unanswered {:?}\n{}", tally.unanswered, fleet.logs());
    assert!(tally.conflicting.is_empty() && tally.errors.is_empty(), "{tally:?}");
    fleet.assert_one_grant_each("faults", N, 3).await;
}

#[tokio::test]
#[ignore = "injects faults into worker processes: make chaos runs it"]
async fn access_denied_is_refused_at_once_with_a_code_and_never_retried() {
    let fleet = fleet(1, &[]).await;

    // dynamodb:TransactWriteItems denied: every grant.request refused as worker_denied, one call each.
    const N: usize = 5;
    let envelopes = fleet.grant_requests("denied", N, 1);
    let ids = ids(&envelopes);
    let replies = fleet.collect_replies();
    let before = fleet.proxy.calls_to("dynamodb:TransactWriteItems");
    let rule = fleet.proxy.add(FaultRule::always("dynamodb:TransactWriteItems", Fault::AccessDenied));
    fleet.send_all(&envelopes).await;
    let all = replies.wait_all(&ids, Duration::from_secs(30)).await;
    fleet.wait_drained(Duration::from_secs(30)).await;
    let tally = replies.finish(&ids).await;
    fleet.proxy.remove(rule);
    let calls = fleet.proxy.calls_to("dynamodb:TransactWriteItems") - before;
    assert!(all, "unanswered {:?}\n{}", tally.unanswered, fleet.logs());
    assert_eq!(tally.errors, BTreeMap::from([("worker_denied".to_owned(), N)]), "{tally:?}");
    assert_eq!(calls, N as u64, "the denied call was made once per message, never retried");
    assert_eq!(tally.repeated, 0, "refused once, at the first delivery");
    // Kept for an operator to fix the permissions and redrive, with their code.
    let sqs = aws_sdk_sqs::Client::new(&fleet.stack.sdk);
    let dead = DeadLetters::connect(sqs, &fleet.stack.names.access_queue()).await.unwrap().inspect().await.unwrap();
    let codes: Vec<&str> = dead.iter().map(|l| l.code_or_none()).collect();
    assert_eq!(codes, vec!["worker_denied"; N], "{dead:?}");
    assert!(fleet.grants_by_bucket("denied", 1).await.is_empty());

    // sts:AssumeRole denied: credentials.request refused as broker_refused after one call.
    let user = fleet.token("granted-u000");
    let granted = fleet
        .client
        .request(
            Kind::GrantRequest,
            json!({"template": "bucketRead", "params": {"bucketName": bucket("granted", 0)}, "account": ACCOUNT, "ttl": 3600, "reason": "faults"}),
            Some(&user),
            REPLY_TIMEOUT,
        )
        .await
        .unwrap();
    let grant_id = ok(&granted)["grant"]["id"].as_str().unwrap().to_owned();
    let rule = fleet.proxy.add(FaultRule::always("sts:AssumeRole", Fault::AccessDenied));
    let before = fleet.proxy.calls_to("sts:AssumeRole");
    let reply = fleet
        .client
        .request(Kind::CredentialsRequest, json!({"account": ACCOUNT}), Some(&user), REPLY_TIMEOUT)
        .await
        .unwrap();
    fleet.proxy.remove(rule);
    assert_eq!(error_code(&reply), "broker_refused");
    assert_eq!(fleet.proxy.calls_to("sts:AssumeRole") - before, 1, "AssumeRole was not retried");

    // iam:PutRolePolicy denied: a revocation that cannot kill the sessions is refused as
    // worker_denied after one call.
    let rule = fleet.proxy.add(FaultRule::always("iam:PutRolePolicy", Fault::AccessDenied));
    let before = fleet.proxy.calls_to("iam:PutRolePolicy");
    let reply = fleet
        .client
        .request(Kind::GrantRevoke, json!({"grant_id": grant_id, "reason": "faults"}), Some(&user), REPLY_TIMEOUT)
        .await
        .unwrap();
    fleet.proxy.remove(rule);
    assert_eq!(error_code(&reply), "worker_denied", "{reply:?}");
    assert_eq!(fleet.proxy.calls_to("iam:PutRolePolicy") - before, 1, "PutRolePolicy was not retried");
    fleet.wait_drained(Duration::from_secs(30)).await;
}

#[tokio::test]
#[ignore = "waits out a 30 s outage: make chaos runs it"]
async fn the_emulator_unreachable_for_30_s_then_back_the_workers_recover_without_restart() {
    const OUTAGE: Duration = Duration::from_secs(30);
    let mut fleet = fleet(2, &[]).await;
    let pids = [fleet.pid(0), fleet.pid(1)];
    let before_outage = fleet.grant_requests("outage-a", 20, 2);
    let during_outage = fleet.grant_requests("outage-b", 40, 2);
    let all_ids: BTreeSet<String> = ids(&before_outage).into_iter().chain(ids(&during_outage)).collect();
    let replies = fleet.collect_replies();
    // Some work in flight when the emulator goes away.
    fleet.send_all(&before_outage).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while replies.answered(&ids(&before_outage)) < 3 {
        assert!(Instant::now() < deadline, "no progress:\n{}", fleet.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fleet.proxy.go_down();
    fleet.send_all(&during_outage).await;
    // Replies sent just before the cut reach the collector (which reads the emulator directly) within
    // its one-second long poll; after that nothing can come.
    const SETTLE: Duration = Duration::from_secs(2);
    tokio::time::sleep(SETTLE).await;
    let answered_at_outage = replies.answered(&all_ids);
    tokio::time::sleep(OUTAGE - SETTLE).await;
    let answered_in_outage = replies.answered(&all_ids) - answered_at_outage;
    let back = Instant::now();
    fleet.proxy.come_back();
    let mut first_after = None;
    let deadline = back + Duration::from_secs(120);
    while replies.answered(&all_ids) < all_ids.len() {
        if first_after.is_none() && replies.answered(&all_ids) > answered_at_outage + answered_in_outage {
            first_after = Some(back.elapsed());
        }
        assert!(Instant::now() < deadline, "not recovered:\n{}", fleet.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = back.elapsed();
    nothing_left_behind(&fleet).await;
    let tally = replies.finish(&all_ids).await;
    eprintln!(
        "outage: {OUTAGE:?} unreachable with {answered_at_outage} of {} answered; first reply {:.1} s and all \
         {} {:.1} s after it came back; {} repeated answers",
        all_ids.len(),
        first_after.unwrap_or(recovered).as_secs_f64(),
        all_ids.len(),
        recovered.as_secs_f64(),
        tally.repeated
    );
    assert_eq!(answered_in_outage, 0, "no reply can be sent while the emulator is unreachable");
    assert_eq!([fleet.pid(0), fleet.pid(1)], pids, "the same processes, never restarted");
    assert!(tally.unanswered.is_empty() && tally.conflicting.is_empty() && tally.errors.is_empty(), "{tally:?}");
    fleet.assert_one_grant_each("outage-a", 20, 2).await;
    fleet.assert_one_grant_each("outage-b", 40, 2).await;
}

#[tokio::test]
#[ignore = "runs worker processes: make chaos runs it"]
async fn the_same_message_id_delivered_three_times_to_three_workers_makes_one_grant() {
    const N: usize = 20;
    let fleet = fleet(3, &[]).await;
    let envelopes = fleet.grant_requests("dup", N, 2);
    let ids = ids(&envelopes);
    // Each request three times, as three SQS messages with the same envelope: the workers race.
    let tripled: Vec<Envelope<Value>> = envelopes.iter().flat_map(|e| [e.clone(), e.clone(), e.clone()]).collect();
    let replies = fleet.collect_replies();
    fleet.send_all(&tripled).await;
    let all = replies.wait_all(&ids, Duration::from_secs(60)).await;
    nothing_left_behind(&fleet).await;
    let tally = replies.finish(&ids).await;
    let conditional = fleet
        .proxy
        .log()
        .iter()
        .filter(|c| c.operation == "dynamodb:TransactWriteItems" && c.status == Some(400))
        .count();
    eprintln!(
        "duplicates: {} deliveries of {N} requests: {} answers beyond the first, {conditional} transactions \
         refused by their condition",
        3 * N,
        tally.repeated
    );
    assert!(all && tally.unanswered.is_empty(), "{tally:?}");
    assert!(tally.conflicting.is_empty(), "one request answered two ways: {:?}", tally.conflicting);
    assert!(tally.errors.is_empty(), "{tally:?}");
    assert_eq!(tally.repeated, 2 * N, "every delivery answered, with the same answer");

    // A reused message id with another body is refused, and changes nothing.
    let mut reused = envelopes[0].clone();
    reused.body["params"]["bucketName"] = json!("dup-reused");
    fleet.client.send(&reused).await.unwrap();
    let reply = fleet.client.wait_reply(&reused.message_id, REPLY_TIMEOUT).await.unwrap();
    assert_eq!(error_code(&reply), "message_id_reused");
    let grants = fleet.grants_by_bucket("dup", 2).await;
    assert!(!grants.contains_key("dup-reused"), "a reused message id made a grant");
    fleet.assert_one_grant_each("dup", N, 2).await;
    fleet.wait_drained(Duration::from_secs(30)).await;
    let sqs = aws_sdk_sqs::Client::new(&fleet.stack.sdk);
    let dead = DeadLetters::connect(sqs, &fleet.stack.names.access_queue()).await.unwrap().inspect().await.unwrap();
    let codes: Vec<&str> = dead.iter().map(|l| l.code_or_none()).collect();
    assert_eq!(codes, ["message_id_reused"], "only the reused id is kept");
}
