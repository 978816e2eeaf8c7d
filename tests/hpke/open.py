#!/usr/bin/env python3
"""Open Portcullis sealed credentials with pyhpke, an HPKE (RFC 9180) implementation independent of
Portcullis' own (docs/messages.md, "Sealed credentials").

stdin:  {"secret": <base64url X25519 private key>, "message_id": ..., "account": ...,
         "sealed": {"suite", "enc", "ciphertext"}}   (base64url without padding)
stdout: the credentials JSON, nothing else.  Exit 1, with the reason on stderr, if it does not open.
"""
import base64
import json
import struct
import sys

from pyhpke import AEADId, CipherSuite, KDFId, KEMId

SUITE = "HPKE-Base-X25519-SHA256-ChaCha20Poly1305"
INFO = b"portcullis credentials v1"
CIPHER_SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)


def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def aad(message_id: str, account: str) -> bytes:
    out = b""
    for field in (message_id.encode(), account.encode()):
        out += struct.pack(">I", len(field)) + field
    return out


def main() -> int:
    req = json.load(sys.stdin)
    sealed = req["sealed"]
    if sealed.get("suite") != SUITE:
        print(f"unknown suite {sealed.get('suite')!r}", file=sys.stderr)
        return 1
    try:
        key = CIPHER_SUITE.kem.deserialize_private_key(b64d(req["secret"]))
        ctx = CIPHER_SUITE.create_recipient_context(b64d(sealed["enc"]), key, info=INFO)
        plaintext = ctx.open(b64d(sealed["ciphertext"]), aad=aad(req["message_id"], req["account"]))
    except Exception as e:  # pyhpke's OpenError and friends: the reason, never the key
        print(f"open failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(plaintext)
    return 0


if __name__ == "__main__":
    sys.exit(main())
