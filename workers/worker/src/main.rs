//! `portcullis-worker`: runs the Portcullis workers. All logic lives in the library.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portcullis_runtime::config::Settings;
use portcullis_runtime::queue::{DeadLetters, RedriveFilter};
use portcullis_runtime::telemetry::Telemetry;
use portcullis_worker::app::{self, Workers};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis-worker",
    version,
    about = "Portcullis workers: just-in-time AWS access and posture telemetry"
)]
struct Cli {
    /// Configuration file (default: $PORTCULLIS_CONFIG, else the embedded config/local.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Templates, grants and credentials from the access-requests queue.
    Access,
    /// Security posture: scheduled scans and change events, exported as metrics.
    Posture {
        #[command(subcommand)]
        action: Option<PostureAction>,
    },
    /// HR events (team changes, offboarding, groups) from the directory-events queue.
    Directory,
    /// Every worker in one process.
    All,
    /// One worker as an AWS Lambda function: SQS batches from an event source mapping (reporting batch
    /// item failures) and its timed work on an EventBridge schedule. Runs on the Lambda runtime API.
    Lambda {
        #[arg(value_enum)]
        worker: LambdaWorker,
    },
    /// A queue's dead letters: list them or move chosen ones back.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// List the dead letters of a queue (code, reason, origin, body with secrets redacted).
    Inspect {
        /// `access`, `directory`, `posture`, or a queue's full name.
        queue: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Move dead letters back to the queue they came from.
    #[command(group = clap::ArgGroup::new("which").required(true).multiple(true).args(["code", "id", "all"]))]
    Redrive {
        /// `access`, `directory`, `posture`, or a queue's full name.
        queue: String,
        /// Only those kept with this error code (`none`: moved by the redrive policy); repeatable.
        #[arg(long)]
        code: Vec<String>,
        /// Only this message id (in the dead-letter queue or at the source); repeatable.
        #[arg(long)]
        id: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with_all = ["code", "id"])]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PostureAction {
    /// Scan every configured account and region now, record the results, and print them.
    Scan {
        /// Run one scan and exit (the only mode; kept explicit for scripts).
        #[arg(long)]
        once: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LambdaWorker {
    Access,
    Directory,
    Posture,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Table,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match &cli.config {
        Some(path) => Settings::load_from(Some(path)),
        None => Settings::load(),
    }
    .context("loading the configuration")?;
    let settings = Arc::new(settings);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let telemetry = Telemetry::init(&settings.telemetry)?;
    let result = runtime.block_on(async {
        let sdk = portcullis_runtime::aws::sdk_config(&settings.aws).await;
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let workers = match cli.command {
            Command::Dlq { action } => return dead_letters(&settings, &sdk, action).await,
            Command::Lambda { worker } => {
                let worker = match worker {
                    LambdaWorker::Access => Workers::Access,
                    LambdaWorker::Directory => Workers::Directory,
                    LambdaWorker::Posture => Workers::Posture,
                };
                return app::run_lambda(worker, settings.clone(), &sdk, &telemetry.meter(), telemetry.flusher()).await;
            }
            Command::Access => Workers::Access,
            Command::Directory => Workers::Directory,
            Command::All => Workers::All,
            Command::Posture { action: None } => Workers::Posture,
            Command::Posture { action: Some(PostureAction::Scan { once: _, format }) } => {
                let (reports, calls, wall) = app::scan_once(&settings, &sdk, &telemetry.meter()).await?;
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&portcullis_posture::reports_json(&reports, Some(calls), wall))?
                    ),
                    Format::Table => {
                        print!("{}", portcullis_posture::reports_table(&reports));
                        println!(
                            "{} scope(s) scanned in {} ms with {calls} AWS calls",
                            reports.len(),
                            wall.as_millis()
                        );
                    }
                }
                return Ok(());
            }
        };
        app::run(workers, settings.clone(), sdk, telemetry.meter(), shutdown).await
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    telemetry.shutdown(Duration::from_secs(5));
    result
}

/// `portcullis-worker dlq …`.
async fn dead_letters(settings: &Settings, sdk: &aws_config::SdkConfig, action: DlqAction) -> anyhow::Result<()> {
    let names = portcullis_domain::naming::StackNames::new(&settings.stack.prefix);
    let queue_name = |q: &str| match q {
        "access" => names.access_queue(),
        "directory" => names.directory_queue(),
        "posture" => names.posture_queue(),
        other => other.to_owned(),
    };
    let sqs = aws_sdk_sqs::Client::new(sdk);
    match action {
        DlqAction::Inspect { queue, format } => {
            let dead = DeadLetters::connect(sqs, &queue_name(&queue)).await?;
            let letters = dead.inspect().await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&letters)?),
                Format::Table => {
                    println!("{:<38} {:<24} {:<38} REASON", "MESSAGE ID", "CODE", "SOURCE MESSAGE ID");
                    for l in &letters {
                        println!(
                            "{:<38} {:<24} {:<38} {}",
                            l.message_id,
                            l.code_or_none(),
                            l.source_message_id.as_deref().unwrap_or("-"),
                            l.reason.as_deref().unwrap_or("moved by the redrive policy after its last delivery")
                        );
                    }
                    println!("{} dead letter(s)", letters.len());
                }
            }
        }
        DlqAction::Redrive { queue, code, id, all: _ } => {
            let dead = DeadLetters::connect(sqs, &queue_name(&queue)).await?;
            let report = dead.redrive(&RedriveFilter { codes: code, ids: id }).await?;
            println!(
                "moved {} dead letter(s) back to {}; {} stay",
                report.moved.len(),
                queue_name(&queue),
                report.kept
            );
        }
    }
    Ok(())
}

/// Cancel `token` on SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                token.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
