//! Integration-test harness for Portcullis.
//!
//! [`Moto`] starts a private `moto_server` process (from the project's `.venv`, installed by
//! `make venv`) on a free loopback port and kills it on drop. [`spawn_app`] deploys the CloudFormation
//! stack into it under a random prefix, creates a development issuer, starts the access worker
//! in-process, and connects an [`AccessClient`] with its own reply queue, so tests drive the worker only
//! through real SQS messages. Every name and port is random: tests run in parallel.
//!
//! For the fault and load tests, [`proxy::FaultProxy`] sits between workers and the emulator (it
//! counts every AWS call by operation, delays, injects throttling, 5xx and access denied in each
//! protocol's error shape, and goes down and comes back), and [`fleet::Fleet`] runs access workers as
//! separate OS processes through it, to SIGKILL, SIGTERM and restart.
//!
//! [`idp::Idp`] runs the test OpenID provider (`tests/idp`, oidc-provider from npm) the same way.
//! [`bench`] holds what the benchmark binaries (`make bench`) share.
//!
//! A missing `moto_server`, Node or `npm ci` is a loud failure, never a skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use portcullis_client::AccessClient;
use portcullis_client::dev_issuer as dev;
use portcullis_domain::MessageId;
use portcullis_domain::messages::{Kind, Reply, ReplyOutcome};
use portcullis_domain::naming::StackNames;
use portcullis_runtime::aws::ApiCallCounter;
use portcullis_runtime::config::Settings;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use portcullis_cli;
pub use portcullis_client;
pub use portcullis_domain;
pub use portcullis_posture;
pub use portcullis_runtime;
pub use portcullis_worker;

pub mod bench;
pub mod fixtures;
pub mod fleet;
pub mod idp;
pub mod proxy;

/// moto's default account id.
pub const ACCOUNT: &str = "123456789012";
/// How long tests wait for a reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

static TRACING: Once = Once::new();

/// Every log line the workers of this test binary wrote (for scanning them for secrets).
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Writes each log line to the test output and to [`LOGS`].
#[derive(Debug, Clone, Copy)]
struct TeeWriter;

impl std::io::Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.lock() {
            logs.extend_from_slice(buf);
        }
        eprint!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Send worker logs to the test output (`RUST_LOG=debug cargo test` for more), and keep them.
pub fn init_tracing() {
    TRACING.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,portcullis=info"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(|| TeeWriter).try_init();
    });
}

/// Everything logged so far by this test binary's workers.
pub fn captured_logs() -> String {
    LOGS.lock().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default()
}

/// The `SenderId` moto reports for every message, whoever sent it.
pub const MOTO_SENDER_ID: &str = "AIDAIT2UOQQY3AUEKVGXU";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How the emulator starts: `$PORTCULLIS_MOTO_SERVER` (a `moto_server` executable) if set, else the
/// project's `.venv` Python running `tests/emulator/moto_server.py`: moto's own server with each
/// DynamoDB call made atomic (moto undoes concurrent writes when a transaction fails; see the
/// script). The path that must exist, and the command before moto's `-H`/`-p` arguments.
pub fn moto_server_command() -> (PathBuf, Command) {
    match std::env::var_os("PORTCULLIS_MOTO_SERVER") {
        Some(p) => (PathBuf::from(&p), Command::new(p)),
        None => {
            let python = workspace_root().join(".venv/bin/python");
            let mut command = Command::new(&python);
            command.arg(workspace_root().join("tests/emulator/moto_server.py"));
            (workspace_root().join(".venv/bin/moto_server"), command)
        }
    }
}

/// Which emulator the integration tests run against: `PORTCULLIS_TEST_EMULATOR=moto` (the default:
/// a `moto_server` process) or `localstack` (a LocalStack container started with testcontainers, which
/// needs a Docker engine: without one the tests fail, loudly, rather than skip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorKind {
    Moto,
    LocalStack,
}

impl EmulatorKind {
    /// From `PORTCULLIS_TEST_EMULATOR`; an unknown value is an error, not a silent default.
    pub fn from_env() -> EmulatorKind {
        match std::env::var("PORTCULLIS_TEST_EMULATOR").as_deref() {
            Err(_) | Ok("") | Ok("moto") => EmulatorKind::Moto,
            Ok("localstack") => EmulatorKind::LocalStack,
            Ok(other) => panic!("PORTCULLIS_TEST_EMULATOR={other}: expected `moto` or `localstack`"),
        }
    }
}

/// The LocalStack image the tests (and docker-compose.yml) pin: 3.x community images run without an
/// auth token.
pub const LOCALSTACK_IMAGE: (&str, &str) = ("localstack/localstack", "3.8.1");

/// Every service the stack, the workers and the controls call.
pub const LOCALSTACK_SERVICES: &str =
    "sqs,dynamodb,sts,iam,kms,cloudtrail,events,cloudformation,guardduty,ec2,config,s3";

/// A private emulator: a moto_server process, or a LocalStack container (see [`EmulatorKind`]). The
/// name stays `Moto` because moto is what runs unless asked otherwise.
#[derive(Debug)]
pub struct Moto {
    child: Option<Child>,
    container: Option<testcontainers::Container<testcontainers::GenericImage>>,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        match EmulatorKind::from_env() {
            EmulatorKind::Moto => Self::start_moto(),
            EmulatorKind::LocalStack => Self::start_localstack(),
        }
    }

    fn start_localstack() -> Moto {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::SyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        let (name, tag) = LOCALSTACK_IMAGE;
        let container = GenericImage::new(name, tag)
            .with_exposed_port(4566.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready."))
            .with_env_var("SERVICES", LOCALSTACK_SERVICES)
            .start()
            .unwrap_or_else(|e| {
                panic!(
                    "PORTCULLIS_TEST_EMULATOR=localstack: cannot start {name}:{tag} with testcontainers ({e}). \
                     It needs a Docker engine; without one, run the tests on moto (the default)."
                )
            });
        let port = container.get_host_port_ipv4(4566.tcp()).expect("LocalStack's port is mapped");
        Moto { child: None, container: Some(container), endpoint: format!("http://127.0.0.1:{port}") }
    }

    fn start_moto() -> Moto {
        let (exe, _) = moto_server_command();
        assert!(
            exe.exists(),
            "moto_server not found at {}: run `make venv` (make test does) or set PORTCULLIS_MOTO_SERVER",
            exe.display()
        );
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = moto_server_command()
                .1
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // AWS managed policies exist (AWSSupportAccess, AWSCloudShellFullAccess) so that they
                // can be attached: IAM.18 and IAM.27. Loading them costs moto ~0.2 s per account.
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            let mut moto = Moto { child: Some(child), container: None, endpoint: format!("http://127.0.0.1:{port}") };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return moto;
                }
                if let Some(Ok(Some(_))) = moto.child.as_mut().map(|c| c.try_wait()) {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(c) = moto.child.as_mut() {
                let _ = c.kill();
            }
        }
        panic!("moto_server did not start");
    }

    /// Which emulator this is.
    pub fn kind(&self) -> EmulatorKind {
        if self.container.is_some() { EmulatorKind::LocalStack } else { EmulatorKind::Moto }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The container is removed when dropped.
        self.container.take();
    }
}

/// SDK configuration for the emulator: static dummy credentials, us-east-1.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        // LocalStack takes the account from a 12-digit access key id (else 000000000000); moto's
        // default account is the same 123456789012 whatever the key.
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            match EmulatorKind::from_env() {
                EmulatorKind::Moto => "testing",
                EmulatorKind::LocalStack => "123456789012",
            },
            "testing",
            None,
            None,
            "tests",
        ))
        .load()
        .await
}

/// Delete received `messages` from the queue at `url` in one `DeleteMessageBatch` (at most ten, as
/// one receive returns): the loops of the fleet and the benchmarks share it.
pub async fn delete_received(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[aws_sdk_sqs::types::Message],
) -> aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput {
    let entries = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .build()
                .unwrap()
        })
        .collect();
    sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await.unwrap()
}

/// A random stack prefix.
pub fn random_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Deliveries before a message is dead-lettered in the tests' stacks: few, so the redrive tests finish
/// quickly.
pub const TEST_MAX_RECEIVE_COUNT: u32 = 3;

/// Deploy the stack under `prefix` through the CloudFormation API.
pub async fn deploy_stack(sdk: &SdkConfig, prefix: &str) {
    deploy_stack_with(sdk, prefix, TEST_MAX_RECEIVE_COUNT).await;
}

/// Deploy the stack under `prefix` with the given redrive `maxReceiveCount`.
pub async fn deploy_stack_with(sdk: &SdkConfig, prefix: &str, max_receive_count: u32) {
    let max_receive_count = max_receive_count.to_string();
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let worker = portcullis_cli::stack::caller_principal_arn(&aws_sdk_sts::Client::new(sdk))
        .await
        .expect("the caller's principal");
    portcullis_cli::stack::deploy(
        &cfn,
        prefix,
        portcullis_cli::stack::TEMPLATE,
        &[("Prefix", prefix), ("MaxReceiveCount", &max_receive_count), ("WorkerPrincipalArn", &worker)],
        Duration::from_secs(60),
    )
    .await
    .expect("stack deploys");
}

/// Test settings for a stack: the access worker polls briefly so tests shut down fast.
pub fn settings_toml(prefix: &str, endpoint: &str, jwks: &std::path::Path, access_lines: &str, extra: &str) -> String {
    format!(
        r#"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[stack]
prefix = "{prefix}"

[identity]
issuer = "https://issuer.test"
audience = "portcullis"
jwks_file = "{jwks}"
leeway_seconds = 1

[access]
reply_queue_names = ["{prefix}-reply-*"]
# These tests share one reply queue between users; tests/tests/cli.rs runs with the binding on.
bind_reply_queue_to_subject = false
{access_lines}

[accounts.{ACCOUNT}]
role_arn = "arn:aws:iam::{ACCOUNT}:role/{prefix}-broker"
max_session_duration_seconds = 3600

[worker]
concurrency = 4
wait_seconds = 1
visibility_timeout_seconds = 30
retry_backoff_base_ms = 200
retry_backoff_max_seconds = 2
shutdown_grace_seconds = 5
{extra}
"#,
        jwks = jwks.display()
    )
}

/// Collects metrics recorded by the workers in memory.
#[derive(Debug, Clone)]
pub struct MetricsProbe {
    pub provider: SdkMeterProvider,
    exporter: InMemoryMetricExporter,
}

/// One exported data point, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: String,
    pub unit: String,
    /// `sum`, `gauge` or `histogram`.
    pub kind: &'static str,
    pub attributes: BTreeMap<String, String>,
    /// The value; for histograms, the count.
    pub value: f64,
    /// For histograms, the sum.
    pub sum: f64,
}

impl Default for MetricsProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsProbe {
    pub fn new() -> Self {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).with_interval(Duration::from_secs(3600)).build())
            .build();
        Self { provider, exporter }
    }

    pub fn meter(&self) -> opentelemetry::metrics::Meter {
        self.provider.meter(portcullis_runtime::telemetry::METER_NAME)
    }

    /// Every data point of the latest (cumulative) export.
    pub fn points(&self) -> Vec<Point> {
        self.exporter.reset();
        self.provider.force_flush().unwrap();
        let exported = self.exporter.get_finished_metrics().unwrap();
        let mut out = Vec::new();
        let Some(latest) = exported.last() else { return out };
        for scope in latest.scope_metrics() {
            for metric in scope.metrics() {
                let name = metric.name().to_owned();
                let unit = metric.unit().to_owned();
                let attrs = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                    it.map(|kv| (kv.key.to_string(), kv.value.to_string())).collect::<BTreeMap<_, _>>()
                };
                macro_rules! push {
                    ($data:expr, $conv:expr) => {
                        match $data {
                            MetricData::Gauge(g) => {
                                for p in g.data_points() {
                                    out.push(Point {
                                        name: name.clone(),
                                        unit: unit.clone(),
                                        kind: "gauge",
                                        attributes: attrs(&mut p.attributes()),
                                        value: $conv(p.value()),
                                        sum: 0.0,
                                    });
                                }
                            }
                            MetricData::Sum(s) => {
                                for p in s.data_points() {
                                    out.push(Point {
                                        name: name.clone(),
                                        unit: unit.clone(),
                                        kind: "sum",
                                        attributes: attrs(&mut p.attributes()),
                                        value: $conv(p.value()),
                                        sum: 0.0,
                                    });
                                }
                            }
                            MetricData::Histogram(h) => {
                                for p in h.data_points() {
                                    out.push(Point {
                                        name: name.clone(),
                                        unit: unit.clone(),
                                        kind: "histogram",
                                        attributes: attrs(&mut p.attributes()),
                                        value: p.count() as f64,
                                        sum: $conv(p.sum()),
                                    });
                                }
                            }
                            MetricData::ExponentialHistogram(_) => {}
                        }
                    };
                }
                match metric.data() {
                    AggregatedMetrics::F64(d) => push!(d, |v: f64| v),
                    AggregatedMetrics::U64(d) => push!(d, |v: u64| v as f64),
                    AggregatedMetrics::I64(d) => push!(d, |v: i64| v as f64),
                }
            }
        }
        out
    }

    /// Points named `name` whose attributes include every pair in `with`.
    pub fn find(&self, name: &str, with: &[(&str, &str)]) -> Vec<Point> {
        self.points()
            .into_iter()
            .filter(|p| {
                p.name == name && with.iter().all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// Every point recorded so far is a metric declared in `portcullis_domain::metrics`, with only
    /// its declared labels (Prometheus spelling) and unit. Returns how many metrics were seen.
    pub fn assert_declared(&self) -> usize {
        let points = self.points();
        let mut seen = std::collections::BTreeSet::new();
        for p in &points {
            let declared = portcullis_domain::metrics::ALL
                .iter()
                .find(|m| m.name == p.name)
                .unwrap_or_else(|| panic!("metric {} is exported but not declared in metrics.rs", p.name));
            assert_eq!(p.unit, declared.unit, "{}: unit", p.name);
            for key in p.attributes.keys() {
                let label = key.replace('.', "_");
                assert!(declared.labels.contains(&label.as_str()), "{}: label {label} is not declared", p.name);
            }
            seen.insert(p.name.clone());
        }
        seen.len()
    }
}

/// One emulator with a freshly deployed stack under a random prefix, a development issuer, and the
/// settings for both: what the access and the posture environments share.
#[derive(Debug)]
pub struct TestStack {
    pub sdk: SdkConfig,
    pub names: StackNames,
    pub settings: Arc<Settings>,
    pub issuer_dir: tempfile::TempDir,
    // Dropped last: kills the emulator.
    pub moto: Moto,
}

impl TestStack {
    /// Start moto, deploy a fresh stack, create an issuer. `access_lines` go in the `[access]` table,
    /// `extra_toml` at the end.
    pub async fn deploy(access_lines: &str, extra_toml: &str) -> TestStack {
        TestStack::deploy_with(access_lines, extra_toml, TEST_MAX_RECEIVE_COUNT).await
    }

    /// [`TestStack::deploy`] with the given redrive `maxReceiveCount`.
    pub async fn deploy_with(access_lines: &str, extra_toml: &str, max_receive_count: u32) -> TestStack {
        init_tracing();
        let moto = Moto::start();
        let sdk = sdk_config(&moto.endpoint).await;
        let prefix = random_prefix();
        deploy_stack_with(&sdk, &prefix, max_receive_count).await;
        let issuer_dir = tempfile::tempdir().unwrap();
        let jwks = dev::init(issuer_dir.path()).unwrap();
        let settings = Arc::new(
            Settings::from_toml(&settings_toml(&prefix, &moto.endpoint, &jwks, access_lines, extra_toml)).unwrap(),
        );
        TestStack { sdk, names: StackNames::new(&prefix), settings, issuer_dir, moto }
    }

    /// An ID token from the test issuer, issued now and valid for `ttl`.
    pub fn token_with_ttl(&self, user: &str, team: Option<&str>, groups: &[&str], ttl: Duration) -> String {
        self.token_issued_at(user, team, groups, ttl, None)
    }

    /// An ID token that says it was issued at `issued_at` (an hour ago makes an expired one, at once).
    pub fn token_issued_at(
        &self,
        user: &str,
        team: Option<&str>,
        groups: &[&str],
        ttl: Duration,
        issued_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> String {
        dev::mint(
            self.issuer_dir.path(),
            &dev::DevClaims {
                issuer: self.settings.identity.issuer.clone(),
                audience: self.settings.identity.audience.clone(),
                user: user.into(),
                team: team.map(Into::into),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ttl,
                issued_at,
            },
        )
        .unwrap()
    }
}

/// A deployed stack with the access worker running in-process.
#[derive(Debug)]
pub struct TestApp {
    pub stack: TestStack,
    pub sdk: SdkConfig,
    pub names: StackNames,
    pub settings: Arc<Settings>,
    pub metrics: MetricsProbe,
    pub client: AccessClient,
    shutdown: CancellationToken,
    worker: Option<JoinHandle<anyhow::Result<()>>>,
    /// The directory worker's own: stopping and restarting the access worker leaves it running.
    directory_shutdown: CancellationToken,
    directory: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Start moto, deploy a fresh stack and run the access worker.
pub async fn spawn_app() -> TestApp {
    spawn_app_with("", "").await
}

/// Like [`spawn_app`], with extra lines in the `[access]` table and extra TOML appended at the end.
pub async fn spawn_app_with(access_lines: &str, extra_toml: &str) -> TestApp {
    spawn_app_on(TestStack::deploy(access_lines, extra_toml).await).await
}

/// Like [`spawn_app`], on a stack deployed already (with [`TestStack::deploy_with`]'s redrive count).
pub async fn spawn_app_on(stack: TestStack) -> TestApp {
    let client = AccessClient::connect(aws_sdk_sqs::Client::new(&stack.sdk), &stack.names).await.unwrap();
    let mut app = TestApp {
        sdk: stack.sdk.clone(),
        names: stack.names.clone(),
        settings: stack.settings.clone(),
        stack,
        metrics: MetricsProbe::new(),
        client,
        shutdown: CancellationToken::new(),
        worker: None,
        directory_shutdown: CancellationToken::new(),
        directory: None,
    };
    app.start_worker();
    app
}

/// Like [`spawn_app_with`], with the directory worker running too.
pub async fn spawn_app_with_directory(access_lines: &str, extra_toml: &str) -> TestApp {
    let mut app = spawn_app_with(access_lines, extra_toml).await;
    app.start_directory();
    app
}

/// Producers for the emulator, where every message has the same `SenderId`: one producer that may
/// send every kind and act for people.
pub fn trusted_everything() -> String {
    format!("[[producers]]\nname = \"hr\"\nsender_ids = [\"{MOTO_SENDER_ID}\"]\nkinds = [\"*\"]\non_behalf = true\n")
}

impl TestApp {
    /// Start the directory worker.
    pub fn start_directory(&mut self) {
        let (settings, sdk, meter, shutdown) =
            (self.settings.clone(), self.sdk.clone(), self.metrics.meter(), self.directory_shutdown.clone());
        self.directory =
            Some(tokio::spawn(
                async move { portcullis_worker::app::run_directory(settings, &sdk, &meter, shutdown).await },
            ));
    }

    /// (Re)start the access worker.
    pub fn start_worker(&mut self) {
        self.start_worker_counted(None);
    }

    /// (Re)start the access worker, its AWS clients counting their calls in `counter` if given.
    pub fn start_worker_counted(&mut self, counter: Option<ApiCallCounter>) {
        self.shutdown = CancellationToken::new();
        let (settings, sdk, meter, shutdown) =
            (self.settings.clone(), self.sdk.clone(), self.metrics.meter(), self.shutdown.clone());
        self.worker = Some(tokio::spawn(async move {
            portcullis_worker::app::run_access_counted(settings, &sdk, &meter, shutdown, counter).await
        }));
    }

    /// Stop the access worker gracefully and wait for it (the directory worker keeps running).
    pub async fn stop_worker(&mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(30), w).await.expect("worker stops in time").unwrap().unwrap();
        }
    }

    /// Send a directory event (as the HR system would) with this client's reply queue; returns its
    /// message id.
    pub async fn send_directory(&self, kind: Kind, body: Value) -> MessageId {
        let envelope = self.client.envelope(kind, body, None);
        let url = self.queue_url(&self.names.directory_queue()).await;
        self.sqs()
            .send_message()
            .queue_url(url)
            .message_body(serde_json::to_string(&envelope).unwrap())
            .send()
            .await
            .unwrap();
        envelope.message_id
    }

    /// Send a directory event and wait for its reply.
    pub async fn directory(&self, kind: Kind, body: Value) -> Reply<Value> {
        let id = self.send_directory(kind, body).await;
        self.client.wait_reply(&id, REPLY_TIMEOUT).await.unwrap()
    }

    /// A queue that receives every event on the Portcullis bus (for audit assertions).
    pub async fn capture_bus(&self) -> String {
        capture_bus(&self.sdk, self.names.prefix()).await
    }

    /// Every message that arrives on `url` until none comes for `quiet`, as JSON.
    pub async fn receive_all_json(&self, url: &str, quiet: Duration) -> Vec<Value> {
        receive_all_json(&self.sqs(), url, quiet).await
    }

    /// The revocation policy on the stack's broker role, if any.
    pub async fn revocation_policy(&self) -> Option<Value> {
        let out = aws_sdk_iam::Client::new(&self.sdk)
            .get_role_policy()
            .role_name(format!("{}-broker", self.names.prefix()))
            .policy_name("PortcullisRevocations")
            .send()
            .await
            .ok()?;
        Some(policy_document(&out.policy_document))
    }

    /// Messages in a dead-letter queue (by name): (body, attributes); waits until there are `n`.
    pub async fn dead_letters_in(&self, queue: &str, n: usize) -> Vec<(String, BTreeMap<String, String>)> {
        self.dead_letters_of(queue, n).await
    }

    /// An ID token from the test issuer.
    pub fn token(&self, user: &str, team: Option<&str>, groups: &[&str]) -> String {
        self.token_with_ttl(user, team, groups, Duration::from_secs(600))
    }

    pub fn token_with_ttl(&self, user: &str, team: Option<&str>, groups: &[&str], ttl: Duration) -> String {
        self.stack.token_with_ttl(user, team, groups, ttl)
    }

    /// The issuer's directory (signing key and JWKS).
    pub fn issuer_dir(&self) -> &std::path::Path {
        self.stack.issuer_dir.path()
    }

    /// A token for an admin.
    pub fn admin_token(&self) -> String {
        self.token("admin", Some("security"), &["portcullis-admins"])
    }

    /// Send a request and wait for its reply.
    pub async fn request(&self, kind: Kind, body: Value, token: &str) -> Reply<Value> {
        self.client.request(kind, body, Some(token), REPLY_TIMEOUT).await.unwrap()
    }

    /// Put the example templates (as admin).
    pub async fn put_example_templates(&self) {
        let admin = self.admin_token();
        for name in ["bucketRead", "queueConsumer", "tableReader", "bucketWrite"] {
            let text =
                std::fs::read_to_string(workspace_root().join(format!("examples/templates/{name}.json"))).unwrap();
            let template: Value = serde_json::from_str(&text).unwrap();
            let reply = self.request(Kind::TemplatePut, json!({ "template": template }), &admin).await;
            ok(&reply);
        }
    }

    /// Grant `user` read access to `bucket` for `ttl` seconds.
    pub async fn grant_bucket(&self, token: &str, bucket: &str, ttl: u64) -> Value {
        let reply = self
            .request(
                Kind::GrantRequest,
                json!({"template": "bucketRead", "params": {"bucketName": bucket}, "account": ACCOUNT, "ttl": ttl, "reason": "incident 42"}),
                token,
            )
            .await;
        ok(&reply)["grant"].clone()
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    async fn queue_url(&self, name: &str) -> String {
        self.sqs().get_queue_url().queue_name(name).send().await.unwrap().queue_url.unwrap()
    }

    /// Wait until the access dead-letter queue holds `n` messages; returns (body, attributes) of each.
    pub async fn dead_letters(&self, n: usize) -> Vec<(String, BTreeMap<String, String>)> {
        self.dead_letters_of(&self.names.access_dlq(), n).await
    }

    /// One receive of up to 10 messages from `url`, hidden for a minute: (message id, (body, string
    /// attributes)).
    async fn receive_letters(&self, url: &str) -> Vec<(String, (String, BTreeMap<String, String>))> {
        let out = self
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attrs = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                    .collect();
                (m.message_id.unwrap_or_default(), (m.body.unwrap_or_default(), attrs))
            })
            .collect()
    }

    async fn dead_letters_of(&self, queue: &str, n: usize) -> Vec<(String, BTreeMap<String, String>)> {
        let url = self.queue_url(queue).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
        while seen.len() < n && Instant::now() < deadline {
            for (id, letter) in self.receive_letters(&url).await {
                seen.insert(id, letter);
            }
        }
        assert!(seen.len() >= n, "expected {n} dead letters, found {}: {seen:?}", seen.len());
        seen.into_values().collect()
    }

    /// Every message in the access dead-letter queue, read until none arrives for `quiet`: (body,
    /// attributes). Messages stay in the queue (they become visible again after a minute).
    pub async fn all_dead_letters(&self, quiet: Duration) -> Vec<(String, BTreeMap<String, String>)> {
        let url = self.queue_url(&self.names.access_dlq()).await;
        let mut seen: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
        let mut last_new = Instant::now();
        while last_new.elapsed() < quiet {
            for (id, letter) in self.receive_letters(&url).await {
                if seen.insert(id, letter).is_none() {
                    last_new = Instant::now();
                }
            }
        }
        seen.into_values().collect()
    }

    /// Messages visible or in flight on the access queue.
    pub async fn access_queue_depth(&self) -> u64 {
        let url = self.queue_url(&self.names.access_queue()).await;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.directory_shutdown.cancel();
        for w in [self.worker.take(), self.directory.take()].into_iter().flatten() {
            w.abort();
        }
    }
}

/// The result of an ok reply; panics with the error otherwise.
pub fn ok(reply: &Reply<Value>) -> &Value {
    match &reply.outcome {
        ReplyOutcome::Ok { result } => result,
        ReplyOutcome::Error { error } => panic!("expected ok, got {}: {}", error.code, error.message),
    }
}

/// The error code of an error reply; panics on ok.
pub fn error_code(reply: &Reply<Value>) -> String {
    match &reply.outcome {
        ReplyOutcome::Error { error } => error.code.as_str().to_owned(),
        ReplyOutcome::Ok { result } => panic!("expected an error, got ok: {result}"),
    }
}

/// The error message of an error reply.
pub fn error_message(reply: &Reply<Value>) -> String {
    match &reply.outcome {
        ReplyOutcome::Error { error } => error.message.clone(),
        ReplyOutcome::Ok { result } => panic!("expected an error, got ok: {result}"),
    }
}

/// Poll `check` until it returns `Some`, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A deployed stack for posture tests; the posture worker starts when the test says so (after
/// creating its fixtures).
#[derive(Debug)]
pub struct PostureEnv {
    pub stack: TestStack,
    pub sdk: SdkConfig,
    pub names: StackNames,
    pub settings: Arc<Settings>,
    pub metrics: MetricsProbe,
    pub posture: Option<Arc<portcullis_posture::Posture>>,
    shutdown: CancellationToken,
    worker: Option<JoinHandle<anyhow::Result<()>>>,
}

impl PostureEnv {
    /// Start moto and deploy a fresh stack. `posture_lines` go in the `[posture]` table.
    pub async fn start(posture_lines: &str) -> PostureEnv {
        Self::start_in(&["us-east-1"], posture_lines).await
    }

    /// [`PostureEnv::start`] scanning `regions` (the first is the home region).
    pub async fn start_in(regions: &[&str], posture_lines: &str) -> PostureEnv {
        let regions = regions.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ");
        let extra = format!("[posture]\nregions = [{regions}]\ndebounce_ms = 300\n{posture_lines}\n");
        let stack = TestStack::deploy("", &extra).await;
        PostureEnv {
            sdk: stack.sdk.clone(),
            names: stack.names.clone(),
            settings: stack.settings.clone(),
            stack,
            metrics: MetricsProbe::new(),
            posture: None,
            shutdown: CancellationToken::new(),
            worker: None,
        }
    }

    /// Build a posture replica on this env's meter.
    pub async fn build_posture(&self) -> Arc<portcullis_posture::Posture> {
        Arc::new(
            portcullis_posture::Posture::build(&self.settings, &self.sdk, &self.metrics.meter(), None).await.unwrap(),
        )
    }

    /// Start the posture worker (scheduler and event consumer) in-process.
    pub async fn start_worker(&mut self) {
        let posture = self.build_posture().await;
        self.posture = Some(posture.clone());
        let (settings, sdk, meter, shutdown) =
            (self.settings.clone(), self.sdk.clone(), self.metrics.meter(), self.shutdown.clone());
        self.worker = Some(tokio::spawn(async move {
            portcullis_worker::app::run_posture_with(posture, settings, &sdk, &meter, shutdown).await
        }));
    }

    pub async fn stop_worker(&mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("posture worker stops in time")
                .unwrap()
                .unwrap();
        }
    }

    /// The value of a posture gauge for this account in us-east-1 (and `control_id`, if given).
    pub fn gauge(&self, name: &str, control: Option<&str>) -> Option<f64> {
        let mut with = vec![("cloud.account.id", ACCOUNT), ("cloud.region", "us-east-1")];
        if let Some(c) = control {
            with.push(("control_id", c));
        }
        self.metrics.find(name, &with).first().map(|p| p.value)
    }

    /// Put an event on the default bus, as AWS services do.
    pub async fn put_event(&self, source: &str, detail_type: &str, detail: Value) {
        put_event(&self.sdk, source, detail_type, detail).await;
    }
}

/// Put an event on the default bus, as AWS services do.
pub async fn put_event(sdk: &SdkConfig, source: &str, detail_type: &str, detail: Value) {
    let out = aws_sdk_eventbridge::Client::new(sdk)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source(source)
                .detail_type(detail_type)
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count, 0);
}

impl Drop for PostureEnv {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            w.abort();
        }
    }
}

/// An IAM policy document as returned by GetRolePolicy: URL-encoded JSON on AWS and moto's API; for
/// policies moto's CloudFormation created, a Python dict's repr (single quotes), which our policies'
/// values (no apostrophes) let us read as JSON.
pub fn policy_document(raw: &str) -> Value {
    let decoded = portcullis_access::adapters::decode_policy(raw);
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(&decoded.replace('\'', "\"")))
        .unwrap_or_else(|e| panic!("not a policy document ({e}): {decoded:.300}"))
}

/// A queue that receives every event on the bus of the stack deployed with `prefix` (for audit assertions).
pub async fn capture_bus(sdk: &SdkConfig, prefix: &str) -> String {
    let name = format!("{}-bus-capture", prefix);
    let url = aws_sdk_sqs::Client::new(sdk).create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let event_bus = format!("{prefix}-bus");
    let rule = format!("{}-capture", prefix);
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(event_bus.as_str())
        .event_pattern(json!({"source": ["portcullis.access", "portcullis.posture"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(event_bus.as_str())
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("capture")
                .arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}

/// Every message that arrives on `url` until none comes for `quiet`, as JSON.
pub async fn receive_all_json(sqs: &aws_sdk_sqs::Client, url: &str, quiet: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        let got =
            sqs.receive_message().queue_url(url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        for m in got.messages.unwrap_or_default() {
            out.push(serde_json::from_str(m.body.as_deref().unwrap_or("null")).unwrap());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle.unwrap()).send().await.unwrap();
            last = Instant::now();
        }
    }
    out
}
