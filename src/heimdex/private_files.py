"""Folders and files only the account running Heimdex can open: the home folder, the SQLite
database and the blobs hold password hashes, tokens and everyone's videos.

Folders are created 0700 and files 0600 (less if the umask says so). What exists already is left
as it is: a folder you made yourself, or an original kept as a hard link to your own file (which
shares that file's mode), stays readable only as far as the folders around it allow.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make `path` a folder, creating it and each missing parent with mode 0700."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 unless it exists (its folder must exist)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return path
