//! `portcullis-slack`: the Slack edge. All logic lives in the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use portcullis_slack::settings::EdgeSettings;

#[derive(Debug, Parser)]
#[command(name = "portcullis-slack", version, about = "The Slack edge of Portcullis")]
struct Cli {
    /// Settings file (TOML); `PORTCULLIS__…` environment variables override it. Default:
    /// `$PORTCULLIS_SLACK_CONFIG`, else the environment alone.
    #[arg(long, env = "PORTCULLIS_SLACK_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Slack's requests (the default).
    Serve,
    /// A local fake of Slack's Web API on 127.0.0.1:PORT that prints every call (`make run`).
    FakeSlack {
        #[arg(long)]
        port: u16,
        /// The bot token it accepts.
        #[arg(long)]
        token: String,
    },
    /// Post a recorded payload (`slack/tests/payloads/FIXTURE`) to an edge, signed as Slack signs it.
    Send {
        /// The edge's base URL.
        #[arg(long)]
        edge: String,
        /// The signing secret (default: $PORTCULLIS__SLACK__SIGNING_SECRET).
        #[arg(long, env = "PORTCULLIS__SLACK__SIGNING_SECRET", hide_env_values = true)]
        secret: String,
        /// The fixture's file name (`command_request.form`, `approve_click.json`, …).
        fixture: String,
        /// `name=value` for its placeholders.
        vars: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            tracing_subscriber::fmt().with_env_filter(filter).json().init();
            let settings = EdgeSettings::load(cli.config.as_deref())?;
            portcullis_slack::app::run(settings).await
        }
        Command::FakeSlack { port, token } => portcullis_slack::fake_slack::serve_printing(port, &token).await,
        Command::Send { edge, secret, fixture, vars } => {
            let answer = portcullis_slack::fake_slack::send_fixture(&edge, &secret, &fixture, &vars).await?;
            println!("{answer}");
            Ok(())
        }
    }
}
