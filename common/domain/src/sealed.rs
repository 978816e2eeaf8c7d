//! Sealed credentials: the credentials in a `credentials.request` reply are encrypted to a key only
//! the requester holds, so the reply queue (and anything that reads or logs it) learns nothing.
//!
//! HPKE (RFC 9180) base mode, single shot, with the suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//! ChaCha20-Poly1305 (registry ids KEM `0x0020`, KDF `0x0001`, AEAD `0x0003`):
//!
//! - the request carries `reply_key`: the requester's ephemeral X25519 public key, 32 bytes,
//!   base64url without padding (43 characters);
//! - `info` is the ASCII string [`INFO_CREDENTIALS_V1`];
//! - `aad` is [`credentials_aad_v1`]: the request's `message_id` and then the `account`, each as a
//!   4-byte big-endian length followed by its UTF-8 bytes, so the sealed credentials cannot be passed
//!   off as the answer to another request;
//! - the plaintext is the `credentials` object (the AWS `credential_process` JSON) as UTF-8 JSON;
//! - the reply's `sealed_credentials` is `{"suite": SUITE, "enc", "ciphertext"}`, both base64url
//!   without padding (`enc` is 32 bytes; `ciphertext` is the plaintext plus the 16-byte tag).
//!
//! `docs/messages.md` repeats this for clients in other languages; a test opens a reply with
//! Python's `pyhpke`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;

/// Names the suite on the wire; a reader refuses any other value.
pub const SUITE: &str = "HPKE-Base-X25519-SHA256-ChaCha20Poly1305";
/// RFC 9180 registry ids of [`SUITE`].
pub const KEM_ID: u16 = 0x0020;
pub const KDF_ID: u16 = 0x0001;
pub const AEAD_ID: u16 = 0x0003;
/// HPKE `info` of a credentials reply.
pub const INFO_CREDENTIALS_V1: &[u8] = b"portcullis credentials v1";
/// Length of a base64url (unpadded) X25519 public key.
pub const REPLY_KEY_CHARS: usize = 43;

/// A requester's X25519 public key, as sent in `reply_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyKey([u8; 32]);

impl ReplyKey {
    /// Parse `reply_key` (base64url without padding, 32 bytes). The all-zero and other low-order
    /// points are caught when sealing.
    pub fn parse(s: &str) -> Result<Self, SealError> {
        if s.len() != REPLY_KEY_CHARS {
            return Err(SealError::Wire("reply_key must be 32 bytes in base64url without padding (43 characters)"));
        }
        decode_32(s).map(Self).ok_or(SealError::Wire("reply_key must be 32 bytes in base64url without padding"))
    }

    /// The wire form.
    pub fn encode(&self) -> String {
        B64.encode(self.0)
    }
}

/// A requester's X25519 private key: wiped on drop, never printed.
#[derive(Clone)]
pub struct ReplySecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ReplySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplySecret(<redacted>)")
    }
}

impl ReplySecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key (for handing to another HPKE implementation in tests).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The public key is not usable (a low-order point: the shared secret would be all zeros).
    #[error("reply_key is not a usable X25519 public key")]
    BadPublicKey,
    /// Wrong key, wrong message id or account, or a tampered reply: deliberately not told apart.
    #[error("the sealed credentials could not be opened (wrong key, another request's reply, or tampered)")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("{0}")]
    Wire(&'static str),
}

/// The sealed credentials of a reply (`sealed_credentials`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedBox {
    /// Always `HPKE-Base-X25519-SHA256-ChaCha20Poly1305`.
    pub suite: String,
    /// The HPKE encapsulated key: 32 bytes, base64url without padding.
    pub enc: String,
    /// The AEAD ciphertext of the credentials JSON, tag included: base64url without padding.
    pub ciphertext: String,
}

/// A fresh key pair from the operating system's random source: what a client makes per request.
pub fn generate_reply_key() -> (ReplySecret, ReplyKey) {
    let (sk, pk) = Kem::gen_keypair();
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&sk.to_bytes());
    let mut public = [0u8; 32];
    public.copy_from_slice(&pk.to_bytes());
    (ReplySecret::from_bytes(secret), ReplyKey(public))
}

/// The `aad` of a credentials reply: `message_id` then `account`, each as a 4-byte big-endian length
/// and its UTF-8 bytes.
pub fn credentials_aad_v1(message_id: &str, account: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + message_id.len() + account.len());
    for field in [message_id, account] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// Seal `plaintext` (the credentials JSON) to `key` for the request `message_id` in `account`.
pub fn seal_credentials(
    key: &ReplyKey,
    message_id: &str,
    account: &str,
    plaintext: &[u8],
) -> Result<SealedBox, SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&key.0).map_err(|_| SealError::BadPublicKey)?;
    let aad = credentials_aad_v1(message_id, account);
    let (enc, ciphertext) =
        hpke::single_shot_seal::<Aead, Kdf, Kem>(&OpModeS::Base, &pk, INFO_CREDENTIALS_V1, plaintext, &aad).map_err(
            |e| match e {
                hpke::HpkeError::EncapError => SealError::BadPublicKey,
                _ => SealError::Seal,
            },
        )?;
    Ok(SealedBox { suite: SUITE.to_owned(), enc: B64.encode(enc.to_bytes()), ciphertext: B64.encode(ciphertext) })
}

/// Open a reply's sealed credentials with the secret made for the request `message_id` in `account`.
/// The plaintext is wiped when dropped.
pub fn open_credentials(
    secret: &ReplySecret,
    message_id: &str,
    account: &str,
    sealed: &SealedBox,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.suite != SUITE {
        return Err(SealError::Wire("sealed_credentials uses an unknown suite"));
    }
    let enc = decode_32(&sealed.enc).ok_or(SealError::Wire("enc must be 32 bytes of base64url"))?;
    let ciphertext = B64.decode(&sealed.ciphertext).map_err(|_| SealError::Wire("ciphertext is not base64url"))?;
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_bytes()).map_err(|_| SealError::Open)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).map_err(|_| SealError::Open)?;
    let aad = credentials_aad_v1(message_id, account);
    hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, INFO_CREDENTIALS_V1, &ciphertext, &aad)
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
}

fn decode_32(s: &str) -> Option<[u8; 32]> {
    B64.decode(s).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(crate::properties::config(1024))]

        /// Any text is a reply key or a `Wire` refusal; a key that parses is its one canonical
        /// spelling, and every 32-byte key survives the wire.
        #[test]
        fn reply_keys_parse_canonically(
            text in proptest::prop_oneof!["[A-Za-z0-9_-]{42,44}", proptest::prelude::any::<String>()],
            bytes in proptest::prelude::any::<[u8; 32]>(),
        ) {
            match ReplyKey::parse(&text) {
                Ok(key) => proptest::prop_assert_eq!(key.encode(), text),
                Err(e) => proptest::prop_assert!(matches!(e, SealError::Wire(_)), "{:?}", e),
            }
            let key = ReplyKey(bytes);
            proptest::prop_assert_eq!(ReplyKey::parse(&key.encode()), Ok(key));
        }
    }

    const PT: &[u8] = br#"{"Version":1,"AccessKeyId":"ASIA...","SecretAccessKey":"s","SessionToken":"t"}"#;

    fn sealed_for(key: &ReplyKey) -> SealedBox {
        seal_credentials(key, "m-1", "123456789012", PT).unwrap()
    }

    #[test]
    fn round_trip_through_the_wire_forms() {
        let (secret, key) = generate_reply_key();
        let key = ReplyKey::parse(&key.encode()).unwrap();
        let sealed = sealed_for(&key);
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains('=') && !json.contains('+') && !json.contains('/'), "{json}");
        let back: SealedBox = serde_json::from_str(&json).unwrap();
        assert_eq!(open_credentials(&secret, "m-1", "123456789012", &back).unwrap().as_slice(), PT);
    }

    #[test]
    fn every_seal_is_fresh() {
        let (_, key) = generate_reply_key();
        assert_ne!(sealed_for(&key), sealed_for(&key));
    }

    #[test]
    fn only_the_right_key_and_context_open_it() {
        let (secret, key) = generate_reply_key();
        let (other, _) = generate_reply_key();
        let sealed = sealed_for(&key);
        assert_eq!(open_credentials(&other, "m-1", "123456789012", &sealed), Err(SealError::Open));
        for (m, a) in [("m-2", "123456789012"), ("m-1", "210987654321"), ("m-11", "23456789012")] {
            assert_eq!(open_credentials(&secret, m, a, &sealed), Err(SealError::Open), "{m} {a}");
        }
        let mut tampered = sealed.clone();
        let mut ct = B64.decode(&tampered.ciphertext).unwrap();
        ct[3] ^= 1;
        tampered.ciphertext = B64.encode(ct);
        assert_eq!(open_credentials(&secret, "m-1", "123456789012", &tampered), Err(SealError::Open));
        let other_suite = SealedBox { suite: "HPKE-Base-X25519-SHA256-AES128GCM".into(), ..sealed };
        assert!(matches!(open_credentials(&secret, "m-1", "123456789012", &other_suite), Err(SealError::Wire(_))));
    }

    #[test]
    fn bad_reply_keys_are_refused() {
        assert!(ReplyKey::parse("AAAA").is_err());
        assert!(ReplyKey::parse(&format!("{}=", generate_reply_key().1.encode())).is_err());
        assert!(ReplyKey::parse(&"!".repeat(43)).is_err());
        // The all-zero point is low order: RFC 9180 requires refusing it.
        let zero = ReplyKey::parse(&B64.encode([0u8; 32])).unwrap();
        assert_eq!(seal_credentials(&zero, "m", "a", PT), Err(SealError::BadPublicKey));
    }

    #[test]
    fn the_secret_is_never_printed() {
        assert_eq!(format!("{:?}", generate_reply_key().0), "ReplySecret(<redacted>)");
    }

    /// RFC 9180 A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, Base), sequence 0:
    /// the standard's own ciphertext opens with its skRm, which pins the suite.
    #[test]
    fn rfc9180_test_vector_a_2_1_opens() {
        let h = |s: &str| -> Vec<u8> {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
        };
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&h(
            "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
        ))
        .unwrap();
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&h(
            "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
        ))
        .unwrap();
        let ct = h("1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28");
        let pt = hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            &h("4f6465206f6e2061204772656369616e2055726e"),
            &ct,
            &h("436f756e742d30"),
        )
        .unwrap();
        assert_eq!(pt, b"Beauty is truth, truth beauty");
        assert_eq!((KEM_ID, KDF_ID, AEAD_ID), (0x0020, 0x0001, 0x0003));
    }
}
