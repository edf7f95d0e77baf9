"""Caravan secrets: pure validation and conversion (no Kubernetes, no HTTP).

A secret's values must never reach a log line or an error message: every message built
here names ids and keys only.
"""

from caravan.secrets.model import (
    MAX_SECRET_BYTES,
    SecretInputError,
    decode_secret_data,
    encode_secret_data,
    is_managed,
    managed_secret,
    parse_secret_body,
    validate_secret_id,
    validate_secret_key,
)

__all__ = [
    "MAX_SECRET_BYTES",
    "SecretInputError",
    "decode_secret_data",
    "encode_secret_data",
    "is_managed",
    "managed_secret",
    "parse_secret_body",
    "validate_secret_id",
    "validate_secret_key",
]
