"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and a crash leaves the old file (or nothing) behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (byte-stable for equal inputs)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Atomically create ``path`` with ``writer(tmp_path)`` (e.g. a parquet or PNG writer)."""
    with atomic_path(path) as tmp:
        writer(tmp)


# --------------------------------------------------------------------------------------------
# Whole folders: built aside, manifest written last, renamed into place.
# --------------------------------------------------------------------------------------------

MANIFEST = "manifest.json"
_PARTIAL = ".partial-"


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: str | os.PathLike[str], kind: str, extra: dict[str, Any] | None = None) -> Path:
    """Write ``manifest.json`` listing every regular file under ``folder`` (size, SHA-256).

    Written last, atomically: a folder with a manifest whose files all match is complete.
    Hidden temporaries (``.*.tmp``) and the manifest itself are not listed.
    """
    from adsim import __version__

    root = Path(folder)
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel == MANIFEST or p.name.endswith(".tmp") or not p.is_file() or p.is_symlink():
            continue
        files[rel] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    body: dict[str, Any] = {"adsim": __version__, "kind": kind, "files": files}
    if extra:
        body.update(extra)
    path = root / MANIFEST
    write_json(path, body)
    return path


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``manifest.json`` of ``folder``; :class:`DataError` if absent or malformed."""
    from adsim.errors import DataError

    root = Path(folder)
    path = root / MANIFEST
    if not path.is_file():
        raise DataError(
            f"{root}: incomplete or foreign folder (no {MANIFEST}); it was not finished by adsim"
            " (killed or copied in part?) — rebuild it"
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable manifest ({e}); rebuild the folder") from None
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict):
        raise DataError(f"{path}: malformed manifest (no 'files' table); rebuild the folder")
    return body


def verify_manifest(
    folder: str | os.PathLike[str], files: list[str] | None = None, kind: str | None = None,
    check_hash: bool = True,
) -> dict[str, Any]:
    """Check ``folder`` against its manifest; raise :class:`DataError` naming the first mismatch.

    ``files`` restricts the check to those names (each must be listed); ``None`` checks every
    listed file. ``kind`` (e.g. ``"train"``) must match the manifest's kind when given. Sizes are
    always compared; SHA-256 too unless ``check_hash`` is false.
    """
    from adsim.errors import DataError

    root = Path(folder)
    body = read_manifest(root)
    if kind is not None and body.get("kind") != kind:
        raise DataError(
            f"{root}: a '{body.get('kind')}' folder where a '{kind}' folder is needed"
        )
    listed: dict[str, Any] = body["files"]
    names = list(listed) if files is None else files
    for name in names:
        if name not in listed:
            raise DataError(f"{root}: {name} is not part of this folder's manifest; rebuild the folder")
        entry = listed[name]
        p = root / name
        if not p.is_file() or p.is_symlink():
            raise DataError(f"{root}: {name} is missing (listed in {MANIFEST}); rebuild the folder")
        if not isinstance(entry, dict) or p.stat().st_size != entry.get("bytes"):
            raise DataError(f"{root}: {name} does not match {MANIFEST} (size changed); rebuild the folder")
        if check_hash and _sha256(p) != entry.get("sha256"):
            raise DataError(f"{root}: {name} does not match {MANIFEST} (SHA-256 changed); rebuild the folder")
    return body


def check_output_dir(
    path: str | os.PathLike[str], flag: str = "--out", kind: str | None = None
) -> Path:
    """Validate an output folder before any work: its parent must be a writable folder.

    An existing target must be a folder that adsim wrote (it has a ``manifest.json``) or an
    empty one: it will be replaced as a whole when the work finishes, so a folder holding
    anything else (``--out .``, a home folder, a folder of data) is refused rather than deleted.
    With ``kind``, an existing adsim folder must be of that kind (a scenario run does not
    replace a trained model). Raises :class:`ConfigError` naming ``flag``.
    """
    from adsim.errors import ConfigError

    text = os.fspath(path)
    if not text or "\x00" in text:
        raise ConfigError(f"{flag} {text!r}: not a usable path; choose another path")
    final = Path(os.path.abspath(text))
    if final.parent == final:  # the file-system root
        raise ConfigError(f"{flag} {text}: is the root folder; choose a new folder")
    if final.is_symlink() and not final.exists():
        raise ConfigError(f"{flag} {text}: is a broken symbolic link; choose another path")
    if final.exists():
        if not final.is_dir():
            raise ConfigError(f"{flag} {text}: exists and is not a folder; choose another path")
        try:
            entries = os.listdir(final)
        except OSError as exc:
            raise ConfigError(f"{flag} {text}: cannot be read ({exc.strerror}); choose another path") from None
        if entries and not (final / MANIFEST).is_file():
            raise ConfigError(
                f"{flag} {text}: exists and holds files adsim did not write (no {MANIFEST});"
                " it would be replaced as a whole — choose a new folder or remove it first"
            )
        if entries and kind is not None:
            from adsim.errors import DataError

            try:
                found = read_manifest(final).get("kind")
            except DataError:
                found = None
            if found != kind:
                raise ConfigError(
                    f"{flag} {text}: holds a {found!r} folder, not a {kind!r} one; it would be"
                    " replaced as a whole — choose a new folder or remove it first"
                )
    probe = final.parent
    while not probe.exists():
        if probe.is_symlink() or probe.parent == probe:
            raise ConfigError(f"{flag} {text}: {probe} cannot be created; choose another path")
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag} {text}: {probe} is not a folder; choose another path")
    try:  # a real probe: permissions, read-only and pseudo file systems (/proc) all show here
        os.rmdir(tempfile.mkdtemp(prefix=".adsim-probe-", dir=probe))
    except OSError as exc:
        raise ConfigError(
            f"{flag} {text}: cannot create folders in {probe} ({exc.strerror}); choose another path"
        ) from None
    return final


def check_output_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Validate an output *file* before any work: an existing target must be a regular file
    (never a device, FIFO or folder, which an atomic rename would replace), and a folder must be
    creatable where it goes. Raises :class:`ConfigError` naming ``flag``."""
    import stat

    from adsim.errors import ConfigError

    text = os.fspath(path)
    if not text or "\x00" in text:
        raise ConfigError(f"{flag} {text!r}: not a usable path; choose another path")
    final = Path(os.path.abspath(text))
    if final.exists() and not stat.S_ISREG(final.stat().st_mode):
        raise ConfigError(f"{flag} {text}: exists and is not a regular file; choose another path")
    try:  # its folder must be usable (created later by the writer if missing)
        check_output_dir(final.parent / f".{final.name}.probe", flag)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(str(final.parent / f".{final.name}.probe"), text)) from None
    return final


@contextmanager
def atomic_dir(
    path: str | os.PathLike[str], kind: str, extra: dict[str, Any] | None = None,
    flag: str = "--out",
) -> Iterator[Path]:
    """Build a whole folder aside and move it onto ``path`` only when the block succeeds.

    Yields a fresh temporary folder ``.<name>.partial-XXXX`` beside ``path``; write every file
    there. On success :func:`write_manifest` runs last, an existing ``path`` is moved aside and
    removed, and the temporary folder is renamed onto ``path``. On any exception (or a kill)
    ``path`` is left as it was: untouched, or absent. Stale ``.partial-`` folders of killed runs
    are ignored by every reader (no manifest) and removed by the next successful build.
    """
    import shutil

    from adsim.errors import ConfigError

    final = check_output_dir(path, flag, kind)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{_PARTIAL}", dir=final.parent))
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot create it ({exc.strerror}); choose another path") from None
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        write_manifest(tmp, kind, extra)
        old: Path | None = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        for stale in final.parent.glob(f".{final.name}{_PARTIAL}*"):
            if stale.is_dir() and not (stale / MANIFEST).exists():
                _remove_if_stale(stale)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _remove_if_stale(folder: Path, age_s: float = 3600.0) -> None:
    """Remove a killed build's partial folder once it is older than ``age_s`` (a live build is younger)."""
    import shutil
    import time

    try:
        if time.time() - folder.stat().st_mtime > age_s:
            shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass
