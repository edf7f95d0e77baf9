"""Secret ids, keys and bodies: Kubernetes' rules, checked before any call, values unechoed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan.secrets import (
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


@pytest.mark.parametrize("good", ["a", "game", "my-secret", "a.b-c.d0", "0", "x" * 253])
def test_valid_ids(good: str) -> None:
    assert validate_secret_id(good) is None


@pytest.mark.parametrize(
    "bad", ["", "A", "under_score", "-a", "a-", ".a", "a..b", "a b", "é", "x" * 254, "a/b"]
)
def test_invalid_ids(bad: str) -> None:
    assert validate_secret_id(bad)


@pytest.mark.parametrize("good", ["a", "A_B", "GENVID_COMMAND_SECRET", ".env", "a.b-c", "x" * 253])
def test_valid_keys(good: str) -> None:
    assert validate_secret_key(good) is None


@pytest.mark.parametrize("bad", ["", ".", "..", "..x", "a b", "a/b", "é", "x" * 254, "a:b"])
def test_invalid_keys(bad: str) -> None:
    assert validate_secret_key(bad)


def test_body_is_a_flat_string_map() -> None:
    assert parse_secret_body(b'{"A": "1", "b": ""}') == {"A": "1", "b": ""}
    assert parse_secret_body(b"{}") == {}


SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        b"null",
        b"\xff",
        f'{{"A": "{SECRET}", "A": "{SECRET}"}}'.encode(),
        f'{{"A": ["{SECRET}"]}}'.encode(),
        f'{{"A": {{"{SECRET}": 1}}}}'.encode(),
        f'{{"A": "{SECRET}", "bad key": "{SECRET}"}}'.encode(),
        f'{{"A": "{SECRET}'.encode(),
        b'{"A": NaN}',
        b'{"A": "\\ud800"}',
        json.dumps({"A": "x" * MAX_SECRET_BYTES}).encode(),
    ],
)
def test_bad_bodies_are_refused_without_echoing_values(raw: bytes) -> None:
    with pytest.raises(SecretInputError) as caught:
        parse_secret_body(raw)
    error = caught.value
    assert error.message
    assert SECRET not in error.message
    assert SECRET not in json.dumps(error.details)


def test_every_bad_key_is_reported() -> None:
    with pytest.raises(SecretInputError) as caught:
        parse_secret_body(b'{"ok": "v", "bad key": "v", "..x": "v", "n": 1}')
    assert [d["field"] for d in caught.value.details] == ["bad key", "..x", "n"]


@given(st.dictionaries(st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True), st.text()))
def test_values_round_trip_through_secret_data(values: dict[str, str]) -> None:
    values = {k: v for k, v in values.items() if validate_secret_key(k) is None}
    values = {k: v for k, v in values.items() if _encodable(v)}
    assert parse_secret_body(json.dumps(values).encode()) == values
    decoded, binary = decode_secret_data(encode_secret_data(values))
    assert decoded == values and binary == []


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_binary_values_are_named_not_decoded() -> None:
    assert decode_secret_data({"t": "aGk=", "b": "/w==", "x": "!!"}) == ({"t": "hi"}, ["b", "x"])


def test_managed_secret_is_labelled_and_replacement_keeps_metadata() -> None:
    new = managed_secret("s", {"a": "b"})
    assert is_managed(new) and new["type"] == "Opaque" and new["data"] == {"a": "Yg=="}
    existing = {
        "metadata": {
            "name": "s",
            "resourceVersion": "7",
            "labels": {"app.kubernetes.io/managed-by": "caravan", "team": "red"},
            "annotations": {"note": "x"},
        },
        "type": "Opaque",
        "data": {"old": "eA=="},
    }
    replaced = managed_secret("s", {"new": "v"}, existing)
    assert replaced["metadata"]["resourceVersion"] == "7"
    assert replaced["metadata"]["labels"]["team"] == "red"
    assert replaced["metadata"]["annotations"] == {"note": "x"}
    assert replaced["data"] == {"new": "dg=="}


def test_unlabelled_secrets_are_not_managed() -> None:
    assert not is_managed({"metadata": {"name": "x"}})
    assert not is_managed({"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}})
