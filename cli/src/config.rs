//! The CLI's own configuration: `~/.config/portcullis/config.toml` (XDG), never the workers' file.
//!
//! The file is `$PORTCULLIS_CLI_CONFIG` when set, else `$XDG_CONFIG_HOME/portcullis/config.toml`,
//! else `~/.config/portcullis/config.toml`; `--config` wins over both. Flags (`--endpoint-url`,
//! `--region`) win over the file. Named profiles (`[profiles.NAME]`, chosen with `--profile` or
//! `$PORTCULLIS_PROFILE`) give an account, a default template and an AWS region for one kind of
//! work; flags win over the profile, the profile over the file's defaults. Every value remembers where it came from, so an error about an
//! unreachable endpoint can say which file or flag to fix. Tokens and credentials live in the cache
//! directory (`$PORTCULLIS_CLI_CACHE`, else `$XDG_CACHE_HOME/portcullis`, else
//! `~/.cache/portcullis`), files mode 0600.

use std::fmt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use portcullis_domain::ids::QueueUrl;
use portcullis_domain::naming::{StackNames, is_valid_prefix};
use portcullis_domain::{AccountId, TemplateName};
use serde::{Deserialize, Serialize};

/// The configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliConfig {
    /// The OpenID Connect issuer (exactly the `iss` of its tokens).
    pub issuer: String,
    /// The client id `portcullis` logs in as (public client, PKCE).
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Scopes asked for besides `openid` (default `["portcullis"]`, which brings `team` and `groups`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Region of the Portcullis stack.
    pub region: String,
    /// One endpoint for every AWS service (emulators); absent: AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// The stack's `Prefix`: queue and role names derive from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_prefix: Option<String>,
    /// The account the stack lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_account: Option<AccountId>,
    /// Instead of prefix and account: the access-requests queue URL (both are read from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    /// The requester role to assume with the ID token (default `<prefix>-requester` in the stack's account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_role_arn: Option<String>,
    /// The account `--account` defaults to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<AccountId>,
    /// The AWS federation endpoint for `portcullis console`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_url: Option<String>,
    /// Credentials are reissued this long before they expire (seconds; default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_refresh_seconds: Option<u64>,
    /// The ID token is refreshed this long before it expires (seconds; default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_refresh_seconds: Option<u64>,
    /// Ask for `offline_access` (a refresh token) when the provider advertises it (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_access: Option<bool>,
    /// The ID token claim that names a person (default: `preferred_username`, else `email`, else
    /// `name`, else `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name_claim: Option<String>,
    /// Endpoints used instead of discovery's (for providers whose discovery leaves one out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Keep the session and cached credentials in the OS keychain instead of files (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keychain: Option<bool>,
    /// Named profiles, chosen with `--profile NAME` (or `$PORTCULLIS_PROFILE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Profile>,
}

/// One kind of work: which account, which template by default, and which region the AWS tools use.
/// ```toml
/// [profiles.reports]
/// account = "123456789012"
/// template = "bucketRead"
/// region = "eu-west-1"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The account `--account` defaults to (instead of `default_account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// The template `portcullis request` asks for when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateName>,
    /// The AWS region of the commands you run (`exec`, `configure-profile`); not the stack's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn default_client_id() -> String {
    "portcullis-cli".into()
}

fn default_scopes() -> Vec<String> {
    vec!["portcullis".into()]
}

/// Where a value came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "the {flag} flag"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Default => f.write_str("the default"),
        }
    }
}

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration at {path} ({why}); run `portcullis init` (or pass --config)")]
    Missing { path: PathBuf, why: String },
    #[error("{path} is not a valid portcullis configuration: {message}; fix it or run `portcullis init` again")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("no profile `{name}` in {path} (profiles: {known})")]
    UnknownProfile { name: String, path: PathBuf, known: String },
}

/// The configuration in force: the file plus flags, with sources.
#[derive(Debug, Clone)]
pub struct Effective {
    pub file: CliConfig,
    pub path: PathBuf,
    pub endpoint_url: Option<(String, Source)>,
    pub region: (String, Source),
    pub names: StackNames,
    pub stack_account: AccountId,
    /// The profile chosen with `--profile` / `$PORTCULLIS_PROFILE`, by name.
    pub profile: Option<(String, Profile)>,
}

/// Flags that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home().join(fallback),
    }
}

/// The configuration file's path: `explicit`, else `$PORTCULLIS_CLI_CONFIG`, else XDG.
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os("PORTCULLIS_CLI_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    xdg("XDG_CONFIG_HOME", ".config").join("portcullis/config.toml")
}

/// The cache directory (tokens, credentials).
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("PORTCULLIS_CLI_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    xdg("XDG_CACHE_HOME", ".cache").join("portcullis")
}

impl CliConfig {
    /// Read and check the file at `path`.
    pub fn load(path: &Path) -> Result<CliConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Missing { path: path.to_owned(), why: e.kind().to_string() })?;
        let config: CliConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.to_owned(), message: e.to_string() })?;
        config.check().map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })?;
        Ok(config)
    }

    /// Checks serde cannot express; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            return Err(format!("issuer `{}` must be an http(s) URL", self.issuer));
        }
        if self.client_id.trim().is_empty() {
            return Err("client_id is empty".into());
        }
        if self.region.trim().is_empty() {
            return Err("region is empty".into());
        }
        for (key, value) in self.endpoint_overrides() {
            if let Some(v) = value
                && url::Url::parse(v).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true)
            {
                return Err(format!("{key} `{v}` must be an http(s) URL"));
            }
        }
        if self.display_name_claim.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err("display_name_claim is empty (leave it out for the default)".into());
        }
        for (name, profile) in &self.profiles {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                return Err(format!("profile name `{name}` must be letters, digits, '-', '_' or '.'"));
            }
            if profile.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Err(format!("profiles.{name}.region is empty (leave it out for the default)"));
            }
        }
        self.stack()?;
        Ok(())
    }

    fn endpoint_overrides(&self) -> [(&'static str, Option<&String>); 4] {
        [
            ("authorization_endpoint", self.authorization_endpoint.as_ref()),
            ("token_endpoint", self.token_endpoint.as_ref()),
            ("device_authorization_endpoint", self.device_authorization_endpoint.as_ref()),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
        ]
    }

    /// How to log in, from the file.
    pub fn login_options(&self) -> crate::login::LoginOptions {
        crate::login::LoginOptions {
            scopes: self.scopes.clone(),
            offline_access: self.offline_access.unwrap_or(true),
            display_name_claim: self.display_name_claim.clone(),
            endpoints: crate::login::EndpointOverrides {
                authorization_endpoint: self.authorization_endpoint.clone(),
                token_endpoint: self.token_endpoint.clone(),
                device_authorization_endpoint: self.device_authorization_endpoint.clone(),
                revocation_endpoint: self.revocation_endpoint.clone(),
            },
        }
    }

    /// (names, account) of the stack, from `queue_url` or `stack_prefix` + `stack_account`.
    pub fn stack(&self) -> Result<(StackNames, AccountId), String> {
        if let Some(url) = &self.queue_url {
            let queue = QueueUrl::parse(url).ok_or_else(|| format!("queue_url `{url}` is not an SQS queue URL"))?;
            let prefix = queue.name().strip_suffix("-access-requests").ok_or_else(|| {
                format!("queue_url `{url}` is not a Portcullis access-requests queue (<prefix>-access-requests)")
            })?;
            return Ok((StackNames::new(prefix), queue.account().clone()));
        }
        let prefix = self.stack_prefix.as_deref().ok_or("set stack_prefix and stack_account, or queue_url")?;
        if !is_valid_prefix(prefix) {
            return Err(format!("stack_prefix `{prefix}` must be 3-40 lowercase letters, digits or '-'"));
        }
        let account = self.stack_account.clone().ok_or("set stack_account (the stack's 12-digit account)")?;
        Ok((StackNames::new(prefix), account))
    }

    /// Write the file (creating its directory).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write = |e: String| ConfigError::Write { path: path.to_owned(), message: e };
        let text = toml::to_string_pretty(self).map_err(|e| write(e.to_string()))?;
        let header = "# portcullis CLI configuration (written by `portcullis init`; see `portcullis init --help`).\n";
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| write(e.to_string()))?;
        }
        std::fs::write(path, format!("{header}{text}")).map_err(|e| write(e.to_string()))
    }
}

impl Effective {
    /// The file at `path` with `overrides` applied.
    pub fn resolve(path: PathBuf, overrides: &Overrides) -> Result<Effective, ConfigError> {
        let file = CliConfig::load(&path)?;
        let endpoint_url = match (&overrides.endpoint_url, &file.endpoint_url) {
            (Some(e), _) => Some((e.clone(), Source::Flag("--endpoint-url"))),
            (None, Some(e)) => Some((e.clone(), Source::File(path.clone()))),
            (None, None) => None,
        };
        let region = match &overrides.region {
            Some(r) => (r.clone(), Source::Flag("--region")),
            None => (file.region.clone(), Source::File(path.clone())),
        };
        let (names, stack_account) =
            file.stack().map_err(|message| ConfigError::Invalid { path: path.clone(), message })?;
        let profile = match overrides.profile.as_deref().filter(|p| !p.is_empty()) {
            None => None,
            Some(name) => match file.profiles.get(name) {
                Some(p) => Some((name.to_owned(), p.clone())),
                None => {
                    let known = file.profiles.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
                    return Err(ConfigError::UnknownProfile {
                        name: name.to_owned(),
                        path,
                        known: if known.is_empty() { "none".into() } else { known },
                    });
                }
            },
        };
        Ok(Effective { file, path, endpoint_url, region, names, stack_account, profile })
    }

    /// Where the session and cached credentials are kept (`keychain`).
    pub fn secret_store(&self) -> crate::secrets::SecretStore {
        crate::secrets::SecretStore::for_config(self.file.keychain)
    }

    /// The chosen profile's settings (all empty without one).
    pub fn profile(&self) -> Profile {
        self.profile.as_ref().map(|(_, p)| p.clone()).unwrap_or_default()
    }

    /// The account commands default to: the profile's, else `default_account`.
    pub fn default_account(&self) -> Option<&AccountId> {
        self.profile.as_ref().and_then(|(_, p)| p.account.as_ref()).or(self.file.default_account.as_ref())
    }

    /// The requester role's ARN.
    pub fn requester_role_arn(&self) -> String {
        self.file
            .requester_role_arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:iam::{}:role/{}", self.stack_account, self.names.requester_role()))
    }

    /// Where SQS is, for error messages: the endpoint and its source.
    pub fn sqs_endpoint(&self) -> (String, Source) {
        match &self.endpoint_url {
            Some((e, s)) => (e.clone(), s.clone()),
            None => (format!("https://sqs.{}.amazonaws.com", self.region.0), self.region.1.clone()),
        }
    }

    pub fn credentials_refresh_seconds(&self) -> i64 {
        i64::try_from(self.file.credentials_refresh_seconds.unwrap_or(300)).unwrap_or(300)
    }

    pub fn token_refresh_seconds(&self) -> i64 {
        i64::try_from(self.file.token_refresh_seconds.unwrap_or(60)).unwrap_or(60)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base() -> CliConfig {
        CliConfig {
            issuer: "https://idp.example.com/realms/acme".into(),
            client_id: "portcullis-cli".into(),
            scopes: vec!["portcullis".into()],
            region: "eu-west-1".into(),
            stack_prefix: Some("portcullis-prod".into()),
            stack_account: Some(AccountId::parse("123456789012").unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn the_file_round_trips_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis/config.toml");
        base().save(&path).unwrap();
        assert_eq!(CliConfig::load(&path).unwrap(), base());
        std::fs::write(&path, "issuer = \"https://x\"\nregion = \"r\"\nstak_prefix = \"p\"\n").unwrap();
        let err = CliConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("stak_prefix") && err.contains("portcullis init"), "{err}");
        let missing = CliConfig::load(&dir.path().join("nope.toml")).unwrap_err().to_string();
        assert!(missing.contains("portcullis init"), "{missing}");
    }

    #[test]
    fn the_stack_comes_from_the_prefix_or_the_queue_url() {
        let (names, account) = base().stack().unwrap();
        assert_eq!(
            (names.access_queue().as_str(), account.as_str()),
            ("portcullis-prod-access-requests", "123456789012")
        );
        let by_url = CliConfig {
            stack_prefix: None,
            stack_account: None,
            queue_url: Some("https://sqs.eu-west-1.amazonaws.com/210987654321/acme-access-requests".into()),
            ..base()
        };
        let (names, account) = by_url.stack().unwrap();
        assert_eq!((names.prefix(), account.as_str()), ("acme", "210987654321"));
        let bad = CliConfig { queue_url: Some("https://sqs/210987654321/other".into()), ..by_url };
        assert!(bad.stack().unwrap_err().contains("access-requests"));
        assert!(CliConfig { stack_account: None, ..base() }.check().unwrap_err().contains("stack_account"));
    }

    #[test]
    fn endpoint_overrides_and_login_options() {
        let options = base().login_options();
        assert!(options.offline_access && options.display_name_claim.is_none());
        let set = CliConfig {
            device_authorization_endpoint: Some("https://idp.example.com/device".into()),
            offline_access: Some(false),
            display_name_claim: Some("email".into()),
            ..base()
        };
        set.check().unwrap();
        let options = set.login_options();
        assert_eq!(options.endpoints.device_authorization_endpoint.as_deref(), Some("https://idp.example.com/device"));
        assert!(!options.offline_access);
        let bad = CliConfig { token_endpoint: Some("idp/token".into()), ..base() };
        assert!(bad.check().unwrap_err().contains("token_endpoint"), "{:?}", bad.check());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        set.save(&path).unwrap();
        assert_eq!(CliConfig::load(&path).unwrap(), set);
    }

    #[test]
    fn a_named_profile_gives_the_account_template_and_region_and_an_unknown_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"issuer = "https://idp.example.com"
region = "eu-west-1"
stack_prefix = "portcullis-prod"
stack_account = "123456789012"
default_account = "111111111111"

[profiles.reports]
account = "222222222222"
template = "bucketRead"
region = "ap-south-1"

[profiles.bare]
"#,
        )
        .unwrap();
        let with = |profile: Option<&str>| {
            Effective::resolve(path.clone(), &Overrides { profile: profile.map(str::to_owned), ..Default::default() })
        };
        let none = with(None).unwrap();
        assert_eq!((none.default_account().unwrap().as_str(), none.profile()), ("111111111111", Profile::default()));
        let reports = with(Some("reports")).unwrap();
        assert_eq!(reports.default_account().unwrap().as_str(), "222222222222");
        assert_eq!(reports.profile().template.unwrap().as_str(), "bucketRead");
        assert_eq!(reports.profile().region.as_deref(), Some("ap-south-1"));
        assert_eq!(reports.region.0, "eu-west-1", "the stack's region is not the profile's");
        let bare = with(Some("bare")).unwrap();
        assert_eq!(bare.default_account().unwrap().as_str(), "111111111111", "a profile without an account");
        let unknown = with(Some("prod")).unwrap_err().to_string();
        assert!(unknown.contains("no profile `prod`") && unknown.contains("bare, reports"), "{unknown}");
        std::fs::write(&path, "issuer = \"https://x\"\nregion = \"r\"\n[profiles.a]\nacount = \"1\"\n").unwrap();
        assert!(CliConfig::load(&path).unwrap_err().to_string().contains("acount"), "unknown keys are refused");
        let bad_name = CliConfig { profiles: [("a b".to_owned(), Profile::default())].into(), ..base() };
        assert!(bad_name.check().unwrap_err().contains("profile name"));
    }

    #[test]
    fn flags_win_and_sources_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        CliConfig { endpoint_url: Some("http://127.0.0.1:4566".into()), ..base() }.save(&path).unwrap();
        let e = Effective::resolve(path.clone(), &Overrides::default()).unwrap();
        assert_eq!(e.sqs_endpoint(), ("http://127.0.0.1:4566".into(), Source::File(path.clone())));
        assert_eq!(e.requester_role_arn(), "arn:aws:iam::123456789012:role/portcullis-prod-requester");
        let o = Overrides {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            region: Some("us-west-2".into()),
            profile: None,
        };
        let e = Effective::resolve(path, &o).unwrap();
        assert_eq!(e.sqs_endpoint().1.to_string(), "the --endpoint-url flag");
        assert_eq!(e.region.0, "us-west-2");
    }
}
