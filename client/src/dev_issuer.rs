//! The local development issuer: an Ed25519 key and its JWKS in a directory, used by `make run` and
//! the tests so the worker's real verification path is exercised without an identity provider.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

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
    /// When the token says it was issued (`iat`, and `nbf` 5 s before); `None` is now. A past time
    /// with a short `ttl` mints an already expired token, without waiting.
    pub issued_at: Option<DateTime<Utc>>,
}

/// Sign a token with the key in `pem` for the first key id of `jwks`.
pub fn mint_with(pem: &str, jwks: &Value, claims: &DevClaims) -> anyhow::Result<String> {
    let now = claims.issued_at.unwrap_or_else(Utc::now).timestamp();
    let mut body = json!({
        "iss": claims.issuer,
        "aud": claims.audience,
        "sub": claims.user,
        "iat": now,
        "nbf": now - 5,
        "exp": now.saturating_add(i64::try_from(claims.ttl.as_secs()).unwrap_or(i64::MAX)),
        "groups": claims.groups,
    });
    if let Some(team) = &claims.team {
        body["team"] = json!(team);
    }
    sign_with(pem, jwks, &body)
}

/// Sign any claims with the key in `pem` for the first key id of `jwks` (tests of odd tokens).
pub fn sign_with(pem: &str, jwks: &Value, claims: &Value) -> anyhow::Result<String> {
    let kid = jwks["keys"][0]["kid"].as_str().ok_or_else(|| anyhow::anyhow!("the JWKS has no kid"))?;
    let key = EncodingKey::from_ed_pem(pem.as_bytes())?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, &key)?)
}

/// The key and JWKS in `dir`: (PEM, JWKS).
pub fn load(dir: &Path) -> anyhow::Result<(String, Value)> {
    let pem = std::fs::read_to_string(dir.join(KEY_FILE)).map_err(|e| {
        anyhow::anyhow!("cannot read {}: {e}; run `portcullis dev-issuer init` first", dir.join(KEY_FILE).display())
    })?;
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(JWKS_FILE))?)?;
    Ok((pem, jwks))
}

/// Sign a token with the key in `dir`.
pub fn mint(dir: &Path, claims: &DevClaims) -> anyhow::Result<String> {
    let (pem, jwks) = load(dir)?;
    mint_with(&pem, &jwks, claims)
}
