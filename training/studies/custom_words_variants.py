"""Fast comparison of custom-word recipe variants (the inner loop behind CUSTOM_WORDS_STUDY.md).

    python training/studies/custom_words_variants.py --takes 5 --variants base,steps320 [--draw 1] [--seeds 1,2]

One condition (N takes per word, 0: text only) is decoded once; each variant is a set of
CustomWordsRecipe fields (see VARIANTS) trained from the shipped model on that decoded set and
tested on the other takes and on real speech of other words. To keep the defaults from being tuned
on the study's own test data, variants are compared on another draw of takes (--draw 1; the study
uses draw 0) and on the Speech Commands speakers of the "validation" split whose hash is even
(the study measures all validation and testing speakers).
With --seeds, each variant runs once per training seed (the synthetic set stays seed 0's): text only
has no draw of takes, so its run-to-run noise is measured by seed. Synthesis runs on one core.
Appends one JSON line per variant (and seed) to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]  # the repository, above training/studies/
sys.path.insert(0, str(ROOT))
from speech_app.audio import decode_files, fit_to_window, seconds_to_samples  # noqa: E402
from speech_app.training.custom_words import (CustomWordsRecipe, build_custom_index, text_only_settings,  # noqa: E402
                                              collect_takes, custom_window_seconds, draw_weights, estimate,
                                              final_plan, step_budget, synthesize_for_words, train_config)
from speech_app.synth.effects import VoiceEffects  # noqa: E402
from speech_app.synth.generator import SynthVariety  # noqa: E402
from speech_app.data.dataset import word_folders, which_set  # noqa: E402
from speech_app.inference import predict_logits  # noqa: E402
from speech_app.modelfile import load_model  # noqa: E402
from speech_app.training.trainer import Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # custom_words_study.py, beside it
from custom_words_study import WORDS, pick_takes  # noqa: E402

# name -> recipe fields; data fields (synth_per_word, near_miss_clips) rebuild the decoded set
VARIANTS = {
    "base": {},
    "head_random": {"_head": "random"},  # the output layer's start before it became zero
    "steps240": {"steps": 240},
    "steps320": {"steps": 320},
    "lr2e-3": {"learning_rate": 2e-3},
    "synth0.6": {"synthetic_share": 0.6},
    "unknown0.35": {"unknown_share": 0.35},
    "unknown0.55": {"unknown_share": 0.55},
    "speed0.25": {"speed": 0.25},
    "synth300": {"synth_per_word": 300},
    "nearmiss0": {"near_miss_share": 0.0},
    "steps320_nm0": {"steps": 320, "near_miss_share": 0.0},
    "steps320_nm0.1": {"steps": 320, "near_miss_share": 0.1},
    "lr2e-3_nm0": {"learning_rate": 2e-3, "near_miss_share": 0.0},
    "steps240_nm0": {"steps": 240, "near_miss_share": 0.0},
    "swaps0": {"_misses": "no onset swaps"},
    "steps160_swaps0": {"steps": 160, "_misses": "no onset swaps"},
    "steps160_nm0": {"steps": 160, "near_miss_share": 0.0},
    "steps100_nm0": {"steps": 100, "near_miss_share": 0.0},
    "steps160_nm0_unknown0.35": {"steps": 160, "near_miss_share": 0.0, "unknown_share": 0.35},
    "swaps0_nm0.1": {"near_miss_share": 0.1, "_misses": "no onset swaps"},
    "steps160_nm0_speed0.25": {"steps": 160, "near_miss_share": 0.0, "speed": 0.25},
    "steps320_swaps0": {"steps": 320, "_misses": "no onset swaps"},
    # another training seed (draws, augmentation, estimate folds; the synthetic set stays seed 0's):
    # text only has no draw of takes, so run-to-run noise is measured by seed
    "seed1": {"seed": 1},
    "seed2": {"seed": 2},
    "speed0.25_seed1": {"speed": 0.25, "seed": 1},
    "speed0.25_seed2": {"speed": 0.25, "seed": 2},
    # training arithmetic (TrainConfig.precision), compared at two seeds for the run-to-run noise
    "float32": {"precision": "float32"},
    "bfloat16": {"precision": "bfloat16"},
    "float32_seed1": {"precision": "float32", "seed": 1},
    "bfloat16_seed1": {"precision": "bfloat16", "seed": 1},
    # the synthetic speech itself (text only: the words are nothing else); base applies the recipe's
    # text-only speed since this round, as `speech-app train` does
    "commercial": {"commercial_voices": True},
    "espeak0.15": {"synth_variety": SynthVariety(robotic_share=0.15)},
    "espeak0.5": {"synth_variety": SynthVariety(robotic_share=0.5)},
    "prosody_wide": {"synth_variety": SynthVariety(speed_range=(0.7, 1.35), pitch_semitones=5.0)},
    "room_more": {"synth_variety": SynthVariety(effects=VoiceEffects(reverb_probability=0.8, pitch_tempo_probability=0.6))},
    "filler0.5": {"filler_share": 0.5},
    "clip1.5": {"synth_variety": SynthVariety(clip_seconds=1.5)},
    "room_less": {"synth_variety": SynthVariety(effects=VoiceEffects(reverb_probability=0.2, noise_probability=0.4))},
}


def variant_fields(name: str) -> dict:
    """The fields of a variant; "a+b" merges variants a and b (their synthetic-speech settings too)."""
    merged: dict = {}
    for part in name.split("+"):
        for key, value in VARIANTS[part].items():
            if key == "synth_variety" and key in merged:
                changed = {f.name: getattr(value, f.name) for f in fields(value)
                           if getattr(value, f.name) != getattr(SynthVariety(), f.name)}
                value = replace(merged[key], **changed)
            merged[key] = value
    return merged


def onset_swapped(word: str) -> bool:
    """A near miss made by swapping the onset of a custom word ("bomputer", "harvis"): the recipe
    made them until these variants measured them (speech_app.negatives)."""
    return word in {c + w[onset:] for w, onset in (("computer", 1), ("jarvis", 1)) for c in "mhbds"} - set(WORDS)


def tuning_negatives(speech_commands: Path) -> list[tuple[str, Path]]:
    """Other speech for tuning: validation-split speakers with an even hash (the study uses them all)."""
    rows = []
    for word, files in word_folders(speech_commands).items():
        if word in WORDS:
            continue
        for path in files:
            speaker = path.name.split("_nohash_")[0]
            if which_set(path) == "validation" and int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 2 == 0:
                rows.append((word, path))
    return rows


def score(model, frontend, labels: list[str], window: int, test_takes: dict[str, list[np.ndarray]],
          negatives: list[tuple[str, np.ndarray]]) -> dict:
    def predicted(audio):
        waves = np.stack([fit_to_window(a, window) for a in audio])
        with torch.no_grad():
            return [labels[i] for i in predict_logits(model.eval(), frontend, waves).argmax(dim=1).numpy()]

    said_for = {w: predicted(a) for w, a in test_takes.items()}
    per_word = {w: [sum(p == w for p in said), len(said)] for w, said in said_for.items()}
    missed = {w: {x: said.count(x) for x in set(said) if x != w} for w, said in said_for.items()}
    said = predicted([a for _, a in negatives])
    accepted = [w for (w, _), p in zip(negatives, said) if p in WORDS]
    worst = sorted({w: accepted.count(w) for w in set(accepted)}.items(), key=lambda kv: -kv[1])[:4]
    right = sum(v[0] for v in per_word.values()) / sum(v[1] for v in per_word.values())
    return {"takes_right": round(right, 4), "per_word": per_word, "worst_word": round(min(r / t for r, t in per_word.values()), 4),
            "rejected": round(1 - len(accepted) / len(negatives), 4), "false_accepts": worst, "negatives": len(negatives), "missed_as": missed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=5)
    parser.add_argument("--draw", type=int, default=1)
    parser.add_argument("--variants", default="base")
    parser.add_argument("--seeds", default="", help="comma-separated training seeds for every variant")
    parser.add_argument("--synth-seed", choices=("0", "train"), default="0",
                        help="the synthetic set: seed 0's for every run, or each training seed's own (as `train --seed`)")
    parser.add_argument("--estimate", action="store_true", help="also run the default estimate (base recipe)")
    parser.add_argument("--wake-words", type=Path, default=Path("/work/shared/data/wake_words"))
    parser.add_argument("--speech-commands", type=Path, default=Path("/work/shared/data/speech_commands"))
    parser.add_argument("--out", type=Path, default=Path("runs/custom_words_variants.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = load_model(None)
    negatives = tuning_negatives(args.speech_commands)
    negative_audio = decode_files([str(p) for _, p in negatives], False)
    negatives = [(w, a) for (w, _), a in zip(negatives, negative_audio) if isinstance(a, np.ndarray)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    built: dict[tuple, tuple] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "takes"
        if args.takes:
            rest = pick_takes(args.wake_words, args.takes, args.draw, folder)
        else:
            rest = {w: sorted((args.wake_words / w).iterdir()) for w in WORDS}
        test_takes = {w: [a for a in decode_files([str(p) for p in files], False) if isinstance(a, np.ndarray)]
                      for w, files in rest.items()}
        takes = collect_takes([folder] if args.takes else [], list(WORDS))
        counts = {w: len(t) for w, t in takes.items()}
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [None]
        # seeds outer: with --synth-seed train each seed has its own synthetic data, and an earlier
        # seed's is dropped (every Trainer holds its decoded clips)
        for seed, name in ((s, n) for s in seeds for n in args.variants.split(",")):
            variant = variant_fields(name)
            settings = {k: v for k, v in variant.items() if not k.startswith("_")}
            settings.update({"seed": seed} if seed is not None else {})
            recipe = replace(CustomWordsRecipe(device="cpu"), **settings)
            if recipe.steps is None:
                recipe = replace(recipe, steps=step_budget(counts))
            recipe = text_only_settings(counts, recipe)
            synth_seed = recipe.seed if args.synth_seed == "train" else 0
            data_key = (recipe.synth_per_word, recipe.near_miss_clips, recipe.negatives_per_word,
                        recipe.commercial_voices, recipe.synth_variety, synth_seed)
            for stale in [key for key in built if key[-1] != synth_seed]:  # an earlier seed's data
                del built[stale]
            if data_key not in built:
                synthetic = synthesize_for_words(list(WORDS), replace(recipe, seed=synth_seed), progress=False, jobs=1)
                index, groups = build_custom_index(takes, synthetic, recipe.negatives_per_word)
                window = custom_window_seconds(takes, start.features.clip_seconds)
                trainer = Trainer(index, train_config(recipe, window), None, start, False, None)
                built[data_key] = (trainer, groups)
            trainer, groups = built[data_key]
            trainer.config = train_config(recipe, trainer.config.window_seconds)
            trainer.augmenter.config = trainer.config.augment  # built with the first variant's speed
            labels = trainer.training_labels
            began = time.monotonic()
            row = {"variant": name, "takes": args.takes, "draw": args.draw, "seed": recipe.seed, "synth_seed": synth_seed,
                   "fields": json.loads(json.dumps(variant, default=str)), "steps": recipe.steps,
                   "speed": recipe.speed}
            if args.estimate and name == "base":
                guess = estimate(trainer, groups, recipe)
                row["estimate"] = {"word_accuracy": guess.word_accuracy, "rejection": guess.rejection,
                                   "seconds": round(time.monotonic() - began, 1)}
                began = time.monotonic()
            dropped = None
            if variant.get("_misses") == "no onset swaps":
                dropped = np.array([onset_swapped(e.word) for e in trainer.index.split("training")])
            initial = {k: v.clone() for k, v in trainer.initial_state.items()}
            if variant.get("_head") == "random":  # nn.Linear's own random start, drawn by the seed
                torch.manual_seed(recipe.seed)
                layer = torch.nn.Linear(*reversed(trainer.initial_state["head.1.weight"].shape))
                trainer.initial_state.update({"head.1.weight": layer.weight.detach(), "head.1.bias": layer.bias.detach()})
            trainer.execute(final_plan(recipe, draw_weights(labels, groups, len(WORDS), recipe, dropped), 1))
            trainer.initial_state = initial
            row["train_seconds"] = round(time.monotonic() - began, 1)
            window = seconds_to_samples(trainer.config.window_seconds)
            row.update(score(trainer.model, trainer.frontend, trainer.index.labels, window, test_takes, negatives))
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
