//! `portcullis configure-profile`: one `[profile NAME]` section in `~/.aws/config`
//! (`$AWS_CONFIG_FILE` when set) whose `credential_process` runs `portcullis credentials`. The edit
//! is idempotent and leaves every other section, comment and line as it was.

use std::path::PathBuf;

/// The AWS CLI's config file.
pub fn aws_config_path() -> PathBuf {
    match std::env::var_os("AWS_CONFIG_FILE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".aws/config"),
    }
}

/// `text` with the section `[profile <name>]` holding exactly `lines` (`key = value`), added at the
/// end when it is not there. Other sections are untouched.
pub fn upsert_profile(text: &str, name: &str, lines: &[(String, String)]) -> String {
    let header = if name == "default" { "[default]".to_owned() } else { format!("[profile {name}]") };
    let is_header = |l: &str| {
        let t = l.trim();
        t.starts_with('[') && t.ends_with(']')
    };
    let same = |l: &str| {
        let inner = l.trim().trim_start_matches('[').trim_end_matches(']');
        let words: Vec<&str> = inner.split_whitespace().collect();
        words.join(" ") == header.trim_start_matches('[').trim_end_matches(']')
    };
    let body: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let mut out = String::new();
    let mut found = false;
    let mut skipping = false;
    for line in text.lines() {
        if is_header(line) {
            skipping = same(line) && !found;
            if skipping {
                found = true;
                out.push_str(&header);
                out.push('\n');
                out.push_str(&body);
                continue;
            }
        }
        if skipping {
            // Keep blank lines and comments that separate sections; drop the old keys.
            if line.trim().is_empty() {
                out.push('\n');
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !found {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&header);
        out.push('\n');
        out.push_str(&body);
    }
    out
}

/// The `credential_process` command for `account`: this very binary, quoted when its path has spaces.
pub fn credential_process(exe: &str, account: &str, config: Option<&std::path::Path>) -> String {
    let quote = |s: &str| if s.contains(char::is_whitespace) { format!("\"{s}\"") } else { s.to_owned() };
    let mut cmd = format!("{} credentials --account {account}", quote(exe));
    if let Some(c) = config {
        cmd.push_str(&format!(" --config {}", quote(&c.display().to_string())));
    }
    cmd
}

/// The command a profile runs: `portcullis` when the `portcullis` found on `path` (`$PATH`) is
/// this very binary, else this binary's path. The second value is a warning for a binary in a
/// cargo build directory (`.../target/debug/portcullis`), which `cargo clean` removes.
pub fn stable_command(exe: &std::path::Path, path: Option<&std::ffi::OsStr>) -> (String, Option<String>) {
    let real = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    let this = real(exe);
    let on_path = path
        .map(std::env::split_paths)
        .into_iter()
        .flatten()
        .map(|dir| dir.join("portcullis"))
        .find(|candidate| candidate.is_file());
    if let Some(found) = on_path
        && real(&found) == this
    {
        return ("portcullis".into(), None);
    }
    let text = exe.display().to_string();
    let in_build_dir = exe.components().any(|c| c.as_os_str() == "target")
        && exe.parent().and_then(|p| p.file_name()).is_some_and(|d| d == "debug" || d == "release");
    let warning = in_build_dir.then(|| {
        format!(
            "the profile runs {text}, a build output that `cargo clean` removes; `make install` (or `cargo install \
             --path cli`) puts portcullis on your PATH, then run configure-profile again"
        )
    });
    (text, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portcullis_on_path_is_written_as_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("portcullis");
        std::fs::write(&exe, "").unwrap();
        let path = std::env::join_paths([dir.path().join("nowhere"), bin.clone()]).unwrap();
        assert_eq!(stable_command(&exe, Some(&path)), ("portcullis".into(), None));
        // Not on PATH, and in a cargo build directory: its path, with a warning.
        let built = dir.path().join("target/debug");
        std::fs::create_dir_all(&built).unwrap();
        let other = built.join("portcullis");
        std::fs::write(&other, "").unwrap();
        let (command, warning) = stable_command(&other, Some(&path));
        assert_eq!(command, other.display().to_string());
        assert!(warning.unwrap().contains("make install"));
        assert_eq!(stable_command(&exe, None), (exe.display().to_string(), None));
    }

    fn lines(account: &str) -> Vec<(String, String)> {
        vec![
            ("credential_process".into(), format!("portcullis credentials --account {account}")),
            ("region".into(), "us-east-1".into()),
        ]
    }

    #[test]
    fn adds_then_replaces_only_its_own_section() {
        let original = "# my settings\n[default]\nregion = eu-west-1\n\n[profile other]\nsso_start_url = https://x\n";
        let once = upsert_profile(original, "jit", &lines("111111111111"));
        assert!(once.starts_with(original), "{once}");
        assert!(once.ends_with(
            "[profile jit]\ncredential_process = portcullis credentials --account 111111111111\nregion = us-east-1\n"
        ));
        assert_eq!(upsert_profile(&once, "jit", &lines("111111111111")), once, "idempotent");
        let changed = upsert_profile(&once, "jit", &lines("222222222222"));
        assert!(changed.contains("222222222222") && !changed.contains("111111111111"), "{changed}");
        assert!(changed.contains("[profile other]\nsso_start_url = https://x\n"));
        assert_eq!(changed.matches("[profile jit]").count(), 1);
        // A section in the middle keeps what follows it.
        let middle = upsert_profile("[profile jit]\nregion = x\n\n[profile z]\nregion = y\n", "jit", &lines("1"));
        assert!(middle.contains("[profile z]\nregion = y\n") && !middle.contains("region = x"), "{middle}");
        assert_eq!(upsert_profile("", "jit", &lines("1")).lines().next(), Some("[profile jit]"));
    }

    #[test]
    fn the_command_quotes_paths_with_spaces() {
        assert_eq!(credential_process("/usr/bin/portcullis", "1", None), "/usr/bin/portcullis credentials --account 1");
        assert_eq!(
            credential_process("/Apps/My Tools/portcullis", "1", Some(std::path::Path::new("/c/p.toml"))),
            "\"/Apps/My Tools/portcullis\" credentials --account 1 --config /c/p.toml"
        );
    }
}
