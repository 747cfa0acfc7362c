"""Settings from environment variables (``CRG_…``) and an optional TOML file.

The file is ``$CRG_CONFIG`` if set, else ``crg.toml`` in the working directory if
present; environment variables win over the file. Every setting has a safe default:
loopback addresses, the embedded broker's port, a ``data/`` directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.streaming.access import KafkaAccess, SaslMechanism, SecurityProtocol


def _config_file() -> Path | None:
    explicit = os.environ.get("CRG_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("crg.toml")
    return local if local.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRG_", extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where SQLite files, keys and state live.")
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic_prefix: str = Field("crg", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(6, ge=1, le=1000, description="Partitions for topics we create.")
    replication: int = Field(1, ge=1, description="Replication factor for topics we create.")
    kafka_idempotence: bool = Field(
        False,
        description="Idempotent producer. Turn on for Apache Kafka; tansu's memory storage "
        "does not support it. Correctness never depends on it.",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(None, description="This process's Kafka principal.")
    kafka_sasl_password: SecretStr | None = Field(None, description="Its password (never logged).")
    kafka_ssl_ca_file: Path | None = Field(None, description="CA of the brokers' certificates.")
    kafka_ssl_cert_file: Path | None = Field(None, description="Client certificate (PEM).")
    kafka_ssl_key_file: Path | None = Field(None, description="Client certificate's key (PEM).")
    keys_url: str | None = Field(
        None, description="Public key store: file path / file:// URL or postgresql:// URL."
    )
    private_key_dir: Path | None = Field(None, description="Registry private keys (0600 PEM).")
    ledger_url: str | None = Field(
        None,
        description="Gateway ledger: sqlite:///path or postgresql://… (default: SQLite "
        "file in the data directory).",
    )
    gateway_max_batch: int = Field(
        2000, ge=1, le=100_000, description="Messages judged per ledger transaction."
    )
    gateway_sequence_quiet_after: float = Field(
        300.0,
        gt=0,
        description="Seconds of a registry being read from other partitions after which a "
        "raw partition that delivered none of its events stops holding back its "
        "sequence-gap check (gateway/service/ledger/sequences.py).",
    )
    gateway_processes: int = Field(
        1,
        ge=1,
        le=64,
        description="Gateway processes on this machine, members of one consumer group "
        "sharing the ledger (judging holds the interpreter lock: one process per core).",
    )
    national_store_url: str | None = Field(
        None,
        description="National-registry store, one per Party: sqlite:///path or "
        "postgresql://…; '{party}' is replaced by the Party code (default: a SQLite file "
        "per Party in the data directory).",
    )
    itmo_party_registries: dict[str, str] = Field(
        default_factory=dict,
        description='Party ITMO registry ids where not "<party>01", e.g. {"GHA": "GHA02"}.',
    )
    itmo_serial_offsets: dict[str, int] = Field(
        default_factory=dict,
        description="ITMO serial = program unit number + this offset, per program registry "
        "(give registries whose unit numbers overlap different offsets).",
    )
    national_letters: Literal["required", "off"] = Field(
        "required",
        description="required: a registry's Article 6 label makes ITMOs only when a letter "
        "of the host Party (crg authorize) confirms it, else the units are a claim; off: "
        "the registry's label suffices (before the Parties publish their letters).",
    )
    national_http_port: int = Field(8081, ge=0, le=65535)
    international_registry_url: str = Field(
        "http://127.0.0.1:8090", description="The international registry's interface."
    )
    international_registry_token: SecretStr | None = Field(
        None, description="Bearer token for the international registry (never logged)."
    )
    international_parties: list[str] = Field(
        default_factory=list,
        description='Parties the international adapter acts for, e.g. ["GHA", "CHE"]; '
        "an action for any other is refused before any call (empty: every Party).",
    )
    international_client_cert: Path | None = Field(None, description="mTLS client cert (PEM).")
    international_client_key: Path | None = Field(None, description="mTLS client key (PEM).")
    international_ca_file: Path | None = Field(None, description="CA bundle for the registry.")
    international_store_url: str | None = Field(
        None,
        description="International-registry adapter store: sqlite:///path or "
        "postgresql://… (default: SQLite file in the data directory).",
    )
    emulator_port: int = Field(8090, ge=0, le=65535)
    http_host: str = Field("127.0.0.1", description="HTTP bind address (loopback by default).")
    http_port: int = Field(8080, ge=0, le=65535)
    max_message_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @property
    def kafka(self) -> KafkaAccess:
        """How this process reaches Kafka (raises AccessError for settings that cannot
        work, e.g. SASL without a password)."""
        return KafkaAccess(
            self.bootstrap_servers,
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            self.kafka_sasl_password,
            self.kafka_ssl_ca_file,
            self.kafka_ssl_cert_file,
            self.kafka_ssl_key_file,
        )

    def kafka_env(self) -> dict[str, str]:
        """The Kafka settings as ``CRG_…`` variables, for a child process."""
        env = {
            "CRG_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "CRG_KAFKA_SECURITY_PROTOCOL": self.kafka_security_protocol,
            "CRG_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "CRG_KAFKA_IDEMPOTENCE": str(self.kafka_idempotence).lower(),
        }
        optional = {
            "CRG_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "CRG_KAFKA_SASL_PASSWORD": self.kafka_sasl_password
            and self.kafka_sasl_password.get_secret_value(),
            "CRG_KAFKA_SSL_CA_FILE": self.kafka_ssl_ca_file,
            "CRG_KAFKA_SSL_CERT_FILE": self.kafka_ssl_cert_file,
            "CRG_KAFKA_SSL_KEY_FILE": self.kafka_ssl_key_file,
        }
        env.update({k: str(v) for k, v in optional.items() if v})
        return env

    @property
    def resolved_keys_url(self) -> str:
        return self.keys_url or str(self.data_dir / "keys" / "public-keys.json")

    @property
    def resolved_ledger_url(self) -> str:
        return (
            self.ledger_url or f"sqlite://{(self.data_dir / 'gateway' / 'ledger.sqlite').resolve()}"
        )

    def national_url(self, party: str) -> str:
        if self.national_store_url:
            return self.national_store_url.replace("{party}", party)
        return f"sqlite://{(self.data_dir / 'national' / f'{party}.sqlite').resolve()}"

    @property
    def resolved_international_store_url(self) -> str:
        default = self.data_dir / "international" / "adapter.sqlite"
        return self.international_store_url or f"sqlite://{default.resolve()}"

    @property
    def resolved_private_key_dir(self) -> Path:
        return self.private_key_dir or self.data_dir / "keys" / "private"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
