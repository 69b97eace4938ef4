"""Where things live in blob storage: every key Heimdex writes is made here.

Stored data depends on these layouts (the store keeps keys, and old runs are found by them), so a
change here must leave the keys of existing videos, thumbnails and photos as they are.

    videos/<video_id>/original<suffix>                    the original, as uploaded
    videos/<video_id>/work/<artifact>                     stage artifacts, until the video is committed
    videos/<video_id>/work/frames/<ms:09d>.jpg            sampled frames
    videos/<video_id>/runs/<run_id>/thumbs/<index:04d>.webp   scene thumbnails of one indexing run
    videos/<video_id>/runs/<run_id>/scenes/<index:04d>.json   scene sidecars of that run
    videos/<video_id>/runs/<run_id>/faces/<ms:09d>-<n:02d>.jpg  face crops of that run (people pages)
    people/<person_id>/<n:04d>.jpg                        enrolled photos (0000 is the one shown)
    uploads/<user_id>/<token>/original<suffix>            direct uploads, until they become a video
    reels/<owner_id>/<reel_id>.mp4, .json                 highlight reels and their jobs' state
"""

from __future__ import annotations

_RUNS = "/runs/"


def video_prefix(video_id: str) -> str:
    """Everything of one video: its original, work artifacts and every run's thumbnails and sidecars."""
    return f"videos/{video_id}/"


def original_key(video_id: str, suffix: str) -> str:
    return f"{video_prefix(video_id)}original{suffix}"


def original_key_template(suffix: str) -> str:
    """The original's key before the video has an id: the store fills in `{video_id}`."""
    return original_key("{video_id}", suffix)


# The key whose URL tells which origin the player streams originals from (the API's media policy).
CSP_PROBE_KEY = original_key("csp-probe", ".mp4")


def work_prefix(video_id: str) -> str:
    return f"{video_prefix(video_id)}work/"


def work_key(video_id: str, name: str) -> str:
    """A stage artifact (`name` as in pipeline/artifacts.py)."""
    return work_prefix(video_id) + name


def frame_key(video_id: str, t_s: float) -> str:
    """A sampled frame, named by its time in milliseconds."""
    return work_key(video_id, f"frames/{round(t_s * 1000):09d}.jpg")


def run_prefix(video_id: str, run_id: str) -> str:
    """One indexing run's thumbnails and sidecars: a new run never overwrites the ones being served."""
    return f"{video_prefix(video_id)}runs/{run_id}/"


def run_prefix_of(key: str) -> str:
    """The run prefix a thumbnail or sidecar key lies under; "" for a key under no run."""
    head, sep, _ = key.partition(_RUNS)
    return f"{head}{_RUNS}{key[len(head) + len(sep) :].split('/')[0]}/" if sep else ""


def thumbnail_key(video_id: str, run_id: str, index: int) -> str:
    return f"{run_prefix(video_id, run_id)}thumbs/{index:04d}.webp"


def sidecar_key(video_id: str, run_id: str, index: int) -> str:
    return f"{run_prefix(video_id, run_id)}scenes/{index:04d}.json"


def face_crop_key(video_id: str, run_id: str, t_s: float, n: int) -> str:
    """The n-th face found in the frame at `t_s`, cut out: it goes with the run's faces rows."""
    return f"{run_prefix(video_id, run_id)}faces/{round(t_s * 1000):09d}-{n:02d}.jpg"


def person_prefix(person_id: str) -> str:
    return f"people/{person_id}/"


def person_photo_key(person_id: str, n: int) -> str:
    """The person's n-th enrolled photo (whatever its format, the name ends in .jpg)."""
    return f"{person_prefix(person_id)}{n:04d}.jpg"


def upload_prefix(user_id: str) -> str:
    """A user's direct uploads not yet registered as videos."""
    return f"uploads/{user_id}/"


def upload_key(user_id: str, token: str, suffix: str) -> str:
    """Where a presigned direct upload goes; POST /videos/uploaded moves it to the original's key."""
    return f"{upload_prefix(user_id)}{token}/original{suffix}"


def reel_prefix(owner_id: str) -> str:
    """An owner's highlight reels: each an MP4 with its job's state beside it."""
    return f"reels/{owner_id}/"


def reel_key(owner_id: str, reel_id: str) -> str:
    return f"{reel_prefix(owner_id)}{reel_id}.mp4"


def reel_state_key(owner_id: str, reel_id: str) -> str:
    return f"{reel_prefix(owner_id)}{reel_id}.json"
