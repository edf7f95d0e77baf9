"""CARAVAN_NATS_* (what the chart sets) into NatsConfig, and the stream names it implies."""

from __future__ import annotations

import pytest

from caravan.config import NatsConfig, nats_from_env
from caravan.events_nats.streams import Names


def test_no_url_means_the_embedded_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARAVAN_NATS_URL", raising=False)
    assert nats_from_env() is None
    monkeypatch.setenv("CARAVAN_NATS_URL", "  ")
    assert nats_from_env() is None


def test_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CARAVAN_NATS_URL": "nats://a:4222,nats://b:4222",
        "CARAVAN_NATS_CREDS": "/etc/caravan/nats/creds/nats.creds",
        "CARAVAN_NATS_USER": "u",
        "CARAVAN_NATS_PASSWORD": "p",
        "CARAVAN_NATS_TLS_CA": "/ca.crt",
        "CARAVAN_NATS_MERGE_GRACE_MS": "1500",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    config = nats_from_env()
    assert config == NatsConfig(
        url="nats://a:4222,nats://b:4222",
        creds_file="/etc/caravan/nats/creds/nats.creds",
        user="u",
        password="p",
        tls_ca_file="/ca.crt",
        merge_grace_ms=1500,
    )
    assert config.tls


@pytest.mark.parametrize(
    ("config", "tls"),
    [
        (NatsConfig(url="nats://n:4222"), False),
        (NatsConfig(url="tls://n:4222"), True),
        (NatsConfig(url="nats://n:4222", tls_enabled=True), True),
        (NatsConfig(url="nats://n:4222", tls_cert_file="/c"), True),
    ],
)
def test_tls_is_on_when_asked_in_any_way(config: NatsConfig, tls: bool) -> None:
    assert config.tls is tls


def test_stream_names_are_per_installation_and_valid() -> None:
    names = Names.of("games.eu", "caravan-events")
    assert names.partials_stream == "caravan_games_eu_caravan-events_partials"
    assert names.partials == "caravan_games_eu_caravan-events.partials"
    assert "." not in names.results_stream and "." not in names.documents_stream
    assert Names.of("ns", "x", override="my.prefix").prefix == "my_prefix"
