"""How a process reaches Kafka (settings → client options, the password kept secret) and
the grants each role gets on a secured cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.config import Settings
from gateway.streaming.access import AccessError, KafkaAccess
from gateway.streaming.acls import ROLES, grants
from gateway.streaming.topics import Topics
from ops.kafka_security import make_tls

SECRET = "s3cret-Pa55"


def secured_settings(tmp_path: Path, **extra: object) -> Settings:
    ca, _ = make_tls(tmp_path / "tls")
    return Settings(
        data_dir=tmp_path,
        bootstrap_servers="127.0.0.1:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="gateway",
        kafka_sasl_password=SecretStr(SECRET),
        kafka_ssl_ca_file=ca,
        **extra,  # type: ignore[arg-type]
    )


def test_plaintext_is_the_default_and_needs_nothing(tmp_path: Path) -> None:
    options = Settings(data_dir=tmp_path).kafka.options()
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_every_client_the_same_options_and_hides_the_password(
    tmp_path: Path,
) -> None:
    settings = secured_settings(tmp_path)
    access = settings.kafka
    options = access.options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "gateway"
    assert options["sasl_plain_password"] == SECRET
    for shown in (repr(access), access.describe(), repr(settings), str(settings)):
        assert SECRET not in shown
    assert access.describe() == "127.0.0.1:9093 over SASL_SSL as gateway (SCRAM-SHA-512)"


def test_a_child_process_gets_the_same_access(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = secured_settings(tmp_path, kafka_idempotence=True)
    for name, value in settings.kafka_env().items():
        monkeypatch.setenv(name, value)
    child = Settings(data_dir=tmp_path)
    assert child.kafka == settings.kafka
    assert child.kafka_idempotence


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"username": None}, "needs a SASL user name and password"),
        ({"password": None}, "needs a SASL user name and password"),
        ({"cert_file": Path("/etc/hostname")}, "needs its key"),
        ({"security_protocol": "SASL_PLAINTEXT"}, "TLS files given"),
        ({"ca_file": Path("/no/such/ca.pem")}, "does not exist"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_any_connection(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    fields: dict[str, object] = {
        "bootstrap_servers": "127.0.0.1:9093",
        "security_protocol": "SASL_SSL",
        "username": "gateway",
        "password": SecretStr(SECRET),
        "ca_file": ca,
        **change,
    }
    with pytest.raises(AccessError, match=message):
        KafkaAccess(**fields)  # type: ignore[arg-type]


def test_only_the_gateway_writes_the_verified_topic_and_a_registry_only_the_raw_one() -> None:
    topics = Topics()
    plan = [
        g
        for role in ROLES
        for g in grants(topics, role, role, "GHA" if role == "national" else None)
    ]
    writers = {(g.principal, g.name) for g in plan if g.operation == "Write"}
    assert {p for p, name in writers if name == topics.verified} == {"User:gateway"}
    assert {name for p, name in writers if p == "User:registry"} == {topics.raw}
    assert {name for p, name in writers if p == "User:national"} == {
        topics.itmo_actions,
        topics.alerts,
        topics.authorizations,
    }
    assert {p for p, name in writers if name == topics.authorizations} == {"User:national"}
    readers = {(g.principal, g.name) for g in plan if g.operation == "Read"}
    assert ("User:registry", topics.raw) not in readers
    assert ("User:national", "crg.national.gha") in readers
    assert ("User:national", topics.authorizations) in readers
    with pytest.raises(ValueError, match="one Party"):
        grants(topics, "national", "x")


def test_a_file_that_is_no_certificate_is_said_so(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot one\n")
    access = KafkaAccess("127.0.0.1:9093", "SSL", ca_file=ca)
    with pytest.raises(AccessError, match="not PEM"):
        access.options()
