"""Build the media benchmark video: 10 minutes of 1280x720 H.264 + AAC at 25 fps.

Scenes are real photos (scikit-image, opencv-doc, kphotoalbum) that slowly pan, with a little film
grain, so every frame differs and decoding costs what real footage costs. Hard cuts fall every
5-40 s (a few shots are longer than 30 s), some scenes carry on-screen text, and espeak-ng narrates
almost continuously with pauses of varied length between sentences.

The result is cached under .test-media/bench/ together with a JSON file of the true cut times and
speech intervals, so benchmarks can score accuracy as well as speed. Run:

    .venv/bin/python benchmarks/make_long_video.py [--seconds 600]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.assets import CACHE, FONT, kphotoalbum_photo, opencv_sample, run, skimage_photo  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 25
SPEECH_RATE = 22050  # espeak-ng's native output rate

SKIMAGE = [
    "astronaut",
    "coffee",
    "chelsea",
    "camera",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "coins",
    "page",
    "moon",
    "retina",
    "brick",
    "grass",
    "gravel",
]
OPENCV = [
    "messi5.jpg",
    "butterfly.jpg",
    "home.jpg",
    "fruits.jpg",
    "baboon.jpg",
    "building.jpg",
    "starry_night.jpg",
    "orange.jpg",
    "apple.jpg",
    "HappyFish.jpg",
    "aero1.jpg",
    "board.jpg",
    "smarties.png",
    "stuff.jpg",
    "squirrel_cls.jpg",
    "leuvenA.jpg",
    "graf1.png",
    "left01.jpg",
    "sudoku.png",
]
KPHOTO = [
    "donna.jpg",
    "jesper.jpg",
    "anne_helene.jpg",
    "grand_canyon_1.jpg",
    "skagen.jpg",
    "snow.jpg",
    "sunset.jpg",
    "pool.jpg",
    "new_wave_1.jpg",
    "cold_water.jpg",
    "blackie.jpg",
    "bar55.jpg",
    "wayne.jpg",
    "spiff.jpg",
]
SUBJECTS = [
    "The old harbour",
    "A quiet village",
    "Our research team",
    "The morning market",
    "A small robot",
    "The mountain road",
    "An astronaut",
    "The city library",
    "A red butterfly",
    "The football match",
    "Grandmother's kitchen",
    "The night sky",
    "A busy train station",
    "The orange grove",
]
VERBS = [
    "looks different",
    "was rebuilt",
    "changed quickly",
    "became famous",
    "is remembered",
    "was quiet",
    "surprised everyone",
    "needed more time",
    "welcomed visitors",
    "grew slowly",
]
WHENS = [
    "after the storm",
    "in the spring of nineteen ninety",
    "during the long winter",
    "every Sunday morning",
    "before the festival",
    "at the end of the summer",
    "when the bridge opened",
    "late at night",
]
EXTRAS = [
    "Nobody expected that.",
    "The budget was twelve thousand euros.",
    "We measured it twice.",
    "It rained for three days.",
    "Children still talk about it.",
    "The mayor gave a short speech.",
    "Most people walked there.",
    "The results were published in May.",
]
TITLES = [
    "Chapter one: the harbour",
    "Interview",
    "Budget 2024",
    "Field notes",
    "Quarterly review",
    "Night market",
    "Mountain pass",
    "Thank you for watching",
    "Breaking news",
    "Lab results",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.monotonic()
    path = make_long_video(args.seconds, args.seed)
    print(f"{path} ready in {time.monotonic() - started:.0f} s")


def make_long_video(seconds: int = 600, seed: int = 7) -> Path:
    """The cached benchmark video (built on first use); its ground truth is `<name>.json` next to it."""
    out = CACHE / "bench" / f"long_{seconds}s_{WIDTH}x{HEIGHT}.mp4"
    if out.exists():
        return out
    rng = random.Random(seed)
    work = out.with_suffix(".parts")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    images = _photos()
    durations = _shot_frames(seconds * FPS, rng)
    parts, cuts, frame = [], [], 0
    for i, frames in enumerate(durations):
        part = work / f"{i:03d}.mp4"
        text = rng.choice(TITLES) if rng.random() < 0.35 else None
        _shot(images[i % len(images)], frames, text, rng, part)
        parts.append(part)
        frame += frames
        cuts.append(frame / FPS)
    speech = _narration(seconds, rng, work)
    listing = work / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    tmp = out.with_suffix(".tmp.mp4")
    run(
        "ffmpeg",
        "-y",
        "-v",
        "error",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        listing,
        "-i",
        work / "speech.wav",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ar",
        "44100",
        "-t",
        str(seconds),
        "-movflags",
        "+faststart",
        tmp,
    )
    truth = {"cuts": cuts[:-1], "speech": speech, "duration_s": seconds}
    out.with_suffix(".json").write_text(json.dumps(truth, indent=1))
    tmp.rename(out)
    shutil.rmtree(work)
    return out


def _photos() -> list[Path]:
    photos = [skimage_photo(n) for n in SKIMAGE] + [opencv_sample(n) for n in OPENCV]
    photos += [kphotoalbum_photo(n) for n in KPHOTO]
    random.Random(1).shuffle(photos)
    return photos


def _shot_frames(total: int, rng: random.Random) -> list[int]:
    """Shot lengths in frames: mostly 5-20 s, one in six 30-40 s, summing exactly to `total`."""
    shots: list[int] = []
    while sum(shots) < total:
        seconds = rng.uniform(30, 40) if rng.random() < 1 / 6 else rng.uniform(5, 20)
        shots.append(round(seconds * FPS))
    excess = sum(shots) - total
    shots[-1] -= excess
    if shots[-1] < 5 * FPS:  # fold a stub into the previous shot rather than leave a tiny scene
        shots[-2] += shots.pop()
    return shots


def _shot(image: Path, frames: int, text: str | None, rng: random.Random, out: Path) -> None:
    """One shot: the photo, enlarged 30 %, panned across the frame, with grain and maybe a caption."""
    seconds = frames / FPS
    big_w, big_h = int(WIDTH * 1.3) // 2 * 2, int(HEIGHT * 1.3) // 2 * 2
    dx, dy = rng.choice([1, -1]), rng.choice([1, -1])
    x = f"(iw-ow)/2+{dx}*(iw-ow)/2*(2*t/{seconds:.2f}-1)"
    y = f"(ih-oh)/2+{dy}*(ih-oh)/2*(2*t/{seconds:.2f}-1)"
    vf = (
        f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase,crop={big_w}:{big_h},"
        f"crop={WIDTH}:{HEIGHT}:'{x}':'{y}',noise=alls=5:allf=t,format=yuv420p"
    )
    if text:
        caption = text.replace(":", r"\:")
        vf += (
            f",drawtext=fontfile={FONT}:text='{caption}':fontsize=54:fontcolor=white:"
            f"box=1:boxcolor=black@0.6:boxborderw=14:x=(w-text_w)/2:y=h-150"
        )
    run(
        "ffmpeg",
        "-y",
        "-v",
        "error",
        "-loop",
        "1",
        "-framerate",
        str(FPS),
        "-i",
        image,
        "-vf",
        vf,
        "-frames:v",
        str(frames),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-g",
        "250",
        "-pix_fmt",
        "yuv420p",
        out,
    )


def _narration(seconds: int, rng: random.Random, work: Path) -> list[tuple[float, float]]:
    """A mono WAV of espeak-ng sentences separated by 0.2-2.5 s pauses; returns the speech intervals."""
    total = seconds * SPEECH_RATE
    pcm, speech, at, n = bytearray(), [], 0, 0
    while at < total:
        pause = round(rng.choice([0.2, 0.4, 0.6, 1.0, 1.5, 2.5]) * SPEECH_RATE)
        pcm += bytes(2 * pause)
        at += pause
        clip = _say(_sentence(rng), work / f"say{n:03d}.wav", rng)
        n += 1
        samples = len(clip) // 2
        speech.append((at / SPEECH_RATE, min(at + samples, total) / SPEECH_RATE))
        pcm += clip
        at += samples
    with wave.open(str(work / "speech.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SPEECH_RATE)
        wav.writeframes(bytes(pcm[: 2 * total]))
    return [s for s in speech if s[0] < seconds]


def _sentence(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(WHENS)}."
    return f"{text} {rng.choice(EXTRAS)}" if rng.random() < 0.5 else text


def _say(text: str, wav: Path, rng: random.Random) -> bytes:
    voice = rng.choice(["en-us", "en-gb", "en-us+f3", "en-gb+m3"])
    run("espeak-ng", "-v", voice, "-s", str(rng.randint(140, 175)), "-w", wav, text)
    with wave.open(str(wav), "rb") as clip:
        assert clip.getframerate() == SPEECH_RATE and clip.getsampwidth() == 2 and clip.getnchannels() == 1
        return clip.readframes(clip.getnframes())


if __name__ == "__main__":
    main()
