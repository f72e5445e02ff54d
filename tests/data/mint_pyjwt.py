"""Mints access tokens with PyJWT for the example specs, to show that tokens made by another
library round-trip through confab's guard. Writes TOML on stdout (tests/data/pyjwt_tokens.toml).

    python3 tests/data/mint_pyjwt.py > tests/data/pyjwt_tokens.toml

Needs `pip install pyjwt cryptography`. The tokens expire in 2100; the keys are published test
keys (corpus/keys/).
"""
import pathlib
import sys

import jwt

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXP = 4102444800  # 2100-01-01
CLAIMS = {
    "iss": "https://issuer.test",
    "aud": "docs-api",
    "sub": "alice",
    "scope": "docs:read",
    "iat": 1796169600,
    "exp": EXP,
}


def key(name):
    return (ROOT / "corpus" / "keys" / name).read_bytes()


cases = [
    ("examples/specs/docs-hs256.toml", "HS256", b"confab-example-hs256-secret-not-for-production", {}),
    ("examples/specs/docs-hs512.toml", "HS512", b"confab-example-hs512-secret-not-for-production-use-64-bytes-long!", {}),
    ("examples/specs/docs-rs256.toml", "RS256", key("rsa.key.pem"), {"typ": "at+jwt"}),
    ("examples/specs/docs-ps256.toml", "PS256", key("rsa.key.pem"), {"typ": "at+jwt"}),
    ("examples/specs/docs-es256.toml", "ES256", key("ec.key.pem"), {}),
    ("examples/specs/docs-eddsa-kid.toml", "EdDSA", key("ed25519.key.pem"), {"kid": "2026-ed"}),
]

out = sys.stdout
out.write(f"# Minted by tests/data/mint_pyjwt.py with PyJWT {jwt.__version__}.\n")
for spec, alg, secret, headers in cases:
    token = jwt.encode(CLAIMS, secret, algorithm=alg, headers=headers or None)
    out.write(f'\n[[token]]\nspec = "{spec}"\nalg = "{alg}"\ntoken = "{token}"\n')
