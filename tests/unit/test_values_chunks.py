"""Set-wise queries' VALUES runs (``gateway.storage.database.chunks``)."""

from __future__ import annotations

from gateway.storage.database import VALUES_CHUNK, chunks


def test_runs_keep_every_item_in_order_and_pad_with_the_filler() -> None:
    for n in (1, 2, 3, 5, 17, VALUES_CHUNK - 1, VALUES_CHUNK, VALUES_CHUNK + 1, 1300):
        items = list(range(n))
        runs = list(chunks(items, -1))
        assert [x for run in runs for x in run if x != -1] == items
        for run in runs:
            assert len(run) <= VALUES_CHUNK
            assert len(run) & (len(run) - 1) == 0  # a power of two
            real = [x for x in run if x != -1]
            assert len(run) < 2 * len(real)  # never more than doubled
            assert run[: len(real)] == real  # fillers only at the end


def test_few_distinct_lengths_whatever_the_batch_size() -> None:
    """One prepared statement per length: a handful, not one per batch size."""
    lengths = {len(run) for n in range(1, 2001) for run in chunks(range(n), None)}
    assert len(lengths) <= 10


def test_nothing_asked_no_query() -> None:
    assert list(chunks([], "")) == []
