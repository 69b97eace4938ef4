"""Real test media: files from Debian packages, speech from espeak-ng, clips built with ffmpeg.

Everything is cached under .test-media/ at the repository root (git-ignored), so a second run
costs nothing. Nothing here is mocked: these are the real files the product will meet.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".test-media"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@contextmanager
def _locked(name: str):
    """Serialise cache writers (pytest-xdist workers, parallel helpers) on one lock file per item."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run(*cmd: str | Path) -> None:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-2000:]}")


def debian_file(package: str, inner_path: str) -> Path:
    """A file out of a Debian package, downloaded with apt-get and unpacked (never installed)."""
    root = CACHE / "apt" / package
    with _locked(f"apt-{package}"):
        if not root.exists():
            debs = CACHE / "debs"
            debs.mkdir(parents=True, exist_ok=True)
            got = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True)
            if got.returncode:  # a fresh machine has no package lists yet
                run("apt-get", "update", "-qq")
                run_in(debs, "apt-get", "download", package)
            deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
            tmp = root.with_suffix(".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            run("dpkg-deb", "-x", deb, tmp)
            tmp.rename(root)
    path = root / inner_path.lstrip("/")
    if not path.exists():
        raise FileNotFoundError(f"{inner_path} is not in Debian package {package}")
    return path


def run_in(cwd: Path, *cmd: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def opencv_sample(name: str) -> Path:
    """A sample from opencv-doc: Megamind.avi, vtest.avi, messi5.jpg, butterfly.jpg, home.jpg..."""
    return debian_file("opencv-doc", f"/usr/share/doc/opencv-doc/examples/data/{name}")


def kphotoalbum_photo(name: str) -> Path:
    """Demo photos of named people from kphotoalbum (donna.jpg, donna_2.jpg, ...)."""
    return debian_file("kphotoalbum", f"/usr/share/kphotoalbum/demo/{name}")


def skimage_photo(name: str) -> Path:
    """A scikit-image sample photo (astronaut, coffee, chelsea, camera, ...) saved as PNG."""
    out = CACHE / "skimage" / f"{name}.png"
    with _locked(f"skimage-{name}"):
        if not out.exists():
            import skimage.data
            import skimage.io

            out.parent.mkdir(parents=True, exist_ok=True)
            image = getattr(skimage.data, name)()
            if isinstance(image, tuple):
                image = image[0]
            skimage.io.imsave(out, image, check_contrast=False)
    return out


def speech_wav(text: str, name: str, voice: str = "en-us") -> Path:
    """espeak-ng reading `text` aloud, as a WAV file."""
    out = CACHE / "speech" / f"{name}.wav"
    with _locked(f"speech-{name}"):
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            run("espeak-ng", "-v", voice, "-s", "155", "-w", out, text)
    return out


def narrated_video(
    name: str, scenes: list[dict], *, width: int = 640, height: int = 360, fps: int = 25
) -> Path:
    """An MP4 (H.264 + AAC) whose scenes are real photos, each narrated by espeak-ng.

    Each scene: {"image": Path, "say": str | None, "text": str | None (drawn on screen),
    "seconds": float (minimum length)}. A scene lasts its narration plus 0.8 s, at least `seconds`.
    Hard cuts between scenes, so scene detection has real boundaries to find.
    """
    out = CACHE / "videos" / f"{name}.mp4"
    with _locked(f"video-{name}"):
        if out.exists():
            return out
        work = CACHE / "videos" / f"{name}.parts"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        parts = []
        for i, scene in enumerate(scenes):
            part = work / f"{i:02d}.mp4"
            _image_scene(scene, part, work / f"{i:02d}.wav", width, height, fps)
            parts.append(part)
        listing = work / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in parts))
        run("ffmpeg", "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", out)
        shutil.rmtree(work)
    return out


def _image_scene(scene: dict, out: Path, wav: Path, width: int, height: int, fps: int) -> None:
    seconds = float(scene.get("seconds", 3.0))
    say = scene.get("say")
    if say:
        run("espeak-ng", "-v", scene.get("voice", "en-us"), "-s", "155", "-w", wav, say)
        seconds = max(seconds, _duration(wav) + 0.8)
    else:
        run(
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=16000:cl=mono",
            "-t",
            f"{seconds}",
            wav,
        )
    fit = f"scale={width}:{height}:force_original_aspect_ratio=decrease"
    vf = f"{fit},pad={width}:{height}:(ow-iw)/2:(oh-ih)/2"
    if scene.get("text"):
        text = scene["text"].replace(":", r"\:").replace("'", "")
        vf += (
            f",drawtext=fontfile={FONT}:text='{text}':fontsize={height // 12}:fontcolor=white:box=1:"
            f"boxcolor=black@0.6:boxborderw=10:x=(w-text_w)/2:y=h-{height // 5}"
        )
    run(
        "ffmpeg",
        "-y",
        "-v",
        "error",
        "-loop",
        "1",
        "-i",
        scene["image"],
        "-i",
        wav,
        "-vf",
        vf,
        "-t",
        f"{seconds:.2f}",
        "-af",
        "apad",
        "-r",
        str(fps),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-ar",
        "44100",
        "-ac",
        "1",
        out,
    )


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


# ---------------------------------------------------------------- clips generated with ffmpeg (media tests)


def ffmpeg_clip(name: str, args: list[str | Path]) -> Path:
    """A clip made by `ffmpeg -y -v error <args> <out>`, cached as .test-media/clips/<name>.

    `name` carries the extension that picks the container (e.g. "vp9.webm"). Used for what no Debian
    package ships: specific codecs, rotation metadata, odd sizes, audio-only files.
    """
    out = CACHE / "clips" / name
    with _locked(f"clip-{name}"):
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f"tmp-{name}")
            run("ffmpeg", "-y", "-v", "error", *args, tmp)
            tmp.rename(out)
    return out


def tiny_clip() -> Path:
    """1 s of 48x144 H.264 video without audio: smaller than any frame size Heimdex scales to."""
    args = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=48x144:rate=25",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    ]
    return ffmpeg_clip("tiny48x144.mp4", args)


def forensics_sample(inner: str) -> Path:
    """A file from Debian's forensics-samples-files (movie2/movie-hello.ogg is Theora + Vorbis,
    movie1/VID_20191220_170832.mp4 a 1080p phone clip, audio1/debian.ogg Vorbis audio only, ...)."""
    return debian_file("forensics-samples-files", f"/usr/share/forensics-samples/original-files/{inner}")
