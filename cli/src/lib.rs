//! The `portcullis` command, as a library: `main.rs` only calls [`commands::main`].
//!
//! People log in with the company's OpenID provider, reach the Portcullis queues with nothing but
//! their ID token (the stack's requester role, assumed with `AssumeRoleWithWebIdentity`), and get
//! credentials that work in the AWS CLI and SDKs (`credential_process`), cached so that a profile
//! costs one round trip per session. Everything said to Portcullis goes through the typed client,
//! `portcullis_client`: typed bodies out, typed results (or refusals) back.
//!
//! # Layout
//!
//! - [`commands`]: the global flags and the dispatch; one module per command with its flags and
//!   what it does (`commands/request.rs`, `commands/grants.rs`, ...). Exit codes in [`error`].
//! - [`context`]: what commands share: the configuration in force, the session, asking Portcullis,
//!   printing a result as JSON or text.
//! - [`render`]: the text and tables each typed result reads as.
//! - [`config`]: the CLI's own configuration (XDG), with where each value came from.
//! - [`login`]: authorization code + PKCE with a loopback redirect, the device flow, the session
//!   and its refresh (`openidconnect`).
//! - [`requester`]: the requester binding (`portcullis_client::requester`), cached.
//! - [`credentials`]: the credentials cache; [`aws_profile`]: `~/.aws/config` profiles;
//!   [`console`]: console sign-in URLs.
//! - [`output`]: `--output`, the spinner; [`files`]: private (0600) files and locks;
//!   [`secrets`]: the session and credentials in those files or in the OS keychain.
//! - [`operator`]: `stack deploy` ([`stack`]) and the development issuer ([`dev_issuer`], from
//!   `portcullis_client`).

pub mod aws_profile;
pub mod commands;
pub mod config;
pub mod console;
pub mod context;
pub mod credentials;
pub mod error;
pub mod files;
pub mod login;
pub mod operator;
pub mod output;
pub mod render;
pub mod requester;
pub mod secrets;
pub mod stack;

/// The development issuer, from the client crate (the operator commands use it).
pub use portcullis_client::dev_issuer;

/// The newcomer's path: the README and `make run` (scripts/run-demo.sh) tell the same story.
#[cfg(test)]
mod newcomer_path {
    #![allow(clippy::unwrap_used)]

    fn read(path: &str) -> String {
        std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// The numbered steps of "What `make run` shows" are the demo's numbered steps.
    #[test]
    fn the_readme_lists_the_steps_the_demo_shows() {
        let readme = read("README.md");
        let section = readme.split("### What `make run` shows").nth(1).unwrap();
        let section = section.split("\n### ").next().unwrap();
        let readme_steps = section
            .lines()
            .filter(|l| l.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
            .count();
        let demo = read("scripts/run-demo.sh");
        let demo_steps: Vec<u32> = demo
            .lines()
            .filter_map(|l| l.strip_prefix("bold \""))
            .filter_map(|l| l.split_once(". ").and_then(|(n, _)| n.parse().ok()))
            .collect();
        assert_eq!(demo_steps, (1..=13).collect::<Vec<u32>>(), "the demo numbers its steps 1..");
        assert_eq!(readme_steps, demo_steps.len(), "README steps vs demo steps");
    }

    /// The second terminal logs in as someone the demo has not offboarded, and the demo finds its
    /// binaries where cargo put them.
    #[test]
    fn the_second_terminal_uses_a_person_still_employed() {
        let readme = read("README.md");
        let demo = read("scripts/run-demo.sh");
        let who = |text: &str| {
            let at = text.find("log in as ").unwrap() + "log in as ".len();
            text[at..].split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap().to_owned()
        };
        let offboarded: Vec<&str> =
            demo.lines().filter_map(|l| l.split("demo_aws.py offboard ").nth(1)).map(str::trim).collect();
        for (name, text) in [("README.md", &readme), ("run-demo.sh", &demo)] {
            let person = who(text
                .split("Your own terminal")
                .nth(1)
                .unwrap_or(text.split("In another terminal").nth(1).unwrap_or(text)));
            assert!(!offboarded.contains(&person.as_str()), "{name}: {person} was offboarded by the demo");
            assert!(demo.contains(&format!("\"{person}\": {{")), "{name}: {person} is not a demo user");
        }
        assert!(!demo.contains("$PWD/target/debug") && demo.contains("target_directory"), "cargo's target dir");
    }
}
