# Sourced by the 12-class recipes (train_speech_commands_12.sh, _multi_epoch.sh): the data, the base
# model and the synthetic speech they share, made once under runs/ if absent.
# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this file
DATA_DIR=${DATA_DIR:-../shared/data/speech_commands}
SYNTH_DIR=${SYNTH_DIR:-runs/synth}
BASE=${BASE:-runs/speech_commands_12_base.safetensors}
BASE_COMMIT=9ea2327  # the base: the model shipped before the one-epoch fine-tune
COMMANDS=yes,no,up,down,left,right,on,off,stop,go
SYNTH_FLAGS=(--noise "$DATA_DIR/_background_noise_" --commercial-voices)
# The engines of a comma-separated list that are installed here; the others are named on stderr. pico and RHVoice
# are in Debian's non-free (../shared/docs/tts-engines.md says how to add them): without them the synthetic sets,
# and so the models, differ from the shipped ones'.
installed_engines() {
  "${PYTHON:-python}" -c '
import sys
from speech_app.synth.engines import available_engines
wanted = sys.argv[1].split(",")
have = {e.name for e in available_engines()}
missing = [name for name in wanted if name not in have]
if missing:
    print("recipe: " + " and ".join(missing) + " not installed; synthesizing with the others", file=sys.stderr)
print(",".join(name for name in wanted if name in have))' "$1" || echo "$1"  # no speech_app here: as given
}
ENGINES=$(installed_engines espeak-ng,flite,festival,pico,rhvoice)
COMMAND_ENGINES=$(installed_engines espeak-ng,flite,festival,pico)
OTHER_WORDS=backward,bird,dog,follow,forward,four,house,learn,marvin,nine,seven,sheila,six,three,tree,two,visual,wow
NEAR_MISSES=of,won,top,goal,town,lift,yet,cup,stock,own

# The base from the project's history, synthetic speech of the commands and of the other words.
prepare_base_and_synth() {
  mkdir -p "$(dirname "$BASE")"
  [ -f "$BASE" ] || git show "$BASE_COMMIT:model/speech_commands_12.safetensors" > "$BASE"
  [ -d "$SYNTH_DIR/commands" ] || speech-app synth --words "$COMMANDS" \
      --out "$SYNTH_DIR/commands" --per-word 300 --engines "$COMMAND_ENGINES" --seed 1 "${SYNTH_FLAGS[@]}"
  [ -d "$SYNTH_DIR/unknown" ] || speech-app synth --words "$OTHER_WORDS,$NEAR_MISSES" --out "$SYNTH_DIR/unknown" \
      --per-word 60 --engines "$ENGINES" --seed 5 "${SYNTH_FLAGS[@]}"
}
