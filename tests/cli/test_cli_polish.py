"""The real `heimdex` CLI in a subprocess, on an 80-column terminal: `index` reports a file that
fails once, with its reason, in its summary (not again as a log line), and `status` fits 80 columns
without breaking a header."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.run import heimdex

REASON = "is not a video file"


def cli(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess:
    """`heimdex ARGS` on `home`, with a terminal `columns` wide and the default log level."""
    return heimdex(home, *args, COLUMNS=str(columns))


@pytest.fixture(scope="module")
def failed_index(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A home where `heimdex index` met a text file named like a video (a long name, with brackets)."""
    root = tmp_path_factory.mktemp("cli-polish")
    fake = root / "notes from the planning meeting [draft].mp4"
    fake.write_text("these are meeting notes, not a video\n")
    return root / "home", cli(root / "home", "index", str(fake))


def test_index_reports_a_failure_once_in_the_summary(failed_index) -> None:
    _home, proc = failed_index
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert output.count(REASON) == 1, output
    assert "video failed" not in output, output  # the pipeline's warning stays out of the console
    assert "failed 1" in proc.stdout
    # the summary line names the whole path, unbroken, with the reason
    summary = next(line for line in proc.stderr.splitlines() if REASON in line)
    assert "notes from the planning meeting [draft].mp4: " in summary and "upload_validate" in summary


def test_index_with_verbose_logs_keeps_the_pipeline_warning(failed_index, tmp_path) -> None:
    home, _proc = failed_index
    fake = tmp_path / "broken.mp4"
    fake.write_text("not a video either\n")
    proc = cli(home, "--log-level", "INFO", "index", str(fake))
    assert proc.returncode == 1
    assert "video failed" in proc.stderr, proc.stderr


def test_status_fits_80_columns_without_splitting_headers(failed_index) -> None:
    home, _proc = failed_index
    proc = cli(home, "status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, proc.stdout
    header_rows = [line for line in lines if line.startswith("┃")]
    assert len(header_rows) == 1, proc.stdout  # every header on one line: none wrapped
    headers = [cell.strip() for cell in header_rows[0].strip("┃").split("┃")]
    assert {"id", "file", "state", "scenes", "error"} <= set(headers), headers
    assert set(headers) <= {"id", "file", "state", "scenes", "length", "language", "index time", "error"}
    # the id is whole on its row, so it can be copied into `heimdex status ID`
    video_id = next(line for line in lines if line.startswith("│")).split("│")[1].strip()
    assert len(video_id) == 16, proc.stdout
    assert cli(home, "status", video_id).returncode == 0


def test_status_shows_every_column_when_wide(failed_index) -> None:
    home, _proc = failed_index
    proc = cli(home, "status", columns=200)
    assert proc.returncode == 0, proc.stderr
    ids = [line.split("│")[1].strip() for line in proc.stdout.splitlines() if line.startswith("│")]
    count = len([i for i in ids if i])
    assert f"{count} video{'' if count == 1 else 's'} in" in proc.stdout, proc.stdout  # not "1 videos"
    header = next(line for line in proc.stdout.splitlines() if line.startswith("┃"))
    for column in ("id", "file", "state", "scenes", "length", "language", "index time", "error"):
        assert f" {column} " in header, proc.stdout
