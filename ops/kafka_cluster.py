"""``ops/kafka/cluster``: Apache Kafka on 127.0.0.1 in KRaft mode until Ctrl-C; with
``--secured``, over SASL_SSL with one SCRAM user per role and their ACLs
(``ops/kafka_security.py``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from gateway.streaming.apache_kafka import KAFKA_VERSION, KafkaCluster
from ops.kafka_security import ADMIN, PRINCIPALS, secured_kafka


@contextlib.contextmanager
def _secured(nodes: int, data_dir: Path | None) -> Iterator[KafkaCluster]:
    folder = Path(tempfile.mkdtemp(prefix="crg-kafka-secured-")) if data_dir is None else data_dir
    with secured_kafka(folder, nodes=nodes) as kafka:
        for user in [ADMIN, *PRINCIPALS]:
            env = folder / "tls" / f"{user}.env"
            env.touch(0o600)
            env.write_text("".join(f"{k}={v}\n" for k, v in kafka.env(user).items()))
        print(f"secured: SASL_SSL, SCRAM-SHA-512; CA {kafka.ca_file}")
        print(f"each principal's settings (mode 0600): {folder / 'tls'}/<user>.env for")
        print("  " + ", ".join([ADMIN, *PRINCIPALS]) + "  (e.g. set -a; . gateway.env)")
        yield kafka.cluster


def main() -> int:
    parser = argparse.ArgumentParser(prog="ops/kafka/cluster", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1, help="KRaft nodes (broker+controller)")
    parser.add_argument("--data-dir", type=Path, help="keep data here (default: temporary)")
    parser.add_argument(
        "--secured", action="store_true", help="TLS, SASL/SCRAM and ACLs (a new cluster)"
    )
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    running = (
        _secured(args.nodes, args.data_dir)
        if args.secured
        else KafkaCluster(args.nodes, args.data_dir)
    )
    with running as cluster:
        print(f"Apache Kafka {KAFKA_VERSION}, {args.nodes} node(s): {cluster.bootstrap_servers}")
        print(f"data and logs: {cluster.data_dir}; Ctrl-C stops it", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
