#!/usr/bin/env python3
"""What `confab verify` does, written the way a Python service would with PyJWT.

Reads one `Authorization` header value per line (stdin or --input) and writes one JSON line
per input, byte for byte in `confab verify`'s format for accepted tokens:

    {"accepted":true,"status":200,"error":null,"reason":null,"sub":"alice","scopes":["docs:read"]}

Checks, as the guard does: `Bearer` scheme, the algorithm pinned to the configured one, the
signature, `typ` when the spec requires one, iss, aud, exp and nbf with the spec's leeway,
required exp/nbf/iss/aud/sub, and the endpoint's scope (space-delimited, exact tokens).

`--now` fixes the clock (PyJWT reads `datetime.now`; the driver swaps in a fixed one so both
sides judge the same instant).
"""

import argparse
import datetime as _dt
import json
import sys

import jwt
import jwt.api_jwt


def fixed_clock(now):
    class FixedDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return _dt.datetime.fromtimestamp(now, tz=tz)

    return FixedDatetime


def typ_matches(got, want):
    def strip(s):
        s = s.lower()
        return s[len("application/"):] if s.startswith("application/") else s

    return isinstance(got, str) and strip(got) == strip(want)


REJECT = {
    jwt.ExpiredSignatureError: (401, "invalid_token", "expired"),
    jwt.ImmatureSignatureError: (401, "invalid_token", "not_yet_valid"),
    jwt.InvalidIssuerError: (401, "invalid_token", "issuer_mismatch"),
    jwt.InvalidAudienceError: (401, "invalid_token", "audience_mismatch"),
    jwt.InvalidSignatureError: (401, "invalid_token", "bad_signature"),
    jwt.InvalidAlgorithmError: (401, "invalid_token", "alg_mismatch"),
    jwt.MissingRequiredClaimError: (401, "invalid_token", "missing_claim"),
}


def line(accepted, status, error, reason, sub=None, scopes=None):
    obj = {"accepted": accepted, "status": status, "error": error, "reason": reason}
    if accepted:
        obj["sub"] = sub
        obj["scopes"] = scopes
    return json.dumps(obj, separators=(",", ":")) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alg", required=True)
    key = ap.add_mutually_exclusive_group(required=True)
    key.add_argument("--secret-env", help="environment variable holding the HMAC secret")
    key.add_argument("--public-key", help="PEM public key file")
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--audience", required=True)
    ap.add_argument("--typ")
    ap.add_argument("--leeway", type=int, default=0)
    ap.add_argument("--scope", default="")
    ap.add_argument("--now", type=int)
    ap.add_argument("--input")
    args = ap.parse_args()

    if args.now is not None:
        jwt.api_jwt.datetime = fixed_clock(args.now)
    if args.secret_env:
        import os

        secret = os.environ[args.secret_env].encode()
    else:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        with open(args.public_key, "rb") as f:
            secret = load_pem_public_key(f.read())
    algorithms = [args.alg]
    required = [t for t in args.scope.split(" ") if t]
    options = {"require": ["exp", "nbf", "iss", "aud", "sub"], "verify_nbf": True}
    decoder = jwt.PyJWT()

    src = open(args.input, "rb") if args.input else sys.stdin.buffer
    out = sys.stdout
    write = out.write
    for raw in src:
        value = raw.rstrip(b"\r\n")
        if not value:
            write(line(False, 401, None, "missing_credentials"))
            continue
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"bearer":
            write(line(False, 401, None, "unsupported_scheme"))
            continue
        token = token.lstrip(b" ")
        try:
            data = decoder.decode_complete(
                token,
                secret,
                algorithms=algorithms,
                audience=args.audience,
                issuer=args.issuer,
                leeway=args.leeway,
                options=options,
            )
        except jwt.PyJWTError as e:
            status, error, reason = next(
                (v for k, v in REJECT.items() if isinstance(e, k)),
                (401, "invalid_token", "malformed_token"),
            )
            write(line(False, status, error, reason))
            continue
        if args.typ and not typ_matches(data["header"].get("typ"), args.typ):
            write(line(False, 401, "invalid_token", "typ_mismatch"))
            continue
        claims = data["payload"]
        sub = claims.get("sub")
        scope = claims.get("scope", "")
        if not isinstance(sub, str) or not sub or not isinstance(scope, str):
            write(line(False, 401, "invalid_token", "claim_type"))
            continue
        granted = sorted({t for t in scope.split(" ") if t})
        if not all(t in granted for t in required):
            write(line(False, 403, "insufficient_scope", "insufficient_scope"))
            continue
        write(line(True, 200, None, None, sub, granted))
    out.flush()


if __name__ == "__main__":
    main()
