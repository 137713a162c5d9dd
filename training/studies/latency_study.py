"""Where the live latency goes, and what a shorter hop or other smoothing saves (issue 24 item 4).

    python training/studies/latency_study.py live   [--json out.json]   # bench_live.py's words, every hop phase
    python training/studies/latency_study.py learn  [--json out.json]   # the levers replayed on the learn side
    python training/studies/latency_study.py held   --levers NAME,...   # measured once on held-out speakers
    python training/studies/latency_study.py cpu                        # ONNX Runtime CPU per audio second

`live`: benchmarks/bench_live.py plays six sample clips (yes no up left right go) into a virtual microphone,
each after 1.5 s or more of digital silence, and measures from the word's end (bench_live.word_end_seconds) to
its detection. Where a clip falls against the 125 ms grid of evaluations is chance; here every clip is replayed
at every phase (2.5 ms steps) after the clip before it, as bench_live orders them, and each latency is split
into: the wait for the smoothed score to reach the threshold (at the best phase), the hop quantisation (the rest
of the wait at this phase) and the hold (threshold crossed to detection). Then the p90 of 30 trials (5 rounds,
random phases) as `make bench` reports it, drawn many times: how stable a 30-word p90 is.

`learn`: the evaluations of the learn side (training speakers' command streams, quiet and noisy, and the learn
half of the continuous speech; training/studies/pause_rule.py) recorded once per hop and replayed under each
lever (LEVERS). Averaging weights are applied by averaging the recorded rows beforehand and replaying with an
average of one evaluation (the same smoothed scores reach the same decisions).

`held`: the named levers on the held-out speakers: bench_streaming.py's streams (recall, precision, false alarms
an hour of other words and of noise, latency) and bench_conversation_commands.py's continuous speech
(detections an hour), each recorded at the lever's hop.

`cpu`: the streaming path as `speech-app listen` runs it on ONNX Runtime (one thread, frame-shared features,
the quiet gate), fed 1,600-sample blocks: CPU seconds per audio second at each hop, on the sample words with
quiet between them and on a quiet room (the running-tap sample at low volume), hops alternated, repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "training" / "studies"))

from speech_app.audio import SAMPLE_RATE, load_audio  # noqa: E402
from speech_app.levels import Evaluations  # noqa: E402
from speech_app.streaming import RecognizerSettings  # noqa: E402

DEFAULT_MODEL = ROOT / "model" / "speech_commands_12.safetensors"
LIVE_WORDS = ("yes", "no", "up", "left", "right", "go")  # bench_live.WORDS, in its order
LIVE_GAP_S = 1.6  # bench_live: paplay returns after the clip, then 1.5 s of sleep (and paplay's own start-up)
LIVE_LEAD_S = 2.0  # audio before the first clip
PHASE_STEP_MS = 2.5  # phases of a clip against the grid of evaluations
LIVE_ROUNDS = 5  # `make bench`: 5 rounds of 6 words = 30 trials
DRAWS = 20000
HOPS_MS = (125.0, 100.0, 62.5)
RECORD_HOPS = {125.0: 62.5, 62.5: 62.5, 100.0: 100.0}  # the 125 ms evaluations are every second one of 62.5 ms

# name -> (hop ms, averaging ms, hold ms, weights oldest..newest or None: a plain mean)
LEVERS = {
    "default 125/250/125": (125.0, 250.0, 125.0, None),
    "hop 100, avg 200, hold 100": (100.0, 200.0, 100.0, None),  # 250/100 rounds to 2 evaluations
    "hop 100, avg 300, hold 100": (100.0, 300.0, 100.0, None),
    "hop 100, avg 200, hold 200": (100.0, 200.0, 200.0, None),
    "hop 62.5, avg 250, hold 125": (62.5, 250.0, 125.0, None),  # averaging and hold kept in ms
    "hop 62.5, avg 250, hold 62.5": (62.5, 250.0, 62.5, None),  # the hold kept in evaluations (one more)
    "hop 62.5, avg 125, hold 62.5": (62.5, 125.0, 62.5, None),  # both kept in evaluations
    "hop 62.5, avg 187.5, hold 125": (62.5, 187.5, 125.0, None),
    "hop 62.5, avg 187.5, hold 62.5": (62.5, 187.5, 62.5, None),
    "hop 125, weights 1:2": (125.0, 250.0, 125.0, (1.0, 2.0)),
    "hop 125, weights 1:3": (125.0, 250.0, 125.0, (1.0, 3.0)),
    "hop 62.5, avg 250 weights 1:2:3:4, hold 125": (62.5, 250.0, 125.0, (1.0, 2.0, 3.0, 4.0)),
    "hop 62.5, avg 250 weights 1:2:3:4, hold 62.5": (62.5, 250.0, 62.5, (1.0, 2.0, 3.0, 4.0)),
    # the adopted default, through the recognizer's own weighting (a check: the same as "hop 125, weights 1:2")
    "recent_weighting 1 (the recognizer's)": (125.0, 250.0, 125.0, "recognizer"),
}


def lever_settings(name: str, base: RecognizerSettings | None = None) -> RecognizerSettings:
    hop, averaging, hold, weights = LEVERS[name]
    # a plain mean unless the lever is the recognizer's own weighting (RecognizerSettings.recent_weighting)
    settings = replace(base or RecognizerSettings(), hop_ms=hop, averaging_ms=averaging, hold_ms=hold,
                       recent_weighting=1.0 if weights == "recognizer" else 0.0)
    if weights is not None and weights != "recognizer":  # the rows come averaged already: one evaluation each
        settings = replace(settings, averaging_ms=hop)
    return settings


def weighted(evaluations: Evaluations, hop_ms: float, averaging_ms: float, weights) -> Evaluations:
    """The evaluations with each row replaced by the weighted average of the last len(weights) rows (fewer
    at the start of the stream), so that a replay averaging one evaluation decides on that average."""
    if weights is None or weights == "recognizer":
        return evaluations
    n = max(1, int(round(averaging_ms / hop_ms)))
    assert n == len(weights), (n, weights)
    at = [a for a, _ in evaluations]
    rows = np.stack([r for _, r in evaluations]).astype(np.float64)
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros_like(rows)
    for i in range(len(rows)):
        k = min(n, i + 1)
        ww = w[-k:]
        out[i] = (ww[:, None] * rows[i - k + 1 : i + 1]).sum(0) / ww.sum()
    return Evaluations(zip(at, out.astype(np.float32)), evaluations.levels)


def every(evaluations: Evaluations, step: int) -> Evaluations:
    """Every `step`-th evaluation (the 2nd, 4th, ... of a 62.5 ms recording are the 125 ms hop's)."""
    return Evaluations(evaluations[step - 1 :: step], evaluations.levels)


def for_lever(name: str, recordings: dict) -> tuple[RecognizerSettings, Evaluations]:
    """`recordings`: {record hop: Evaluations}. The settings and evaluations a replay of this lever takes."""
    hop, averaging, hold, weights = LEVERS[name]
    source = RECORD_HOPS[hop]
    evaluations = recordings[source]
    if hop != source:
        evaluations = every(evaluations, int(round(hop / source)))
    return lever_settings(name), weighted(evaluations, hop, averaging, weights)


def classifier(model: Path):
    import torch

    from speech_app.inference import CommandClassifier
    from speech_app.streaming import LIVE_PRECISION

    torch.set_num_threads(1)
    return CommandClassifier.from_file(model, "cpu", LIVE_PRECISION)


def record(model_classifier, samples: np.ndarray, hop_ms: float) -> Evaluations:
    from speech_app.training.conversation import record_evaluations

    return record_evaluations(model_classifier, samples, RecognizerSettings(hop_ms=hop_ms))


def cached(model_classifier, samples: np.ndarray, hop_ms: float, path: Path) -> Evaluations:
    found = Evaluations.load(path)
    if found is not None:
        return found
    evaluations = record(model_classifier, samples, hop_ms)
    path.parent.mkdir(parents=True, exist_ok=True)
    evaluations.save(path)
    return evaluations


# ------------------------------------------------------------------------------------------------- live


def live_clips() -> dict[str, np.ndarray]:
    samples = ROOT / "datasets" / "samples"
    return {w: load_audio(next(samples.glob(f"{w}_*"))).astype(np.float32) for w in LIVE_WORDS}


def live_trials(model_classifier, labels, name: str) -> list[dict]:
    """Each word at each phase of the lever's hop: latency from the word's end, split into its parts."""
    from bench_live import word_end_seconds

    from speech_app.training.conversation import decider

    hop, averaging, hold, weights = LEVERS[name]
    clips = live_clips()
    rows = []
    phases = np.arange(0.0, hop, PHASE_STEP_MS)
    for k, word in enumerate(LIVE_WORDS):
        before = clips[LIVE_WORDS[k - 1]]
        clip = clips[word]
        end_s = word_end_seconds(clip)
        for phase in phases:
            lead = np.zeros(int(round((LIVE_LEAD_S) * SAMPLE_RATE)), np.float32)
            gap = np.zeros(int(round((LIVE_GAP_S + phase / 1000) * SAMPLE_RATE)), np.float32)
            stream = np.concatenate([lead, before, gap, clip, np.zeros(int(LIVE_GAP_S * SAMPLE_RATE), np.float32)])
            onset = len(lead) + len(before) + len(gap)
            evaluations = weighted(record(model_classifier, stream, hop), hop, averaging, weights)
            settings = lever_settings(name)
            found = [d for d in decider(labels, settings).replay(evaluations) if d.time_s * SAMPLE_RATE > onset]
            word_end = onset / SAMPLE_RATE + end_s
            row = {"word": word, "phase_ms": float(phase), "word_end_in_clip_s": end_s,
                   "detections": [d.label for d in found]}
            right = [d for d in found if d.label == word]
            if right:
                d = right[0]
                # the smoothed score of the word at each evaluation, as the recognizer averaged it
                at = np.array([a for a, _ in evaluations])
                rows_ = np.stack([r for _, r in evaluations])
                n = settings.averaged_evaluations
                column = rows_[:, labels.index(word)]
                smoothed = np.array([column[max(0, i - n + 1) : i + 1].mean() for i in range(len(column))])
                i_det = int(np.searchsorted(at, int(round(d.time_s * SAMPLE_RATE))))
                i_cross = i_det
                while i_cross > 0 and smoothed[i_cross - 1] >= settings.threshold:
                    i_cross -= 1
                cross_s = at[i_cross] / SAMPLE_RATE
                row.update(latency_ms=1000 * (d.time_s - word_end), wait_ms=1000 * (cross_s - word_end),
                           hold_ms=1000 * (d.time_s - cross_s), confidence=d.confidence,
                           peak_smoothed=float(smoothed[i_cross : i_det + 8].max()))
            rows.append(row)
    return rows


def p90_of_draws(rows: list[dict], rng: np.random.Generator) -> np.ndarray:
    """The p90 of LIVE_ROUNDS x 6 trials, each at a random phase, drawn DRAWS times (a missed word: no latency)."""
    by_word = {w: [r.get("latency_ms") for r in rows if r["word"] == w] for w in LIVE_WORDS}
    out = np.empty(DRAWS)
    for j in range(DRAWS):
        values = [by_word[w][rng.integers(len(by_word[w]))] for _ in range(LIVE_ROUNDS) for w in LIVE_WORDS]
        values = [v for v in values if v is not None]
        out[j] = np.percentile(values, 90)
    return out


def live(args) -> dict:
    from speech_app.modelfile import load_model

    labels = load_model(args.model).labels
    model_classifier = classifier(args.model)
    rng = np.random.default_rng(24)
    result = {}
    for name in args.levers:
        rows = live_trials(model_classifier, labels, name)
        latencies = [r["latency_ms"] for r in rows if "latency_ms" in r]
        draws = p90_of_draws(rows, rng)
        per_word = {}
        for w in LIVE_WORDS:
            mine = [r for r in rows if r["word"] == w and "latency_ms" in r]
            wait = np.array([r["wait_ms"] for r in mine])
            per_word[w] = {"phases": sum(r["word"] == w for r in rows), "detected": len(mine),
                           "word_end_s": mine[0]["word_end_in_clip_s"] if mine else None,
                           "score_wait_ms": float(wait.min()) if len(wait) else None,
                           "quantisation_mean_ms": float((wait - wait.min()).mean()) if len(wait) else None,
                           "hold_mean_ms": float(np.mean([r["hold_ms"] for r in mine])) if mine else None,
                           "latency_mean_ms": float(np.mean([r["latency_ms"] for r in mine])) if mine else None,
                           "latency_min_ms": float(np.min([r["latency_ms"] for r in mine])) if mine else None,
                           "latency_max_ms": float(np.max([r["latency_ms"] for r in mine])) if mine else None,
                           "confidence_mean": float(np.mean([r["confidence"] for r in mine])) if mine else None,
                           "wrong": sorted({x for r in rows if r["word"] == w for x in r["detections"] if x != w})}
        result[name] = {"median_ms": float(np.median(latencies)), "p90_ms": float(np.percentile(latencies, 90)),
                        "missed": sum("latency_ms" not in r for r in rows), "trials": len(rows),
                        "p90_of_30": {"median": float(np.median(draws)), "p5": float(np.percentile(draws, 5)),
                                      "p95": float(np.percentile(draws, 95)),
                                      "share_over_250": float(np.mean(draws > 250))},
                        "per_word": per_word, "rows": rows}
        r = result[name]
        print(f"{name}: every phase median {r['median_ms']:.0f} p90 {r['p90_ms']:.0f} ms, missed {r['missed']} of "
              f"{r['trials']}; p90 of 30 random trials: median {r['p90_of_30']['median']:.0f}, 90% of draws in "
              f"{r['p90_of_30']['p5']:.0f}-{r['p90_of_30']['p95']:.0f}, over 250 in "
              f"{100 * r['p90_of_30']['share_over_250']:.0f}%", flush=True)
        for w, p in per_word.items():
            if p["detected"]:
                print(f"   {w:<6} end {p['word_end_s']:.3f} s  score wait {p['score_wait_ms']:5.0f}  quantisation "
                      f"{p['quantisation_mean_ms']:4.0f}  hold {p['hold_mean_ms']:4.0f}  latency mean "
                      f"{p['latency_mean_ms']:4.0f} ({p['latency_min_ms']:.0f}-{p['latency_max_ms']:.0f})  "
                      f"score {p['confidence_mean']:.2f}  detected {p['detected']}/{p['phases']} {p['wrong']}",
                      flush=True)
    return result


# ------------------------------------------------------------------------------------------------ learn


def learn(args) -> dict:
    import bench_streaming
    import pause_rule

    from speech_app.modelfile import load_model
    from speech_app.training.conversation import decider

    labels = load_model(args.model).labels
    model_classifier = classifier(args.model)
    speech = pause_rule.learn_speech()
    hours = len(speech) / SAMPLE_RATE / 3600
    streams = pause_rule.command_streams(args.data)
    sources = {"learn": speech, **{f"commands_{n}": s.samples for n, s in streams.items()}}
    recorded = {}
    for name, samples in sources.items():
        recorded[name] = {hop: cached(model_classifier, samples, hop, args.cache / f"{name}_{hop:g}.npz")
                          for hop in sorted(set(RECORD_HOPS.values()))}
    # the check that a 62.5 ms recording's every second evaluation is the default recognizer's own
    own = pause_rule.recorded(args.model, speech, ROOT / "runs" / "pause_rule", "learn")
    half = every(recorded["learn"][62.5], 2)
    same = len(own) == len(half) and all(a == b and np.allclose(r, s, atol=1e-5) for (a, r), (b, s) in zip(own, half))
    print(f"learn side {hours * 60:.1f} min; every second 62.5 ms evaluation is the 125 ms recording's: {same}")
    rows = []
    for lever in args.levers:
        settings, talk = for_lever(lever, recorded["learn"])
        row = {"lever": lever, "learn_per_hour": len(decider(labels, settings).replay(talk)) / hours}
        for n, stream in streams.items():
            _, evaluations = for_lever(lever, recorded[f"commands_{n}"])
            s = bench_streaming.score_detections(stream, decider(labels, settings).replay(evaluations))
            row[n] = {k: s[k] for k in ("recall", "precision", "false_alarms_per_hour_other_speech",
                                        "latency_median_ms", "latency_p90_ms")}
        rows.append(row)
        q, z = row["quiet"], row["noisy"]
        print(f"{lever:<46} talk {row['learn_per_hour']:5.1f}/h | quiet R {q['recall']:.3f} P {q['precision']:.3f} "
              f"FA/h {q['false_alarms_per_hour_other_speech']:5.1f} lat {q['latency_median_ms']:4.0f}/"
              f"{q['latency_p90_ms']:4.0f} | noisy R {z['recall']:.3f} P {z['precision']:.3f} lat "
              f"{z['latency_median_ms']:4.0f}/{z['latency_p90_ms']:4.0f}", flush=True)
    return {"hours": hours, "rows": rows}


# ------------------------------------------------------------------------------------------------- held


def held(args) -> dict:
    import bench_conversation_commands as bcc
    import bench_streaming

    from speech_app.audio import decode_files
    from speech_app.data.dataset import BACKGROUND_NOISE_DIR, STANDARD_WORDS
    from speech_app.modelfile import load_model
    from speech_app.training.conversation import decider

    labels = load_model(args.model).labels
    model_classifier = classifier(args.model)
    rng = np.random.default_rng(bench_streaming.SEED)  # bench_streaming.run's stream, built the same way
    commands, others = bench_streaming.held_out_clips(args.data, rng)
    decoded = decode_files([str(p) for _, p in commands + others], progress=False)
    clips = [(w, a.astype(np.float32)) for (w, _), a in zip(commands + others, decoded) if isinstance(a, np.ndarray)]
    clips = [clips[i] for i in rng.permutation(len(clips))]
    noise_files = sorted(p for p in (args.data / BACKGROUND_NOISE_DIR).iterdir() if p.is_file())
    recordings = [load_audio(p) for p in noise_files]
    stream = bench_streaming.build_stream(clips, recordings[0], rng)
    noise_stream = np.concatenate([r * v for v in bench_streaming.NOISE_VOLUMES for r in recordings]).astype(np.float32)
    talk, spans = bcc.measuring_speech()
    talk_hours = len(talk) / SAMPLE_RATE / 3600
    sources = {"streaming": stream.samples, "noise": noise_stream, "talk": talk}
    hops = sorted({RECORD_HOPS[LEVERS[n][0]] for n in args.levers})
    recorded = {name: {hop: cached(model_classifier, s, hop, args.cache / f"held_{name}_{hop:g}.npz") for hop in hops}
                for name, s in sources.items()}
    print(f"held-out: {sum(w in STANDARD_WORDS for w in stream.words)} commands, {len(stream.words)} clips, "
          f"{len(stream.samples) / SAMPLE_RATE / 60:.1f} min; noise {len(noise_stream) / SAMPLE_RATE / 60:.1f} min; "
          f"continuous speech {talk_hours * 60:.1f} min")
    rows = []
    for lever in args.levers:
        settings, evaluations = for_lever(lever, recorded["streaming"])
        s = bench_streaming.score_detections(stream, decider(labels, settings).replay(evaluations))
        noise = len(decider(labels, settings).replay(for_lever(lever, recorded["noise"])[1]))
        found = decider(labels, settings).replay(for_lever(lever, recorded["talk"])[1])
        t = bcc.tally(found, spans, talk_hours)
        row = {"lever": lever, **{k: s[k] for k in ("recall", "precision", "false_alarms_per_hour_other_speech",
                                                    "latency_median_ms", "latency_p90_ms")},
               "noise_false_alarms": noise, "talk_detections": t["detections"], "talk_per_hour": t["per_hour"],
               "talk_by_word": t["by_word"]}
        rows.append(row)
        print(f"{lever:<46} R {row['recall']:.3f} P {row['precision']:.3f} FA/h other "
              f"{row['false_alarms_per_hour_other_speech']:4.0f} noise {noise} lat {row['latency_median_ms']:4.0f}/"
              f"{row['latency_p90_ms']:4.0f} | talk {row['talk_per_hour']:5.1f}/h ({row['talk_detections']}) "
              f"{row['talk_by_word']}", flush=True)
    return {"rows": rows}


# -------------------------------------------------------------------------------------------------- cpu


def cpu(args) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from speech_app.onnx_runtime import OnnxClassifier, limit_numpy_threads
    from speech_app.streaming import StreamingRecognizer

    limit_numpy_threads(1)
    onnx = OnnxClassifier(ROOT / "model" / "speech_commands_12.streaming.onnx")
    clips = live_clips()
    rng = np.random.default_rng(5)
    words = []
    for _ in range(4):  # the sample words, 1.6 s of low room noise between them (a tenth of the tap)
        for w in LIVE_WORDS:
            words += [clips[w], np.zeros(int(LIVE_GAP_S * SAMPLE_RATE), np.float32)]
    words = np.concatenate(words)
    tap = load_audio(ROOT / "datasets" / "samples" / "_silence_running_tap.flac").astype(np.float32)
    words = words + np.resize(tap, len(words)) * 0.01
    quiet = np.resize(tap, 60 * SAMPLE_RATE).astype(np.float32) * 0.01
    quiet = quiet + rng.normal(0, 1e-4, len(quiet)).astype(np.float32)
    streams = {"words": words, "quiet room": quiet}
    block = 1600
    totals = {(h, s): [0.0, 0.0] for h in args.hops for s in streams}
    for repeat in range(args.repeats):
        for hop in (args.hops if repeat % 2 == 0 else args.hops[::-1]):
            for name, samples in streams.items():
                recognizer = StreamingRecognizer(onnx, RecognizerSettings(hop_ms=hop))
                recognizer.feed(np.zeros(6 * SAMPLE_RATE, np.float32) + quiet[: 6 * SAMPLE_RATE])  # floor, warm-up
                start = time.process_time()
                for i in range(0, len(samples), block):
                    recognizer.feed(samples[i : i + block])
                totals[(hop, name)][0] += time.process_time() - start
                totals[(hop, name)][1] += len(samples) / SAMPLE_RATE
    out = {}
    for (hop, name), (cpu_s, audio_s) in totals.items():
        out[f"{hop:g} {name}"] = 100 * cpu_s / audio_s
        print(f"hop {hop:>5g} ms, {name:<10}: {100 * cpu_s / audio_s:.2f}% of a core per audio second "
              f"({audio_s:.0f} s of audio)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("live", "learn", "held", "cpu"))
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "latency_study")
    parser.add_argument("--levers", type=lambda t: t.split(";"), default=list(LEVERS),
                        help="semicolon-separated lever names (LEVERS)")
    parser.add_argument("--hops", type=lambda t: [float(x) for x in t.split(",")], default=list(HOPS_MS))
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.data is None:
        from devtest import DEFAULT_DATA

        args.data = DEFAULT_DATA
    result = {"live": live, "learn": learn, "held": held, "cpu": cpu}[args.part](args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
