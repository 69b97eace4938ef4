"""Does beam search pay for itself over greedy decoding in speech recognition? Word error rate and time.

    .venv/bin/python benchmarks/bench_asr_beam.py [--beams 1 5] [--v2 DIR] [--espeak DIR] [--long-seconds 600]

Corpora (built by eval/make_corpus.py; manifest.json lists each video's file and scenes):
  v2-piper     .test-media/eval-corpus/v2-base, neural voice. Videos with a "clip" scene (film clips
               whose words are unknown) are skipped; fillers are included (their scenes have "say").
  v2-masked    the skipped clip videos with each clip scene's audio silenced, scored separately (extra
               data, not part of the v2-piper figure; the silenced stretch may still yield a word).
  v1-espeak    the small robotic-voice corpus: eval/make_corpus.py eval/dev_spec.json DIR (built here if
               DIR has no manifest.json); clip videos are skipped likewise (v1-masked: as v2-masked).
  long-espeak  the narration of the long benchmark video (espeak-ng, four voice variants), recovered by
               replaying make_long_video's seeded random choices and checked against the speech
               intervals it saved; words after its last complete sentence are dropped.
The reference of a video is its scenes' "say" texts in order. The recogniser is the project's own
(heimdex.ml.registry.Models(Settings(asr_beam_size=B)).asr: Whisper int8, cpu_threads streams as in
the pipeline, the pipeline's language setting). Both beam sizes run on each video back to back, in
alternating order, so that load drifting on a shared machine affects both alike; audio decoding is
not timed. Wall and CPU seconds are reported: CPU seconds are less sensitive to other processes.

Words are normalised before alignment: lowercase; hyphens, dashes and punctuation become spaces;
apostrophes go; digits become words ("11" -> "eleven", "3,000" -> "three thousand", "1970" ->
"nineteen seventy", "5th" -> "fifth", "%" -> "percent"); a few British/American spellings are merged.
Digit tokens the converter does not cover are counted as "number_tokens_left". Alignment is a
Levenshtein word alignment (substitution, insertion and deletion cost 1).

With --long-seconds N (0 skips) the ASR alone is also timed on the audio of the N-second benchmark
video from benchmarks/make_long_video.py, twice per beam size (A B B A). Prints a table and the errors
of greedy decoding that beam search fixes or keeps, then JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from heimdex.domain import Transcript  # noqa: E402
from heimdex.media import extract_audio  # noqa: E402
from heimdex.ml.asr import WhisperRecognizer  # noqa: E402
from heimdex.ml.registry import Models  # noqa: E402
from heimdex.settings import Settings  # noqa: E402

SAMPLE_RATE = 16_000

# ------------------------------------------------------------------ normalisation

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
# Whisper tends to write American spellings; the narration is British. Merged to one form.
_SPELLING = {
    "harbor": "harbour",
    "color": "colour",
    "colors": "colours",
    "neighbor": "neighbour",
    "neighbors": "neighbours",
    "favorite": "favourite",
    "flavor": "flavour",
    "honor": "honour",
    "humor": "humour",
    "labor": "labour",
    "tumor": "tumour",
    "behavior": "behaviour",
    "rumor": "rumour",
    "center": "centre",
    "theater": "theatre",
    "meter": "metre",
    "meters": "metres",
    "liter": "litre",
    "fiber": "fibre",
    "yogurt": "yoghurt",
    "gray": "grey",
    "traveled": "travelled",
    "traveling": "travelling",
    "jewelry": "jewellery",
    "program": "programme",
    "tire": "tyre",
    "tires": "tyres",
    "mold": "mould",
    "catalog": "catalogue",
    "defense": "defence",
    "fueling": "fuelling",
    "canceled": "cancelled",
    "modeling": "modelling",
    "aging": "ageing",
    "organize": "organise",
    "realize": "realise",
    "recognize": "recognise",
    "apologize": "apologise",
    "practice": "practise",
    "ok": "okay",
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "st": "saint",
    "vs": "versus",
    "kilometers": "kilometres",
    "centimeters": "centimetres",
    "gaol": "jail",
    "aluminum": "aluminium",
    "plow": "plough",
    "skeptical": "sceptical",
    "mom": "mum",
    "cozy": "cosy",
    "pajamas": "pyjamas",
}


def number_words(n: int) -> str:
    """Cardinal number in words, 0 to 999,999,999 ("two hundred five", no "and")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError(n)


def year_words(n: int) -> str:
    """1100-2099 read as a year: "nineteen seventy", "nineteen oh five", "two thousand eight"."""
    if 2000 <= n < 2010:
        return number_words(n)
    head, rest = divmod(n, 100)
    if rest == 0:
        return f"{number_words(head)} hundred"
    return f"{number_words(head)} " + (f"oh {_ONES[rest]}" if rest < 10 else number_words(rest))


def ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        last = _ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*words[:-1], last])


def _digits_to_words(match: re.Match[str]) -> str:
    token = match.group(0)
    number, suffix = match.group(1).replace(",", ""), (match.group(3) or "").lower()
    if match.group(2):  # a decimal: "2.5" -> two point five
        return f" {number_words(int(number))} point {' '.join(_ONES[int(d)] for d in match.group(2))} "
    value = int(number)
    if value >= 1_000_000_000:
        return f" {token} "
    if suffix in ("st", "nd", "rd", "th"):
        return f" {ordinal_words(value)} "
    if suffix == "s":  # "1990s" -> nineteen nineties
        words = (year_words(value) if 1100 <= value < 2100 else number_words(value)).split()
        last = words[-1]
        words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
        return " " + " ".join(words) + " "
    if 1100 <= value < 2100 and "," not in match.group(1):
        return f" {year_words(value)} "
    return f" {number_words(value)} "


_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th|s)?\b", re.IGNORECASE)


def normalise(text: str) -> list[str]:
    text = text.lower().replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"(\d)[:.](\d\d)\b(?!\.\d)", r"\1 \2", text)  # 10:30 -> 10 30
    text = _NUMBER.sub(_digits_to_words, text)
    text = re.sub(r"['\u2019]", "", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    return [_SPELLING.get(w, w) for w in text.split()]


# ------------------------------------------------------------------ alignment


def align(ref: list[str], hyp: list[str]) -> list[tuple[str, str | None, str | None]]:
    """Levenshtein word alignment: a list of (op, ref word, hyp word), op one of = S D I."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i, j] = min(diag, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    ops: list[tuple[str, str | None, str | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            ops.append(("D", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
    return ops[::-1]


def counts(ops: list[tuple[str, str | None, str | None]]) -> dict[str, int]:
    c = {"S": 0, "D": 0, "I": 0}
    for op, _, _ in ops:
        if op != "=":
            c[op] += 1
    return c


def error_spans(ops: list[tuple[str, str | None, str | None]]) -> list[tuple[int, int, str, str]]:
    """Runs of consecutive errors as (first ref index, end ref index, ref words, hyp words)."""
    spans, k, i = [], 0, 0
    while k < len(ops):
        if ops[k][0] == "=":
            i, k = i + 1, k + 1
            continue
        start, refs, hyps = i, [], []
        while k < len(ops) and ops[k][0] != "=":
            if ops[k][1] is not None:
                refs.append(ops[k][1])
                i += 1
            if ops[k][2] is not None:
                hyps.append(ops[k][2])
            k += 1
        spans.append((start, i, " ".join(refs), " ".join(hyps)))
    return spans


def hyp_over(ops: list[tuple[str, str | None, str | None]], start: int, end: int) -> tuple[str, bool]:
    """What an alignment put over ref words [start, end) (insertions at the edges included), and
    whether that stretch is free of errors."""
    words, clean, i = [], True, 0
    for op, r, h in ops:
        inside = start <= i < end or (op == "I" and start <= i <= end)
        if inside:
            if h is not None:
                words.append(h)
            clean = clean and op == "="
        if r is not None:
            i += 1
    return " ".join(words), clean


# ------------------------------------------------------------------ corpora


def load_corpus(folder: Path, label: str) -> tuple[list[dict], list[dict]]:
    """(scored videos, clip videos with their clip scenes silenced) of one corpus folder."""
    manifest = json.loads((folder / "manifest.json").read_text())
    plain, masked = [], []
    for name, video in manifest["videos"].items():
        scenes = video.get("scenes", [])
        ref = " ".join(s["say"].strip() for s in scenes if s.get("say"))
        if not ref:
            continue
        clips = [(s["start_s"], s["end_s"]) for s in scenes if s.get("clip")]
        entry = {"corpus": label, "name": name, "path": folder / video["file"], "ref": ref, "mask": clips}
        (masked if clips else plain).append(entry)
    return plain, masked


def audio_of(entry: dict) -> np.ndarray:
    audio = extract_audio(entry["path"], sample_rate=SAMPLE_RATE).copy()
    for start, end in entry["mask"]:
        audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)] = 0.0
    return audio


def timed(
    recognizer: WhisperRecognizer, audio: np.ndarray, language: str | None
) -> tuple[Transcript, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    transcript = recognizer.transcribe(audio, language=language)
    return transcript, time.perf_counter() - wall, time.process_time() - cpu


def text_of(transcript: Transcript, until_s: float | None = None) -> str:
    if until_s is None:
        return " ".join(seg.text for seg in transcript.segments)
    parts = []  # whole segments where possible: words alone lose their spacing ("12" ",000")
    for seg in transcript.segments:
        if seg.end_s <= until_s:
            parts.append(seg.text)
        elif seg.start_s < until_s:
            parts.append(" ".join(w.text for w in seg.words if w.start_s < until_s))
    return " ".join(parts)


def scored(ref_text: str, hyp_text: str) -> dict:
    ref, hyp = normalise(ref_text), normalise(hyp_text)
    ops = align(ref, hyp)
    c = counts(ops)
    return {
        "hyp": hyp_text,
        "ref_words": len(ref),
        **c,
        "wer": round(sum(c.values()) / max(1, len(ref)), 4),
        "number_tokens_left": sum(w.isdigit() for w in hyp),
        "ops": ops,
    }


def long_reference(video: Path, seconds: int, seed: int = 7) -> tuple[str, float] | None:
    """The narration of make_long_video(seconds, seed) and the end of its last complete sentence, by
    replaying the builder's random choices (espeak-ng runs again; no video is rendered). None unless
    the replay reproduces the speech intervals stored next to the video."""
    import random
    import tempfile

    import benchmarks.make_long_video as mlv

    truth = json.loads(video.with_suffix(".json").read_text())
    rng = random.Random(seed)
    for _frames in mlv._shot_frames(seconds * mlv.FPS, rng):
        if rng.random() < 0.35:  # the caption
            rng.choice(mlv.TITLES)
        rng.choice([1, -1])  # the pan directions drawn by _shot
        rng.choice([1, -1])
    said: list[str] = []
    original = mlv._say

    def recording(text: str, wav: Path, generator: random.Random) -> bytes:
        said.append(text)
        return original(text, wav, generator)

    mlv._say = recording
    try:
        with tempfile.TemporaryDirectory() as work:
            speech = mlv._narration(seconds, rng, Path(work))
    finally:
        mlv._say = original
    if [[float(x) for x in s] for s in speech] != [[float(x) for x in s] for s in truth["speech"]]:
        return None
    complete = [(text, span) for text, span in zip(said, speech, strict=False) if span[1] < seconds]
    return " ".join(text for text, _ in complete), (complete[-1][1][1] if complete else 0.0)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--v2", type=Path, default=ROOT / ".test-media/eval-corpus/v2-base")
    ap.add_argument("--espeak", type=Path, default=Path("/tmp/espeak-corpus"))
    ap.add_argument("--espeak-spec", type=Path, default=ROOT / "eval/dev_spec.json")
    ap.add_argument("--no-masked", action="store_true", help="skip the clip videos with clips silenced")
    ap.add_argument("--long-seconds", type=int, default=600, help="0: skip the long audio")
    ap.add_argument("--no-corpora", action="store_true", help="only the long audio")
    ap.add_argument("--asr-model", default="base")
    ap.add_argument("--home", type=Path, default=Path("/tmp/heimdex-bench-asr-beam"))
    ap.add_argument("--examples", type=int, default=25)
    args = ap.parse_args()

    if not (args.espeak / "manifest.json").is_file():
        maker = ROOT / "eval/make_corpus.py"
        subprocess.run([sys.executable, str(maker), str(args.espeak_spec), str(args.espeak)], check=True)
    v2, v2_masked = load_corpus(args.v2, "v2-piper")
    v1, v1_masked = load_corpus(args.espeak, "v1-espeak")
    entries = v2 + v1
    if args.no_corpora:
        entries = []
    elif not args.no_masked:
        entries += [{**e, "corpus": "v2-masked"} for e in v2_masked]
        entries += [{**e, "corpus": "v1-masked"} for e in v1_masked]

    models = {
        b: Models(Settings(home=args.home, asr_model=args.asr_model, asr_beam_size=b)) for b in args.beams
    }
    recognizers = {b: m.asr for b, m in models.items()}
    language = models[args.beams[0]].settings.asr_language
    streams = recognizers[args.beams[0]].streams
    warm = np.sin(np.linspace(0, 2000, 3 * SAMPLE_RATE)).astype(np.float32) * 0.1
    for r in recognizers.values():
        timed(r, warm, language)

    results: dict = {
        "load_before": load(),
        "cpu_count": os.cpu_count(),
        "streams": streams,
        "model": recognizers[args.beams[0]].name,
        "videos": [],
    }
    print(f"model {results['model']}, {streams} streams, load before {results['load_before']}", flush=True)
    for k, entry in enumerate(entries):
        audio = audio_of(entry)
        row = {
            "corpus": entry["corpus"],
            "name": entry["name"],
            "audio_s": round(audio.size / SAMPLE_RATE, 2),
            "ref": entry["ref"],
            "beams": {},
        }
        for b in args.beams if k % 2 == 0 else args.beams[::-1]:
            transcript, wall, cpu = timed(recognizers[b], audio, language)
            row["beams"][b] = {
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                **scored(entry["ref"], text_of(transcript)),
            }
        row["load"] = load()
        results["videos"].append(row)
        cells = "  ".join(
            f"b{b} WER {row['beams'][b]['wer']:.3f} {row['beams'][b]['wall_s']:5.1f}s" for b in args.beams
        )
        print(
            f"{entry['corpus']:10} {entry['name']:12} {row['audio_s']:6.1f}s  {cells}  load {row['load']}",
            flush=True,
        )
    results["load_after_corpora"] = load()

    if args.long_seconds:
        from benchmarks.make_long_video import make_long_video

        video = make_long_video(args.long_seconds)
        audio = extract_audio(video, sample_rate=SAMPLE_RATE)
        long: dict = {"video": video.name, "audio_s": round(audio.size / SAMPLE_RATE, 1), "runs": []}
        print(f"\nlong audio {video.name}, {long['audio_s']} s", flush=True)
        first: dict[int, dict] = {}
        for b in [*args.beams, *args.beams[::-1]]:  # A B B A against load drift
            before = load()
            transcript, wall, cpu = timed(recognizers[b], audio, language)
            run = {
                "beam": b,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "load_before": before,
                "load_after": load(),
            }
            long["runs"].append(run)
            first.setdefault(b, {"transcript": transcript, **run})
            print(
                f"  beam {b}: wall {wall:6.1f} s  cpu {cpu:6.1f} s  load {before} -> {run['load_after']}",
                flush=True,
            )
        for b in args.beams:
            runs = [r for r in long["runs"] if r["beam"] == b]
            long[f"beam{b}_mean_wall_s"] = round(sum(r["wall_s"] for r in runs) / len(runs), 1)
            long[f"beam{b}_mean_cpu_s"] = round(sum(r["cpu_s"] for r in runs) / len(runs), 1)
        results["long"] = long
        reference = long_reference(video, args.long_seconds)
        if reference is None:
            print("  (narration text not recovered: the long audio is timed only)")
        else:  # scored like a corpus video; words after the last complete sentence are dropped
            text, end = reference
            row = {
                "corpus": "long-espeak",
                "name": "long",
                "audio_s": round(end, 2),
                "ref": text,
                "beams": {},
            }
            for b in args.beams:
                f = first[b]
                row["beams"][b] = {
                    "wall_s": f["wall_s"],
                    "cpu_s": f["cpu_s"],
                    **scored(text, text_of(f["transcript"], until_s=end + 0.1)),
                }
            results["videos"].append(row)

    summary: dict = {}
    for corpus in dict.fromkeys(v["corpus"] for v in results["videos"]):
        rows = [v for v in results["videos"] if v["corpus"] == corpus]
        summary[corpus] = {"videos": len(rows), "audio_s": round(sum(v["audio_s"] for v in rows), 1)}
        for b in args.beams:
            cells = [v["beams"][b] for v in rows]
            tot = {
                key: sum(c[key] for c in cells) for key in ("ref_words", "S", "D", "I", "number_tokens_left")
            }
            tot["wer"] = round((tot["S"] + tot["D"] + tot["I"]) / max(1, tot["ref_words"]), 4)
            tot["wall_s"] = round(sum(c["wall_s"] for c in cells), 1)
            tot["cpu_s"] = round(sum(c["cpu_s"] for c in cells), 1)
            summary[corpus][f"beam{b}"] = tot
    results["summary"] = summary

    print("\ncorpus      beam  videos  audio_s  ref_words    S    D    I    WER   wall_s  cpu_s")
    for corpus, s in summary.items():
        for b in args.beams:
            t = s[f"beam{b}"]
            print(
                f"{corpus:11} {b:4} {s['videos']:7} {s['audio_s']:8.1f} {t['ref_words']:10} {t['S']:4} "
                f"{t['D']:4} {t['I']:4} {t['wer']:6.3f} {t['wall_s']:8.1f} {t['cpu_s']:6.1f}"
            )

    if len(args.beams) >= 2:
        greedy, beam = args.beams[0], args.beams[-1]
        fixed, kept, new = [], [], []
        for v in results["videos"]:
            g_ops, b_ops = v["beams"][greedy]["ops"], v["beams"][beam]["ops"]
            for start, end, r, h in error_spans(g_ops):
                over, clean = hyp_over(b_ops, start, end)
                line = f"{v['corpus']}/{v['name']}: {r or '-'!r} -> {h or '-'!r}, beam {over or '-'!r}"
                (fixed if clean else kept).append(line)
            for start, end, r, h in error_spans(b_ops):
                over, clean = hyp_over(g_ops, start, end)
                if clean:
                    new.append(f"{v['corpus']}/{v['name']}: {r or '-'!r} -> beam {h or '-'!r}")
        results["greedy_errors_fixed_by_beam"], results["greedy_errors_kept"] = fixed, kept
        results["beam_new_errors"] = new
        for title, items in (
            ("greedy errors beam fixes", fixed),
            ("greedy errors beam keeps", kept),
            ("errors only beam makes", new),
        ):
            print(f"\n{title} ({len(items)}):")
            for line in items[: args.examples]:
                print("  " + line)

    results["load_after"] = load()
    print(f"\nload after {results['load_after']}")
    for v in results["videos"]:
        for cell in v["beams"].values():
            cell.pop("ops")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
