"""The end of a test run: its servers' directories are moved aside at once and deleted by a process of
their own (runtime.testing.discard_later)."""

from __future__ import annotations

from pathlib import Path

from runtime.testing import discard_later, eventually_blocking


def test_directories_are_gone_at_once_and_deleted_soon_after(tmp_path: Path):
    cluster = tmp_path / "run" / "postgres"
    (cluster / "base" / "1").mkdir(parents=True)
    for i in range(200):
        (cluster / "base" / "1" / str(i)).write_bytes(b"x" * 100)
    elsewhere = tmp_path / "cluster-elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    keep = tmp_path / "keep"
    keep.mkdir()

    discard_later(cluster, tmp_path / "run", elsewhere, tmp_path / "never-made")

    assert not (tmp_path / "run").exists() and not elsewhere.exists()
    eventually_blocking(lambda: sorted(p.name for p in tmp_path.iterdir()) == ["keep"], "the discarded deleted")
