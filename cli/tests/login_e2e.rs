//! `portcullis` end to end, as people use it: the real binary, the test OpenID provider
//! (oidc-provider from npm, `tests/idp`) on loopback, moto with the stack deployed (including the
//! IAM OIDC provider and the requester role), and the access worker in-process verifying the IdP's
//! tokens through its discovered JWKS. The CLI runs with no AWS credentials in its environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_tests::idp::{Idp, drive_script};
use portcullis_tests::portcullis_runtime::config::Settings;
use portcullis_tests::{ACCOUNT, MetricsProbe, Moto, capture_bus, random_prefix, receive_all_json, sdk_config};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn users() -> Value {
    json!({
        "alice": { "team": "payments", "groups": ["engineers"] },
        "bob": { "team": "payments", "groups": ["engineers"] },
        "carol": { "team": "payments", "groups": ["engineers"] },
        "secops": { "team": "security", "groups": ["portcullis-admins", "portcullis-approvers"] }
    })
}

/// Moto with the stack, the IdP, and the access worker.
struct Env {
    idp: Idp,
    moto: Moto,
    prefix: String,
    sdk: aws_config::SdkConfig,
    metrics: MetricsProbe,
    shutdown: CancellationToken,
    worker: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    settings: Arc<Settings>,
    homes: tempfile::TempDir,
}

impl Env {
    async fn start(idp_flags: &[&str]) -> Env {
        portcullis_tests::init_tracing();
        let idp = Idp::start(&users(), idp_flags);
        let moto = Moto::start();
        let sdk = sdk_config(&moto.endpoint).await;
        let prefix = random_prefix();
        let worker_arn = portcullis_cli::stack::caller_principal_arn(&aws_sdk_sts::Client::new(&sdk)).await.unwrap();
        portcullis_cli::stack::deploy(
            &aws_sdk_cloudformation::Client::new(&sdk),
            &prefix,
            portcullis_cli::stack::TEMPLATE,
            &[
                ("Prefix", &prefix),
                ("MaxReceiveCount", "2"),
                ("WorkerPrincipalArn", &worker_arn),
                ("OidcIssuerUrl", &idp.issuer),
            ],
            Duration::from_secs(60),
        )
        .await
        .expect("the stack deploys");
        // No jwks_url or jwks_file: the worker discovers the IdP's keys. Replies are bound to `sub`.
        let settings = Settings::from_toml(&format!(
            r#"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"
[stack]
prefix = "{prefix}"
[identity]
issuer = "{issuer}"
audience = "portcullis-cli"
leeway_seconds = 5
[access]
reply_queue_names = ["{prefix}-reply-*"]
[accounts.{ACCOUNT}]
role_arn = "arn:aws:iam::{ACCOUNT}:role/{prefix}-broker"
[worker]
concurrency = 8
wait_seconds = 1
visibility_timeout_seconds = 30
retry_backoff_base_ms = 200
retry_backoff_max_seconds = 1
shutdown_grace_seconds = 5
[posture]
regions = ["us-east-1"]
"#,
            endpoint = moto.endpoint,
            issuer = idp.issuer
        ))
        .unwrap();
        let mut env = Env {
            idp,
            moto,
            prefix,
            sdk,
            metrics: MetricsProbe::new(),
            shutdown: CancellationToken::new(),
            worker: None,
            settings: Arc::new(settings),
            homes: tempfile::tempdir().unwrap(),
        };
        env.start_worker();
        env
    }

    fn start_worker(&mut self) {
        self.shutdown = CancellationToken::new();
        let (settings, sdk, meter, shutdown) =
            (self.settings.clone(), self.sdk.clone(), self.metrics.meter(), self.shutdown.clone());
        self.worker = Some(tokio::spawn(async move {
            portcullis_tests::portcullis_worker::app::run_access(settings, &sdk, &meter, shutdown).await
        }));
    }

    async fn stop_worker(&mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(30), w).await.unwrap().unwrap().unwrap();
        }
    }

    /// A person's machine: a home with its own config, cache and ~/.aws/config.
    fn home(&self, who: &str) -> PathBuf {
        let home = self.homes.path().join(who);
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// `portcullis ARGS` as `who`, with no AWS credentials in the environment.
    fn cmd(&self, who: &str, args: &[&str]) -> Command {
        let home = self.home(who);
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HOME", &home)
            .env("PORTCULLIS_CLI_CONFIG", home.join("config.toml"))
            .env("PORTCULLIS_CLI_CACHE", home.join("cache"))
            .env("AWS_CONFIG_FILE", home.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "PORTCULLIS_TOKEN",
            "PORTCULLIS_PROFILE",
            "BROWSER",
            "PORTCULLIS_CONFIG",
            "AWS_ENDPOINT_URL",
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    async fn run(&self, who: &str, args: &[&str]) -> Output {
        let mut cmd = self.cmd(who, args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
    }

    /// Run and expect exit 0; stdout.
    async fn ok(&self, who: &str, args: &[&str]) -> String {
        let out = self.run(who, args).await;
        assert!(out.status.success(), "portcullis {args:?} as {who}: {:?}\n{}", out.status, text(&out.stderr));
        text(&out.stdout)
    }

    async fn init(&self, who: &str, extra: &[&str]) {
        let mut args = vec![
            "init",
            "--issuer",
            &self.idp.issuer,
            "--client-id",
            "portcullis-cli",
            "--stack-region",
            "us-east-1",
            "--aws-endpoint-url",
            &self.moto.endpoint,
            "--stack-prefix",
            &self.prefix,
            "--stack-account",
            ACCOUNT,
            "--default-account",
            ACCOUNT,
        ];
        args.extend_from_slice(extra);
        let out = self.ok(who, &args).await;
        assert!(out.contains("wrote"), "{out}");
    }

    /// `portcullis login` with a scripted browser (drive.mjs logs in as `who` and follows the
    /// redirect to the CLI's loopback listener).
    async fn login_browser(&self, who: &str) {
        let mut cmd = self.cmd(who, &["login"]);
        cmd.env("BROWSER", format!("node {} auth %s {who}", drive_script().display()));
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        assert!(out.status.success(), "login as {who}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("logged in as {who} (browser")), "{}", text(&out.stdout));
    }

    /// `portcullis login` with a scripted browser that denies consent; the output.
    async fn login_browser_denied(&self, who: &str) -> Output {
        let mut cmd = self.cmd(who, &["login"]);
        cmd.env("BROWSER", format!("node {} auth %s {who} --deny", drive_script().display()));
        tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
    }

    /// `portcullis login --device`, with `who` confirming the code on "another device" (drive.mjs).
    async fn login_device(&self, who: &str) {
        let (out, seen) = self.login_device_output(who).await;
        assert!(out.status.success(), "login --device: {seen}{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("logged in as {who} (device")), "{}", text(&out.stdout));
    }

    /// `portcullis login --device` as `who`, confirmed by drive.mjs: the output and what it said
    /// before the confirmation.
    async fn login_device_output(&self, who: &str) -> (Output, String) {
        let mut cmd = self.cmd(who, &["login", "--device"]);
        let who = who.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            let mut stderr = BufReader::new(child.stderr.take().unwrap());
            let mut url = None;
            let mut seen = String::new();
            while url.is_none() {
                let mut line = String::new();
                assert!(stderr.read_line(&mut line).unwrap() > 0, "login --device said: {seen}");
                seen.push_str(&line);
                url =
                    line.trim().strip_prefix("(or open ").and_then(|l| l.strip_suffix(" directly)")).map(str::to_owned);
            }
            let approved =
                Command::new("node").arg(drive_script()).args(["device", &url.unwrap(), &who]).output().unwrap();
            assert!(text(&approved.stdout).contains("approved"), "{}", text(&approved.stderr));
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
            let mut out = child.wait_with_output().unwrap();
            out.stderr = rest.into_bytes();
            (out, seen)
        })
        .await
        .unwrap()
    }

    /// Append `lines` to `who`'s configuration file.
    fn configure(&self, who: &str, lines: &str) {
        let config = self.home(who).join("config.toml");
        let before = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{before}{lines}\n")).unwrap();
    }

    /// Rewrite `who`'s stored session.
    fn edit_session(&self, who: &str, edit: impl FnOnce(&mut Value)) {
        let path = self.home(who).join("cache/session.json");
        let mut session: Value = json_out(&std::fs::read_to_string(&path).unwrap());
        edit(&mut session);
        std::fs::write(&path, session.to_string()).unwrap();
    }

    /// How many times the worker issued credentials.
    fn credentials_issued(&self) -> f64 {
        self.metrics.find("portcullis_credentials_issued", &[]).iter().map(|p| p.value).sum()
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            w.abort();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_out(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn template_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/templates/{name}.json")).display().to_string()
}

fn venv_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

async fn poll<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_logins_reach_working_credentials_that_the_aws_sdk_uses_through_credential_process() {
    let env = Env::start(&[]).await;
    // An admin logs in on a headless machine (device flow) and loads the templates.
    env.init("secops", &[]).await;
    env.login_device("secops").await;
    for t in ["bucketRead", "queueConsumer"] {
        let out = env.ok("secops", &["templates", "put", &template_file(t)]).await;
        assert!(out.contains(&format!("template {t} version 1")), "{out}");
    }

    // Alice logs in with a browser (authorization code + PKCE, loopback redirect).
    env.init("alice", &[]).await;
    env.login_browser("alice").await;
    let me = json_out(&env.ok("alice", &["whoami", "--output", "json"]).await);
    assert_eq!((me["user"].as_str(), me["team"].as_str()), (Some("alice"), Some("payments")));
    assert_eq!(me["groups"], json!(["engineers"]));
    let session = env.home("alice").join("cache/session.json");
    assert_eq!(portcullis_cli::files::mode(&session).unwrap(), 0o600);

    let list = env.ok("alice", &["templates"]).await;
    assert!(list.starts_with("NAME") && list.contains("bucketRead") && list.contains("12h"), "{list}");
    let shown = env.ok("alice", &["templates", "show", "bucketRead"]).await;
    assert!(shown.contains("bucketName") && shown.contains("[a-z0-9]"), "{shown}");
    let granted = env
        .ok(
            "alice",
            &[
                "request",
                "bucketRead",
                "--param",
                "bucketName=analytics-reports",
                "--ttl",
                "1h",
                "--reason",
                "INC-4711",
            ],
        )
        .await;
    assert!(granted.contains("bucketRead") && granted.contains("active") && granted.contains(ACCOUNT), "{granted}");
    let grants = env.ok("alice", &["grants"]).await;
    assert!(grants.starts_with("ID") && grants.contains("bucketName=analytics-reports"), "{grants}");

    // Credentials: issued once, then served from the 0600 cache.
    let first = json_out(&env.ok("alice", &["credentials", "--account", ACCOUNT]).await);
    assert_eq!(first["Version"], 1);
    assert!(first["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(env.credentials_issued(), 1.0);
    for _ in 0..4 {
        let again = json_out(&env.ok("alice", &["credentials"]).await);
        assert_eq!(again["AccessKeyId"], first["AccessKeyId"]);
    }
    let cached =
        std::fs::read_dir(env.home("alice").join("cache/credentials")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(portcullis_cli::files::mode(&cached).unwrap(), 0o600);

    // The AWS SDK's own credential_process provider (boto3) through a profile portcullis wrote.
    env.ok("alice", &["configure-profile", "jit"]).await;
    let unchanged = env.ok("alice", &["configure-profile", "jit"]).await;
    assert!(unchanged.contains("unchanged"), "{unchanged}");
    let boto = env.cmd("alice", &[]);
    let script = "import boto3,sys\nfor _ in range(3):\n    s = boto3.Session(profile_name='jit')\n    print(s.client('sts').get_caller_identity()['Arn'])\n";
    let mut py = Command::new(venv_python());
    py.args(["-c", script]);
    for (k, v) in boto.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    let path = format!("{}:{}", Path::new(BIN).parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    py.env("PATH", path);
    let out = tokio::task::spawn_blocking(move || py.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "boto3: {}", text(&out.stderr));
    let arns = text(&out.stdout);
    assert_eq!(arns.lines().count(), 3);
    assert!(
        arns.lines().all(|a| a == format!("arn:aws:sts::{ACCOUNT}:assumed-role/{}-broker/alice", env.prefix)),
        "{arns}"
    );
    // Three SDK sessions and five CLI calls: one round trip to Portcullis in all.
    assert_eq!(env.credentials_issued(), 1.0, "the cache saved every other round trip");

    // `exec` puts the same credentials in a command's environment.
    let exec = env.ok("alice", &["exec", "--", "sh", "-c", "echo $AWS_ACCESS_KEY_ID"]).await;
    assert_eq!(exec.trim(), first["AccessKeyId"].as_str().unwrap());

    // `console`: a sign-in URL through the federation endpoint (a local stand-in for AWS's).
    let federation = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let federation_url = format!("http://{}/federation", federation.server_addr().to_ip().unwrap());
    let config = env.home("alice").join("config.toml");
    let alice_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{alice_config}federation_url = \"{federation_url}\"\n")).unwrap();
    let seen = std::thread::spawn(move || {
        let request = federation.recv().unwrap();
        let url = request.url().to_owned();
        request.respond(tiny_http::Response::from_string(r#"{"SigninToken":"tok-123"}"#)).unwrap();
        url
    });
    let console = env.ok("alice", &["console", "--no-browser"]).await;
    assert!(
        console.starts_with(&federation_url)
            && console.contains("Action=login")
            && console.contains("SigninToken=tok-123"),
        "{console}"
    );
    let asked = seen.join().unwrap();
    assert!(
        asked.contains("Action=getSigninToken") && asked.contains(first["AccessKeyId"].as_str().unwrap()),
        "{asked}"
    );

    // A new grant needs new credentials (the cache is keyed by the live grants).
    let account_param = format!("account={ACCOUNT}");
    let args = ["request", "queueConsumer", "--ttl", "30m", "--reason", "INC-4712", "--param", "queueName=payouts"];
    env.ok("alice", &[&args[..], &["--param", "region=us-east-1", "--param", &account_param]].concat()).await;
    let renewed = json_out(&env.ok("alice", &["credentials"]).await);
    assert_ne!(renewed["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(env.credentials_issued(), 2.0);
    env.ok("alice", &["credentials", "--refresh"]).await;
    assert_eq!(env.credentials_issued(), 3.0);

    // Posture evidence is for the reader groups: alice is refused, the admin reads it.
    let refused = env.run("alice", &["posture"]).await;
    assert_eq!(refused.status.code(), Some(3));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("refused (forbidden)") && stderr.contains("hint:"), "{stderr}");
    let key = portcullis_tests::portcullis_domain::table::Key::evidence(
        ACCOUNT,
        "us-east-1",
        portcullis_tests::portcullis_domain::posture::ControlId::CloudTrail1,
    );
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .put_item()
        .table_name(format!("{}-state", env.prefix))
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.pk))
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.sk))
        .item("status", aws_sdk_dynamodb::types::AttributeValue::S("fail".into()))
        .item("failing_count", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .item("reason", aws_sdk_dynamodb::types::AttributeValue::S("no multi-region trail is logging".into()))
        .item("checked_at", aws_sdk_dynamodb::types::AttributeValue::S(chrono::Utc::now().to_rfc3339()))
        .send()
        .await
        .unwrap();
    let posture = env.ok("secops", &["posture"]).await;
    assert!(
        posture.contains("CloudTrail.1") && posture.contains("FAIL") && posture.contains("no multi-region trail"),
        "{posture}"
    );

    // Logging out forgets the session and every cached credential.
    env.ok("alice", &["logout"]).await;
    assert!(!session.exists() && !cached.exists());
    let out = env.run("alice", &["credentials"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("portcullis login"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_persons_reply_queue_is_refused_and_concurrent_clis_share_one_queue() {
    let env = Env::start(&[]).await;
    for who in ["alice", "bob"] {
        env.init(who, &[]).await;
        env.login_browser(who).await;
        env.ok(who, &["grants"]).await; // creates the person's reply queue
    }
    // The requester role binds the reply queue to the token's `sub` through an IAM policy variable.
    let policy = aws_sdk_iam::Client::new(&env.sdk)
        .get_role_policy()
        .role_name(format!("{}-requester", env.prefix))
        .policy_name("RequestAndOwnReplyQueue")
        .send()
        .await
        .unwrap()
        .policy_document;
    // IAM returns policy documents URL-encoded.
    let policy: String =
        url::form_urlencoded::parse(format!("p={policy}").as_bytes()).map(|(_, v)| v.into_owned()).collect();
    let host = env.idp.issuer.trim_start_matches("http://");
    assert!(policy.contains(&format!(":{}-reply-${{{host}:sub}}", env.prefix)), "{policy}");

    // Alice, with her own role credentials and token, asks for credentials with bob's queue as reply_to.
    let cache: Value =
        serde_json::from_str(&std::fs::read_to_string(env.home("alice").join("cache/requester.json")).unwrap())
            .unwrap();
    let alice_token =
        json_out(&std::fs::read_to_string(env.home("alice").join("cache/session.json")).unwrap())["id_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let bob_queue = env
        .sqs()
        .get_queue_url()
        .queue_name(format!("{}-reply-bob", env.prefix))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let alice_sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&env.moto.endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                cache["access_key_id"].as_str().unwrap(),
                cache["secret_access_key"].as_str().unwrap(),
                cache["session_token"].as_str().map(str::to_owned),
                None,
                "alice",
            ))
            .load()
            .await,
    );
    let attack = json!({"version": 1, "message_id": uuid::Uuid::new_v4().to_string(), "kind": "credentials.request",
        "sent_at": chrono::Utc::now(), "identity_token": alice_token, "reply_to": bob_queue, "body": {"account": ACCOUNT}});
    alice_sqs
        .send_message()
        .queue_url(cache["request_queue_url"].as_str().unwrap())
        .message_body(attack.to_string())
        .send()
        .await
        .unwrap();
    let dlq = env
        .sqs()
        .get_queue_url()
        .queue_name(format!("{}-access-requests-dlq", env.prefix))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let code = poll("the refused request in the dead-letter queue", Duration::from_secs(30), async || {
        let out = env
            .sqs()
            .receive_message()
            .queue_url(&dlq)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .ok()?;
        let m = out.messages?.into_iter().next()?;
        m.message_attributes?.get("portcullis.error_code")?.string_value.clone()
    })
    .await;
    assert_eq!(code, "reply_forbidden");
    let depth = env
        .sqs()
        .get_queue_attributes()
        .queue_url(&bob_queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert!(depth.values().all(|v| v == "0"), "nothing was sent to bob's queue: {depth:?}");
    assert_eq!(env.credentials_issued(), 0.0);

    // Six of alice's commands at once share her one reply queue and each gets its own answer.
    let runs = (0..6).map(|i| {
        let args: &[&str] = if i % 2 == 0 { &["grants", "--output", "json"] } else { &["whoami", "--output", "json"] };
        env.run("alice", args)
    });
    for out in futures::future::join_all(runs).await {
        assert!(out.status.success(), "{}", text(&out.stderr));
        json_out(&text(&out.stdout));
    }
    let queues = env.sqs().list_queues().queue_name_prefix(format!("{}-reply-", env.prefix)).send().await.unwrap();
    let mut names: Vec<String> =
        queues.queue_urls.unwrap_or_default().iter().map(|u| u.rsplit('/').next().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [format!("{}-reply-alice", env.prefix), format!("{}-reply-bob", env.prefix)],
        "one queue per person, kept"
    );
}

/// The README's exit-code table, row by row: each class is a scenario run here against the real
/// IdP, moto and the worker, and its exit code must be the row's. A row without a scenario (or a
/// scenario without a row) fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_exit_code_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = readme.split("- **Exit codes**").nth(1).expect("the README's exit-code table");
    let rows: std::collections::BTreeMap<String, i32> = table
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Some((cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?.to_owned(), cells.get(2)?.parse().ok()?))
        })
        .collect();
    assert!(rows.len() >= 10, "{rows:?}");
    let mut checked: std::collections::BTreeMap<String, i32> = Default::default();
    let mut check = |class: &str, out: &Output, says: &[&str]| {
        let stderr = text(&out.stderr);
        let expected = *rows.get(class).unwrap_or_else(|| panic!("no README row for `{class}`"));
        assert_eq!(out.status.code(), Some(expected), "`{class}`: {stderr}");
        for s in says {
            assert!(stderr.contains(s), "`{class}` should say {s:?}: {stderr}");
        }
        // clap's own usage errors end with "For more information, try '--help'" instead.
        if expected != 0 {
            assert!(stderr.contains("hint: ") || stderr.contains("try '--help'"), "`{class}` gives a hint: {stderr}");
            assert!(!stderr.contains(".md"), "`{class}`: hints name no repository file: {stderr}");
        }
        checked.insert(class.to_owned(), expected);
    };

    let mut env = Env::start(&[]).await;
    check("no_configuration", &env.run("carol", &["grants"]).await, &["portcullis init"]);
    check("bad_flag", &env.run("carol", &["grants", "--bogus"]).await, &["--bogus", "--help"]);

    env.init("secops", &[]).await;
    env.login_browser("secops").await;
    env.ok("secops", &["templates", "put", &template_file("bucketRead")]).await;
    env.init("alice", &[]).await;
    check("not_logged_in", &env.run("alice", &["grants"]).await, &["not logged in", "portcullis login"]);
    env.login_device("alice").await;
    check("ok", &env.run("alice", &["whoami"]).await, &[]);

    // Bounds the CLI knows are checked before anything is sent.
    let ask =
        |ttl: &'static str| ["request", "bucketRead", "--param", "bucketName=reports", "--ttl", ttl, "--reason", "x"];
    check("out_of_bounds", &env.run("alice", &ask("10s")).await, &["out of range", "nothing was sent"]);
    let over = env.run("alice", &ask("1d")).await;
    check("out_of_bounds", &over, &["ttl_too_long", "12h", "nothing was sent"]);
    env.ok("alice", &ask("1h30m")).await;
    let out =
        env.run("alice", &["request", "bucketRead", "--param", "bucketName=*", "--ttl", "1h", "--reason", "x"]).await;
    check("param_invalid", &out, &["param_invalid", "nothing was sent"]);

    // Portcullis says no: its code and sentence, exit 3; as JSON with --output json.
    check("refused", &env.run("alice", &["posture"]).await, &["refused (forbidden)", "ask a Portcullis admin"]);
    let out = env.run("alice", &["posture", "--output", "json"]).await;
    assert_eq!(json_out(&text(&out.stderr))["error"]["code"], "forbidden");
    let out = env.run("alice", &["credentials", "--account", "000000000000"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    // The identity provider says no: a login denied, a refresh token it no longer accepts.
    env.init("bob", &[]).await;
    let denied = env.login_browser_denied("bob").await;
    check("login_refused", &denied, &["refused (login_refused)", "access_denied", &env.idp.issuer]);
    let kept = std::fs::read_to_string(env.home("alice").join("cache/session.json")).unwrap();
    env.ok("alice", &["logout"]).await; // revokes the refresh token at the IdP
    std::fs::write(env.home("alice").join("cache/session.json"), kept).unwrap();
    env.edit_session("alice", |s| {
        s["expires_at"] = json!((chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339())
    });
    let out = env.run("alice", &["whoami"]).await;
    check(
        "login_refused",
        &out,
        &["refused the refresh token", &format!("{}/token", env.idp.issuer), "portcullis login"],
    );
    // An expired session with no refresh token says when it expired.
    env.edit_session("alice", |s| {
        s.as_object_mut().unwrap().remove("refresh_token");
    });
    check(
        "session_expired",
        &env.run("alice", &["whoami"]).await,
        &["expired at", "no refresh token", "portcullis login"],
    );
    env.login_device("alice").await;

    // An identity provider nobody answers at: exit 4, keeping the cause.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = format!("http://127.0.0.1:{closed}");
    env.init("dave", &[]).await;
    env.ok("dave", &["init", "--issuer", &nowhere]).await;
    let out = env.run("dave", &["login", "--no-browser", "--wait", "5"]).await;
    check("unreachable", &out, &[&format!("{nowhere}/.well-known/openid-configuration"), "onnection refused"]);
    // One that answers HTTP 500: the status and the URL (without its query), exit 4.
    let failing = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let failing_url = format!("http://{}", failing.server_addr().to_ip().unwrap());
    let served = std::thread::spawn(move || {
        let request = failing.recv().unwrap();
        request.respond(tiny_http::Response::from_string("upstream exploded").with_status_code(500)).unwrap();
    });
    env.ok("dave", &["init", "--issuer", &failing_url]).await;
    let out = env.run("dave", &["login", "--no-browser", "--wait", "5"]).await;
    served.join().unwrap();
    check("idp_failing", &out, &["HTTP 500", &format!("{failing_url}/.well-known/openid-configuration")]);

    // AWS nobody answers at: exit 4, naming the endpoint and where it came from.
    std::fs::remove_file(env.home("alice").join("cache/requester.json")).ok();
    let out = env.run("alice", &["grants", "--endpoint-url", &nowhere]).await;
    check("unreachable", &out, &[&nowhere, "--endpoint-url flag"]);

    // No worker: a timeout, exit 4, within --timeout.
    env.stop_worker().await;
    let started = Instant::now();
    check("timeout", &env.run("alice", &["grants", "--timeout", "2"]).await, &["no answer from Portcullis"]);
    assert!(started.elapsed() < Duration::from_secs(20));

    assert_eq!(checked, rows, "every row of the README's table has a scenario here, and only those");

    // Completions, and a closed pipe: no panic, exit 0.
    for shell in ["bash", "zsh", "fish"] {
        let out = env.ok("alice", &["completions", shell]).await;
        assert!(out.contains("portcullis") && out.contains("configure-profile"), "{shell}");
    }
    let mut cmd = env.cmd("alice", &["completions", "bash"]);
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // `| head -0`: the reader is gone before anything is written
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    let version = env.ok("alice", &["--version"]).await;
    assert!(version.contains("message contract version 1"), "{version}");
}

/// The test IdP configured the hard way, as Okta, Auth0 or Entra ID behave: opaque `sub`s (the
/// login name only in `preferred_username`), a device endpoint served but left out of discovery,
/// and refresh tokens only with `offline_access`. People log in, are shown by name, and get
/// credentials; the one who turns `offline_access` off is told when to log in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hard_way_idp_opaque_subjects_no_device_discovery_refresh_only_with_offline_access() {
    let env = Env::start(&["--opaque-sub", "--no-device-discovery", "--strict-offline-access"]).await;
    env.init("secops", &[]).await;
    let out = env.run("secops", &["login", "--device"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("does not advertise a device_authorization_endpoint")
            && text(&out.stderr).contains("device_authorization_endpoint"),
        "{}",
        text(&out.stderr)
    );
    let device = format!("{}/device/auth", env.idp.issuer);
    env.ok("secops", &["init", "--device-authorization-endpoint", &device]).await;
    env.login_device("secops").await;
    env.ok("secops", &["templates", "put", &template_file("bucketRead")]).await;

    // Alice: offline_access asked for (the provider advertises it), so a refresh token came.
    env.init("alice", &[]).await;
    env.login_browser("alice").await;
    let me = json_out(&env.ok("alice", &["whoami", "--output", "json"]).await);
    let sub = me["user"].as_str().unwrap().to_owned();
    assert!(sub.starts_with('u') && sub != "alice", "an opaque subject: {me}");
    assert_eq!((me["display_name"].as_str(), me["refreshable"].as_bool()), (Some("alice"), Some(true)), "{me}");
    let whoami = env.ok("alice", &["whoami"]).await;
    assert!(whoami.contains("alice") && whoami.contains(&sub), "{whoami}");
    env.ok("alice", &["request", "bucketRead", "--param", "bucketName=reports", "--ttl", "1h", "--reason", "INC-1"])
        .await;
    let exec = env.ok("alice", &["exec", "--", "sh", "-c", "echo $AWS_ACCESS_KEY_ID"]).await;
    assert!(exec.trim().starts_with("ASIA"), "{exec}");

    // A named profile: its template and account when none is named, its region for the commands she
    // runs (by flag or $PORTCULLIS_PROFILE), another region for one command, and no unknown profile.
    env.configure(
        "alice",
        &format!("[profiles.reports]\naccount = \"{ACCOUNT}\"\ntemplate = \"bucketRead\"\nregion = \"ap-south-1\""),
    );
    let by_profile =
        ["--profile", "reports", "request", "--param", "bucketName=archive", "--ttl", "1h", "--reason", "INC-3"];
    let asked = env.ok("alice", &by_profile).await;
    assert!(asked.contains("bucketRead") && asked.contains("bucketName=archive"), "{asked}");
    let region = ["exec", "--", "sh", "-c", "echo $AWS_REGION"];
    let mut cmd = env.cmd("alice", &region);
    cmd.env("PORTCULLIS_PROFILE", "reports").env("AWS_REGION", "eu-west-1");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs")).await.expect("joins");
    assert_eq!(text(&out.stdout).trim(), "ap-south-1", "{}", text(&out.stderr));
    let once = ["--profile", "reports", "exec", "--aws-region", "eu-central-1", "--", "sh", "-c", "echo $AWS_REGION"];
    assert_eq!(env.ok("alice", &once).await.trim(), "eu-central-1");
    let unknown = env.run("alice", &["--profile", "prod", "grants"]).await;
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown.stderr));
    assert!(text(&unknown.stderr).contains("no profile `prod`") && text(&unknown.stderr).contains("reports"));
    // Her reply queue is named by the opaque subject (the key), not by her name.
    let queues = env.sqs().list_queues().queue_name_prefix(format!("{}-reply-", env.prefix)).send().await.unwrap();
    assert!(queues.queue_urls().iter().any(|u| u.ends_with(&format!("-reply-{sub}"))), "{queues:?}");

    // The approver reads her name next to her subject (which stays the key he approves by), and the
    // audit events carry both, for the requester and for the approver.
    let bus = capture_bus(&env.sdk, &env.prefix).await;
    env.ok("secops", &["templates", "put", &template_file("bucketWrite")]).await;
    let ask = ["request", "bucketWrite", "--param", "bucketName=exports", "--ttl", "30m", "--reason", "INC-2"];
    let asked = env.ok("alice", &ask).await;
    let id = asked.split_whitespace().find(|w| w.starts_with("g-")).expect("a grant id").to_owned();
    let pending = env.ok("secops", &["pending"]).await;
    assert!(pending.contains(&id) && pending.contains(&format!("alice ({sub})")), "{pending}");
    let waiting = json_out(&env.ok("secops", &["pending", "--output", "json"]).await);
    let grant = &waiting["approvals"][0];
    assert_eq!((grant["user"].as_str(), grant["user_display_name"].as_str()), (Some(sub.as_str()), Some("alice")));
    let approved = env.ok("secops", &["approve", &id]).await;
    assert!(approved.contains(&format!("requested by alice ({sub})")), "{approved}");
    let events = receive_all_json(&env.sqs(), &bus, Duration::from_secs(3)).await;
    let actor = |detail_type: &str| {
        let event = events.iter().find(|e| e["detail-type"] == detail_type);
        event.map(|e| e["detail"]["actor"].clone()).unwrap_or_else(|| panic!("no {detail_type} in {events:?}"))
    };
    let requester = actor("Grant Pending Approval");
    assert_eq!((requester["user"].as_str(), requester["display_name"].as_str()), (Some(sub.as_str()), Some("alice")));
    let approver = actor("Grant Approved");
    assert_eq!(approver["display_name"].as_str(), Some("secops"), "{approver}");
    let approved = events.iter().find(|e| e["detail-type"] == "Grant Approved").expect("Grant Approved");
    let owner = (approved["detail"]["user"].as_str(), approved["detail"]["user_display_name"].as_str());
    assert_eq!(owner, (Some(sub.as_str()), Some("alice")), "whose grant, by key and by name: {approved}");
    assert!(approver["user"].as_str().is_some_and(|u| u.starts_with('u') && u != "secops"), "{approver}");

    // Bob turns offline_access off: no refresh token, and he is told when to log in again.
    env.init("bob", &[]).await;
    env.configure("bob", "offline_access = false");
    let mut cmd = env.cmd("bob", &["login"]);
    cmd.env("BROWSER", format!("node {} auth %s bob", drive_script().display()));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("you will need to log in again at"), "{}", text(&out.stderr));
    let bob = json_out(&env.ok("bob", &["whoami", "--output", "json"]).await);
    assert_eq!((bob["display_name"].as_str(), bob["refreshable"].as_bool()), (Some("bob"), Some(false)), "{bob}");

    // A provider whose device grant returns no ID token gets a clear refusal naming the endpoint.
    let bare = Idp::start(&users(), &["--omit-id-token", "device"]);
    env.init("carol", &[]).await;
    env.ok("carol", &["init", "--issuer", &bare.issuer]).await;
    let (out, _) = env.login_device_output("carol").await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refused (login_refused)")
            && stderr.contains(&format!("{}/token", bare.issuer))
            && stderr.contains("no ID token")
            && stderr.contains("openid"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_reused_until_near_expiry_then_refreshed_once_even_by_concurrent_clis() {
    // ID tokens live 30 s. Bob refreshes 5 s before expiry (so not yet); alice 60 s before, i.e. on
    // every command.
    let env = Env::start(&["--id-token-ttl", "30"]).await;
    env.init("bob", &[]).await;
    let config = env.home("bob").join("config.toml");
    let bob_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{bob_config}token_refresh_seconds = 5\n")).unwrap();
    env.login_browser("bob").await;
    let session = |who: &str| std::fs::read_to_string(env.home(who).join("cache/session.json")).unwrap();
    let before = session("bob");
    env.ok("bob", &["whoami"]).await;
    assert_eq!(session("bob"), before, "reused as it is: 30 s left is more than bob's 5 s margin");

    env.init("alice", &[]).await;
    let config = env.home("alice").join("config.toml");
    let text_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text_config}token_refresh_seconds = 60\n")).unwrap();
    env.login_browser("alice").await;
    let first: Value = json_out(&session("alice"));
    env.ok("alice", &["whoami"]).await;
    let second: Value = json_out(&session("alice"));
    assert_ne!(first["refresh_token"], second["refresh_token"], "refreshed, and the rotated token kept");
    // Four at once: one refresh at a time under the lock (a refresh token used twice would revoke the grant).
    let runs = (0..4).map(|_| env.run("alice", &["whoami", "--output", "json"]));
    for out in futures::future::join_all(runs).await {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(json_out(&text(&out.stdout))["user"], "alice");
    }
    let out = json_out(&env.ok("alice", &["whoami", "--output", "json"]).await);
    assert_eq!((out["user"].as_str(), out["refreshable"].as_bool()), (Some("alice"), Some(true)), "the grant survived");
}

/// The second person from a terminal: alice asks for a template that needs approval, cannot approve
/// it herself, secops sees and approves it, alice's credentials (sealed, opened by the CLI) work;
/// then break glass, reviewed by secops; and alice revokes what she no longer needs.
#[tokio::test]
async fn approvals_break_glass_and_revocation_from_the_terminal() {
    let env = Env::start(&[]).await;
    env.init("secops", &[]).await;
    env.login_device("secops").await;
    for t in ["bucketRead", "bucketWrite"] {
        env.ok("secops", &["templates", "put", &template_file(t)]).await;
    }
    env.init("alice", &[]).await;
    env.login_browser("alice").await;
    let list = env.ok("alice", &["templates"]).await;
    assert!(list.contains("1 of portcullis-approvers, break glass"), "{list}");

    let ask = ["request", "bucketWrite", "--param", "bucketName=exports", "--ttl", "30m", "--reason", "INC-7"];
    let requested = env.ok("alice", &ask).await;
    assert!(requested.contains("pending (0/1)") && requested.contains("waiting for approval"), "{requested}");
    let id = requested.split_whitespace().find(|w| w.starts_with("g-")).unwrap().to_owned();
    let own = env.run("alice", &["approve", &id]).await;
    assert_eq!(own.status.code(), Some(3), "{}", text(&own.stderr));
    assert!(text(&own.stderr).contains("approval_forbidden"), "{}", text(&own.stderr));
    let refused = env.run("alice", &["credentials"]).await;
    assert!(text(&refused.stderr).contains("no_grants"), "nothing before the approval: {}", text(&refused.stderr));

    let pending = env.ok("secops", &["pending"]).await;
    assert!(pending.contains(&id) && pending.contains("alice") && pending.contains("INC-7"), "{pending}");
    let approved = env.ok("secops", &["approve", &id]).await;
    assert!(approved.contains("active"), "{approved}");
    let creds = json_out(&env.ok("alice", &["credentials"]).await);
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"), "opened by the CLI: {creds}");

    // Break glass: active at once, owed to secops for review.
    let glass = [
        "request",
        "bucketWrite",
        "--param",
        "bucketName=backups",
        "--ttl",
        "15m",
        "--reason",
        "SEV1",
        "--break-glass",
    ];
    let broke = env.ok("alice", &glass).await;
    assert!(broke.contains("active, break glass"), "{broke}");
    let glass_id = broke.split_whitespace().find(|w| w.starts_with("g-")).unwrap().to_owned();
    let owed = json_out(&env.ok("secops", &["pending", "--output", "json"]).await);
    assert_eq!(owed["reviews"][0]["id"], glass_id.as_str());
    let reviewed = env.ok("secops", &["review", &glass_id, "--verdict", "justified", "--note", "SEV1 confirmed"]).await;
    assert!(reviewed.contains("break glass justified"), "{reviewed}");

    // Alice gives back what she no longer needs; her cached credentials for the account go with it.
    let revoked = env.ok("alice", &["revoke", &id, "--reason", "done"]).await;
    assert!(revoked.contains(&format!("revoked {id}")) && revoked.contains("no longer work"), "{revoked}");
    let all = env.ok("alice", &["grants", "--all"]).await;
    assert!(all.contains("revoked") && all.contains("active, break glass justified"), "{all}");
    // Not the cached credentials, and no new ones either: the revocation denies every session issued
    // until five minutes from now (the clock-skew allowance of issue 15), so the worker says when to ask.
    let after = env.run("alice", &["credentials"]).await;
    assert_eq!(after.status.code(), Some(3), "{}", text(&after.stdout));
    let stderr = text(&after.stderr);
    assert!(stderr.contains("refused (access_revoked)") && stderr.contains("ask again after"), "{stderr}");
    assert!(!text(&after.stdout).contains(creds["AccessKeyId"].as_str().unwrap()), "the cached ones are gone");
}

/// Issue 15: whatever way the credentials path fails, nothing it prints holds a secret it issued or
/// keeps (the session's secret key and token, the ID and refresh tokens).
#[tokio::test]
async fn the_credentials_path_never_prints_a_secret_when_it_fails() {
    let mut env = Env::start(&[]).await;
    env.init("secops", &[]).await;
    env.login_device("secops").await;
    env.ok("secops", &["templates", "put", &template_file("bucketRead")]).await;
    env.init("alice", &[]).await;
    env.login_browser("alice").await;
    let args = ["request", "bucketRead", "--param", "bucketName=analytics-reports", "--ttl", "1h", "--reason", "INC-1"];
    env.ok("alice", &args).await;
    let issued = json_out(&env.ok("alice", &["credentials", "--account", ACCOUNT]).await);
    let session = json_out(&std::fs::read_to_string(env.home("alice").join("cache/session.json")).unwrap());
    let mut secrets: Vec<String> = vec![
        issued["SecretAccessKey"].as_str().unwrap().to_owned(),
        issued["SessionToken"].as_str().unwrap().to_owned(),
    ];
    for field in ["id_token", "refresh_token"] {
        if let Some(s) = session[field].as_str() {
            secrets.push(s.to_owned());
        }
    }
    assert!(secrets.len() >= 3, "the session holds an ID token: {:?}", session.as_object().map(|o| o.keys()));
    let check = |what: &str, out: &Output| {
        let printed = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for s in &secrets {
            // Secrets are long; any 24-character piece of one is enough to leak it.
            let start = s.len().saturating_sub(24) / 2;
            let piece = &s[start..(start + 24).min(s.len())];
            assert!(!printed.contains(piece), "{what} printed a secret: {printed}");
        }
        printed
    };

    // A command that does not exist.
    let out = env.run("alice", &["exec", "--", "/nonexistent/aws", "s3", "ls"]).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(check("exec of a missing program", &out).contains("cannot run"));

    // The cache cannot be written after fresh credentials came back.
    let cache = env.home("alice").join("cache/credentials");
    let cached = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&cached).unwrap();
    std::fs::create_dir(&cached).unwrap();
    std::fs::write(cached.join("blocker"), "x").unwrap();
    let out = env.run("alice", &["credentials", "--refresh"]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    check("credentials with an unwritable cache", &out);
    std::fs::remove_dir_all(&cached).unwrap();

    // A bound checked locally, an unknown account, a session file that no longer reads (it still holds
    // the tokens), and the worker gone (no reply).
    let out = env.run("alice", &["credentials", "--duration", "10"]).await;
    assert_eq!(out.status.code(), Some(2));
    check("credentials with a duration out of bounds", &out);
    let out = env.run("alice", &["credentials", "--account", "999999999999"]).await;
    assert_ne!(out.status.code(), Some(0));
    check("credentials for an unknown account", &out);
    let session_path = env.home("alice").join("cache/session.json");
    let whole = std::fs::read_to_string(&session_path).unwrap();
    std::fs::write(&session_path, &whole[..whole.len() - 2]).unwrap();
    let out = env.run("alice", &["credentials", "--refresh"]).await;
    assert_ne!(out.status.code(), Some(0));
    check("credentials with a damaged session file", &out);
    std::fs::write(&session_path, &whole).unwrap();
    env.stop_worker().await;
    let out = env.run("alice", &["--timeout", "3", "credentials", "--refresh"]).await;
    assert_ne!(out.status.code(), Some(0));
    check("credentials with no worker to answer", &out);
    let out = env.run("alice", &["--timeout", "3", "exec", "--refresh", "--", "sh", "-c", "exit 0"]).await;
    assert_ne!(out.status.code(), Some(0));
    check("exec with no worker to answer", &out);
}

/// Issue 18: every example of every `--help` runs as shown, against the emulator, the test IdP and
/// the access worker, in an order that makes each one meaningful: alice asks, secops (an admin and
/// approver) decides. Only the placeholder grant id is replaced, by a real grant of the right kind
/// (the id of a grant cannot be known before it exists); commands run in a directory holding the
/// repository's `examples/`. An example that is neither run nor listed in `NOT_RUN` with a reason
/// fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_help_example_runs_as_shown() {
    const NOT_RUN: [(&str, &str); 4] = [
        (
            "portcullis stack deploy",
            "deploys a stack from the workers' settings with an operator's credentials: the harness deploys through the same code",
        ),
        ("portcullis stack delete", "deletes the whole stack the other examples need"),
        ("portcullis console", "signs in through AWS's federation endpoint, which the emulator does not serve"),
        ("portcullis exec", "runs the AWS CLI, which these machines do not have (exec itself is tested with sh)"),
    ];
    const PLACEHOLDER_GRANT: &str = "g-0123456789abcdef0123456789abcdef";
    let env = Env::start(&[]).await;
    let examples = portcullis_cli::commands::help_examples();
    let not_run = |argv: &[String]| NOT_RUN.iter().any(|(prefix, _)| argv.join(" ").starts_with(prefix));
    // The subcommand an example runs (global flags and their values skipped), with `templates`'s action.
    let subcommand = |argv: &[String]| -> String {
        let mut words = argv.iter().skip(1).filter(|w| !w.starts_with('-'));
        let first = if argv.get(1).map(String::as_str) == Some("--profile") {
            words.nth(1).cloned().unwrap_or_default()
        } else {
            words.next().cloned().unwrap_or_default()
        };
        match (first.as_str(), argv.get(2).map(String::as_str)) {
            ("templates", Some(action @ ("put" | "delete"))) => format!("templates {action}"),
            _ => first,
        }
    };

    // The places the examples name: the repository's examples/ in the working directory.
    let cwd = tempfile::tempdir().expect("a working directory");
    std::os::unix::fs::symlink(portcullis_tests::workspace_root().join("examples"), cwd.path().join("examples"))
        .expect("examples/ linked");
    env.init("secops", &[]).await;
    env.init("alice", &[]).await;
    env.configure("alice", &format!("[profiles.reports]\naccount = \"{ACCOUNT}\"\ntemplate = \"bucketRead\""));
    let mut ran: Vec<Vec<String>> = Vec::new();
    // `portcullis login --device` and `portcullis login`, with a second device and a browser driven.
    env.login_device("secops").await;
    env.login_browser("alice").await;
    ran.push(vec!["portcullis".into(), "login".into(), "--device".into()]);
    ran.push(vec!["portcullis".into(), "login".into()]);

    let mut grants: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    let order = [
        "init",
        "dev-issuer",
        "completions",
        "templates put",
        "templates",
        "request",
        "grants",
        "whoami",
        "credentials",
        "configure-profile",
        "pending",
        "approve",
        "deny",
        "review",
        "templates delete",
        "revoke",
        "posture",
        "revoke-user",
        "logout",
    ];
    for step in order {
        match step {
            // What the decisions act on: two grants waiting for approval and a break-glass use to
            // review, asked for by alice; and a template to delete.
            "pending" => {
                env.ok("secops", &["templates", "put", &template_file("bucketWrite")]).await;
                for (kind, extra) in [("approve", None), ("deny", None), ("review", Some("--break-glass"))] {
                    let mut ask = vec!["request", "bucketWrite", "--param", "bucketName=exports", "--ttl", "30m"];
                    ask.extend(["--reason", "INC-18"]);
                    ask.extend(extra);
                    let out = env.ok("alice", &ask).await;
                    let id = out.split_whitespace().find(|w| w.starts_with("g-")).expect("a grant id").to_owned();
                    grants.insert(kind, id);
                }
            }
            "templates delete" => {
                env.ok("secops", &["templates", "put", &template_file("queueConsumer")]).await;
            }
            "revoke" => {
                let mine = json_out(&env.ok("alice", &["grants", "--output", "json"]).await);
                let active = mine["grants"]
                    .as_array()
                    .and_then(|g| g.iter().find(|g| g["status"] == "active" && g["template"] == "bucketRead"))
                    .and_then(|g| g["id"].as_str())
                    .expect("an active bucketRead grant of alice's")
                    .to_owned();
                grants.insert("revoke", active);
            }
            _ => {}
        }
        for (_, argv) in examples.iter().filter(|(_, argv)| subcommand(argv) == step && !not_run(argv)) {
            let who = match step {
                "init" | "dev-issuer" | "completions" => "carol",
                "templates put" | "templates delete" | "pending" | "approve" | "deny" | "review" | "posture"
                | "revoke-user" => "secops",
                _ => "alice",
            };
            let args: Vec<String> = argv[1..]
                .iter()
                .map(|w| match (w.as_str(), grants.get(step)) {
                    (PLACEHOLDER_GRANT, Some(id)) => id.clone(),
                    _ => w.clone(),
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = env.cmd(who, &args);
            cmd.current_dir(cwd.path());
            let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs")).await.expect("joins");
            assert!(
                out.status.success(),
                "`{}` (from `{step} --help`) as {who}: {:?}\n{}{}",
                argv.join(" "),
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            );
            assert!(!text(&out.stdout).trim().is_empty(), "`{}` printed nothing", argv.join(" "));
            ran.push(argv.clone());
        }
    }
    let missed: Vec<String> =
        examples.iter().filter(|(_, a)| !ran.contains(a) && !not_run(a)).map(|(_, a)| a.join(" ")).collect();
    assert!(missed.is_empty(), "examples neither run nor listed as not run: {missed:#?}");
    assert!(ran.len() >= 25, "only {} examples ran", ran.len());
}
