"""Apache Kafka on loopback: KRaft nodes (each a combined broker and controller) run from
the jars ``ops/kafka/fetch`` puts in a cache outside the repository, for the tests,
``crg up --broker kafka`` and ``ops/kafka/cluster``.

One node for the plain tests and the embedded option; three for replication and
failover (replication factor 3, ``min.insync.replicas`` 2). Every port is a free one of
127.0.0.1; every JVM is stopped with the cluster (SIGTERM, then SIGKILL), and each node's
log stays in its folder.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import structlog

from gateway.resources import kafka_properties
from gateway.streaming.local_broker import free_port

log = structlog.get_logger("crg.kafka")

KAFKA_VERSION = "4.1.1"
MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = warn
logger.server.name = kafka.server.KafkaServer
logger.server.level = info
"""


def kafka_home() -> Path:
    """Where ``ops/kafka/fetch`` puts Apache Kafka (``CRG_KAFKA_HOME`` overrides)."""
    default = Path.home() / ".cache" / "crg" / f"apache-kafka-{KAFKA_VERSION}"
    return Path(os.environ.get("CRG_KAFKA_HOME", default))


def kafka_classpath() -> str:
    libs = kafka_home() / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise FileNotFoundError(
            f"no Apache Kafka {KAFKA_VERSION} in {libs}: run ops/kafka/fetch (Maven) first"
        )
    return str(libs / "*")


#: what loopback nodes change of the deployments' settings: a consumer group forms at once
#: (the tests start and stop many), and a topic is created when first written (tansu does
#: the same; the gateway creates its own with ``ensure_topics`` all the same)
LOOPBACK = {"group.initial.rebalance.delay.ms": "0", "auto.create.topics.enable": "true"}


@dataclass(frozen=True)
class BrokerSecurity:
    """A secured cluster (``secured.properties``): clients over SASL_SSL with SCRAM-SHA-512,
    the nodes between themselves over TLS with their own certificate, ACLs enforced.

    ``node_pem`` holds the nodes' key and certificate (subject ``CN=crg-kafka-node``, for
    127.0.0.1), ``ca_file`` the CA that signed it; ``users`` are the SCRAM users created
    when the storage is formatted, among them ``admin``, the super user."""

    ca_file: Path
    node_pem: Path
    users: Mapping[str, str] = field(repr=False)


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding — never starting
    with '-', which the storage tool would read as an option (as Kafka's own
    ``Uuid.randomUuid`` avoids; one id in 64 did, and formatting failed)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaCluster:
    """``nodes`` KRaft nodes on 127.0.0.1. Use as a context manager or start/stop.

    ``data_dir``: where the nodes keep their logs and data; a temporary folder (removed
    at stop) when None. A cluster started again on the same ``data_dir`` keeps its topics
    and offsets (the ports are kept in the folder)."""

    def __init__(
        self,
        nodes: int = 1,
        data_dir: Path | None = None,
        *,
        heap_mb: int = 512,
        extra: dict[str, str] | None = None,
        security: BrokerSecurity | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.nodes = nodes
        self._temporary = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="crg-kafka-")) if data_dir is None else data_dir
        )
        self.heap_mb = heap_mb
        self.extra = extra or {}
        self.security = security
        self.host = "127.0.0.1"
        self.broker_ports: list[int] = []
        self.controller_ports: list[int] = []
        self.internal_ports: list[int] = []  # between secured nodes
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    # -- layout -------------------------------------------------------------------------
    def node_dir(self, node: int) -> Path:
        return self.data_dir / f"node-{node}"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{p}" for p in self.broker_ports)

    def _ports(self) -> None:
        """The ports of an earlier start on this folder, or free ones."""
        saved = self.data_dir / "ports"
        if saved.exists():
            numbers = [int(x) for x in saved.read_text().split()]
        else:
            numbers = [free_port(self.host) for _ in range(3 * self.nodes)]
            saved.write_text(" ".join(map(str, numbers)))
        n = self.nodes
        self.broker_ports = numbers[:n]
        self.controller_ports = numbers[n : 2 * n]
        self.internal_ports = numbers[2 * n : 3 * n]

    def settings(self, node: int) -> dict[str, str]:
        """Node ``node``'s broker settings: the deployments' (``server.properties``, with
        ``secured.properties`` on a secured cluster) and this cluster's own."""
        if not self.broker_ports:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._ports()
        replicas = min(3, self.nodes)
        voters = ",".join(f"{n}@{self.host}:{self.controller_ports[n]}" for n in range(self.nodes))
        client = f"{self.host}:{self.broker_ports[node]}"
        controller = f"{self.host}:{self.controller_ports[node]}"
        settings = kafka_properties("server")
        settings.update(
            {
                "node.id": str(node),
                "controller.quorum.voters": voters,
                "log.dirs": str(self.node_dir(node) / "data"),
                **LOOPBACK,
            }
        )
        if replicas < 3:  # fewer nodes than the deployments' three replicas
            for name in list(settings):
                if name.endswith("replication.factor"):
                    settings[name] = str(replicas)
                elif name.endswith("min.isr") or name == "min.insync.replicas":
                    settings[name] = "1"
        if self.security is None:
            settings.update(
                {
                    "listeners": f"PLAINTEXT://{client},CONTROLLER://{controller}",
                    "advertised.listeners": f"PLAINTEXT://{client}",
                    "inter.broker.listener.name": "PLAINTEXT",
                    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                }
            )
        else:
            internal = f"{self.host}:{self.internal_ports[node]}"
            settings.update(kafka_properties("secured"))
            settings.update(
                {
                    "listeners": f"CLIENT://{client},INTERNAL://{internal},"
                    f"CONTROLLER://{controller}",
                    "advertised.listeners": f"CLIENT://{client},INTERNAL://{internal}",
                    "ssl.keystore.location": str(self.security.node_pem),
                    "ssl.truststore.location": str(self.security.ca_file),
                }
            )
        settings.update(self.extra)
        return settings

    def _properties(self, node: int) -> Path:
        path = self.node_dir(node) / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.settings(node).items()))
        return path

    def _java(self, node: int, *args: str) -> list[str]:
        log4j = self.data_dir / "log4j2.properties"
        return [
            shutil.which("java") or "java",
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 256)}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.node_dir(node)}",
            "-cp",
            kafka_classpath(),
            *args,
        ]

    def _format(self) -> None:
        """Each node's storage, formatted once with one cluster id."""
        cluster_id = _cluster_id()
        for node in range(self.nodes):
            if (self.node_dir(node) / "data" / "meta.properties").exists():
                continue
            command = self._java(
                node, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(self._properties(node))
            )
            for user, password in (self.security.users if self.security else {}).items():
                command += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
            done = subprocess.run(command, capture_output=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(
                    f"formatting Kafka node {node} failed: {done.stderr.decode()[-2000:]}"
                )

    # -- life ------------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> KafkaCluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for node in range(self.nodes):
            self.node_dir(node).mkdir(exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        self._ports()
        try:
            for node in range(self.nodes):
                self._properties(node)
            self._format()
            for node in range(self.nodes):
                self.start_node(node)
            for node in range(self.nodes):
                self._wait_listening(node, timeout)
        except BaseException:
            self.stop()  # never leave an orphan JVM behind a failed start
            raise
        log.info("kafka.started", bootstrap=self.bootstrap_servers, nodes=self.nodes)
        return self

    def start_node(self, node: int) -> None:
        """Start (or restart, after :meth:`kill`) one node; returns without waiting."""
        out = open(self.node_dir(node) / "server.log", "ab")  # noqa: SIM115
        try:
            self._processes[node] = subprocess.Popen(
                self._java(node, MAIN, str(self.node_dir(node) / "server.properties")),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()

    def _wait_listening(self, node: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self._processes[node]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.node_dir(node) / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Kafka node {node} exited at start:\n{tail}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.broker_ports[node]), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"Kafka node {node} did not listen in {timeout:.0f}s")

    def wait_node(self, node: int, timeout: float = 90.0) -> None:
        self._wait_listening(node, timeout)

    def pid(self, node: int) -> int | None:
        process = self._processes.get(node)
        return None if process is None or process.poll() is not None else process.pid

    def kill(self, node: int) -> None:
        """SIGKILL one node (a crash: nothing flushed, nothing said to the others)."""
        process = self._processes.pop(node, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(30)

    def pause(self) -> None:
        """SIGSTOP every node (the whole cluster frozen); :meth:`resume` continues it."""
        for process in self._processes.values():
            process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for process in self._processes.values():
            process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        processes, self._processes = self._processes, {}
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a paused JVM cannot hear SIGTERM
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if processes:
            log.info("kafka.stopped", bootstrap=self.bootstrap_servers)

    def remove(self) -> None:
        """Delete the data folder (only a temporary one is removed by :meth:`__exit__`)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._temporary:
            self.remove()
