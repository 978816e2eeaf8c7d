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

/// Write `text` to stdout. A reader that went away (`portcullis ... | head`) ends the process
/// quietly with exit 0, as it would a shell tool; nothing panics on a closed pipe.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Whether a panic's message is a write to a closed pipe (from code that prints with `println!`).
pub fn is_broken_pipe(message: &str) -> bool {
    message.contains("Broken pipe") || message.contains("os error 32")
}

/// Make every panic from a write to a closed pipe a quiet exit 0 (a safety net under [`emit`] for
/// code that prints with `println!`); other panics keep the default report.
pub fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(is_broken_pipe) {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The width to fit tables to: the terminal's columns when stdout is a terminal, else none (pipes
/// and files get whole lines).
pub fn terminal_width() -> Option<usize> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    rustix::termios::tcgetwinsize(&out).ok().map(|w| usize::from(w.ws_col)).filter(|w| *w > 0)
}

/// Each line of `text` cut to `width` characters, the cut marked with `…`.
pub fn fit_width(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if body.chars().count() > width && width > 0 {
            out.extend(body.chars().take(width - 1));
            out.push('…');
        } else {
            out.push_str(body);
        }
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_lines_are_cut_to_the_width_and_marked() {
        let text = "ID        TEMPLATE\ng-0123456789abcdef  bucketRead\nshort\n";
        let fitted = fit_width(text, 12);
        assert_eq!(fitted, "ID        T…\ng-012345678…\nshort\n");
        assert!(fitted.lines().all(|l| l.chars().count() <= 12));
        assert_eq!(fit_width("é\n", 1), "é\n");
        assert_eq!(fit_width(text, 200), text);
    }

    #[test]
    fn a_closed_pipe_is_recognised_in_a_panic_message() {
        assert!(is_broken_pipe("failed printing to stdout: Broken pipe (os error 32)"));
        assert!(!is_broken_pipe("index out of bounds"));
    }
}
