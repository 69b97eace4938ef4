"""Sizes and lengths as people read them, for messages and pages."""

from __future__ import annotations


def size_text(n: float) -> str:
    """1 B, 3.7 KB, 12.0 MB, 2.0 GB (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def sizes_apart(a: int, b: int) -> tuple[str, str]:
    """Two sizes that read differently whenever they differ: exact bytes where rounding would hide
    the difference (a file one byte over a limit)."""
    shown = size_text(a), size_text(b)
    return shown if shown[0] != shown[1] or a == b else (f"{a:,} bytes", f"{b:,} bytes")


def hours_text(seconds: float) -> str:
    """4:02:00"""
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"
