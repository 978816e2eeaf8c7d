//! Typed settings: one TOML file, then `PORTCULLIS__SECTION__KEY` environment overrides.
//!
//! The file is `$PORTCULLIS_CONFIG` when set, else the embedded default (`config/local.toml`, which
//! targets a local emulator). Every section refuses unknown keys, and the error names them, so a typo
//! never silently falls back to a default. Environment overrides use `__` for nesting, e.g.
//! `PORTCULLIS__WORKER__CONCURRENCY=16` or `PORTCULLIS__AWS__ENDPOINT_URL=http://127.0.0.1:4566`.
//! Keys are case-insensitive in the environment. The full reference is in the README.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use portcullis_domain::AccountId;
use portcullis_domain::guardrails::Guardrails;
use serde::Deserialize;

/// The embedded default configuration (`config/local.toml`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/local.toml");

/// A configuration problem, with the key and the source that caused it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration error: {key}: {message}")]
    Invalid { key: String, message: String },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Load(Box::new(e))
    }
}

/// Everything a Portcullis binary can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where AWS is.
    #[serde(default)]
    pub aws: AwsSettings,
    /// Which deployed stack to use.
    pub stack: StackSettings,
    /// Who may speak to Portcullis.
    pub identity: IdentitySettings,
    /// Access pipeline rules.
    #[serde(default)]
    pub access: AccessSettings,
    /// AWS accounts Portcullis brokers access to, keyed by 12-digit account id.
    #[serde(default)]
    pub accounts: BTreeMap<AccountId, AccountSettings>,
    /// Queue consumer tuning.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// Logs, metrics and traces.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Posture worker settings.
    #[serde(default)]
    pub posture: PostureSettings,
    /// Trusted producers (a Slack bot, the HR system), recognised by their SQS `SenderId`. With none,
    /// anyone may send the access kinds with their own ID token and nobody the directory kinds.
    #[serde(default)]
    pub producers: Vec<portcullis_domain::producers::Producer>,
}

/// AWS SDK settings. Credentials come from the SDK's default chain (environment, profile, ECS/EC2
/// role), never from this file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Region of the Portcullis stack. Default: the SDK's (AWS_REGION), else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint for every AWS service, for emulators (LocalStack, moto). Default: the SDK's
    /// (`AWS_ENDPOINT_URL`), else real AWS.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// Names of the deployed resources derive from the CloudFormation stack's `Prefix` parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSettings {
    /// The `Prefix` the stack was deployed with (lowercase letters, digits, `-`).
    pub prefix: String,
}

/// OIDC ID-token verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// JWKS URL of the issuer (fetched and cached). At most one of `jwks_url` and `jwks_file`; with
    /// neither, the `jwks_uri` of the issuer's `/.well-known/openid-configuration` (OIDC Discovery).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// JWKS file (read at start and re-read when a key id is unknown).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Claim holding the user name. Default `sub`.
    #[serde(default = "defaults::user_claim")]
    pub user_claim: String,
    /// Claims tried, in order, for the name people read next to the user (in approvals, grant replies
    /// and audit events); the first holding a non-empty string wins, else the user itself. Never a key.
    /// Default `["preferred_username", "email", "name"]`.
    #[serde(default = "defaults::display_name_claims")]
    pub display_name_claims: Vec<String>,
    /// Claim holding the team. Default `team`.
    #[serde(default = "defaults::team_claim")]
    pub team_claim: String,
    /// Claim holding the groups (a list of strings). Default `groups`.
    #[serde(default = "defaults::groups_claim")]
    pub groups_claim: String,
    /// Clock skew allowed on `exp`/`nbf`, seconds. Default 60.
    #[serde(default = "defaults::leeway")]
    pub leeway_seconds: u64,
    /// How long a fetched JWKS is trusted before refetching, seconds. Default 300.
    #[serde(default = "defaults::jwks_cache")]
    pub jwks_cache_seconds: u64,
    /// Accepted signature algorithms. Default `["RS256", "ES256", "EdDSA"]`.
    #[serde(default = "defaults::algorithms")]
    pub algorithms: Vec<String>,
    /// Longest lifetime (`exp - iat`) of an accepted token, seconds. Default 86,400 (24 h).
    #[serde(default = "defaults::max_token_lifetime")]
    pub max_token_lifetime_seconds: u64,
}

/// Access pipeline rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSettings {
    /// Members of any of these groups may put and delete templates. Default `["portcullis-admins"]`.
    #[serde(default = "defaults::admin_groups")]
    pub admin_groups: Vec<String>,
    /// Glob patterns (`*`) over queue *names* a reply may be sent to. Default: `<prefix>-reply-*`.
    #[serde(default)]
    pub reply_queue_names: Vec<String>,
    /// Accounts that may own reply queues. Default: the account of the request queue.
    #[serde(default)]
    pub reply_queue_accounts: Vec<AccountId>,
    /// When non-empty, only messages whose SQS `SenderId` is listed are accepted.
    #[serde(default)]
    pub allowed_sender_ids: Vec<String>,
    /// Largest accepted request, in bytes. Default 262,144 (SQS's historic cap; SQS now allows 1 MiB).
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// Actions no template may allow. Default `["*", "iam:*", "sts:*", "organizations:*", "account:*"]`.
    #[serde(default = "defaults::denied_actions")]
    pub denied_actions: Vec<String>,
    /// ARN globs no template may grant, besides the stack's own resources (which are always
    /// protected): the workers' own role, KMS keys the stack's data is encrypted with, ...
    #[serde(default)]
    pub protected_resources: Vec<String>,
    /// Upper bound on any credentials' lifetime, seconds. Default 3600 (the role-chaining cap).
    #[serde(default = "defaults::max_credentials")]
    pub max_credentials_seconds: u64,
    /// How long idempotency records are kept, seconds. Default 7 days.
    #[serde(default = "defaults::idempotency_ttl")]
    pub idempotency_ttl_seconds: u64,
    /// Most characters the session-revocation policy on a broker role may take (IAM allows 10,240
    /// across a role's inline policies; the ceiling takes the rest). Default 8,192.
    #[serde(default = "defaults::revocation_policy_max_chars")]
    pub revocation_policy_max_chars: usize,
    /// A reply queue must be the requester's own, `<prefix>-reply-<sub>` (the queue the requester
    /// role's IAM policy binds to the token's `sub`). Default true; turn off only for trusted
    /// producers that share one reply queue (a bot answering for many people).
    #[serde(default = "defaults::yes")]
    pub bind_reply_queue_to_subject: bool,
    /// Members of any of these groups may read the posture evidence (`posture.status`).
    /// Default `["portcullis-admins", "security"]`.
    #[serde(default = "defaults::posture_reader_groups")]
    pub posture_reader_groups: Vec<String>,
    /// Credentials are only sent sealed to the request's `reply_key` (HPKE); a request without one
    /// is refused with `reply_key_required`. Default true.
    #[serde(default = "defaults::yes")]
    pub require_sealed_credentials: bool,
    /// How long a grant waits for its approvals before it lapses. Default 86,400 (a day).
    #[serde(default = "defaults::pending_ttl")]
    pub pending_ttl_seconds: u64,
    /// How long after a break-glass request its review is due. Default 86,400 (a day).
    #[serde(default = "defaults::break_glass_review")]
    pub break_glass_review_seconds: u64,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            admin_groups: defaults::admin_groups(),
            reply_queue_names: Vec::new(),
            reply_queue_accounts: Vec::new(),
            allowed_sender_ids: Vec::new(),
            max_message_bytes: defaults::max_message_bytes(),
            denied_actions: defaults::denied_actions(),
            protected_resources: Vec::new(),
            max_credentials_seconds: defaults::max_credentials(),
            idempotency_ttl_seconds: defaults::idempotency_ttl(),
            revocation_policy_max_chars: defaults::revocation_policy_max_chars(),
            bind_reply_queue_to_subject: true,
            posture_reader_groups: defaults::posture_reader_groups(),
            require_sealed_credentials: true,
            pending_ttl_seconds: defaults::pending_ttl(),
            break_glass_review_seconds: defaults::break_glass_review(),
        }
    }
}

/// One brokered account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// The broker role assumed with the session policy; its permissions are the ceiling.
    pub role_arn: String,
    /// The role's `MaxSessionDuration`, seconds (3600–43200). Default 3600.
    #[serde(default = "defaults::max_session")]
    pub max_session_duration_seconds: u64,
    /// A human name for logs and the CLI.
    #[serde(default)]
    pub name: Option<String>,
    /// A role in that account the worker assumes to write the session-revocation policy on the
    /// broker role (`iam:GetRolePolicy` and `iam:PutRolePolicy` on it). Not needed for the worker's
    /// own account.
    #[serde(default)]
    pub revoker_role_arn: Option<String>,
}

/// SQS consumer tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Messages handled at once per consumer. Default 8.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Visibility timeout requested on receive and renewed by the heartbeat, seconds. Default 60.
    #[serde(default = "defaults::visibility")]
    pub visibility_timeout_seconds: u64,
    /// Long-poll wait, seconds (0–20). Default 20.
    #[serde(default = "defaults::wait")]
    pub wait_seconds: u64,
    /// First retry delay for a retryable failure, milliseconds; doubles per attempt. Default 2000.
    #[serde(default = "defaults::backoff_base")]
    pub retry_backoff_base_ms: u64,
    /// Longest retry delay, seconds. Default 300.
    #[serde(default = "defaults::backoff_max")]
    pub retry_backoff_max_seconds: u64,
    /// How long shutdown waits for in-flight messages, seconds. Default 25.
    #[serde(default = "defaults::grace")]
    pub shutdown_grace_seconds: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: defaults::concurrency(),
            visibility_timeout_seconds: defaults::visibility(),
            wait_seconds: defaults::wait(),
            retry_backoff_base_ms: defaults::backoff_base(),
            retry_backoff_max_seconds: defaults::backoff_max(),
            shutdown_grace_seconds: defaults::grace(),
        }
    }
}

impl WorkerSettings {
    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(self.visibility_timeout_seconds)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// Logs, metrics and traces. OTLP export is on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `service.name` resource attribute. Default `portcullis`.
    #[serde(default = "defaults::service_name")]
    pub service_name: String,
    /// `text` or `json`. Default `text`.
    #[serde(default = "defaults::log_format")]
    pub log_format: String,
    /// `tracing` filter when `RUST_LOG` is unset. Default `info`.
    #[serde(default = "defaults::log_filter")]
    pub log_filter: String,
    /// Metric export interval, seconds. Default 10.
    #[serde(default = "defaults::export_interval")]
    pub metric_export_interval_seconds: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            service_name: defaults::service_name(),
            log_format: defaults::log_format(),
            log_filter: defaults::log_filter(),
            metric_export_interval_seconds: defaults::export_interval(),
        }
    }
}

/// Posture worker settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostureSettings {
    /// Seconds between full scans of each account and region. Default 60.
    #[serde(default = "defaults::scan_interval")]
    pub scan_interval_seconds: u64,
    /// Regions to scan; `["all"]` means every region enabled in the account. Default: the stack's.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Other accounts to scan, each through a read-only role. The worker's own account is always
    /// scanned with its own credentials.
    #[serde(default)]
    pub accounts: Vec<PostureAccount>,
    /// Quiet period after a change event before the targeted rescan, milliseconds. Default 1500.
    #[serde(default = "defaults::debounce")]
    pub debounce_ms: u64,
    /// An access key is stale when older than this many days (IAM.3). Default 90.
    #[serde(default = "defaults::key_max_age")]
    pub access_key_max_age_days: u64,
    /// Most AWS calls a scan makes at once. Default 16.
    #[serde(default = "defaults::scan_concurrency")]
    pub scan_concurrency: usize,
    /// Put `Posture Violation` events on the stack's bus when a control turns to fail. Default true.
    #[serde(default = "defaults::yes")]
    pub publish_violations: bool,
    /// Config.1 requires AWS Config to record with its service-linked role, as Security Hub does.
    /// Default true.
    #[serde(default = "defaults::yes")]
    pub config_require_service_linked_role: bool,
}

impl Default for PostureSettings {
    fn default() -> Self {
        Self {
            scan_interval_seconds: defaults::scan_interval(),
            regions: Vec::new(),
            accounts: Vec::new(),
            debounce_ms: defaults::debounce(),
            access_key_max_age_days: defaults::key_max_age(),
            scan_concurrency: defaults::scan_concurrency(),
            publish_violations: true,
            config_require_service_linked_role: true,
        }
    }
}

/// Another account to scan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostureAccount {
    /// 12-digit account id.
    pub account_id: AccountId,
    /// Read-only role the worker assumes in that account.
    pub role_arn: String,
}

mod defaults {
    pub(super) fn user_claim() -> String {
        "sub".into()
    }
    pub(super) fn display_name_claims() -> Vec<String> {
        portcullis_domain::identity::DEFAULT_DISPLAY_NAME_CLAIMS.iter().map(|c| c.to_string()).collect()
    }
    pub(super) fn team_claim() -> String {
        "team".into()
    }
    pub(super) fn groups_claim() -> String {
        "groups".into()
    }
    pub(super) fn leeway() -> u64 {
        60
    }
    pub(super) fn jwks_cache() -> u64 {
        300
    }
    pub(super) fn algorithms() -> Vec<String> {
        vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
    }
    pub(super) fn max_token_lifetime() -> u64 {
        86_400
    }
    pub(super) fn admin_groups() -> Vec<String> {
        vec!["portcullis-admins".into()]
    }
    pub(super) fn max_message_bytes() -> usize {
        256 * 1024
    }
    pub(super) fn denied_actions() -> Vec<String> {
        portcullis_domain::guardrails::Guardrails::DEFAULT_DENIED.iter().map(|s| s.to_string()).collect()
    }
    pub(super) fn posture_reader_groups() -> Vec<String> {
        vec!["portcullis-admins".into(), "security".into()]
    }
    pub(super) fn max_credentials() -> u64 {
        3600
    }
    pub(super) fn idempotency_ttl() -> u64 {
        7 * 24 * 3600
    }
    pub(super) fn pending_ttl() -> u64 {
        24 * 3600
    }
    pub(super) fn break_glass_review() -> u64 {
        24 * 3600
    }
    pub(super) fn revocation_policy_max_chars() -> usize {
        8192
    }
    pub(super) fn max_session() -> u64 {
        3600
    }
    pub(super) fn concurrency() -> usize {
        8
    }
    pub(super) fn visibility() -> u64 {
        60
    }
    pub(super) fn wait() -> u64 {
        20
    }
    pub(super) fn backoff_base() -> u64 {
        2000
    }
    pub(super) fn backoff_max() -> u64 {
        300
    }
    pub(super) fn grace() -> u64 {
        25
    }
    pub(super) fn service_name() -> String {
        "portcullis".into()
    }
    pub(super) fn log_format() -> String {
        "text".into()
    }
    pub(super) fn log_filter() -> String {
        "info".into()
    }
    pub(super) fn export_interval() -> u64 {
        10
    }
    pub(super) fn scan_interval() -> u64 {
        60
    }
    pub(super) fn debounce() -> u64 {
        1500
    }
    pub(super) fn key_max_age() -> u64 {
        90
    }
    pub(super) fn scan_concurrency() -> usize {
        16
    }
    pub(super) fn yes() -> bool {
        true
    }
}

impl Settings {
    /// Load from `$PORTCULLIS_CONFIG` (or the embedded default) and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        match std::env::var_os("PORTCULLIS_CONFIG") {
            Some(path) => Self::load_from(Some(Path::new(&path))),
            None => Self::load_from(None),
        }
    }

    /// Load from `path` (or the embedded default when `None`) and the environment.
    pub fn load_from(path: Option<&Path>) -> Result<Self, ConfigError> {
        let base = match path {
            Some(p) => {
                if !p.exists() {
                    return Err(ConfigError::Invalid {
                        key: "PORTCULLIS_CONFIG".into(),
                        message: format!("file {} does not exist", p.display()),
                    });
                }
                Figment::from(Toml::file(p))
            }
            None => Figment::from(Toml::string(EMBEDDED_DEFAULT)),
        };
        let settings: Settings = base.merge(Env::prefixed("PORTCULLIS__").split("__")).extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parse settings from TOML text alone (tests and tools).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let settings: Settings = Figment::from(Toml::string(text)).extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { key: key.into(), message };
        if !portcullis_domain::naming::is_valid_prefix(&self.stack.prefix) {
            return Err(invalid(
                "stack.prefix",
                format!("`{}` must be 3-40 lowercase letters, digits or '-'", self.stack.prefix),
            ));
        }
        if self.identity.jwks_url.is_some() && self.identity.jwks_file.is_some() {
            return Err(invalid(
                "identity",
                "set at most one of jwks_url and jwks_file (neither: discovered from the issuer)".into(),
            ));
        }
        for (account, a) in &self.accounts {
            if !a.role_arn.starts_with("arn:") || !a.role_arn.contains(&format!(":{account}:role/")) {
                return Err(invalid(
                    &format!("accounts.{account}.role_arn"),
                    format!("`{}` must be a role ARN in account {account}", a.role_arn),
                ));
            }
            if let Some(revoker) = &a.revoker_role_arn
                && (!revoker.starts_with("arn:") || !revoker.contains(&format!(":{account}:role/")))
            {
                return Err(invalid(
                    &format!("accounts.{account}.revoker_role_arn"),
                    format!(
                        "`{revoker}` must be a role ARN in account {account}: sessions in {account} are revoked on \
                         its own broker role, with its own credentials"
                    ),
                ));
            }
            if !(3600..=43200).contains(&a.max_session_duration_seconds) {
                return Err(invalid(
                    &format!("accounts.{account}.max_session_duration_seconds"),
                    "must be between 3600 and 43200 (IAM's range for MaxSessionDuration)".into(),
                ));
            }
        }
        if !(1024..=10_240).contains(&self.access.revocation_policy_max_chars) {
            return Err(invalid("access.revocation_policy_max_chars", "must be between 1,024 and 10,240".into()));
        }
        for (i, p) in self.producers.iter().enumerate() {
            if p.name.trim().is_empty() || p.sender_ids.is_empty() || p.kinds.is_empty() {
                return Err(invalid(&format!("producers[{i}]"), "needs a name, sender_ids and kinds".into()));
            }
        }
        if !(1..=30 * 24 * 3600).contains(&self.access.pending_ttl_seconds) {
            return Err(invalid("access.pending_ttl_seconds", "must be between 1 and 2,592,000 (30 days)".into()));
        }
        if !(1..=30 * 24 * 3600).contains(&self.access.break_glass_review_seconds) {
            return Err(invalid(
                "access.break_glass_review_seconds",
                "must be between 1 and 2,592,000 (30 days)".into(),
            ));
        }
        if self.access.max_credentials_seconds < 900 {
            return Err(invalid("access.max_credentials_seconds", "must be at least 900 (STS's minimum)".into()));
        }
        Guardrails::new(&self.access.denied_actions, &self.own_resources())
            .map_err(|e| invalid("access.denied_actions / access.protected_resources", e.0))?;
        if self.worker.concurrency == 0 {
            return Err(invalid("worker.concurrency", "must be at least 1".into()));
        }
        if self.worker.wait_seconds > 20 {
            return Err(invalid("worker.wait_seconds", "SQS long polls at most 20 seconds".into()));
        }
        if !(10..=43200).contains(&self.worker.visibility_timeout_seconds) {
            return Err(invalid("worker.visibility_timeout_seconds", "must be between 10 and 43200".into()));
        }
        if !matches!(self.telemetry.log_format.as_str(), "text" | "json") {
            return Err(invalid("telemetry.log_format", "must be `text` or `json`".into()));
        }
        if self.posture.scan_interval_seconds < 1 {
            return Err(invalid("posture.scan_interval_seconds", "must be at least 1 (60 is the default)".into()));
        }
        if self.posture.scan_concurrency == 0 {
            return Err(invalid("posture.scan_concurrency", "must be at least 1".into()));
        }
        Ok(())
    }

    /// Every resource no template may grant: the stack's own and `access.protected_resources`.
    pub fn own_resources(&self) -> Vec<String> {
        let mut own = portcullis_domain::naming::StackNames::new(&self.stack.prefix).own_resources();
        own.extend(self.access.protected_resources.iter().cloned());
        own
    }

    /// Reply queue name globs, defaulting to `<prefix>-reply-*`.
    pub fn reply_queue_patterns(&self) -> Vec<String> {
        if self.access.reply_queue_names.is_empty() {
            vec![format!("{}-reply-*", self.stack.prefix)]
        } else {
            self.access.reply_queue_names.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_loads() {
        let s = Settings::from_toml(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(s.stack.prefix, "portcullis-local");
        assert!(s.accounts.contains_key("123456789012"));
        assert_eq!(s.posture.regions, vec!["us-east-1"]);
        assert_eq!(s.worker.wait_seconds, 20);
    }

    #[test]
    fn unknown_keys_are_named() {
        let doc = r#"
            [stack]
            prefix = "p-test"
            [identity]
            issuer = "i"
            audience = "a"
            jwks_file = "x.json"
            [worker]
            concurency = 4
        "#;
        let err = Settings::from_toml(doc).unwrap_err().to_string();
        assert!(err.contains("concurency"), "{err}");
    }

    #[test]
    fn account_keys_must_be_account_ids() {
        let doc = r#"
            [stack]
            prefix = "p-test"
            [identity]
            issuer = "i"
            audience = "a"
            jwks_file = "x.json"
            [accounts.12345]
            role_arn = "arn:aws:iam::12345:role/x"
        "#;
        let err = Settings::from_toml(doc).unwrap_err().to_string();
        assert!(err.contains("12-digit"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let doc = r#"
            [stack]
            prefix = "p-test"
            [identity]
            issuer = "i"
            audience = "a"
            jwks_file = "x.json"
            [accounts.123456789012]
            role_arn = "arn:aws:iam::999999999999:role/x"
        "#;
        let err = Settings::from_toml(doc).unwrap_err().to_string();
        assert!(err.contains("accounts.123456789012.role_arn"), "{err}");
        let other_accounts_revoker = doc.replace(
            "999999999999:role/x\"",
            "123456789012:role/x\"\nrevoker_role_arn = \"arn:aws:iam::999999999999:role/r\"",
        );
        let err = Settings::from_toml(&other_accounts_revoker).unwrap_err().to_string();
        assert!(err.contains("accounts.123456789012.revoker_role_arn"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn environment_overrides_nest_with_double_underscores() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PORTCULLIS__WORKER__CONCURRENCY", "3");
            jail.set_env("PORTCULLIS__STACK__PREFIX", "other-stack");
            let s = Settings::load_from(None).map_err(|e| e.to_string())?;
            assert_eq!(s.worker.concurrency, 3);
            assert_eq!(s.stack.prefix, "other-stack");
            jail.set_env("PORTCULLIS__WORKER__TYPO", "1");
            let err = Settings::load_from(None).unwrap_err().to_string();
            assert!(err.contains("typo"), "{err}");
            Ok(())
        });
    }
}
