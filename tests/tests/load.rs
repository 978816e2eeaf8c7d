//! Load (`make load`): `LOAD_REQUESTS` `grant.request`s (default 1,000; `make load` sends 10,000)
//! from 100 requesters through `LOAD_WORKERS` access worker processes (default 4), each a real
//! `portcullis-worker` behind the pass-through proxy (which counts the calls).
//!
//! `LOAD_DELAY_MS` (default 0) puts the workers behind a delay line of that round trip (half each
//! way), as AWS is from a real deployment (30 ms in issue 17's runs).
//!
//! Every request must be answered, each with one outcome (ok), and leave exactly one grant; none is
//! lost and nothing is dead-lettered. Prints the wall time (first send to last first answer), the
//! throughput and the AWS calls per request. `#[ignore]`d in `cargo test --workspace`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use portcullis_tests::fleet::Fleet;

const WORKER: &str = env!("CARGO_BIN_EXE_worker-under-test");
const USERS: usize = 100;

fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a count")))
}

#[tokio::test]
#[ignore = "a load run: make load runs it"]
async fn every_grant_request_is_processed_exactly_once_under_load() {
    let n = from_env("LOAD_REQUESTS", 1000);
    let workers = from_env("LOAD_WORKERS", 4);
    let delay_ms = from_env("LOAD_DELAY_MS", 0);
    assert!(n > 0 && workers > 0);
    let mut fleet = Fleet::start(WORKER.as_ref(), &[]).await;
    fleet.proxy.set_delay(Duration::from_millis(u64::try_from(delay_ms).unwrap()) / 2);
    for _ in 0..workers {
        fleet.spawn();
    }
    fleet.wait_polling(workers as u64).await;
    fleet.put_example_templates().await;

    let envelopes = fleet.grant_requests("load", n, USERS);
    let ids: BTreeSet<String> = envelopes.iter().map(|e| e.message_id.as_str().to_owned()).collect();
    let replies = fleet.collect_replies();
    let calls_before = fleet.proxy.calls();
    let started = Instant::now();
    fleet.send_all(&envelopes).await;
    let sent = started.elapsed();
    // Generous: a second per request on top of a minute (moto answers a few hundred calls a second).
    let timeout = Duration::from_secs(60) + Duration::from_secs(1) * u32::try_from(n).unwrap();
    let all = replies.wait_all(&ids, timeout).await;
    assert!(all, "{} of {n} answered after {timeout:?}\n{}", replies.answered(&ids), fleet.logs());
    fleet.wait_drained(Duration::from_secs(60)).await;
    let tally = replies.finish(&ids).await;
    let wall = tally.last.map_or(started.elapsed(), |t| t.duration_since(started));
    let calls_after = fleet.proxy.calls();
    let mut per_request: Vec<(String, f64)> = calls_after
        .iter()
        .map(|(op, c)| (op.clone(), (c - calls_before.get(op).copied().unwrap_or(0)) as f64 / n as f64))
        .filter(|(_, c)| *c > 0.0)
        .collect();
    per_request.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = per_request.iter().map(|(_, c)| c).sum();

    println!(
        "load: {n} grant.request, {workers} worker processes ({USERS} requesters, {delay_ms} ms round trip): sent in {:.1} s, all answered in \
         {:.1} s: {:.1} requests/s; {total:.2} AWS calls per request ({}); {} repeated answers",
        sent.as_secs_f64(),
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        per_request.iter().map(|(op, c)| format!("{op} {c:.2}")).collect::<Vec<_>>().join(", "),
        tally.repeated,
    );
    assert!(all && tally.unanswered.is_empty(), "{} unanswered\n{}", tally.unanswered.len(), fleet.logs());
    assert!(tally.conflicting.is_empty(), "answered two ways: {:?}", tally.conflicting);
    assert!(tally.errors.is_empty(), "refused: {:?}\n{}", tally.errors, fleet.logs());
    assert_eq!(tally.strangers, 0);
    assert_eq!(fleet.dead_letter_count().await, 0, "dead letters:\n{}", fleet.logs());
    fleet.assert_one_grant_each("load", n, USERS).await;
}
