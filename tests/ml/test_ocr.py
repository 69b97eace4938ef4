"""RapidOCR on text drawn with PIL over a real photo: content, order, boxes, junk filtering."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from heimdex.ml.base import TextReader
from heimdex.ml.ocr import OcrReader
from tests import assets
from tests.ml.conftest import load_rgb

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@pytest.fixture(scope="module")
def reader(models) -> OcrReader:
    return models.ocr


def _captioned_frame() -> np.ndarray:
    """A 640x360 video-sized frame: a title, a lower third in two columns, a lone glyph."""
    image = Image.fromarray(load_rgb(assets.skimage_photo("coffee"))).resize((640, 360))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 640, 60), fill=(20, 20, 20))
    draw.text((20, 12), "Quarterly Revenue Report", font=ImageFont.truetype(BOLD, 32), fill=(255, 255, 255))
    draw.rectangle((0, 290, 640, 340), fill=(0, 0, 80))
    draw.text((20, 300), "Meeting room 42", font=ImageFont.truetype(FONT, 22), fill=(255, 255, 0))
    draw.text((380, 300), "Tuesday 9 AM", font=ImageFont.truetype(FONT, 22), fill=(255, 255, 0))
    draw.text((600, 150), "x", font=ImageFont.truetype(FONT, 18), fill=(255, 255, 255))
    return np.asarray(image)


@pytest.fixture(scope="module")
def lines(reader):
    return reader.read(_captioned_frame())


def test_is_a_text_reader(reader) -> None:
    assert isinstance(reader, TextReader)


def test_reads_the_drawn_text_in_reading_order(lines) -> None:
    texts = [line.text for line in lines]
    assert texts == ["Quarterly Revenue Report", "Meeting room 42", "Tuesday 9 AM"], texts


def test_boxes_are_relative(lines) -> None:
    title = lines[0].box
    assert title is not None and 0 <= title.x < 0.1 and title.y < 0.1 and 0.4 < title.w < 0.9
    lower = lines[1].box
    assert lower is not None and 0.8 < lower.y < 0.95
    assert all(0 <= v <= 1 for line in lines for v in (line.box.x, line.box.y, line.box.w, line.box.h))


def test_scores_and_junk(lines) -> None:
    assert all(line.score >= 0.5 for line in lines)
    assert "x" not in [line.text.lower() for line in lines]  # one glyph alone is dropped


def test_photo_without_text(reader) -> None:
    assert reader.read(load_rgb(assets.skimage_photo("chelsea"))) == []


def test_blank_gray_and_tiny_images(reader) -> None:
    assert reader.read(np.zeros((360, 640, 3), np.uint8)) == []
    gray = np.asarray(Image.fromarray(_captioned_frame()).convert("L"))
    assert "Quarterly Revenue Report" in [line.text for line in reader.read(gray)]
    assert reader.read(np.zeros((4, 4, 3), np.uint8)) == []


def test_red_caption_on_white(reader) -> None:
    # RapidOCR wants BGR; the adapter converts, so a red-on-white caption reads the same.
    image = Image.new("RGB", (640, 120), (255, 255, 255))
    font = ImageFont.truetype(BOLD, 40)
    ImageDraw.Draw(image).text((20, 30), "Breaking News Tonight", font=font, fill=(200, 0, 0))
    assert [line.text for line in reader.read(np.asarray(image))] == ["Breaking News Tonight"]


def test_a_caption_read_without_its_spaces_gets_them_back(reader) -> None:
    """PP-OCR often reads a wide caption as one run of letters; its words are put back."""
    image = Image.fromarray(load_rgb(assets.skimage_photo("coffee"))).resize((640, 360))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 280, 640, 340), fill=(160, 0, 0))
    draw.text((30, 290), "BLACKICEALERT", font=ImageFont.truetype(BOLD, 34), fill=(255, 255, 255))
    assert [line.text for line in reader.read(np.asarray(image))] == ["BLACK ICE ALERT"]
