"""How a process reaches Kafka: the bootstrap servers, the transport (plaintext or TLS),
and who it is (SASL/SCRAM). Every Kafka client of the gateway and the adapters — producer,
consumer, admin — is made from one :class:`KafkaAccess` through :meth:`KafkaAccess.options`,
so a secured cluster is reached the same way by every role.

The password is a secret: it is not in ``repr`` and not in :meth:`KafkaAccess.describe`,
which is what logs show.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class AccessError(ValueError):
    """The Kafka access settings cannot work (said before any connection is tried)."""


class KafkaAccessRefused(RuntimeError):
    """Kafka refused this process: its credentials, its certificate check, or an ACL.
    Not transient: retrying cannot help until the settings or the grants change."""


#: what a broker answers when an ACL does not allow an operation
AUTHORIZATION_FAILURES = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    #: the CA that signed the brokers' certificates (PEM); the system's CAs when None
    ca_file: Path | None = None
    #: a client certificate and its key (PEM), for brokers that ask for one
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if self.sasl and not (self.username and self.password):
            raise AccessError(
                f"security protocol {self.security_protocol} needs a SASL user name and "
                "password (CRG_KAFKA_SASL_USERNAME, CRG_KAFKA_SASL_PASSWORD)"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise AccessError("a client certificate needs its key, and a key its certificate")
        if not self.tls and (self.ca_file or self.cert_file):
            raise AccessError(
                f"TLS files given but the security protocol is {self.security_protocol}"
            )
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise AccessError(f"Kafka {name.replace('_', ' ')} {path} does not exist")

    @classmethod
    def of(cls, value: KafkaAccess | str) -> KafkaAccess:
        """``value`` itself, or plaintext access to the bootstrap servers it names."""
        return value if isinstance(value, KafkaAccess) else cls(value)

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=None if self.ca_file is None else str(self.ca_file),
                certfile=None if self.cert_file is None else str(self.cert_file),
                keyfile=None if self.key_file is None else str(self.key_file),
            )
        except ssl.SSLError as exc:
            raise AccessError(f"the Kafka TLS files are not PEM certificates/keys: {exc}") from exc
        return context

    def options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            assert self.password is not None
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.get_secret_value()
        return options

    def describe(self) -> str:
        """For logs and messages: where and as whom, never the password."""
        who = f" as {self.username} ({self.sasl_mechanism})" if self.sasl else ""
        return f"{self.bootstrap_servers} over {self.security_protocol}{who}"


CHECK_SECONDS = 10.0  # one connection attempt while checking access


async def check_access(kafka: KafkaAccess) -> None:
    """Connect to each bootstrap server once and authenticate. Raise
    :class:`KafkaAccessRefused` when a server refuses the credentials or its certificate is
    not trusted; return when one accepts, or when none can be reached (that is transient:
    aiokafka says only "Unable to bootstrap" in either case)."""
    options = kafka.options()
    options.pop("bootstrap_servers")
    for server in kafka.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                conn = await create_conn(host, int(port), **options)
        except SaslAuthenticationFailed as exc:
            raise KafkaAccessRefused(
                f"Kafka at {server} refused the credentials of {kafka.username} "
                f"({kafka.sasl_mechanism}): wrong user name or password ({exc})"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise KafkaAccessRefused(
                f"Kafka at {server}: its TLS certificate is not trusted "
                f"(CA file: {kafka.ca_file or 'the system CAs'}): {exc.verify_message}"
            ) from None
        except (OSError, TimeoutError, KafkaConnectionError):
            continue  # not reachable now: transient
        conn.close()
        return


def refused(kafka: KafkaAccess, exc: BaseException) -> KafkaAccessRefused:
    """What an authorization failure means, said plainly."""
    who = kafka.username or "this client (no SASL user)"
    return KafkaAccessRefused(
        f"Kafka refused {who} on {kafka.bootstrap_servers}: {exc}. The ACLs do not allow "
        "this role the operation (the grants each role needs: crg topics acls --help)"
    )


@asynccontextmanager
async def refusals(kafka: KafkaAccess) -> AsyncIterator[None]:
    """Turn Kafka's refusals inside the block into :class:`KafkaAccessRefused` with a
    clear message: an ACL's, and a connection failure that was refused credentials or an
    untrusted certificate. Anything else passes through unchanged."""
    try:
        yield
    except AUTHORIZATION_FAILURES as exc:
        raise refused(kafka, exc) from exc
    except KafkaConnectionError:
        await check_access(kafka)  # raises if the failure was a refusal
        raise
