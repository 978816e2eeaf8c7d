//! Who is asking: OIDC ID-token verification, and the local development issuer.
//!
//! The requester of every message is whoever a verified ID token says, never a name in the body. A
//! token is accepted when its signature verifies against a key of the configured issuer's JWKS (looked
//! up by `kid`), with an allowed algorithm that matches the key, and `iss`, `aud`, `exp` (and `nbf`
//! when present) check out. The JWKS comes from a URL (cached, refetched when stale or when a token
//! names an unknown `kid`, at most every 30 s) or from a file.
//!
//! A JWKS that cannot be fetched is *not* the requester's fault: it surfaces as
//! [`IdentityError::Unavailable`] so the message is retried rather than refused.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;

use crate::config::IdentitySettings;
use crate::error::{ErrorCode, RequestError};

/// Shortest interval between two JWKS refetches triggered by unknown key ids.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// A verified requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// The configured user claim (default `sub`).
    pub user: String,
    pub team: Option<String>,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn in_any_group(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdentityError {
    /// The token is missing, malformed, expired or not from the issuer.
    #[error("{0}")]
    Unauthenticated(String),
    /// The issuer's keys could not be loaded; retry later.
    #[error("identity keys unavailable: {0}")]
    Unavailable(String),
}

impl IdentityError {
    /// The reply for a refused token. `Unavailable` is retried by the caller, not answered.
    pub fn to_request_error(&self) -> RequestError {
        match self {
            IdentityError::Unauthenticated(why) => RequestError::new(
                ErrorCode::Unauthenticated,
                format!("{why}; send a current ID token from the configured issuer in identity_token"),
            ),
            IdentityError::Unavailable(why) => RequestError::new(
                ErrorCode::Unavailable,
                format!("the identity provider's keys could not be loaded ({why}); try again later"),
            ),
        }
    }
}

#[derive(Debug)]
enum JwksSource {
    Url(String),
    File(PathBuf),
}

#[derive(Debug, Default)]
struct KeyCache {
    set: Option<JwkSet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Verifies ID tokens against one issuer.
#[derive(Debug)]
pub struct TokenVerifier {
    settings: IdentitySettings,
    algorithms: Vec<Algorithm>,
    source: JwksSource,
    cache: RwLock<KeyCache>,
    http: reqwest::Client,
}

impl TokenVerifier {
    /// Build a verifier. Keys are loaded on first use.
    pub fn new(settings: IdentitySettings) -> Result<Self, IdentityError> {
        let algorithms = settings
            .algorithms
            .iter()
            .map(|a| Algorithm::from_str(a).map_err(|_| IdentityError::Unavailable(format!("unknown algorithm `{a}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.iter().any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) {
            return Err(IdentityError::Unavailable("HMAC algorithms cannot be used with a JWKS".into()));
        }
        let source = match (&settings.jwks_url, &settings.jwks_file) {
            (Some(url), _) => JwksSource::Url(url.clone()),
            (None, Some(file)) => JwksSource::File(file.clone()),
            (None, None) => return Err(IdentityError::Unavailable("no JWKS source configured".into())),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| IdentityError::Unavailable(e.to_string()))?;
        Ok(Self { settings, algorithms, source, cache: RwLock::new(KeyCache::default()), http })
    }

    /// Verify `token` and return who it names.
    pub async fn verify(&self, token: Option<&str>) -> Result<Identity, IdentityError> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| IdentityError::Unauthenticated("the message carries no identity token".into()))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| IdentityError::Unauthenticated("the identity token is not a well-formed JWT".into()))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(IdentityError::Unauthenticated(format!(
                "the identity token is signed with {:?}, which is not accepted",
                header.alg
            )));
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        if let Some(key_alg) = jwk.common.key_algorithm {
            // Both enums name algorithms by their JOSE names (`EdDSA`, `RS256`, ...).
            if format!("{key_alg:?}") != format!("{:?}", header.alg) {
                return Err(IdentityError::Unauthenticated(
                    "the identity token's algorithm does not match its key".into(),
                ));
            }
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| IdentityError::Unavailable(format!("the issuer's key cannot be used: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.settings.leeway_seconds;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the identity token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the identity token is not valid yet".to_owned(),
                ErrorKind::InvalidIssuer => "the identity token is from another issuer".to_owned(),
                ErrorKind::InvalidAudience => "the identity token is for another audience".to_owned(),
                ErrorKind::InvalidSignature => "the identity token's signature does not verify".to_owned(),
                ErrorKind::MissingRequiredClaim(c) => format!("the identity token has no `{c}` claim"),
                _ => format!("the identity token is invalid ({e})"),
            };
            IdentityError::Unauthenticated(why)
        })?;
        self.identity_from_claims(&data.claims)
    }

    fn identity_from_claims(&self, claims: &Map<String, Value>) -> Result<Identity, IdentityError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let user = text(&self.settings.user_claim).filter(|u| !u.is_empty()).ok_or_else(|| {
            IdentityError::Unauthenticated(format!("the identity token has no `{}` claim", self.settings.user_claim))
        })?;
        if user.len() > 256 || user.chars().any(char::is_control) {
            return Err(IdentityError::Unauthenticated("the user claim is not a usable name".into()));
        }
        let groups = match claims.get(&self.settings.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(Identity {
            issuer: text("iss").unwrap_or_default(),
            subject: text("sub").unwrap_or_default(),
            user,
            team: text(&self.settings.team_claim),
            groups,
        })
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<Jwk, IdentityError> {
        let ttl = Duration::from_secs(self.settings.jwks_cache_seconds);
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched_at.is_some_and(|t| t.elapsed() < ttl);
            if let (true, Some(set)) = (fresh, &cache.set)
                && let Some(jwk) = find(set, kid)
            {
                return Ok(jwk);
            }
        }
        // Stale, missing, or an unknown kid: refetch, at most once per MIN_REFRESH_INTERVAL whatever
        // the reason (an issuer that is down is not asked again for every token; the cached keys
        // keep working meanwhile), then look again.
        let mut cache = self.cache.write().await;
        let may_retry = cache.last_attempt.is_none_or(|t| t.elapsed() >= MIN_REFRESH_INTERVAL);
        if may_retry {
            cache.last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(set) => {
                    cache.set = Some(set);
                    cache.fetched_at = Some(Instant::now());
                }
                Err(e) if cache.set.is_none() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the cached keys"),
            }
        }
        let set = cache.set.as_ref().ok_or_else(|| IdentityError::Unavailable("no keys loaded".into()))?;
        find(set, kid).ok_or_else(|| {
            IdentityError::Unauthenticated(match kid {
                Some(kid) => format!("the identity token's key `{kid}` is not one of the issuer's"),
                None => "the identity token names no key id and the issuer has several keys".into(),
            })
        })
    }

    async fn fetch(&self) -> Result<JwkSet, IdentityError> {
        let text = match &self.source {
            JwksSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| IdentityError::Unavailable(format!("cannot read {}: {e}", path.display())))?,
            JwksSource::Url(url) => {
                let resp = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| IdentityError::Unavailable(format!("cannot fetch {url}: {e}")))?;
                resp.text().await.map_err(|e| IdentityError::Unavailable(format!("cannot read {url}: {e}")))?
            }
        };
        serde_json::from_str(&text).map_err(|e| IdentityError::Unavailable(format!("the JWKS is not valid: {e}")))
    }
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

/// The local development issuer: an Ed25519 key and its JWKS in a directory, used by `make run` and
/// the tests so the real verification path is exercised without an identity provider.
pub mod dev {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    pub const KEY_FILE: &str = "signing-key.pem";
    pub const JWKS_FILE: &str = "jwks.json";

    /// Generate a key pair into `dir` (created if needed) unless one is there already.
    /// Returns the JWKS path.
    pub fn init(dir: &Path) -> anyhow::Result<PathBuf> {
        let key_path = dir.join(KEY_FILE);
        let jwks_path = dir.join(JWKS_FILE);
        if key_path.exists() && jwks_path.exists() {
            return Ok(jwks_path);
        }
        std::fs::create_dir_all(dir)?;
        let (pem, jwks) = generate()?;
        write_private(&key_path, pem.as_bytes())?;
        std::fs::write(&jwks_path, serde_json::to_string_pretty(&jwks)?)?;
        Ok(jwks_path)
    }

    /// A fresh key: (PKCS#8 PEM private key, JWKS with its public half).
    pub fn generate() -> anyhow::Result<(String, Value)> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("key generation failed"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let kid = format!("dev-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk)?);
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let jwks =
            json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" }] });
        Ok((pem, jwks))
    }

    #[cfg(unix)]
    fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        f.write_all(bytes)
    }

    #[cfg(not(unix))]
    fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, bytes)
    }

    /// What to put in a development token.
    #[derive(Debug, Clone)]
    pub struct DevClaims {
        pub issuer: String,
        pub audience: String,
        pub user: String,
        pub team: Option<String>,
        pub groups: Vec<String>,
        pub ttl: Duration,
    }

    /// Sign a token with the key in `pem` for the first key id of `jwks`.
    pub fn mint_with(pem: &str, jwks: &Value, claims: &DevClaims) -> anyhow::Result<String> {
        let kid = jwks["keys"][0]["kid"].as_str().ok_or_else(|| anyhow::anyhow!("the JWKS has no kid"))?;
        let key = EncodingKey::from_ed_pem(pem.as_bytes())?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let now = chrono::Utc::now().timestamp();
        let mut body = json!({
            "iss": claims.issuer,
            "aud": claims.audience,
            "sub": claims.user,
            "iat": now,
            "nbf": now - 5,
            "exp": now + claims.ttl.as_secs() as i64,
            "groups": claims.groups,
        });
        if let Some(team) = &claims.team {
            body["team"] = json!(team);
        }
        Ok(jsonwebtoken::encode(&header, &body, &key)?)
    }

    /// Sign a token with the key in `dir`.
    pub fn mint(dir: &Path, claims: &DevClaims) -> anyhow::Result<String> {
        let pem = std::fs::read_to_string(dir.join(KEY_FILE)).map_err(|e| {
            anyhow::anyhow!("cannot read {}: {e}; run `portcullis dev-issuer init` first", dir.join(KEY_FILE).display())
        })?;
        let jwks: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(JWKS_FILE))?)?;
        mint_with(&pem, &jwks, claims)
    }
}

#[cfg(test)]
mod tests {
    use super::dev::*;
    use super::*;

    fn settings(jwks_file: PathBuf) -> IdentitySettings {
        IdentitySettings {
            issuer: "https://issuer.test".into(),
            audience: "portcullis".into(),
            jwks_url: None,
            jwks_file: Some(jwks_file),
            user_claim: "sub".into(),
            team_claim: "team".into(),
            groups_claim: "groups".into(),
            leeway_seconds: 0,
            jwks_cache_seconds: 300,
            algorithms: vec!["EdDSA".into(), "RS256".into()],
        }
    }

    fn claims(user: &str) -> DevClaims {
        DevClaims {
            issuer: "https://issuer.test".into(),
            audience: "portcullis".into(),
            user: user.into(),
            team: Some("payments".into()),
            groups: vec!["eng".into()],
            ttl: Duration::from_secs(300),
        }
    }

    #[tokio::test]
    async fn accepts_a_valid_token_and_reads_claims() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = init(dir.path()).unwrap();
        let v = TokenVerifier::new(settings(jwks)).unwrap();
        let token = mint(dir.path(), &claims("alice")).unwrap();
        let id = v.verify(Some(&token)).await.unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.team.as_deref(), Some("payments"));
        assert_eq!(id.groups, vec!["eng"]);
    }

    #[tokio::test]
    async fn refuses_bad_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = init(dir.path()).unwrap();
        let v = TokenVerifier::new(settings(jwks)).unwrap();
        let unauth = |r: Result<Identity, IdentityError>| match r {
            Err(IdentityError::Unauthenticated(why)) => why,
            other => panic!("expected unauthenticated, got {other:?}"),
        };

        assert!(unauth(v.verify(None).await).contains("no identity token"));
        assert!(unauth(v.verify(Some("garbage")).await).contains("well-formed"));

        let mut expired = claims("alice");
        expired.ttl = Duration::ZERO;
        let token = mint(dir.path(), &expired).unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(unauth(v.verify(Some(&token)).await).contains("expired"));

        let mut other_aud = claims("alice");
        other_aud.audience = "someone-else".into();
        assert!(unauth(v.verify(Some(&mint(dir.path(), &other_aud).unwrap())).await).contains("audience"));

        let mut other_iss = claims("alice");
        other_iss.issuer = "https://evil.test".into();
        assert!(unauth(v.verify(Some(&mint(dir.path(), &other_iss).unwrap())).await).contains("issuer"));

        // Signed by a different key that claims the same kid.
        let (evil_pem, _) = generate().unwrap();
        let real_jwks: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(JWKS_FILE)).unwrap()).unwrap();
        let forged = mint_with(&evil_pem, &real_jwks, &claims("alice")).unwrap();
        assert!(unauth(v.verify(Some(&forged)).await).contains("signature"));

        // A tampered payload (user swapped) no longer verifies.
        let token = mint(dir.path(), &claims("alice")).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["sub"] = json!("root");
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
        assert!(unauth(v.verify(Some(&tampered)).await).contains("signature"));

        // alg=none is never accepted.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let none_token = format!("{none_header}.{}.", parts[1]);
        unauth(v.verify(Some(&none_token)).await);
    }

    /// Serves `body` at every path on a loopback port; counts requests.
    fn serve_jwks(body: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}/.well-known/jwks.json", server.server_addr().to_ip().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = request.respond(tiny_http::Response::from_string(body.clone()));
            }
        });
        (url, hits)
    }

    /// A dev issuer in `dir` whose JWKS is served over HTTP, and a verifier that fetches it from
    /// there, caching it `cache_seconds`; with the counter of JWKS requests.
    fn url_verifier(dir: &Path, cache_seconds: u64) -> (TokenVerifier, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let jwks = init(dir).unwrap();
        let (url, hits) = serve_jwks(std::fs::read_to_string(jwks).unwrap());
        let mut s = settings(dir.join("unused"));
        s.jwks_file = None;
        s.jwks_url = Some(url);
        s.jwks_cache_seconds = cache_seconds;
        (TokenVerifier::new(s).unwrap(), hits)
    }

    /// Three users' tokens from the issuer in `dir` all verify.
    async fn three_users_verify(v: &TokenVerifier, dir: &Path) {
        for user in ["alice", "bob", "carol"] {
            let token = mint(dir, &claims(user)).unwrap();
            assert_eq!(v.verify(Some(&token)).await.unwrap().user, user);
        }
    }

    #[tokio::test]
    async fn jwks_from_a_url_is_fetched_once_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let (v, hits) = url_verifier(dir.path(), 300);
        three_users_verify(&v, dir.path()).await;
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "the JWKS is cached");

        // A token signed by an unknown key: the keys are refetched at most every 30 s, then refused.
        let other = tempfile::tempdir().unwrap();
        init(other.path()).unwrap();
        let foreign = mint(other.path(), &claims("mallory")).unwrap();
        assert!(matches!(v.verify(Some(&foreign)).await, Err(IdentityError::Unauthenticated(_))));
        assert!(matches!(v.verify(Some(&foreign)).await, Err(IdentityError::Unauthenticated(_))));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "unknown kids do not hammer the issuer");
    }

    #[tokio::test]
    async fn stale_keys_are_refetched_at_most_every_30_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let (v, hits) = url_verifier(dir.path(), 0); // always stale
        three_users_verify(&v, dir.path()).await;
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "stale keys do not refetch on every token");
    }

    #[tokio::test]
    async fn an_unreachable_jwks_url_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = settings(dir.path().join("unused"));
        s.jwks_file = None;
        s.jwks_url = Some(format!("http://127.0.0.1:{port}/jwks.json"));
        let v = TokenVerifier::new(s).unwrap();
        let token = mint(dir.path(), &claims("alice")).unwrap();
        assert!(matches!(v.verify(Some(&token)).await, Err(IdentityError::Unavailable(_))));
    }

    #[tokio::test]
    async fn missing_jwks_is_unavailable_not_unauthenticated() {
        let dir = tempfile::tempdir().unwrap();
        let v = TokenVerifier::new(settings(dir.path().join("missing.json"))).unwrap();
        init(dir.path()).unwrap();
        let token = mint(dir.path(), &claims("alice")).unwrap();
        assert!(matches!(v.verify(Some(&token)).await, Err(IdentityError::Unavailable(_))));
    }
}
