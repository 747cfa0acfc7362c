"""Named ``crg`` processes over one data directory, each logging to a file there: how
the chaos run and the end-to-end benchmark run the system as separate processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.assembly import ensure_signing_key, party_signer
from gateway.config import Settings
from gateway.contract.attestation import GATEWAY_OWNER
from gateway.contract.authorization import PartyAuthorization
from gateway.contract.itmo_message import party_owner
from gateway.contract.keys import KeyRecord
from gateway.keystore import open_key_storage
from gateway.publishing.letters import publish_letters
from gateway.streaming.apache_kafka import KafkaCluster
from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.topics import Topics

Broker = LocalBroker | KafkaCluster


@contextmanager
def running_broker(kind: str, nodes: int = 1) -> Iterator[Broker]:
    """tansu, or Apache Kafka (fetched by ops/kafka/fetch; ``nodes`` KRaft nodes, each
    with a smaller heap when there are several), for one run."""
    if kind == "tansu":
        with LocalBroker() as tansu:
            yield tansu
        return
    with KafkaCluster(nodes, heap_mb=512 if nodes == 1 else 384) as cluster:
        yield cluster


def trust_store(
    data: Path, records: Iterable[KeyRecord], parties: Iterable[str] = ("GHA", "CHE")
) -> None:
    """A data directory's trust store (``keys/``): these public keys, and keys made here
    (their private keys on disk) for the gateway's attestations and each Party's ITMO
    actions, as a deployment has."""
    url = str(data / "keys" / "public-keys.json")
    open_key_storage(url).save(list(records))
    settings = Settings(data_dir=data, keys_url=url, private_key_dir=data / "keys" / "private")
    for owner in (GATEWAY_OWNER, *(party_owner(p) for p in parties)):
        ensure_signing_key(settings, owner)


async def publish_party_letters(
    data: Path, kafka: str, topics: Topics, letters: Iterable[PartyAuthorization]
) -> None:
    """Each letter signed with its Party's key in ``data`` (made by :func:`trust_store`)
    and published, as the Party's ``crg authorize`` would."""
    settings = Settings(data_dir=data, keys_url=str(data / "keys" / "public-keys.json"),
                        private_key_dir=data / "keys" / "private")  # fmt: skip
    signed = [(letter, party_signer(settings, letter.party)) for letter in letters]
    await publish_letters(kafka, topics.authorizations, signed)


def broker_env(broker: Broker) -> dict[str, str]:
    """The settings a ``crg`` process needs for ``broker`` (idempotent producers on Kafka)."""
    return {
        "CRG_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CRG_KAFKA_IDEMPOTENCE": "true" if isinstance(broker, KafkaCluster) else "false",
    }


def status_mb(pid: int, field_name: str) -> float:
    """A memory figure of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in MB; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def tree_mb(pid: int, field_name: str) -> float:
    """:func:`status_mb` of ``pid`` and every process below it, summed."""
    return sum(status_mb(p, field_name) for p in [pid, *descendants(pid)])


class Processes:
    def __init__(self, data: Path, env: dict[str, str], commands: dict[str, list[str]]) -> None:
        self.data = data
        self.env = env
        self.commands = commands
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = (self.data / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "gateway", *self.commands[name]],
            env=self.env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL one process and start it again at once."""
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.start(name)

    def check(self) -> None:
        """Raise, with the end of its log, if a process has exited."""
        for name, process in self.running.items():
            if process.poll() is not None:
                tail = (self.data / f"{name}.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def rss(self) -> dict[str, float]:
        """Each process's resident memory with that of its children (gateway members)."""
        return {n: tree_mb(p.pid, "VmRSS") for n, p in self.running.items()}

    def peak(self) -> dict[str, float]:
        return {n: tree_mb(p.pid, "VmHWM") for n, p in self.running.items()}

    def stop_all(self) -> None:
        """SIGTERM every process, then wait (a minute at most) for each to end."""
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
