"""A secured Apache Kafka on loopback, for the tests and ``ops/kafka/cluster --secured``:
a CA and the nodes' certificate made here with ``cryptography``, one SCRAM-SHA-512 user
per role with a random password, and the ACLs of ``gateway/streaming/acls.py`` applied
through the admin user (confluent-kafka's admin client: aiokafka has no ACL calls).

Passwords are kept in memory and in files of mode 0600 under the cluster's folder; they
are never printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from gateway.config import Settings
from gateway.streaming.access import KafkaAccess
from gateway.streaming.acls import Grant, Role, grants
from gateway.streaming.apache_kafka import BrokerSecurity, KafkaCluster
from gateway.streaming.topics import Topics

NODE_SUBJECT = "crg-kafka-node"  # its principal, User:CN=crg-kafka-node, is a super user
ADMIN = "admin"

#: the principals of a secured loopback cluster: user → (role, Party)
PRINCIPALS: dict[str, tuple[Role, str | None]] = {
    "registry": ("registry", None),
    "gateway": ("gateway", None),
    "national-gha": ("national", "GHA"),
    "national-che": ("national", "CHE"),
    "international": ("international", None),
}


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(folder: Path) -> tuple[Path, Path]:
    """A CA (``ca.pem``) and the nodes' key and certificate signed by it (``node.pem``:
    key first, then the certificate, as Kafka's PEM key store reads it), for 127.0.0.1
    and localhost, good for 30 days."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("crg test CA"))
        .issuer_name(_name("crg test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = (
        x509.CertificateBuilder()
        .subject_name(_name(NODE_SUBJECT))
        .issuer_name(ca.subject)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    node_pem = folder / "node.pem"
    _write_private(
        node_pem,
        node_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + node.public_bytes(serialization.Encoding.PEM)
        + ca.public_bytes(serialization.Encoding.PEM),
    )
    return ca_file, node_pem


@dataclass
class SecuredKafka:
    """A running secured cluster and how each principal reaches it."""

    cluster: KafkaCluster
    ca_file: Path
    passwords: dict[str, str] = field(repr=False)

    def access(self, user: str, password: str | None = None) -> KafkaAccess:
        """SASL_SSL access as ``user`` (with another ``password`` to try a wrong one)."""
        return KafkaAccess(
            self.cluster.bootstrap_servers,
            "SASL_SSL",
            "SCRAM-SHA-512",
            user,
            SecretStr(self.passwords[user] if password is None else password),
            self.ca_file,
        )

    def env(self, user: str) -> dict[str, str]:
        """The ``CRG_…`` settings of a process acting as ``user`` (``Settings.kafka_env``)."""
        access = self.access(user)
        return Settings(
            bootstrap_servers=access.bootstrap_servers,
            kafka_security_protocol=access.security_protocol,
            kafka_sasl_mechanism=access.sasl_mechanism,
            kafka_sasl_username=access.username,
            kafka_sasl_password=access.password,
            kafka_ssl_ca_file=access.ca_file,
            kafka_idempotence=True,
        ).kafka_env()


def apply_grants(admin: KafkaAccess, wanted: list[Grant]) -> None:
    """Create the ACLs ``wanted`` (as ``admin``, a super user)."""
    from confluent_kafka.admin import (  # a tooling dependency: aiokafka has no ACL calls
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    assert admin.password is not None
    client = AdminClient(
        {
            "bootstrap.servers": admin.bootstrap_servers,
            "security.protocol": admin.security_protocol,
            "sasl.mechanism": admin.sasl_mechanism,
            "sasl.username": admin.username,
            "sasl.password": admin.password.get_secret_value(),
            "ssl.ca.location": str(admin.ca_file),
        }
    )
    bindings = [
        AclBinding(
            ResourceType.TOPIC if g.resource == "topic" else ResourceType.GROUP,
            g.name,
            ResourcePatternType.LITERAL,
            g.principal,
            "*",
            AclOperation[g.operation.upper()],
            AclPermissionType.ALLOW,
        )
        for g in wanted
    ]
    for future in client.create_acls(bindings, request_timeout=30).values():
        future.result()


def all_grants(topics: Topics, principals: dict[str, tuple[Role, str | None]]) -> list[Grant]:
    every = (g for user, (role, p) in principals.items() for g in grants(topics, role, user, p))
    return list(dict.fromkeys(every))  # a topic read and written is described once


@contextmanager
def secured_kafka(
    data_dir: Path,
    *,
    nodes: int = 1,
    topics: Topics | None = None,
    principals: dict[str, tuple[Role, str | None]] | None = None,
) -> Iterator[SecuredKafka]:
    """A secured cluster under ``data_dir`` with the grants of ``principals`` on
    ``topics``; stopped (every JVM) when the block ends."""
    principals = PRINCIPALS if principals is None else principals
    tls = data_dir / "tls"
    if (tls / "ca.pem").exists():  # a cluster started here before: its users are formatted
        ca_file, node_pem = tls / "ca.pem", tls / "node.pem"
    else:
        ca_file, node_pem = make_tls(tls)
    passwords = {}
    for user in [ADMIN, *principals]:
        kept = tls / f"{user}.password"
        if not kept.exists():
            _write_private(kept, secrets.token_urlsafe(18).encode())
        passwords[user] = kept.read_text()
    cluster = KafkaCluster(
        nodes, data_dir / "kafka", security=BrokerSecurity(ca_file, node_pem, passwords)
    )
    with cluster:
        secured = SecuredKafka(cluster, ca_file, passwords)
        apply_grants(secured.access(ADMIN), all_grants(topics or Topics(), principals))
        yield secured
