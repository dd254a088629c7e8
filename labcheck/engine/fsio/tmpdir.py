"""Temporary directories for image-sized data: $TMPDIR, else /var/tmp (not a RAM-backed /tmp), as containers/image does."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def big_files_dir() -> str:
    """The directory big temporary files go to."""
    return os.environ.get("TMPDIR") or ("/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir())


def make_temp_dir(prefix: str) -> Path:
    """A new private directory for image data; the caller removes it with remove_tree()."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=big_files_dir()))


def remove_tree(path: Path | None) -> None:
    """Remove a temporary directory and everything in it, if it is still there."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
