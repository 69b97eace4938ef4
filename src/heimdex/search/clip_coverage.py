"""Whose frame vectors serve an owner's CLIP searches while the CLIP-style model changes.

Every sampled frame gets a vector from each image model that embeds it: the tagger's always, the
configured CLIP-style model's (HEIMDEX_CLIP_MODEL) as well, each row tagged with its model's name.
Changing the model leaves the old model's vectors where they are; the new model's are added frame by
frame in the background (reembed.py), and the old ones are deleted only once the new set is complete.

Meanwhile search keeps to the old vectors. The rule, per owner, from how many frame vectors of each
model the owner has (Store.frame_vector_counts):
- the owner's frames are the most vectors any image model has (every image model embeds the same
  sampled frames, so the tagger's count is every frame);
- the configured model serves once it has a vector of every frame;
- until then an earlier CLIP-style model serves (the one with the most vectors, if several) while it
  has more of them than the configured one, which during a change means until the new set is
  complete: its text and image encoders embed the queries (Models.clip_named), and "more like this"
  needs only its stored vectors;
- otherwise nothing CLIP-style serves: search by image uses the tagger's vectors and text queries
  get no CLIP channel, rather than a channel that sees only some frames. That is the case of CLIP
  newly turned on, and of a video indexed by a process still configured with the earlier model
  after its vectors were retired (a worker not restarted yet): it does not bring the earlier model
  back for the whole library, and the next re-embedding completes the set.
Without a configured model nothing CLIP-style serves, whatever vectors an earlier one left.
A video indexed during the change gets only the new model's vectors (and the tagger's): the earlier
vectors do not reach it, so its scenes join the CLIP channel and search by image once the new set is
complete (words, faces and the rest find them at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from heimdex.ml.base import IMAGE_VECTOR_MODEL


@dataclass(frozen=True)
class ClipCoverage:
    configured: str | None  # the configured CLIP-style model's name
    frames: int  # the owner's frames
    embedded: int  # how many of them have a vector of the configured model
    serving: str | None  # the CLIP-style model whose vectors the owner's searches use

    @property
    def complete(self) -> bool:
        return self.configured is not None and self.embedded >= self.frames

    @property
    def missing(self) -> int:
        return max(0, self.frames - self.embedded) if self.configured else 0


def clip_coverage(counts: Mapping[str, int], configured: str | None) -> ClipCoverage:
    """The rule above, from model -> the owner's frame vector count."""
    frames = max(counts.values(), default=0)
    if configured is None:
        return ClipCoverage(None, frames, 0, None)
    embedded = counts.get(configured, 0)
    if frames and embedded >= frames:
        return ClipCoverage(configured, frames, embedded, configured)
    earlier = [m for m, n in counts.items() if n and m not in (configured, IMAGE_VECTOR_MODEL)]
    best = max(earlier, key=lambda m: (counts[m], m)) if earlier else None
    if best is not None and counts[best] > embedded:
        return ClipCoverage(configured, frames, embedded, best)
    return ClipCoverage(configured, frames, embedded, None)
