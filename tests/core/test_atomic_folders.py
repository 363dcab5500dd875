"""Whole-folder writes (adsim._io.atomic_dir + manifest) and the build cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adsim._io import atomic_dir, check_output_dir, read_manifest, verify_manifest
from adsim.errors import ConfigError, DataError
from adsim.experiments.cache import cache_key, cached_build, lookup


def test_atomic_dir_renames_whole_folder_with_manifest(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with atomic_dir(target, "test") as tmp:
        (tmp / "a.txt").write_text("hello")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.bin").write_bytes(b"\x00" * 10)
        assert not target.exists()
    body = verify_manifest(target, kind="test")
    assert sorted(body["files"]) == ["a.txt", "sub/b.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_atomic_dir_failure_leaves_nothing_and_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with atomic_dir(target, "test") as tmp:
            (tmp / "a.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target, "test") as tmp:
        (tmp / "a.txt").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, "test") as tmp:
            (tmp / "a.txt").write_text("v2")
            raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "v1"
    with atomic_dir(target, "test") as tmp:
        (tmp / "a.txt").write_text("v3")
    assert (target / "a.txt").read_text() == "v3"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_verify_manifest_refuses_tampered_and_incomplete(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with atomic_dir(target, "test") as tmp:
        (tmp / "a.txt").write_text("hello")
    (target / "a.txt").write_text("hellO")
    with pytest.raises(DataError, match="SHA-256"):
        verify_manifest(target)
    (target / "a.txt").write_text("longer text")
    with pytest.raises(DataError, match="size"):
        verify_manifest(target)
    (target / "a.txt").unlink()
    with pytest.raises(DataError, match="missing"):
        verify_manifest(target)
    with pytest.raises(DataError, match="not part"):
        verify_manifest(target, files=["b.txt"])
    with pytest.raises(DataError, match="'test' folder where a 'train'"):
        verify_manifest(target, kind="train")
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable manifest"):
        read_manifest(target)
    (target / "manifest.json").unlink()
    with pytest.raises(DataError, match="incomplete"):
        read_manifest(target)


def test_check_output_dir(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="--out .*not a folder"):
        check_output_dir(f)
    with pytest.raises(ConfigError, match="--out .*not a folder"):
        check_output_dir(f / "below")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"


def test_cache_builds_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / "cache"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("a: 1\nb: [1, 2]\n")
    calls: list[Path] = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "model.txt").write_text("weights")

    with pytest.raises(ConfigError, match="--no-train"):
        cached_build("thing", cfg, 0, build, what="world.truth", no_train=True)
    first = cached_build("thing", cfg, 0, build, what="world.truth")
    second = cached_build("thing", cfg, 0, build, what="world.truth")
    assert first == second and len(calls) == 1
    assert (first / "model.txt").read_text() == "weights"
    assert json.loads((first / "manifest.json").read_text())["cache"]["seed"] == 0
    # comments and key order do not change the key; the seed and content do
    cfg2 = tmp_path / "d.yaml"
    cfg2.write_text("# comment\nb: [1, 2]\na: 1\n")
    assert cache_key("thing", cfg, 0) == cache_key("thing", cfg2, 0)
    assert cache_key("thing", cfg, 0) != cache_key("thing", cfg, 1)
    # a damaged cache entry is rebuilt
    (first / "model.txt").write_text("tampered")
    assert lookup("thing", cache_key("thing", cfg, 0)) is None
    cached_build("thing", cfg, 0, build, what="world.truth")
    assert len(calls) == 2


def test_cache_failed_build_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / "cache"))

    def build(folder: Path) -> None:
        (folder / "half.txt").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_build("thing", {"a": 1}, 0, build, what="x")
    assert lookup("thing", cache_key("thing", {"a": 1}, 0)) is None
    assert not [p for p in (tmp_path / "cache" / "thing").iterdir() if not p.name.endswith(".lock")]
