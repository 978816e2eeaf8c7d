//! The edge over fakes: every Slack surface, each refusal, the link flow, decisions from
//! elsewhere arriving from the bus. Payloads are the recorded ones under `tests/payloads/`,
//! signed as Slack signs them.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use portcullis_domain::ErrorCode;
use portcullis_domain::audit::{Actor, AuditEvent, GrantDenied};
use serde_json::Value;

use crate::edge::HttpAnswer;
use crate::fixtures;
use crate::ports::{Binding, EdgeStore};
use crate::render::actions;
use crate::testing::{SECRET, TestEdge};
use crate::verify::Signed;

fn bind(t: &TestEdge, slack_user: &str, subject: &str, groups: &[&str]) {
    let binding = Binding {
        subject: subject.into(),
        team: Some("payments".into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        display_name: None,
        issuer: "https://idp.test".into(),
        linked_at: Utc::now(),
    };
    futures_lite(t.store.put_binding(fixtures::TEAM, slack_user, &binding)).unwrap();
}

fn futures_lite<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Verify as the HTTP shell does; `Err` is the refusal.
fn verify(t: &TestEdge, body: &[u8], ts: i64, secret: &str) -> Result<(), HttpAnswer> {
    let headers = fixtures::signature_headers(secret, ts, body);
    t.edge.verify(Signed { timestamp: Some(&headers[0].1), signature: Some(&headers[1].1) }, body)
}

fn code_of(a: &HttpAnswer) -> String {
    serde_json::from_str::<Value>(&a.body).unwrap()["error"].as_str().unwrap_or_default().to_owned()
}

fn request_body(user: &str, text: &str) -> Vec<u8> {
    fixtures::command("command_request.form", &[("user", user), ("text", text), ("slack", "https://hooks.test")])
}

fn click(user: &str, action: &str, grant: &str, ts: &str) -> Vec<u8> {
    fixtures::interaction(
        "approve_click.json",
        &[
            ("user", user),
            ("action", action),
            ("grant", grant),
            ("channel", "C0APPROVE"),
            ("ts", "1795834632.000002"),
            ("action_ts", ts),
            ("slack", "https://hooks.test"),
        ],
    )
}

async fn requested_grant(t: &TestEdge) -> String {
    let answer =
        t.edge.command(&request_body("U0ALICE", "request bucketRead bucketName=exports --ttl 1h --reason INC-7")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    t.edge.drain().await;
    let grants = t.portcullis.grants.lock().unwrap().clone();
    grants.last().unwrap().id.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_an_old_timestamp_and_a_replay_are_refused() {
    let t = TestEdge::new("");
    let body = request_body("U0ALICE", "list");
    let bad = verify(&t, &body, t.now(), "another-signing-secret").unwrap_err();
    assert_eq!((bad.status, code_of(&bad).as_str()), (401, ErrorCode::SlackSignatureInvalid.as_str()));
    let old = verify(&t, &body, t.now() - 301, SECRET).unwrap_err();
    assert_eq!((old.status, code_of(&old).as_str()), (401, ErrorCode::SlackRequestStale.as_str()));
    assert!(verify(&t, &body, t.now() - 299, SECRET).is_ok());
    let replay = verify(&t, &body, t.now() - 299, SECRET).unwrap_err();
    assert_eq!(code_of(&replay), ErrorCode::SlackRequestStale.as_str());
    // Nothing reached Portcullis or Slack.
    assert!(t.portcullis.kinds().is_empty() && t.slack.calls.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn another_workspace_or_app_is_refused() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &[]);
    let other_team =
        fixtures::command("command_request.form", &[("user", "U0ALICE"), ("text", "list"), ("slack", "x")]);
    let other_team = String::from_utf8(other_team).unwrap().replace("team_id=T0PORTCUL", "team_id=T0EVIL");
    let a = t.edge.command(other_team.as_bytes()).await;
    assert_eq!((a.status, code_of(&a).as_str()), (403, ErrorCode::SlackWorkspaceUnknown.as_str()));
    let other_app = String::from_utf8(request_body("U0ALICE", "list"))
        .unwrap()
        .replace("api_app_id=A0PORTCUL", "api_app_id=A0EVIL");
    assert_eq!(t.edge.command(other_app.as_bytes()).await.status, 403);
    let click =
        String::from_utf8(click("U0ALICE", actions::APPROVE, "g-0123456789abcdef0123456789abcdef", "1.1")).unwrap();
    let evil_click = click.replace("T0PORTCUL", "T0EVIL");
    assert_eq!(t.edge.interaction(evil_click.as_bytes()).await.status, 403);
    t.edge.drain().await;
    assert!(t.portcullis.kinds().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unlinked_user_is_told_to_link_first_and_nothing_is_sent() {
    let t = TestEdge::new("");
    let a = t.edge.command(&request_body("U0NOBODY", "request bucketRead bucketName=exports --reason x")).await;
    assert!(a.body.contains("/portcullis link") && a.body.contains("slack_not_linked"), "{}", a.body);
    let c = t.edge.interaction(&click("U0NOBODY", actions::APPROVE, "g-0123456789abcdef0123456789abcdef", "1.1")).await;
    assert_eq!(c.status, 200);
    t.edge.drain().await;
    assert!(t.slack.of("response_url")[0]["text"].as_str().unwrap().contains("/portcullis link"));
    assert!(t.portcullis.kinds().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_posts_the_requesters_copy_and_notifies_the_approvers_once() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    let grant = requested_grant(&t).await;
    assert_eq!(t.portcullis.kinds(), ["grant.request"]);
    let posts = t.slack.of("chat.postMessage");
    let channels: Vec<&str> = posts.iter().map(|p| p["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["U0ALICE", "C0APPROVE"]);
    assert!(posts[1].to_string().contains(actions::APPROVE) && posts[1].to_string().contains(&grant));
    assert!(!posts.iter().any(|p| p.to_string().contains("arn:aws")), "no statement, no credential goes to Slack");
    let reply = &t.slack.of("response_url")[0];
    assert!(reply["text"].as_str().unwrap().contains(&grant), "{reply}");
    // The same grant announced again by the bus does not notify twice.
    let card = t.store.card(&portcullis_domain::GrantId::parse(&grant).unwrap()).await.unwrap().unwrap();
    assert_eq!(card.user, "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_that_ends_by_itself_is_shown_expired_on_every_copy_once() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    let grant = portcullis_domain::GrantId::parse(&requested_grant(&t).await).unwrap();
    let card = t.store.card(&grant).await.unwrap().unwrap();
    assert_eq!(card.state, crate::card::CardState::Pending);
    // Before its end nothing is due.
    assert_eq!(t.edge.sweep_expiries().await.unwrap(), 0);
    assert!(t.slack.of("chat.update").is_empty());
    *t.now.lock().unwrap() = card.expires_at + chrono::Duration::seconds(1);
    assert_eq!(t.edge.sweep_expiries().await.unwrap(), 1);
    let updates = t.slack.of("chat.update");
    assert_eq!(updates.len(), 2, "the requester's copy and the approvers' copy: {updates:?}");
    assert!(updates.iter().all(|u| u.to_string().contains("Expired")), "{updates:?}");
    assert!(
        updates.iter().all(|u| !u.to_string().contains(actions::APPROVE)),
        "no button is left on an expired grant: {updates:?}"
    );
    let card = t.store.card(&grant).await.unwrap().unwrap();
    assert_eq!(card.state, crate::card::CardState::Expired);
    // Swept once: a second sweep (another replica's, a restart's) finds nothing.
    assert_eq!(t.edge.sweep_expiries().await.unwrap(), 0);
    assert_eq!(t.slack.of("chat.update").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn approving_from_slack_updates_every_copy_and_a_double_click_acts_once() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    bind(&t, "U0BOB", "bob", &["portcullis-approvers"]);
    let grant = requested_grant(&t).await;
    // Two clicks of the same button, as fast as Slack delivers them.
    let (first, second) = (
        click("U0BOB", actions::APPROVE, &grant, "1795834700.000001"),
        click("U0BOB", actions::APPROVE, &grant, "1795834700.000002"),
    );
    let (a, b) = tokio::join!(t.edge.interaction(&first), t.edge.interaction(&second));
    assert_eq!((a.status, b.status), (200, 200));
    t.edge.drain().await;
    let approvals: Vec<_> =
        t.portcullis.asked.lock().unwrap().iter().filter(|(_, k, _)| *k == "grant.approve").cloned().collect();
    let ids: std::collections::BTreeSet<_> = approvals.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1, "both clicks carry one message id: {approvals:?}");
    let granted = t.portcullis.grants.lock().unwrap().iter().find(|g| g.id.as_str() == grant).unwrap().clone();
    assert_eq!(granted.approval.unwrap().approvals.len(), 1, "approved once");
    let updates = t.slack.of("chat.update");
    let channels: std::collections::BTreeSet<&str> = updates.iter().map(|u| u["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["C0APPROVE", "U0ALICE"].into_iter().collect());
    let last = updates.last().unwrap().to_string();
    assert!(last.contains("Active") && !last.contains(actions::APPROVE), "{last}");
    // A later click (the message not yet refreshed on someone's screen) changes nothing.
    t.edge.interaction(&click("U0BOB", actions::DENY, &grant, "1795834701.000001")).await;
    t.edge.drain().await;
    let texts: Vec<String> =
        t.slack.of("response_url").iter().map(|r| r["text"].as_str().unwrap().to_owned()).collect();
    assert!(texts.iter().any(|t| t.contains("decided already")), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn self_approval_is_refused_by_portcullis_and_shown_clearly() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["portcullis-approvers"]);
    let grant = requested_grant(&t).await;
    t.edge.interaction(&click("U0ALICE", actions::APPROVE, &grant, "1795834700.000001")).await;
    t.edge.drain().await;
    assert!(t.portcullis.kinds().contains(&"grant.approve"), "Portcullis decides, not the edge");
    let texts: Vec<String> =
        t.slack.of("response_url").iter().map(|r| r["text"].as_str().unwrap().to_owned()).collect();
    assert!(texts.iter().any(|t| t.contains("approval_forbidden") && t.contains("someone else")), "{texts:?}");
    let g = t.portcullis.grants.lock().unwrap().last().unwrap().clone();
    assert_eq!(g.status.as_str(), "pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_made_elsewhere_arrives_from_the_bus_and_updates_every_copy() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    let grant = requested_grant(&t).await;
    let before = t.slack.of("chat.update").len();
    let denied = AuditEvent::GrantDenied(GrantDenied {
        event_id: "ev-cli-deny".into(),
        at: Utc::now(),
        actor: Actor { user: "secops".into(), via: None, display_name: Some("Sec Ops".into()) },
        user: "alice".into(),
        user_display_name: None,
        grant_id: portcullis_domain::GrantId::parse(&grant).unwrap(),
        account: portcullis_domain::AccountId::parse("123456789012").unwrap(),
        template: portcullis_domain::TemplateName::parse("bucketRead").unwrap(),
        reason: "use the replica".into(),
    });
    t.edge.on_audit_event(&denied).await.unwrap();
    // At-least-once delivery: the same event again changes nothing.
    t.edge.on_audit_event(&denied).await.unwrap();
    let updates = t.slack.of("chat.update");
    assert_eq!(updates.len() - before, 2, "one update per copy, once");
    let text = updates.last().unwrap().to_string();
    assert!(text.contains("Denied") && text.contains("denied by Sec Ops (secops): use the replica"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_applied_at_once_by_many_replicas_all_land_on_the_card() {
    use portcullis_domain::audit::GrantApproved;
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    let grant = portcullis_domain::GrantId::parse(&requested_grant(&t).await).unwrap();
    // Eight approvals (of a grant needing many) delivered at the same moment to eight replicas
    // sharing one store: each reads the card, adds its line, and writes over the revision it read.
    let approvals: Vec<AuditEvent> = (1..=8)
        .map(|n| {
            AuditEvent::GrantApproved(GrantApproved {
                event_id: format!("ev-approve-{n}"),
                at: Utc::now(),
                actor: Actor { user: format!("approver{n}"), via: None, display_name: None },
                user: "alice".into(),
                user_display_name: None,
                grant_id: grant.clone(),
                account: portcullis_domain::AccountId::parse("123456789012").unwrap(),
                template: portcullis_domain::TemplateName::parse("bucketRead").unwrap(),
                approvals: n,
                required: 9,
            })
        })
        .collect();
    let edge = t.edge.clone();
    let all = approvals.into_iter().map(|event| {
        let edge = edge.clone();
        tokio::spawn(async move { edge.on_audit_event(&event).await })
    });
    for done in futures::future::join_all(all).await {
        done.unwrap().unwrap();
    }
    let card = t.store.card(&grant).await.unwrap().unwrap();
    let lines: Vec<&str> = card.history.iter().map(|l| l.event_id.as_str()).collect();
    for n in 1..=8 {
        assert!(lines.contains(&format!("ev-approve-{n}").as_str()), "approval {n} lost: {lines:?}");
    }
    assert_eq!(card.approvals, 8);
    // A card written over a revision that is no longer the stored one is refused.
    let mut stale = card.clone();
    stale.version -= 1;
    assert!(!t.store.put_card(&stale).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shortcut_opens_a_picker_then_the_templates_form_and_patterns_are_checked_before_sending() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    let a = t.edge.interaction(&fixtures::interaction("shortcut.json", &[("user", "U0ALICE")])).await;
    assert_eq!(a.status, 200);
    t.edge.drain().await;
    let opened = t.slack.of("views.open");
    assert!(opened[0].to_string().contains("portcullis_pick"), "{}", opened[0]);
    let picked = t
        .edge
        .interaction(&fixtures::interaction("pick_submission.json", &[("user", "U0ALICE"), ("template", "bucketRead")]))
        .await;
    let answer: Value = serde_json::from_str(&picked.body).unwrap();
    assert_eq!(answer["response_action"], "update");
    let metadata = answer["view"]["private_metadata"].as_str().unwrap().to_owned();
    let encoded = serde_json::to_string(&metadata).unwrap();
    let bad = t
        .edge
        .interaction(&fixtures::interaction(
            "request_submission.json",
            &[("user", "U0ALICE"), ("metadata", &encoded), ("bucket", "Exports*")],
        ))
        .await;
    let errors: Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(errors["response_action"], "errors", "{errors}");
    assert!(errors["errors"]["param:bucketName"].is_string(), "{errors}");
    t.edge.drain().await;
    assert_eq!(t.portcullis.kinds(), ["template.list", "template.get"], "nothing was requested");
    let good = t
        .edge
        .interaction(&fixtures::interaction(
            "request_submission.json",
            &[("user", "U0ALICE"), ("metadata", &encoded), ("bucket", "exports")],
        ))
        .await;
    assert_eq!(serde_json::from_str::<Value>(&good.body).unwrap()["response_action"], "clear");
    t.edge.drain().await;
    assert_eq!(t.portcullis.kinds().last(), Some(&"grant.request"));
    assert_eq!(t.slack.of("chat.postMessage").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_slash_command_with_a_template_alone_opens_its_form() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    t.edge.command(&request_body("U0ALICE", "request bucketRead")).await;
    t.edge.drain().await;
    let opened = t.slack.of("views.open");
    assert!(opened[0].to_string().contains("param:bucketName"), "{}", opened[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_home_shows_live_grants_and_what_waits_and_a_retry_is_not_acted_on() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    bind(&t, "U0BOB", "bob", &["portcullis-approvers"]);
    let grant = requested_grant(&t).await;
    let body = fixtures::event("app_home_opened.json", &[("user", "U0BOB"), ("nonce", "1")]);
    assert_eq!(t.edge.event(&body, false).await.status, 200);
    t.edge.drain().await;
    let home = t.slack.of("views.publish");
    assert_eq!(home[0]["user_id"], "U0BOB");
    assert!(home[0].to_string().contains(&grant) && home[0].to_string().contains(actions::APPROVE));
    // Slack's retry of the same event: acknowledged, not published again.
    assert_eq!(t.edge.event(&body, true).await.status, 200);
    t.edge.drain().await;
    assert_eq!(t.slack.of("views.publish").len(), 1);
    // The URL check.
    let v = t.edge.event(br#"{"type":"url_verification","challenge":"c-1","token":"x"}"#, false).await;
    assert_eq!(serde_json::from_str::<Value>(&v.body).unwrap()["challenge"], "c-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pending_and_revoke_from_the_slash_command() {
    let t = TestEdge::new("");
    bind(&t, "U0ALICE", "alice", &["engineers"]);
    bind(&t, "U0BOB", "bob", &["portcullis-approvers"]);
    let grant = requested_grant(&t).await;
    t.edge.command(&request_body("U0BOB", "pending")).await;
    t.edge.command(&request_body("U0ALICE", "list")).await;
    t.edge.drain().await;
    let replies = t.slack.of("response_url");
    assert!(replies.iter().any(|r| r.to_string().contains(actions::APPROVE) && r.to_string().contains(&grant)));
    t.edge.command(&request_body("U0ALICE", &format!("revoke {grant} done"))).await;
    t.edge.drain().await;
    let last = t.slack.of("chat.update").last().unwrap().to_string();
    assert!(last.contains("Revoked"), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn linking_binds_once_from_the_browser_that_started_and_unlink_removes_it() {
    let t = TestEdge::new("");
    let answer = t.edge.command(&request_body("U0BOB", "link")).await;
    let text = serde_json::from_str::<Value>(&answer.body).unwrap()["text"].as_str().unwrap().to_owned();
    let state = text.split("state=").nth(1).unwrap().split('|').next().unwrap().to_owned();
    let start = t.edge.link_start(&state).await;
    assert_eq!(start.status, 302);
    let cookie = start
        .headers
        .iter()
        .find(|(k, _)| *k == "set-cookie")
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_owned();
    // Another browser (no cookie, or another one) is refused and does not use the link up.
    assert_eq!(t.edge.link_callback(&state, Some("code-mallory"), None, None).await.status, 400);
    assert_eq!(t.edge.link_callback(&state, Some("code-mallory"), None, Some("other")).await.status, 400);
    let done = t.edge.link_callback(&state, Some("code-bob"), None, Some(&cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    // Once only.
    assert_eq!(t.edge.link_callback(&state, Some("code-bob"), None, Some(&cookie)).await.status, 400);
    let binding = t.store.binding(crate::fixtures::TEAM, "U0BOB").await.unwrap().unwrap();
    assert_eq!(
        (binding.subject.as_str(), binding.groups.as_slice()),
        ("bob", &["portcullis-approvers".to_owned()][..])
    );
    t.edge.drain().await;
    assert!(t.slack.of("chat.postMessage")[0]["text"].as_str().unwrap().contains("linked to *BOB*"));
    let unlinked = t.edge.command(&request_body("U0BOB", "unlink")).await;
    assert!(unlinked.body.contains("Unlinked"));
    t.edge.drain().await;
    assert!(t.store.binding(crate::fixtures::TEAM, "U0BOB").await.unwrap().is_none());
    let events = t.audit.events.lock().unwrap().clone();
    assert_eq!(
        events.iter().map(|e| e.detail_type()).collect::<Vec<_>>(),
        ["Slack Account Linked", "Slack Account Unlinked"]
    );
    // An expired link cannot start.
    let answer = t.edge.command(&request_body("U0BOB", "link")).await;
    let text = serde_json::from_str::<Value>(&answer.body).unwrap()["text"].as_str().unwrap().to_owned();
    let state = text.split("state=").nth(1).unwrap().split('|').next().unwrap().to_owned();
    *t.now.lock().unwrap() += chrono::Duration::seconds(601);
    assert_eq!(t.edge.link_start(&state).await.status, 400);
}

/// `/portcullis link` for `slack_user`, opened in one browser: the link state and the cookie.
async fn start_link(t: &TestEdge, slack_user: &str) -> (String, String) {
    let answer = t.edge.command(&request_body(slack_user, "link")).await;
    let text = serde_json::from_str::<Value>(&answer.body).unwrap()["text"].as_str().unwrap().to_owned();
    let state = text.split("state=").nth(1).unwrap().split('|').next().unwrap().to_owned();
    let start = t.edge.link_start(&state).await;
    let cookie = start.headers.iter().find(|(k, _)| *k == "set-cookie").unwrap().1.clone();
    let cookie = cookie.split(';').next().unwrap().split('=').nth(1).unwrap().to_owned();
    (state, cookie)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_directory_has_the_last_word_at_link_time() {
    use portcullis_domain::directory::{DirectoryChange, DirectoryRecord};
    let t = TestEdge::new("");
    let now = *t.now.lock().unwrap();
    let mut bob = DirectoryRecord::new("bob");
    bob.apply(&DirectoryChange::Offboarded { effective_at: now - chrono::Duration::hours(1) }, now);
    t.store.put_directory_record(bob);
    let (state, cookie) = start_link(&t, "U0BOB").await;
    let refused = t.edge.link_callback(&state, Some("code-bob"), None, Some(&cookie)).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("offboarded") && refused.body.contains("slack_link_invalid"), "{}", refused.body);
    assert!(t.store.binding(crate::fixtures::TEAM, "U0BOB").await.unwrap().is_none());
    t.edge.drain().await;
    assert!(t.audit.events.lock().unwrap().is_empty(), "no link, no event");
    // Someone the directory knows and lets act links as before.
    t.store.put_directory_record(DirectoryRecord::new("alice"));
    let (state, cookie) = start_link(&t, "U0ALICE").await;
    let done = t.edge.link_callback(&state, Some("code-alice"), None, Some(&cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn email_matching_is_off_by_default_and_case_folded_when_on() {
    let off = TestEdge::new("");
    assert!(off.edge.command(&request_body("U0CAROL", "list")).await.body.contains("slack_not_linked"));
    let on = TestEdge::new("").edge.settings().slack.email_matching;
    assert!(!on);
    let t = TestEdge::new_with_email_matching();
    t.edge.command(&request_body("U0CAROL", "list")).await;
    t.edge.drain().await;
    assert_eq!(t.portcullis.asked.lock().unwrap()[0].0, "carol@example.com");
}
