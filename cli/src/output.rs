//! How results are printed: human text by default (see [`crate::render`]), `--output json`
//! everywhere, and a spinner on stderr while waiting, only when stderr is a terminal (never in
//! pipes or files).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A spinner on stderr while something is awaited; nothing at all when stderr is not a terminal.
#[derive(Debug)]
pub struct Spinner {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    pub fn start(message: &str) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() || std::env::var_os("NO_SPINNER").is_some() {
            return Spinner { stop, task: None };
        }
        let (flag, message) = (stop.clone(), message.to_owned());
        let task = tokio::spawn(async move {
            const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                eprint!("\r{} {message}", FRAMES[i % FRAMES.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Spinner { stop, task: Some(task) }
    }

    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}
