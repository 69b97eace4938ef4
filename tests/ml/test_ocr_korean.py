"""Korean on screen: captions drawn with a Korean font (fonts-nanum) over real photos, read by
PP-OCRv4's detector and Tesseract's Korean model; Latin text and text-free frames stay on RapidOCR."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from heimdex.ml.hangul import HangulLineReader, is_hangul, tessdata_dir
from heimdex.ml.ocr import OcrReader
from tests import assets
from tests.ml.conftest import load_rgb

LATIN = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@pytest.fixture(scope="module")
def reader() -> OcrReader:
    folder = tessdata_dir()
    assert folder is not None, "make install-test installs tesseract-ocr-kor"
    return OcrReader(hangul=HangulLineReader(folder))


def frame(photo: str, lines: list[tuple[str, str, int]]) -> np.ndarray:
    """A 640x360 frame of a real photo with each (text, font, y) on a dark band."""
    image = Image.fromarray(load_rgb(photo)).resize((640, 360))
    draw = ImageDraw.Draw(image)
    for text, font, y in lines:
        draw.rectangle((0, y - 8, 640, y + 44), fill=(15, 15, 15))
        draw.text((24, y), text, font=ImageFont.truetype(font, 32), fill=(255, 255, 255))
    return np.asarray(image)


@pytest.mark.parametrize(
    ("photo", "caption"),
    [("donna_2.jpg", "옥상 정원 채소 판매"), ("jesper_2.jpg", "서울 시청 앞 광장에서")],
)
def test_a_korean_caption_is_read_as_written(reader, photo, caption) -> None:
    lines = reader.read(frame(assets.kphotoalbum_photo(photo), [(caption, assets.HANGUL_FONT, 290)]))
    assert [line.text for line in lines] == [caption]
    assert lines[0].score >= 0.6 and lines[0].box.y > 0.7


def test_english_and_korean_lines_together_in_reading_order(reader) -> None:
    image = frame(
        assets.skimage_photo("coffee"),
        [("Farmers Market Today", LATIN, 20), ("신선한 채소 할인", assets.HANGUL_FONT, 290)],
    )
    texts = [line.text for line in reader.read(image)]
    assert texts == ["Farmers Market Today", "신선한 채소 할인"]
    assert reader.name == "rapidocr-ppocrv4+tesseract-kor"


def test_frames_without_korean_stay_cheap(reader) -> None:
    """A line the recogniser reads well never goes to Tesseract; a stray box read as junk (a lone
    glyph) may, once: Hangul comes out of the recogniser looking just like that."""
    before = reader.hangul.calls
    english = reader.read(frame(assets.skimage_photo("chelsea"), [("Meeting room 42", LATIN, 290)]))
    assert [line.text for line in english] == ["Meeting room 42"]
    assert reader.hangul.calls == before, "a line read well goes nowhere else"
    assert reader.read(load_rgb(assets.skimage_photo("coffee"))) == []
    assert reader.hangul.calls - before <= 2, "a photo without text: a stray box or two at most"


def test_hangul_is_told_from_other_scripts() -> None:
    assert all(map(is_hangul, "한글ㄱㅏ")) and not any(map(is_hangul, "abc漢字カナ1"))
