"""Write a run's report files together: each one atomically, and all of them or none.

Every file is first written in full to a temporary file beside its target; only when all of
them are on disk are they renamed into place. A failure before that removes the temporary
files and leaves every earlier report untouched; a rename that fails puts back the files
already replaced. No reader ever sees half a file, nor a new JSON beside an old SARIF.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ReportWriteError", "write_reports"]


class ReportWriteError(OSError):
    """A report file could not be written; the message names the file and the reason."""


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _stage(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def _backup(path: Path) -> Path | None:
    """A hard link to the file about to be replaced, to put it back if a later rename fails."""
    if not path.is_file():
        return None
    name = tempfile.mktemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)  # noqa: S306 - os.link refuses an existing name
    try:
        os.link(path, name)
    except OSError:
        return None
    return Path(name)


def write_reports(files: Mapping[Path, str]) -> None:
    """Write every ``path: text`` of ``files``, all or none; raise :class:`ReportWriteError` on failure."""
    mode = 0o666 & ~_umask()
    staged: dict[Path, Path] = {}
    try:
        for path, text in files.items():
            try:
                staged[path] = _stage(path, text, mode)
            except OSError as exc:
                raise ReportWriteError(f"could not write {path}: {exc.strerror or exc}") from exc
        replaced: list[tuple[Path, Path | None]] = []
        try:
            for path, temporary in staged.items():
                backup = _backup(path)
                try:
                    os.replace(temporary, path)
                except OSError as exc:
                    if backup is not None:
                        backup.unlink(missing_ok=True)
                    raise ReportWriteError(f"could not write {path}: {exc.strerror or exc}") from exc
                replaced.append((path, backup))
        except BaseException:
            for path, backup in reversed(replaced):
                with contextlib.suppress(OSError):
                    if backup is not None:
                        os.replace(backup, path)
                    else:
                        path.unlink(missing_ok=True)
            raise
        for _, backup in replaced:
            if backup is not None:
                backup.unlink(missing_ok=True)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
