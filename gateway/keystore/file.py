"""Public keys in one JSON file, replaced atomically on every change."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from gateway.contract.keys import KeyRecord, KeyRing

FORMAT = "crg.registry-keys.v1"


class FileKeyStorage:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> KeyRing:
        if not self.path.exists():
            return KeyRing()
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not a {FORMAT} file")
        return KeyRing(KeyRecord.from_json(item) for item in data["keys"])

    def save(self, records: list[KeyRecord]) -> None:
        """Merge ``records`` by :meth:`KeyRing.put`'s rules (the store only tightens) and
        replace the file atomically: all or none."""
        ring = self.load()
        for record in records:
            ring.put(record)
        body = json.dumps(
            {"format": FORMAT, "keys": [r.to_json() for r in ring]}, indent=2, ensure_ascii=False
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
