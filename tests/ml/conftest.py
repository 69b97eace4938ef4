"""Shared real inputs and models for the adapter tests: each model loads once per session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heimdex.ml.registry import Models
from heimdex.settings import Settings
from tests import assets

SAMPLE_RATE = 16_000


def load_audio(path: Path) -> np.ndarray:
    """Any audio file as float32 mono 16 kHz, decoded by ffmpeg (what the pipeline feeds Whisper)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def video_frame(path: Path, index: int) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read frame {index} of {path}"
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def model_settings() -> Settings:
    # The joined Whisper base lives in the git-ignored media cache, so later runs skip the 145 MB join.
    return Settings(home=assets.CACHE / "ml-home")


@pytest.fixture(scope="session")
def models(model_settings: Settings) -> Models:
    return Models(model_settings)
