//! The Slack edge end to end: moto with the stack deployed, the access worker, the test OpenID
//! provider for the account link, the edge on its real adapters (SQS as a trusted producer,
//! DynamoDB, EventBridge, the bus's grant events through its queue), and a local fake of Slack's
//! Web API. Slack's requests are the recorded payloads (`slack/tests/payloads/`), signed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use portcullis_domain::messages::Kind;
use portcullis_slack::fake_slack::{FakeSlack, SlackSender};
use portcullis_slack::fixtures;
use portcullis_slack::render::actions;
use portcullis_slack::settings::EdgeSettings;
use portcullis_tests::idp::{Idp, drive_script};
use portcullis_tests::{ACCOUNT, TestApp, ok, spawn_app_with, trusted_everything};
use serde_json::{Value, json};

const SECRET: &str = "e2e-signing-secret-0123456789abcdef";
const TOKEN: &str = "xoxb-e2e-bot-token";
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    app: TestApp,
    slack: FakeSlack,
    idp: Idp,
    edge: portcullis_slack::app::Running,
    sender: SlackSender,
    http: reqwest::Client,
}

async fn start() -> Env {
    start_with(None).await
}

/// With `app_token`, the edge also takes Slack's requests over Socket Mode.
async fn start_with(app_token: Option<&str>) -> Env {
    let app = spawn_app_with("", &trusted_everything()).await;
    app.put_example_templates().await;
    let slack = FakeSlack::start_with_socket(TOKEN, Default::default(), app_token).await.unwrap();
    let users = json!({
        "alice": {"team": "payments", "groups": ["engineers", "portcullis-approvers"]},
        "bob": {"team": "payments", "groups": ["portcullis-approvers"]}
    });
    let idp = Idp::start(&users, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let edge_url = format!("http://{}", listener.local_addr().unwrap());
    let toml = format!(
        r#"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[stack]
prefix = "{prefix}"
[http]
public_url = "{edge_url}"
[slack]
team_id = "{team}"
api_app_id = "{app}"
signing_secret = "{SECRET}"
bot_token = "{TOKEN}"
api_base_url = "{api}"
response_url_prefixes = ["{hooks}"]
approvals_channel = "C0APPROVE"
{app_token}
# trusted_everything() names the one producer `hr`.
producer_name = "hr"
default_account = "{ACCOUNT}"
[link]
scopes = ["portcullis"]
redirect_uri = "{edge_url}/callback"
[link.identity]
issuer = "{issuer}"
audience = "portcullis-cli"
"#,
        endpoint = app.stack.moto.endpoint,
        prefix = app.names.prefix(),
        team = fixtures::TEAM,
        app = fixtures::APP,
        api = slack.api_base_url(),
        hooks = slack.hooks_url(),
        issuer = idp.issuer,
        app_token = app_token.map(|t| format!("app_token = \"{t}\"")).unwrap_or_default(),
    );
    let settings = std::sync::Arc::new(EdgeSettings::from_toml(&toml).unwrap());
    let edge = portcullis_slack::app::build(settings, &app.sdk, std::sync::Arc::new(chrono::Utc::now)).await.unwrap();
    let edge = portcullis_slack::app::start(edge, &app.sdk, listener).await.unwrap();
    let sender = SlackSender::new(edge_url, SECRET);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Env { app, slack, idp, edge, sender, http }
}

impl Env {
    fn command(&self, user: &str, text: &str) -> Vec<u8> {
        fixtures::command("command_request.form", &[("user", user), ("text", text), ("slack", &self.slack.base_url())])
    }

    fn click(&self, user: &str, action: &str, grant: &str, action_ts: &str) -> Vec<u8> {
        fixtures::interaction(
            "approve_click.json",
            &[
                ("user", user),
                ("action", action),
                ("grant", grant),
                ("channel", "C0APPROVE"),
                ("ts", "1.1"),
                ("action_ts", action_ts),
                ("slack", &self.slack.base_url()),
            ],
        )
    }

    /// `/portcullis link`, then the person signs in at the IdP in a browser (drive.mjs), which
    /// comes back to the edge's callback.
    async fn link(&self, slack_user: &str, login: &str) {
        let answer = self.sender.post("/slack/commands", self.command(slack_user, "link")).await;
        let text = answer.json()["text"].as_str().unwrap().to_owned();
        let start_url = text.split('<').nth(1).unwrap().split('|').next().unwrap().to_owned();
        let start = self.http.get(&start_url).send().await.unwrap();
        assert_eq!(start.status(), 302);
        let cookie = start.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let authorize = start.headers()["location"].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(&self.idp.issuer), "{authorize}");
        let out = tokio::process::Command::new("node")
            .arg(drive_script())
            .args(["auth", &authorize, login])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let driven: Value = serde_json::from_slice(&out.stdout).unwrap();
        // drive.mjs followed the redirect without the edge's cookie: another browser, refused.
        assert_eq!(driven["status"], 400, "{driven}");
        let callback = driven["redirect"].as_str().unwrap();
        let done = self.http.get(callback).header("cookie", &cookie).send().await.unwrap();
        let status = done.status();
        let page = done.text().await.unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(login), "{page}");
    }

    /// A request from Slack, and the grant it made (from Portcullis, as its owner sees it).
    async fn request_from_slack(&self, slack_user: &str, owner_token: &str, bucket: &str) -> String {
        let text = format!("request bucketWrite bucketName={bucket} --ttl 30m --reason INC-7 re-run the export");
        let answer = self.sender.post("/slack/commands", self.command(slack_user, &text)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let posted = self
            .slack
            .wait_for("chat.postMessage", WAIT, |c| {
                c.body["channel"] == "C0APPROVE" && c.body.to_string().contains(bucket)
            })
            .await
            .expect("the approvers are notified");
        assert!(posted.authorized);
        let grants = self.app.request(Kind::GrantList, json!({}), owner_token).await;
        let grants = ok(&grants)["grants"].as_array().unwrap().clone();
        grants.iter().find(|g| g["params"]["bucketName"] == bucket).unwrap()["id"].as_str().unwrap().to_owned()
    }

    async fn updated(&self, grant: &str, what: &str) -> usize {
        let check = |c: &portcullis_slack::fake_slack::Call| {
            let s = c.body.to_string();
            s.contains(grant) && s.contains(what)
        };
        self.slack
            .wait_for("chat.update", WAIT, check)
            .await
            .unwrap_or_else(|| panic!("no update of {grant} with {what}"));
        self.slack.calls_of("chat.update").iter().filter(|c| check(c)).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_from_slack_is_approved_by_a_second_person_and_every_copy_follows_decisions_made_anywhere() {
    let env = start().await;
    env.link("U0ALICE", "alice").await;
    env.link("U0BOB", "bob").await;
    let alice = env.app.token("alice", Some("payments"), &["engineers", "portcullis-approvers"]);

    // Requested in Slack, approved in Slack by someone else: one approval, every copy updated.
    let grant = env.request_from_slack("U0ALICE", &alice, "analytics-exports").await;
    assert!(
        env.slack.calls_of("chat.postMessage").iter().any(|c| c.body["channel"] == "U0ALICE"),
        "the requester's copy"
    );
    // Self-approval through Slack: Portcullis refuses it, and Slack says so.
    env.sender.post("/slack/interactions", env.click("U0ALICE", actions::APPROVE, &grant, "1795834700.000001")).await;
    env.slack
        .wait_for("response_url", WAIT, |c| c.body["text"].as_str().unwrap_or_default().contains("approval_forbidden"))
        .await
        .expect("self-approval shown as refused");
    // A double click by bob acts once.
    let (a, b) = tokio::join!(
        env.sender.post("/slack/interactions", env.click("U0BOB", actions::APPROVE, &grant, "1795834701.000001")),
        env.sender.post("/slack/interactions", env.click("U0BOB", actions::APPROVE, &grant, "1795834701.000002")),
    );
    assert_eq!((a.status, b.status), (200, 200));
    env.updated(&grant, "Active").await;
    let listed = env.app.request(Kind::GrantList, json!({}), &alice).await;
    let g = ok(&listed)["grants"].as_array().unwrap().iter().find(|g| g["id"] == grant.as_str()).unwrap().clone();
    assert_eq!(g["status"], "active");
    assert_eq!(g["approval"]["approvals"].as_array().unwrap().len(), 1, "{g}");
    assert_eq!(g["approval"]["approvals"][0]["by"], "bob");

    // Denied from the CLI (bob's own ID token): the bus's events reach the edge's queue, and every
    // Slack copy shows it.
    let second = env.request_from_slack("U0ALICE", &alice, "analytics-backups").await;
    let bob = env.app.token("bob", Some("payments"), &["portcullis-approvers"]);
    let denied = env.app.request(Kind::GrantDeny, json!({"grant_id": second, "reason": "use the replica"}), &bob).await;
    ok(&denied);
    assert!(env.updated(&second, "use the replica").await >= 2, "both copies updated");

    // Revoked from the CLI: the same.
    let revoked =
        env.app.request(Kind::GrantRevoke, json!({"grant_id": grant, "reason": "INC-7 closed"}), &alice).await;
    ok(&revoked);
    env.updated(&grant, "INC-7 closed").await;

    // Nothing secret went to Slack: no token, no statement, no key.
    for call in env.slack.calls() {
        let text = call.body.to_string();
        assert!(!text.contains("eyJ") && !text.contains("arn:aws:s3") && !text.contains(SECRET), "{text}");
    }
    env.edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_stale_replayed_and_foreign_requests_and_unlinked_people_get_nothing() {
    let env = start().await;
    let body = env.command("U0ALICE", "list");
    let forged = SlackSender::new(env.sender.edge_url.clone(), "not-the-signing-secret");
    let a = forged.post("/slack/commands", body.clone()).await;
    assert_eq!((a.status, a.json()["error"].as_str()), (401, Some("slack_signature_invalid")));
    let old = chrono::Utc::now().timestamp() - 400;
    let b = env.sender.post_at("/slack/commands", body.clone(), Some(old), &[]).await;
    assert_eq!((b.status, b.json()["error"].as_str()), (401, Some("slack_request_stale")));
    let ts = chrono::Utc::now().timestamp();
    assert_eq!(env.sender.post_at("/slack/commands", body.clone(), Some(ts), &[]).await.status, 200);
    let replay = env.sender.post_at("/slack/commands", body.clone(), Some(ts), &[]).await;
    assert_eq!((replay.status, replay.json()["error"].as_str()), (401, Some("slack_request_stale")));
    let foreign = String::from_utf8(body).unwrap().replace(fixtures::TEAM, "T0ELSEWHERE");
    let c = env.sender.post("/slack/commands", foreign.into_bytes()).await;
    assert_eq!((c.status, c.json()["error"].as_str()), (403, Some("slack_workspace_unknown")));
    // Not linked: told so, and nothing reached Portcullis.
    let d =
        env.sender.post("/slack/commands", env.command("U0ALICE", "request bucketRead bucketName=x --reason y")).await;
    assert!(d.body.contains("slack_not_linked"), "{}", d.body);
    assert_eq!(env.app.access_queue_depth().await, 0);
    let health = env.http.get(format!("{}/healthz", env.sender.edge_url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    env.edge.stop().await;
}

/// A slash command's form fields as the JSON payload Socket Mode carries.
fn command_payload(form: &[u8]) -> Value {
    let fields: serde_json::Map<String, Value> =
        url::form_urlencoded::parse(form).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
    Value::Object(fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn socket_mode_carries_the_same_requests_checks_and_answers_without_a_public_url() {
    const APP_TOKEN: &str = "xapp-1-A0PORTCUL-e2e";
    let env = start_with(Some(APP_TOKEN)).await;
    assert!(env.slack.wait_socket_connections(1, WAIT).await, "the edge connects");
    let open = env.slack.calls_of("apps.connections.open");
    assert!(open.iter().all(|c| c.authorized), "opened with the app-level token, not the bot token");

    // Unlinked: the acknowledgement carries the same answer the HTTP route gives.
    let list = command_payload(&env.command("U0ALICE", "list"));
    assert!(env.slack.push_envelope("env-1", "slash_commands", list.clone(), 0));
    let acks = env.slack.wait_acks("env-1", WAIT).await;
    assert!(acks[0]["payload"]["text"].as_str().unwrap_or_default().contains("slack_not_linked"), "{acks:?}");
    // Another workspace: acknowledged (Slack would otherwise retry) with nothing in it.
    let mut foreign = list.clone();
    foreign["team_id"] = json!("T0ELSEWHERE");
    env.slack.push_envelope("env-2", "slash_commands", foreign, 0);
    let acks = env.slack.wait_acks("env-2", WAIT).await;
    assert_eq!(acks, [json!({"envelope_id": "env-2"})]);

    // Linked, a request over the socket reaches Portcullis and the approvers.
    env.link("U0ALICE", "alice").await;
    let text = "request bucketWrite bucketName=socket-exports --ttl 30m --reason INC-9 over the socket";
    let request = command_payload(&env.command("U0ALICE", text));
    env.slack.push_envelope("env-3", "slash_commands", request.clone(), 0);
    assert_eq!(env.slack.wait_acks("env-3", WAIT).await.len(), 1);
    let notified = |c: &portcullis_slack::fake_slack::Call| {
        c.body["channel"] == "C0APPROVE" && c.body.to_string().contains("socket-exports")
    };
    env.slack.wait_for("chat.postMessage", WAIT, notified).await.expect("the approvers are notified");
    // Slack sends it again (our acknowledgement was late): acknowledged again, not acted on again.
    env.slack.push_envelope("env-3", "slash_commands", request, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.slack.wait_acks("env-3", WAIT).await.len(), 2);
    assert_eq!(env.slack.calls_of("chat.postMessage").iter().filter(|c| notified(c)).count(), 1);

    // Slack asks for a new connection: the edge opens one and carries on.
    assert!(env.slack.ask_to_reconnect());
    assert!(env.slack.wait_socket_connections(2, WAIT).await, "reconnected");
    env.slack.push_envelope("env-4", "slash_commands", command_payload(&env.command("U0ALICE", "list")), 0);
    let acks = env.slack.wait_acks("env-4", WAIT).await;
    assert_eq!(acks.len(), 1, "{acks:?}");
    env.edge.stop().await;
}

/// The edge's store on DynamoDB: expiries come back due oldest first, once cleared never again, and
/// the directory's record of a person is the one the directory worker wrote.
#[tokio::test]
async fn the_edge_store_keeps_expiries_in_order_and_reads_the_directory() {
    use portcullis_access::ports::AccessStore;
    use portcullis_domain::GrantId;
    use portcullis_domain::directory::{DirectoryChange, DirectoryRecord};
    use portcullis_slack::adapters::DynamoEdgeStore;
    use portcullis_slack::ports::EdgeStore;

    let app = spawn_app_with("", "").await;
    let dynamo = aws_sdk_dynamodb::Client::new(&app.sdk);
    let store = DynamoEdgeStore::new(dynamo.clone(), app.names.table());
    let now = chrono::Utc::now();
    let g = |n: u32| GrantId::parse(&format!("g-{n:032x}")).unwrap();
    let at = |seconds: i64| now + chrono::Duration::seconds(seconds);
    // Yesterday's (just before midnight, or a day ago), a minute ago, now, and one still ahead.
    let schedule = [(g(1), at(-86_000)), (g(2), at(-60)), (g(3), now), (g(4), at(120))];
    for (grant, when) in &schedule {
        store.schedule_expiry(grant, *when).await.unwrap();
    }
    let due = store.due_expiries(now, 10).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|(grant, _)| grant.as_str()).collect();
    assert_eq!(ids, [g(1).as_str(), g(2).as_str(), g(3).as_str()], "{due:?}");
    assert!(due.iter().zip(&schedule).all(|((_, a), (_, b))| (*a - *b).num_milliseconds().abs() < 1));
    store.clear_expiry(&g(2), schedule[1].1).await.unwrap();
    let due: Vec<GrantId> = store.due_expiries(now, 10).await.unwrap().into_iter().map(|(grant, _)| grant).collect();
    assert_eq!(due, [g(1), g(3)]);
    assert_eq!(store.due_expiries(at(121), 10).await.unwrap().len(), 3, "the fourth falls due in its turn");

    assert_eq!(store.directory_record("carol").await.unwrap(), None);
    let access = portcullis_access::adapters::DynamoStore::new(dynamo, app.names.table());
    let mut carol = DirectoryRecord::new("carol");
    carol.apply(&DirectoryChange::Offboarded { effective_at: now }, now);
    access.put_directory_record(&carol, None).await.unwrap();
    assert_eq!(store.directory_record("carol").await.unwrap(), Some(carol));
}
