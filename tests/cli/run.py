"""The real `heimdex` command, run for a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def heimdex(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`heimdex ARGS` on `home` with only the HEIMDEX_* variables given here, 200 columns wide
    unless COLUMNS is given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEIMDEX_")}
    return subprocess.run(
        [sys.executable, "-m", "heimdex.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "HEIMDEX_HOME": str(home), "COLUMNS": "200", **env},
    )
