"""One source of the Apache Kafka broker settings: the compose file mounts it, the loopback
nodes (tests, ``crg up --broker kafka``, ``ops/kafka/cluster``) read it."""

from __future__ import annotations

from pathlib import Path

from gateway.resources import kafka_properties
from gateway.streaming.apache_kafka import LOOPBACK, BrokerSecurity, KafkaCluster, _cluster_id

REPO = Path(__file__).resolve().parents[2]
SHARED = kafka_properties("server")


def test_the_compose_file_mounts_the_shared_settings_and_repeats_none_of_them() -> None:
    compose = (REPO / "docker" / "compose.yaml").read_text()
    mount = "../gateway/resources/kafka/server.properties:/mnt/shared/config/server.properties"
    assert mount in compose
    for name in SHARED:
        assert f"KAFKA_{name.upper().replace('.', '_')}:" not in compose, name


def test_three_loopback_nodes_run_the_deployments_settings(tmp_path: Path) -> None:
    settings = KafkaCluster(3, tmp_path).settings(1)
    for name, value in SHARED.items():
        assert settings[name] == LOOPBACK.get(name, value), name
    assert settings["min.insync.replicas"] == "2"
    assert settings["default.replication.factor"] == "3"
    assert settings["node.id"] == "1"


def test_one_node_lowers_the_replication_to_what_it_can_hold(tmp_path: Path) -> None:
    settings = KafkaCluster(1, tmp_path).settings(0)
    replicated = [n for n in SHARED if n.endswith(("replication.factor", "min.isr"))]
    assert replicated and all(settings[n] == "1" for n in replicated)
    assert settings["min.insync.replicas"] == "1"


def test_a_secured_cluster_adds_the_secured_settings_and_its_files(tmp_path: Path) -> None:
    security = BrokerSecurity(tmp_path / "ca.pem", tmp_path / "node.pem", {"admin": "x"})
    settings = KafkaCluster(1, tmp_path, security=security).settings(0)
    for name, value in kafka_properties("secured").items():
        assert settings[name] == value, name
    assert settings["listeners"].startswith("CLIENT://127.0.0.1:")
    assert settings["ssl.keystore.location"] == str(tmp_path / "node.pem")
    assert "PLAINTEXT" not in settings["listener.security.protocol.map"]


def test_a_cluster_id_never_reads_as_an_option() -> None:
    """One base64url id in 64 began with '-', and kafka-storage format took it for an
    option: the cluster did not start."""
    ids = [_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert {len(i) for i in ids} == {22}
