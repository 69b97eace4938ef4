#!/usr/bin/env python3
"""What the faces' second opinion (ml/faces.py, dlib's HOG detector on each BlazeFace crop) keeps
and drops, on the real photos an evaluation corpus brought along.

    python eval/face_check.py CORPUS_DIR [--out build/face-check]

CORPUS_DIR is made by eval/make_corpus.py; its sources/ hold the Debian packages' photos (KPhotoAlbum,
opencv-doc, the Ren'Py demo, the wallpaper packages). Each photo is scaled to at most 1280 px, as a
video frame would be; every BlazeFace detection large enough to embed is put to the second detector.
Prints per source how many were found and kept, the dropped ones by name, and writes montages of the
kept and the dropped crops (kept.png, dropped.png) to look at: which are faces is a person's call.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from heimdex.errors import InvalidMediaError
from heimdex.media.frames import FACE_CROP_PX, decode_image, face_crop
from heimdex.ml.faces import FaceEmbedderDlib

SOURCES = {
    "kphotoalbum": ["apt_kphotoalbum/usr/share/kphotoalbum/demo/*.jpg"],
    "opencv-doc": ["apt_opencv-doc/usr/share/doc/opencv-doc/examples/data/*.[jp][pn]g"],
    "renpy-demo": ["apt_renpy-demo/**/*.png", "apt_renpy-demo/**/*.jpg"],
    "wallpapers": ["apt_*wallpapers*/**/*.[jp][pn]g", "apt_mate-backgrounds/**/*.jpg"],
}
FRAME_MAX_SIDE = 1280


def photos(sources: Path, patterns: list[str]) -> list[Path]:
    return sorted({p for pattern in patterns for p in sources.glob(pattern)})


def frame(path: Path) -> np.ndarray | None:
    try:
        image = decode_image(path, max_pixels=None)
    except InvalidMediaError:
        return None
    scale = FRAME_MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image if min(image.shape[:2]) >= 64 else None


def montage(crops: list[np.ndarray], path: Path, columns: int = 10) -> None:
    if not crops:
        return
    rows = -(-len(crops) // columns)
    sheet = np.zeros((rows * FACE_CROP_PX, columns * FACE_CROP_PX, 3), np.uint8)
    for i, crop in enumerate(crops):
        y, x = divmod(i, columns)
        sheet[y * FACE_CROP_PX : (y + 1) * FACE_CROP_PX, x * FACE_CROP_PX : (x + 1) * FACE_CROP_PX] = crop
    Image.fromarray(sheet).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=Path("build/face-check"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    faces = FaceEmbedderDlib()
    kept, dropped = [], []
    for source, patterns in SOURCES.items():
        found = confirmed = 0
        for path in photos(args.corpus / "sources", patterns):
            image = frame(path)
            if image is None:
                continue
            h, w = image.shape[:2]
            for box, score in faces._detect(image):
                if min(box.w * w, box.h * h) < faces.min_face_px:
                    continue
                found += 1
                crop = face_crop(image, box)
                if faces._confirmed(image, box):
                    confirmed += 1
                    kept.append(crop)
                else:
                    dropped.append(crop)
                    print(f"  dropped: {source} {path.name} (BlazeFace {score:.2f})")
        print(f"{source}: {found} found, {confirmed} kept")
    montage(kept, args.out / "kept.png")
    montage(dropped, args.out / "dropped.png")
    print(f"montages in {args.out}/ (kept.png, dropped.png)")


if __name__ == "__main__":
    main()
