"""``ops/kafka/cluster``: Apache Kafka on 127.0.0.1 in KRaft mode until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from gateway.streaming.apache_kafka import KAFKA_VERSION, KafkaCluster


def main() -> int:
    parser = argparse.ArgumentParser(prog="ops/kafka/cluster", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1, help="KRaft nodes (broker+controller)")
    parser.add_argument("--data-dir", type=Path, help="keep data here (default: temporary)")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with KafkaCluster(args.nodes, args.data_dir) as cluster:
        print(f"Apache Kafka {KAFKA_VERSION}, {args.nodes} node(s): {cluster.bootstrap_servers}")
        print(f"data and logs: {cluster.data_dir}; Ctrl-C stops it", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
