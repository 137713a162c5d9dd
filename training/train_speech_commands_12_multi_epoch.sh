#!/usr/bin/env bash
# Recipe of the multi-epoch fine-tune (not shipped alone, but 0.3 of the shipped weight average,
# train_speech_commands_12_soup.sh; training/studies/DEFAULT_MODEL_STUDY.md, run A): the
# standard 12-class Speech Commands task (yes no up down left right on off stop go _silence_ _unknown_),
# in two stages. On the development test it beats the one-epoch fine-tune on every class with 100+ clips
# and on `_unknown_`, but loses 2 of the 8 off clips, so its predicted official accuracy is lower.
#
# 1. The base: the previous-but-one shipped model (training/train_speech_commands_12_base.sh: 22 epochs
#    from scratch on the real clips plus synthetic speech of the commands, speed perturbation 0.9-1.1x),
#    taken from the project's history (commit 9ea2327) so that this stage needs no retraining.
# 2. Fine-tuning it for EPOCHS x STEPS batches of 128 (training/studies/DEFAULT_MODEL_STUDY.md says why) on
#    what it lacked:
#    - the real clips of stop now in ../shared/data (909, from 629 speakers; the base had 27);
#    - `_unknown_` drawn evenly across all the other words (--even-unknown) and three times as large
#      (--unknown-percent 30), with synthetic speech of the 18 scarce other words and of near misses
#      of the commands (of/off, top/stop, goal/go, town/down, dawn/down, cough/off, pup/up, ...);
#    - more natural voices for on and off (flite, festival, pico, RHVoice: 300 clips each);
#    - the development test's speakers (training/DEVTEST.md) kept out of training and validation.
#    Schedule: the learning rate warms up linearly over the first 5% of the run's steps to 1e-3, then
#    decays (cosine) to 2% of that at the last step (speech_app/training/trainer.py); it spans the whole
#    budget, so a resumed run must keep the same --epochs. The weights kept are the last epoch's
#    (--keep last): with the decay the last epoch has settled; the 563-clip validation split's best
#    epoch scored lower on the development test in two of the three runs compared (A, C), higher in B.
# Synthetic clips are made first, under runs/synth/, if absent; only voices whose licence allows
# shipping the model are used (pico and rhvoice are optional Debian non-free packages,
# ../shared/docs/tts-engines.md). The same seeds and installed voices give the same clips.
# Usage: [DATA_DIR=...] [SYNTH_DIR=...] [EPOCHS=14 STEPS=125] training/train_speech_commands_12_multi_epoch.sh [extra speech-app train flags, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=training/speech_commands_12_common.sh
source training/speech_commands_12_common.sh
OUT=${OUT:-runs/multi_epoch/speech_commands_12.safetensors}
REPORT_DIR=${REPORT_DIR:-runs/multi_epoch/report}
EPOCHS=${EPOCHS:-14}
STEPS=${STEPS:-125}  # batches per epoch (about one pass over the ~16,600 training clips)
MORE_NEAR_MISSES=dawn,gown,noun,cough,loft,so,low,dough,goat,pup,spot,shop,note,new,let,ride
# float32: the shipped ingredients were trained before bfloat16 became the CPU default (training/studies/PRECISION.md)
prepare_base_and_synth
[ -d "$SYNTH_DIR/onoff_voices" ] || speech-app synth --words on,off --out "$SYNTH_DIR/onoff_voices" \
    --per-word 300 --engines "$(installed_engines flite,festival,pico,rhvoice)" --seed 7 "${SYNTH_FLAGS[@]}"
[ -d "$SYNTH_DIR/near_misses" ] || speech-app synth --words "$MORE_NEAR_MISSES" --out "$SYNTH_DIR/near_misses" \
    --per-word 60 --engines "$ENGINES" --seed 9 "${SYNTH_FLAGS[@]}"
mkdir -p "$(dirname "$OUT")"
exec speech-app train "$DATA_DIR" \
  --words "$COMMANDS" \
  --synthetic "$SYNTH_DIR/commands" --synthetic "$SYNTH_DIR/unknown" \
  --synthetic "$SYNTH_DIR/onoff_voices" --synthetic "$SYNTH_DIR/near_misses" \
  --init-from "$BASE" --testing-list training/devtest_list.txt --validation-percent 25 \
  --unknown-percent 30 --even-unknown \
  --out "$OUT" --report-dir "$REPORT_DIR" \
  --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --patience "$EPOCHS" --keep last --batch-size 128 --learning-rate 1e-3 \
  --seed 0 --speed-perturb 0.1 --precision float32 \
  "$@"
