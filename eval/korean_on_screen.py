"""Korean on screen, measured: captions drawn with a Korean font over real photos are read by the
OCR as configured, stored as scenes, and searched by full text with Korean queries whose words carry
other particles or endings than the caption.

    .venv/bin/python eval/korean_on_screen.py [--json]

Reports how many captions are read exactly, the character error rate, and full-text hit@1 with and
without Korean morphemes (korean.py). The captions and queries were written for this test; the
photos are KPhotoAlbum's and scikit-image's. Needs tesseract-ocr-kor and fonts-nanum.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests import assets  # noqa: E402

from heimdex.domain import SceneDraft  # noqa: E402
from heimdex.korean import index_terms  # noqa: E402
from heimdex.ml.hangul import load_hangul_reader  # noqa: E402
from heimdex.ml.ocr import OcrReader  # noqa: E402
from heimdex.search.engine import _morphemes  # noqa: E402
from heimdex.store import CommitBundle, SceneFilter, VectorSet  # noqa: E402
from heimdex.store.sqlite import SqliteStore  # noqa: E402

# (photo, caption on screen, a query for it with other endings)
CASES = [
    ("kphotoalbum:donna_2.jpg", "옥상 정원에서 채소를 기릅니다", "정원 채소"),
    ("kphotoalbum:jesper_2.jpg", "서울 시청 앞 광장에서", "시청 광장"),
    ("skimage:coffee", "오늘의 커피 할인 행사", "커피를 할인"),
    ("skimage:chelsea", "고양이 카페 영업 중", "고양이가 있는 카페"),
    ("skimage:astronaut", "우주 비행사가 손을 흔들었다", "비행사"),
    ("kphotoalbum:spiff.jpg", "다리 공사 예산 발표", "공사의 예산"),
    ("skimage:rocket", "로켓 발사 준비 완료", "발사를 준비"),
    ("kphotoalbum:bar55.jpg", "친구들과 저녁 모임", "저녁에 모임"),
]


def photo(ref: str) -> Path:
    kind, name = ref.split(":")
    return assets.kphotoalbum_photo(name) if kind == "kphotoalbum" else assets.skimage_photo(name)


def captioned(ref: str, caption: str) -> np.ndarray:
    image = Image.open(photo(ref)).convert("RGB").resize((640, 360))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 282, 640, 338), fill=(10, 10, 10))
    draw.text((24, 290), caption, font=ImageFont.truetype(assets.HANGUL_FONT, 30), fill=(255, 255, 255))
    return np.asarray(image)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def hit_at_1(path: Path, texts: list[str], *, morphemes: bool) -> int:
    """Scenes holding the texts read; how many queries find their own caption's scene first."""
    store = SqliteStore(path)
    video = store.add_video("me", "k.mp4", "k", 1, None)
    drafts = [
        SceneDraft(
            index=i, start_s=i, end_s=i + 1, ocr_text=text, index_terms=index_terms(text) if morphemes else ""
        )
        for i, text in enumerate(texts)
    ]
    vectors = np.eye(len(drafts), 8, dtype=np.float32)
    store.commit_video(CommitBundle(video.id, "ko", drafts, VectorSet("m", vectors), []), {})
    found = 0
    for i, (_, _, query) in enumerate(CASES):
        terms = [m for t in query.split() for m in (_morphemes(t) if morphemes else [t])]
        hits = store.full_text(SceneFilter(owner_id="me"), terms, [], 5)
        first = store.scenes_by_pk("me", [hits[0].scene_pk]) if hits else {}
        found += bool(hits) and first[hits[0].scene_pk].index == i
    store.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reader = OcrReader(hangul=load_hangul_reader())
    read = [" ".join(line.text for line in reader.read(captioned(ref, caption))) for ref, caption, _ in CASES]
    exact = sum(r == c for r, (_, c, _) in zip(read, CASES, strict=True))
    cer = sum(edit_distance(r, c) for r, (_, c, _) in zip(read, CASES, strict=True)) / sum(
        len(c) for _, c, _ in CASES
    )
    with tempfile.TemporaryDirectory() as folder:
        with_morphemes = hit_at_1(Path(folder) / "morphemes.db", read, morphemes=True)
        words_only = hit_at_1(Path(folder) / "words.db", read, morphemes=False)
    result = {
        "captions": len(CASES),
        "read_exactly": exact,
        "character_error_rate": round(cer, 3),
        "fulltext_hit_at_1_morphemes": round(with_morphemes / len(CASES), 3),
        "fulltext_hit_at_1_words_only": round(words_only / len(CASES), 3),
        "ocr": reader.name,
    }
    if not args.json:
        for (ref, caption, query), text in zip(CASES, read, strict=True):
            print(f"{ref:26} {caption:24} read {text!r:30} query {query!r}")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
