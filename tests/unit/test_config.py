"""Configuration from the environment, as a pod sees it."""

from __future__ import annotations

import base64
import json
import pathlib

import pytest

from caravan.config import env_defaults, pod_service_account


def test_service_links_of_a_service_named_caravan_do_not_break_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What Kubernetes injects into every pod of a namespace with a Service `caravan`.
    monkeypatch.setenv("CARAVAN_PORT", "tcp://10.96.0.12:8080")
    monkeypatch.setenv("CARAVAN_SERVICE_HOST", "10.96.0.12")
    monkeypatch.setenv("CARAVAN_PORT_8080_TCP_ADDR", "10.96.0.12")
    monkeypatch.delenv("CARAVAN_LISTEN_PORT", raising=False)
    monkeypatch.delenv("CARAVAN_LISTEN_HOST", raising=False)
    env = env_defaults()
    assert env["port"] == "8080"
    assert env["host"] == "127.0.0.1"


def test_listen_address_variables_set_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARAVAN_LISTEN_PORT", "18080")
    monkeypatch.setenv("CARAVAN_LISTEN_HOST", "::1")
    assert env_defaults()["port"] == "18080"
    assert env_defaults()["host"] == "::1"


def test_caravans_own_account_is_read_from_its_token(tmp_path: pathlib.Path) -> None:
    claims = {"sub": "system:serviceaccount:games:caravan", "aud": ["x"]}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    token = tmp_path / "token"
    token.write_text(f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl")
    assert pod_service_account(str(token)) == "caravan"
    token.write_text("not a token")
    assert pod_service_account(str(token)) == ""
    assert pod_service_account(str(tmp_path / "absent")) == ""
