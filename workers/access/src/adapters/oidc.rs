//! [`IdentityVerifier`] for OIDC ID tokens, checked against the issuer's JWKS.
//!
//! The requester of every message is whoever a verified ID token says, never a name in the body. A
//! token is accepted when its signature verifies against a key of the configured issuer's JWKS (looked
//! up by `kid`), with an allowed algorithm that matches the key, and (OIDC Core 3.1.3.7) `iss` is the
//! issuer exactly; `aud` contains the configured audience, and when it holds other audiences `azp`
//! is the configured client; `exp` is in the future, `nbf` (when present) and `iat` not in the future
//! beyond the leeway, and `exp - iat` at most `identity.max_token_lifetime_seconds`. Times are checked
//! against the clock the caller passes, not the system's. The JWKS comes from a URL (cached,
//! refetched when stale or when a token names an unknown `kid`, at most every 30 s) or from a file;
//! with neither configured, the URL is the `jwks_uri` of the issuer's
//! `/.well-known/openid-configuration`, read again at each refetch (whose `issuer` must be the
//! configured one exactly).
//!
//! A JWKS that cannot be fetched is *not* the requester's fault: it surfaces as
//! [`IdentityError::Unavailable`] so the message is retried rather than refused.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_domain::identity::{Identity, display_name_from_claims};
use portcullis_runtime::config::IdentitySettings;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::ports::{IdentityError, IdentityVerifier};

/// Shortest interval between two JWKS refetches triggered by unknown key ids.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum JwksSource {
    Url(String),
    File(PathBuf),
    /// The `jwks_uri` of the issuer's discovery document (OIDC Discovery 1.0, section 4).
    Discovery,
}

#[derive(Debug, Default)]
struct KeyCache {
    set: Option<JwkSet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Longest token accepted (a real ID token is a few kilobytes).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Verifies ID tokens against one issuer.
#[derive(Debug)]
pub struct OidcVerifier {
    settings: IdentitySettings,
    algorithms: Vec<Algorithm>,
    source: JwksSource,
    cache: RwLock<KeyCache>,
    http: reqwest::Client,
}

impl OidcVerifier {
    /// Build a verifier. Keys are loaded on first use; a bad setting is an error now.
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
            (None, None) => JwksSource::Discovery,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| IdentityError::Unavailable(e.to_string()))?;
        Ok(Self { settings, algorithms, source, cache: RwLock::new(KeyCache::default()), http })
    }

    /// Verify `token` as of `now` and return who it names.
    pub async fn verify_at(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<Identity, IdentityError> {
        let unauthenticated = |why: &str| IdentityError::Unauthenticated(why.to_owned());
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| unauthenticated("the message carries no identity token"))?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(unauthenticated("the identity token is longer than any ID token"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the identity token is not a well-formed JWT"))?;
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
                return Err(unauthenticated("the identity token's algorithm does not match its key"));
            }
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| IdentityError::Unavailable(format!("the issuer's key cannot be used: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Times are checked below against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            let why = match e.kind() {
                ErrorKind::InvalidIssuer => "the identity token is from another issuer".to_owned(),
                ErrorKind::InvalidAudience => "the identity token is for another audience".to_owned(),
                ErrorKind::InvalidSignature => "the identity token's signature does not verify".to_owned(),
                ErrorKind::MissingRequiredClaim(c) => format!("the identity token has no `{c}` claim"),
                _ => format!("the identity token is invalid ({e})"),
            };
            IdentityError::Unauthenticated(why)
        })?;
        self.check_times(&data.claims, now)?;
        self.check_audiences(&data.claims)?;
        self.identity_from_claims(&data.claims)
    }

    /// `exp` in the future, `nbf` and `iat` not in the future (each with the leeway), and a lifetime
    /// no longer than the configured maximum.
    fn check_times(&self, claims: &Map<String, Value>, now: DateTime<Utc>) -> Result<(), IdentityError> {
        let unauthenticated = |why: String| IdentityError::Unauthenticated(why);
        let leeway = i64::try_from(self.settings.leeway_seconds).unwrap_or(i64::MAX);
        let now = now.timestamp();
        let time = |name: &str| -> Result<Option<i64>, IdentityError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                    .map(Some)
                    .ok_or_else(|| unauthenticated(format!("the identity token's `{name}` is not a time"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| unauthenticated("the identity token has no `exp` claim".into()))?;
        if exp.saturating_add(leeway) <= now {
            return Err(unauthenticated("the identity token has expired".into()));
        }
        if let Some(nbf) = time("nbf")?
            && nbf.saturating_sub(leeway) > now
        {
            return Err(unauthenticated("the identity token is not valid yet".into()));
        }
        let iat = time("iat")?.ok_or_else(|| unauthenticated("the identity token has no `iat` claim".into()))?;
        if iat.saturating_sub(leeway) > now {
            return Err(unauthenticated("the identity token was issued in the future".into()));
        }
        let max = i64::try_from(self.settings.max_token_lifetime_seconds).unwrap_or(i64::MAX);
        if exp.saturating_sub(iat) > max {
            return Err(unauthenticated(format!(
                "the identity token is valid for longer than {max} seconds (identity.max_token_lifetime_seconds)"
            )));
        }
        Ok(())
    }

    /// Several audiences are accepted only when `azp` names the configured client; `azp`, when
    /// present, must always name it.
    fn check_audiences(&self, claims: &Map<String, Value>) -> Result<(), IdentityError> {
        let client = &self.settings.audience;
        let azp = claims.get("azp").and_then(Value::as_str);
        if azp.is_some_and(|a| a != client) {
            return Err(IdentityError::Unauthenticated(
                "the identity token was issued to another client (`azp`)".into(),
            ));
        }
        let others = match claims.get("aud") {
            Some(Value::Array(items)) => items.iter().filter(|a| a.as_str() != Some(client.as_str())).count(),
            _ => 0,
        };
        if others > 0 && azp != Some(client.as_str()) {
            return Err(IdentityError::Unauthenticated(
                "the identity token names other audiences and no `azp` for this client".into(),
            ));
        }
        Ok(())
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
        let issued_at = claims
            .get("iat")
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
            .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0))
            .ok_or_else(|| IdentityError::Unauthenticated("the identity token has no valid `iat` claim".into()))?;
        Ok(Identity {
            issued_at,
            via: None,
            display_name: display_name_from_claims(claims, &self.settings.display_name_claims, &user),
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
            JwksSource::Url(url) => self.get_text(url).await?,
            JwksSource::Discovery => {
                let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
                let doc: Value = serde_json::from_str(&self.get_text(&url).await?)
                    .map_err(|e| IdentityError::Unavailable(format!("{url} is not JSON: {e}")))?;
                if doc.get("issuer").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
                    return Err(IdentityError::Unavailable(format!(
                        "{url} names another issuer than identity.issuer `{}`",
                        self.settings.issuer
                    )));
                }
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| IdentityError::Unavailable(format!("{url} has no jwks_uri")))?;
                self.get_text(jwks_uri).await?
            }
        };
        serde_json::from_str(&text).map_err(|e| IdentityError::Unavailable(format!("the JWKS is not valid: {e}")))
    }
}

impl OidcVerifier {
    async fn get_text(&self, url: &str) -> Result<String, IdentityError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| IdentityError::Unavailable(format!("cannot fetch {url}: {e}")))?;
        resp.text().await.map_err(|e| IdentityError::Unavailable(format!("cannot read {url}: {e}")))
    }
}

#[async_trait]
impl IdentityVerifier for OidcVerifier {
    async fn verify(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<Identity, IdentityError> {
        self.verify_at(token, now).await
    }
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use portcullis_client::dev_issuer::*;
    use serde_json::json;
    use std::path::Path;

    fn settings(jwks_file: PathBuf) -> IdentitySettings {
        IdentitySettings {
            issuer: "https://issuer.test".into(),
            audience: "portcullis".into(),
            jwks_url: None,
            jwks_file: Some(jwks_file),
            user_claim: "sub".into(),
            display_name_claims: vec!["preferred_username".into()],
            team_claim: "team".into(),
            groups_claim: "groups".into(),
            leeway_seconds: 0,
            jwks_cache_seconds: 300,
            algorithms: vec!["EdDSA".into(), "RS256".into()],
            max_token_lifetime_seconds: 86_400,
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
            issued_at: None,
        }
    }

    #[tokio::test]
    async fn accepts_a_valid_token_and_reads_claims() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = init(dir.path()).unwrap();
        let v = OidcVerifier::new(settings(jwks)).unwrap();
        let token = mint(dir.path(), &claims("alice")).unwrap();
        let id = v.verify_at(Some(&token), Utc::now()).await.unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.display_name, "alice", "no preferred_username in the token: the user");
        assert_eq!(id.team.as_deref(), Some("payments"));
        assert_eq!(id.groups, vec!["eng"]);
    }

    #[tokio::test]
    async fn refuses_bad_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = init(dir.path()).unwrap();
        let v = OidcVerifier::new(settings(jwks)).unwrap();
        let unauth = |r: Result<Identity, IdentityError>| match r {
            Err(IdentityError::Unauthenticated(why)) => why,
            other => panic!("expected unauthenticated, got {other:?}"),
        };

        assert!(unauth(v.verify_at(None, Utc::now()).await).contains("no identity token"));
        assert!(unauth(v.verify_at(Some("garbage"), Utc::now()).await).contains("well-formed"));

        // Minted already expired: issued an hour ago for a minute.
        let mut expired = claims("alice");
        expired.ttl = Duration::from_secs(60);
        expired.issued_at = Some(Utc::now() - chrono::Duration::hours(1));
        let token = mint(dir.path(), &expired).unwrap();
        assert!(unauth(v.verify_at(Some(&token), Utc::now()).await).contains("expired"));

        let mut other_aud = claims("alice");
        other_aud.audience = "someone-else".into();
        assert!(
            unauth(v.verify_at(Some(&mint(dir.path(), &other_aud).unwrap()), Utc::now()).await).contains("audience")
        );

        let mut other_iss = claims("alice");
        other_iss.issuer = "https://evil.test".into();
        assert!(unauth(v.verify_at(Some(&mint(dir.path(), &other_iss).unwrap()), Utc::now()).await).contains("issuer"));

        // Signed by a different key that claims the same kid.
        let (evil_pem, _) = generate().unwrap();
        let real_jwks: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(JWKS_FILE)).unwrap()).unwrap();
        let forged = mint_with(&evil_pem, &real_jwks, &claims("alice")).unwrap();
        assert!(unauth(v.verify_at(Some(&forged), Utc::now()).await).contains("signature"));

        // A tampered payload (user swapped) no longer verifies.
        let token = mint(dir.path(), &claims("alice")).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["sub"] = json!("root");
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
        assert!(unauth(v.verify_at(Some(&tampered), Utc::now()).await).contains("signature"));

        // alg=none is never accepted.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let none_token = format!("{none_header}.{}.", parts[1]);
        unauth(v.verify_at(Some(&none_token), Utc::now()).await);
    }

    /// The time claims are bounded and checked against the caller's clock; extra audiences need `azp`.
    #[tokio::test]
    async fn time_and_audience_claims_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = init(dir.path()).unwrap();
        let v = OidcVerifier::new(settings(jwks)).unwrap();
        let (pem, jwks) = load(dir.path()).unwrap();
        let now = Utc::now().timestamp();
        let token = |extra: serde_json::Value| {
            let mut body = json!({"iss": "https://issuer.test", "aud": "portcullis", "sub": "alice", "iat": now, "exp": now + 300});
            for (k, val) in extra.as_object().unwrap() {
                if val.is_null() {
                    body.as_object_mut().unwrap().remove(k);
                } else {
                    body[k] = val.clone();
                }
            }
            sign_with(&pem, &jwks, &body).unwrap()
        };
        let verdict = |t: String, at: DateTime<Utc>| {
            let v = &v;
            async move {
                match v.verify_at(Some(&t), at).await {
                    Ok(id) => Ok(id.user),
                    Err(IdentityError::Unauthenticated(why)) => Err(why),
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let at = Utc::now();
        assert_eq!(verdict(token(json!({})), at).await, Ok("alice".into()));
        let in_future = verdict(token(json!({"iat": now + 3600, "exp": now + 7200})), at).await.unwrap_err();
        assert!(in_future.contains("issued in the future"), "{in_future}");
        let ten_years = verdict(token(json!({"exp": now + 10 * 365 * 86_400})), at).await.unwrap_err();
        assert!(ten_years.contains("longer than 86400"), "{ten_years}");
        let no_iat = verdict(token(json!({"iat": null})), at).await.unwrap_err();
        assert!(no_iat.contains("`iat`"), "{no_iat}");
        // The verifier's clock decides, not the system's: the same token is expired an hour later.
        let later = at + chrono::Duration::hours(1);
        assert!(verdict(token(json!({})), later).await.unwrap_err().contains("expired"));
        // Audiences.
        let extra_aud = verdict(token(json!({"aud": ["portcullis", "other-app"]})), at).await.unwrap_err();
        assert!(extra_aud.contains("other audiences"), "{extra_aud}");
        assert_eq!(
            verdict(token(json!({"aud": ["portcullis", "other-app"], "azp": "portcullis"})), at).await,
            Ok("alice".into())
        );
        assert_eq!(verdict(token(json!({"aud": ["portcullis"]})), at).await, Ok("alice".into()));
        let other_azp = verdict(token(json!({"azp": "other-app"})), at).await.unwrap_err();
        assert!(other_azp.contains("another client"), "{other_azp}");
        let not_ours = verdict(token(json!({"aud": ["other-app"], "azp": "portcullis"})), at).await.unwrap_err();
        assert!(not_ours.contains("audience"), "{not_ours}");
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
    fn url_verifier(dir: &Path, cache_seconds: u64) -> (OidcVerifier, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let jwks = init(dir).unwrap();
        let (url, hits) = serve_jwks(std::fs::read_to_string(jwks).unwrap());
        let mut s = settings(dir.join("unused"));
        s.jwks_file = None;
        s.jwks_url = Some(url);
        s.jwks_cache_seconds = cache_seconds;
        (OidcVerifier::new(s).unwrap(), hits)
    }

    /// Three users' tokens from the issuer in `dir` all verify.
    async fn three_users_verify(v: &OidcVerifier, dir: &Path) {
        for user in ["alice", "bob", "carol"] {
            let token = mint(dir, &claims(user)).unwrap();
            assert_eq!(v.verify_at(Some(&token), Utc::now()).await.unwrap().user, user);
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
        assert!(matches!(v.verify_at(Some(&foreign), Utc::now()).await, Err(IdentityError::Unauthenticated(_))));
        assert!(matches!(v.verify_at(Some(&foreign), Utc::now()).await, Err(IdentityError::Unauthenticated(_))));
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
        let v = OidcVerifier::new(s).unwrap();
        let token = mint(dir.path(), &claims("alice")).unwrap();
        assert!(matches!(v.verify_at(Some(&token), Utc::now()).await, Err(IdentityError::Unavailable(_))));
    }

    #[tokio::test]
    async fn missing_jwks_is_unavailable_not_unauthenticated() {
        let dir = tempfile::tempdir().unwrap();
        let v = OidcVerifier::new(settings(dir.path().join("missing.json"))).unwrap();
        init(dir.path()).unwrap();
        let token = mint(dir.path(), &claims("alice")).unwrap();
        assert!(matches!(v.verify_at(Some(&token), Utc::now()).await, Err(IdentityError::Unavailable(_))));
    }
}
