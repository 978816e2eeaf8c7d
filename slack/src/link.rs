//! Linking a Slack user to their IdP identity, once, by signing in: authorization code with PKCE
//! (S256) and a nonce, the ID token checked like every Portcullis token (issuer, audience,
//! signature against the issuer's JWKS, expiry: the access worker's [`OidcVerifier`]) plus the
//! nonce. The edge never sees a password and keeps no token: only the binding.
//!
//! The one-time URL (`/link/start?state=…`) is shown only to the Slack user who asked (an
//! ephemeral answer to their signed slash command), expires after `link.ttl_seconds`, and is used
//! once. `/link/start` sets a random cookie whose hash is stored with the state; `/link/callback`
//! must come from the same browser (so a callback URL someone else produced cannot be injected).
//! The person is told in Slack which identity their account is now linked to.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use portcullis_access::adapters::OidcVerifier;
use portcullis_domain::identity::Identity;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::settings::EdgeSettings;

/// A link that cannot be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is unknown, used already or expired: run `/portcullis link` again")]
    UnknownState,
    #[error("this link was opened in another browser: open it again from Slack in this browser")]
    OtherBrowser,
    #[error("the identity provider refused the sign-in ({0})")]
    Refused(String),
    #[error("the identity provider's answer does not verify: {0}")]
    Invalid(String),
    #[error("the identity provider cannot be reached: {0}")]
    Unavailable(String),
    #[error("the directory does not let this identity act: {0}")]
    Directory(String),
}

/// 32 random bytes, base64url: a state, a nonce, a PKCE verifier, a cookie.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// base64url(SHA-256(text)): the PKCE S256 challenge of a verifier, and the stored form of a
/// browser cookie.
pub fn s256(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

/// The authorization request URL.
pub fn authorization_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    nonce: &str,
    verifier: &str,
) -> Result<String, LinkError> {
    let mut url =
        url::Url::parse(endpoint).map_err(|e| LinkError::Unavailable(format!("authorization endpoint: {e}")))?;
    let mut scope = vec!["openid".to_owned()];
    scope.extend(scopes.iter().filter(|s| s.as_str() != "openid").cloned());
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scope.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &s256(verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(url.to_string())
}

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form_body(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// The `nonce` claim of a (verified) JWT.
pub fn nonce_of(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

/// The identity provider, for the link flow.
#[async_trait]
pub trait IdProvider: Send + Sync + std::fmt::Debug {
    /// Where to send the browser.
    async fn authorization_url(&self, state: &str, nonce: &str, verifier: &str) -> Result<String, LinkError>;
    /// Exchange the code, verify the ID token (and its nonce): who signed in.
    async fn identify(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, LinkError>;
}

/// The OIDC provider of `link.identity`, over HTTP.
#[derive(Debug)]
pub struct OidcProvider {
    settings: EdgeSettings,
    verifier: OidcVerifier,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

impl OidcProvider {
    pub fn new(settings: &EdgeSettings) -> Result<Self, LinkError> {
        let verifier =
            OidcVerifier::new(settings.link.identity.clone()).map_err(|e| LinkError::Unavailable(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| LinkError::Unavailable(e.to_string()))?;
        Ok(Self { settings: settings.clone(), verifier, http })
    }

    async fn discover(&self) -> Result<Discovery, LinkError> {
        let issuer = self.settings.link.identity.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| LinkError::Unavailable(format!("{url}: {e}")))?
            .json()
            .await
            .map_err(|e| LinkError::Unavailable(format!("{url}: {e}")))?;
        if doc.issuer != self.settings.link.identity.issuer {
            return Err(LinkError::Invalid(format!("the discovery document names issuer {}", doc.issuer)));
        }
        Ok(doc)
    }
}

#[async_trait]
impl IdProvider for OidcProvider {
    async fn authorization_url(&self, state: &str, nonce: &str, verifier: &str) -> Result<String, LinkError> {
        let doc = self.discover().await?;
        authorization_url(
            &doc.authorization_endpoint,
            &self.settings.link.identity.audience,
            &self.settings.redirect_uri(),
            &self.settings.link.scopes,
            state,
            nonce,
            verifier,
        )
    }

    async fn identify(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, LinkError> {
        let doc = self.discover().await?;
        let redirect_uri = self.settings.redirect_uri();
        let client_id = self.settings.link.identity.audience.clone();
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier.to_owned()),
        ];
        if let Some(secret) = &self.settings.link.client_secret {
            form.push(("client_secret", secret.expose().to_owned()));
        }
        let response = self
            .http
            .post(&doc.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
            .await
            .map_err(|e| LinkError::Unavailable(format!("token endpoint: {e}")))?;
        if !response.status().is_success() {
            // The body names the OAuth error; it holds no token.
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            return Err(LinkError::Refused(format!("{status}: {error}")));
        }
        let tokens: TokenResponse =
            response.json().await.map_err(|e| LinkError::Invalid(format!("token response: {e}")))?;
        let id_token = tokens.id_token.ok_or_else(|| LinkError::Invalid("no id_token in the token response".into()))?;
        let identity =
            self.verifier.verify_at(Some(&id_token), now).await.map_err(|e| LinkError::Invalid(e.to_string()))?;
        // Verified above: now its nonce must be the one this link sent.
        if nonce_of(&id_token).as_deref() != Some(nonce) {
            return Err(LinkError::Invalid("the ID token's nonce is not this link's".into()));
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636 appendix B.
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn the_authorization_url_asks_for_code_with_pkce_and_nonce() {
        let url = authorization_url(
            "https://idp.test/auth",
            "slack-edge",
            "https://edge.test/link/callback",
            &["portcullis".into()],
            "st",
            "no",
            "ver",
        )
        .unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let q: std::collections::BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "openid portcullis");
        assert_eq!(q["code_challenge"], s256("ver"));
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!((q["state"].as_str(), q["nonce"].as_str()), ("st", "no"));
    }

    #[test]
    fn the_nonce_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","nonce":"n-1"}"#);
        assert_eq!(nonce_of(&format!("h.{payload}.s")).as_deref(), Some("n-1"));
        assert_eq!(nonce_of("garbage"), None);
    }
}
