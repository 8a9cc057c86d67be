"""Schemathesis hooks for Keel's contract run (deploy/contract/openapi.sh).

An Idempotency-Key is a promise that the same key means the same request: a generated
key reused for another body is answered 422 `idempotency_key_reused`, as documented. So
every schema-valid key is replaced by a fresh one; malformed keys (negative cases) are
left as generated, to be refused with 400.
"""

import uuid

import schemathesis


def _valid_key(value):
    return isinstance(value, str) and 1 <= len(value) <= 255 and all(0x20 <= ord(c) <= 0x7E for c in value)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    if _valid_key(headers.get("Idempotency-Key")):
        headers["Idempotency-Key"] = str(uuid.uuid4())
        case.headers = headers
