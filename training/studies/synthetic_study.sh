#!/usr/bin/env bash
# What synthetic speech is worth: three 12-class models with the same budget, differing only in
# the speech of the ten commands they train on. All are scored on the same real validation speech
# (speakers never seen in training); _unknown_ and _silence_ come from real data in all three.
#   real       real clips only (on/off/stop have about 21 real training clips each)
#   synthetic  synthetic clips of the commands only (their real clips are held out for validation)
#   both       real and synthetic (at most half of a word's draws synthetic)
# Usage: [DATA_DIR=...] [SYNTH_DIR=...] training/studies/synthetic_study.sh; then
#        python training/studies/study_table.py runs/study/{real,synthetic,both}.safetensors
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
DATA_DIR=${DATA_DIR:-../shared/data/speech_commands}
SYNTH_DIR=${SYNTH_DIR:-runs/synth_commands}
WORDS=yes,no,up,down,left,right,on,off,stop,go
BUDGET=(--epochs 6 --steps-per-epoch 40 --patience 6 --batch-size 128 --seed 0 --quiet)
[ -d "$SYNTH_DIR" ] || speech-app synth --words "$WORDS" --out "$SYNTH_DIR" --per-word 300 \
    --engines espeak-ng,flite,festival,pico --seed 1 --noise "$DATA_DIR/_background_noise_"
mkdir -p runs/study
speech-app train "$DATA_DIR" --words "$WORDS" --out runs/study/real.safetensors "${BUDGET[@]}"
speech-app train "$DATA_DIR" --words "$WORDS" --synthetic "$SYNTH_DIR" --holdout-real "$WORDS" \
    --synthetic-share 1.0 --out runs/study/synthetic.safetensors "${BUDGET[@]}"
speech-app train "$DATA_DIR" --words "$WORDS" --synthetic "$SYNTH_DIR" \
    --out runs/study/both.safetensors "${BUDGET[@]}"
