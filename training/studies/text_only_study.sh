#!/usr/bin/env bash
# Custom words from text alone: is fine-tuning the shipped model better than training from scratch?
# Both models are trained only on synthetic speech of "computer" and "jarvis" (plus synthetic filler
# words for _unknown_), then scored on REAL recordings of the two words (../shared/data/wake_words,
# 150 speakers' takes each) and on real Speech Commands speech of other words (false accepts).
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
WAKE=${WAKE_DIR:-../shared/data/wake_words}
SC=${DATA_DIR:-../shared/data/speech_commands}
ENGINES=espeak-ng,flite,festival,pico
mkdir -p runs/textonly
for arm in finetune scratch; do
  init=$([ $arm = finetune ] && echo shipped || echo none)
  [ -f runs/textonly/$arm.safetensors ] || /usr/bin/time -f "$arm: %e s" speech-app train \
      --words computer,jarvis --synth --synth-engines $ENGINES --init-from "$init" \
      --out runs/textonly/$arm.safetensors --quiet
  speech-app evaluate --model runs/textonly/$arm.safetensors "$WAKE" --report-dir runs/textonly/${arm}_real
  python -c "import sys; from pathlib import Path; from speech_app.inference import CommandClassifier; \
from speech_app.training.rejection import measure_rejection; \
print(measure_rejection(CommandClassifier.from_file(sys.argv[1]), [Path(sys.argv[2])], progress=False).summary())" \
      runs/textonly/$arm.safetensors "$SC"
done
