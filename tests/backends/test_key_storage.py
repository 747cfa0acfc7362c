"""One contract for every public-key backend: the JSON file and PostgreSQL pass the same tests."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.keystore import KeyStorage, open_key_storage
from gateway.keystore.private import generate, load_private_key, write_private_key
from tests.conftest import T0, RegistryKey


@pytest.fixture(params=["file", "postgresql"])
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], KeyStorage]:
    if request.param == "file":
        url = f"file://{tmp_path / 'keys' / 'public-keys.json'}"
    else:
        url = request.getfixturevalue("pg_url")
    return lambda: open_key_storage(url)


def test_empty_store_loads_empty(storage_factory: Callable[[], KeyStorage]) -> None:
    assert len(storage_factory().load()) == 0


def test_saved_keys_load_back_equal(storage_factory: Callable[[], KeyStorage]) -> None:
    a, b = RegistryKey("verra"), RegistryKey("gold-standard")
    b_record = replace(b.record, valid_until=T0 + dt.timedelta(days=365))
    storage_factory().save([a.record, b_record])
    ring = storage_factory().load()  # a new instance: nothing cached
    assert ring.get(a.key_id) == a.record
    assert ring.get(b.key_id) == b_record
    assert [r.key_id for r in ring.for_registry("verra")] == [a.key_id]


def test_revocation_is_persisted(storage_factory: Callable[[], KeyStorage]) -> None:
    key = RegistryKey("verra")
    storage_factory().save([key.record])
    revoked = replace(key.record, revoked_at=T0 + dt.timedelta(days=1), revocation_reason="lost")
    storage_factory().save([revoked])
    assert storage_factory().load().get(key.key_id) == revoked


def test_rotation_saves_all_or_nothing(storage_factory: Callable[[], KeyStorage]) -> None:
    old, new, intruder = RegistryKey("verra"), RegistryKey("verra"), RegistryKey("verra")
    storage_factory().save([old.record])
    ring = storage_factory().load()
    changed = ring.rotated(new.record)
    # a batch with a record that tries to rebind an existing key id must change nothing
    bad = replace(intruder.record, key_id=old.key_id)
    with pytest.raises(ValueError):
        storage_factory().save([*changed, bad])
    after = storage_factory().load()
    assert after.get(old.key_id) == old.record
    assert [r.key_id for r in after] == [old.key_id]
    storage_factory().save(changed)
    assert {r.key_id for r in storage_factory().load()} == {old.key_id, new.key_id}


def test_private_key_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    private, record = generate("verra", T0)
    path = tmp_path / "private" / f"{record.key_id}.pem"
    write_private_key(path, private)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_private_key(path).private_bytes_raw() == private.private_bytes_raw()
    with pytest.raises(FileExistsError):
        write_private_key(path, private)


def test_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    private, _record = generate("verra", T0)
    path = tmp_path / "k.pem"
    write_private_key(path, private)
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="0600"):
        load_private_key(path)


def test_private_key_encrypted_with_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRG_KEY_PASSPHRASE", "correct horse")
    private, _ = generate("verra", T0)
    path = tmp_path / "k.pem"
    write_private_key(path, private)
    assert b"ENCRYPTED" in path.read_bytes()
    assert load_private_key(path).private_bytes_raw() == private.private_bytes_raw()
    monkeypatch.setenv("CRG_KEY_PASSPHRASE", "wrong")
    with pytest.raises(ValueError):
        load_private_key(path)


def test_the_store_only_tightens(storage_factory: Callable[[], KeyStorage]) -> None:
    """Registering a revoked key again silently undid its revocation; a key id could move
    to another registry; one public key could serve two registries; revoking again could
    move the revocation later. Each is refused or kept as it was."""
    storage = storage_factory()
    key = RegistryKey("verra")
    storage.save([key.record])
    early = key.record.valid_from + dt.timedelta(days=30)
    storage.save([replace(key.record, revoked_at=early, revocation_reason="leak")])
    storage.save([key.record])  # registered again, as first: still revoked
    later = replace(key.record, revoked_at=early + dt.timedelta(days=9))
    storage.save([later])  # revoked again, later: the earlier revocation stands
    kept = storage.load().get(key.key_id)
    assert (kept.revoked_at, kept.revocation_reason) == (early, "leak")
    with pytest.raises(ValueError, match="never changes owner"):
        storage.save([replace(key.record, registry_id="gold-standard")])
    with pytest.raises(ValueError, match="one key belongs to one owner"):
        storage.save([replace(key.record, registry_id="acr", key_id="acr-1")])
    closed = replace(key.record, valid_until=early)
    storage.save([closed])
    storage.save([replace(key.record, valid_until=early + dt.timedelta(days=1))])
    storage.save([key.record])  # no end given: the end stays
    assert storage.load().get(key.key_id).valid_until == early
    assert len(storage.load()) == 1
