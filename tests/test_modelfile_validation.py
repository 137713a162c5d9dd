"""Model files with settings out of range or tensors that do not fit them (issue 25): refused in one line
naming the file and the setting, before anything the settings size is allocated; every model the
project makes still loads. docs/FAULTS.md lists the cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from speech_app.audio import SAMPLE_RATE
from speech_app.cli import main
from speech_app.data.clips import MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS, WINDOW_STEP_SECONDS
from speech_app.features import MAX_CLIP_SECONDS, MAX_MEL_BANDS, FeatureConfig
from speech_app.model import BiLstmClassifier, ModelConfig
from speech_app.modelfile import METADATA_KEY, ModelBundle, ModelFileError, load_model, read_metadata, save_model

REPO = Path(__file__).resolve().parent.parent
LABELS = ["_silence_", "_unknown_", "yes", "no"]
# what the old loader allocated for some of these settings runs to gigabytes; a refusal needs next to
# nothing beyond what a normal load of the small file below needs
LOAD_HEADROOM_BYTES = 256 * 2**20


@pytest.fixture
def small_model(tmp_path) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(n_classes=len(LABELS), hidden_size=8, num_layers=1, conv_channels=16)
    return save_model(tmp_path / "small.safetensors", ModelBundle(BiLstmClassifier(config).eval(), LABELS,
                                                                  FeatureConfig()))


def tampered(source: Path, edit, name: str = "tampered.safetensors") -> Path:
    """A copy of `source` whose metadata and tensors `edit(metadata, tensors)` changed in place."""
    with safe_open(str(source), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    metadata = read_metadata(source)
    edit(metadata, tensors)
    path = source.with_name(name)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(metadata)})
    return path


def setting(section: str, key: str, value):
    def edit(metadata, tensors):
        metadata[section][key] = value
    return edit


def labels_for(n_classes: int):
    def edit(metadata, tensors):
        metadata["model"]["n_classes"] = n_classes
        metadata["labels"] = [f"w{i}" for i in range(n_classes)]
    return edit


# case: (edit, a fragment of the one-line message). The rows of issue 25 first.
OUT_OF_RANGE = {
    "hop 1e-9 ms (was ZeroDivisionError)": (setting("features", "hop_ms", 1e-9), "features.hop_ms"),
    "window 1e6 ms (was GBs, then an allocator error)": (setting("features", "window_ms", 1e6), "features.window_ms"),
    "sample rate 1e9 Hz (was GBs, then an allocator error)": (setting("features", "sample_rate", 10**9),
                                                             "features.sample_rate"),
    "100000 mel bands (was wrong labels)": (setting("features", "n_mels", 100_000), "features.n_mels"),
    "f_min -1e9 Hz (was wrong labels)": (setting("features", "f_min_hz", -1e9), "features.f_min_hz"),
    "f_min above f_max (was wrong labels)": (setting("features", "f_min_hz", 7_700.0), "features.f_min_hz"),
    "hop 1e9 ms (was wrong labels)": (setting("features", "hop_ms", 1e9), "features.hop_ms"),
    "frame stride 1e6 (was wrong labels)": (setting("model", "frame_stride", 10**6), "model.frame_stride"),
    # more settings the old loader took as they were
    "f_max above Nyquist": (setting("features", "f_max_hz", 12_000.0), "features.f_max_hz"),
    "f_min NaN": (setting("features", "f_min_hz", float("nan")), "features.f_min_hz"),
    "top_db 0.001": (setting("features", "top_db", 0.001), "features.top_db"),
    "clip of 1 ms (shorter than an FFT frame)": (setting("features", "clip_seconds", 0.001), "features.clip_seconds"),
    "8 kHz sample rate (clips are decoded at 16 kHz)": (setting("features", "sample_rate", 8_000),
                                                         "features.sample_rate"),
    "mel bands without an FFT bin": (lambda m, t: m["features"].update(window_ms=10.0, hop_ms=5.0, n_mels=128),
                                     "features.n_mels"),
    "1 ms frames of a 60 s window": (lambda m, t: m["features"].update(hop_ms=1.0, clip_seconds=60.0),
                                     "features.hop_ms"),
    "n_mfcc of another front end": (lambda m, t: m["features"].update(n_mfcc=20), "model.n_features"),
    "dropout 1.5": (setting("model", "dropout", 1.5), "model.dropout"),
    "dropout text": (setting("model", "dropout", "high"), "model.dropout"),
    "negative convolution channels": (setting("model", "conv_channels", -3), "model.conv_channels"),
    "convolution kernel 2.5": (setting("model", "conv_kernel", 2.5), "model.conv_kernel"),
    "hidden size 2**62": (setting("model", "hidden_size", 2**62), "model.hidden_size"),
    "a label with a line break": (lambda m, t: m["labels"].__setitem__(2, "yes\nno"), "line break"),
    "format version -1": (lambda m, t: m.__setitem__("format_version", -1), "format_version"),
    "float64 weights": (lambda m, t: t.__setitem__("head.1.weight", t["head.1.weight"].double()),
                        "head.1.weight holds F64"),
}
# row 6: sizes whose tensors would take megabytes or gigabytes, in a file that stores 5238 weights: a size
# larger than all the stored weights together is refused at once, a smaller one by the shapes it implies
TOO_BIG_FOR_THE_TENSORS = {
    "hidden size 20000": (setting("model", "hidden_size", 20_000), "model.hidden_size"),
    "10 million convolution channels": (setting("model", "conv_channels", 10**7), "model.conv_channels"),
    "100000 classes": (labels_for(100_000), "model.n_classes"),
    "hidden size 24": (setting("model", "hidden_size", 24), "lstm.weight_ih_l0 has shape"),
    "32 convolution channels": (setting("model", "conv_channels", 32), "conv.0.weight has shape"),
    "a third layer": (setting("model", "num_layers", 3), "lacks the tensor lstm."),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE) + list(TOO_BIG_FOR_THE_TENSORS))
def test_a_setting_out_of_range_is_refused_in_one_line(small_model, case):
    edit, fragment = {**OUT_OF_RANGE, **TOO_BIG_FOR_THE_TENSORS}[case]
    path = tampered(small_model, edit)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and fragment in message, message
    assert "\n" not in message and len(message) < 300, message


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("case", list(OUT_OF_RANGE)[:8])
def test_classify_with_an_unusable_model_file_exits_2_in_one_line(capsys, tmp_path, small_model, case):
    edit, fragment = OUT_OF_RANGE[case]
    path = tampered(small_model, edit)
    clip = tmp_path / "yes.wav"
    sf.write(str(clip), np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    status = main(["classify", "--model", str(path), str(clip)])
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert status == 2 and captured.out == "" and str(path) in line and fragment in line


ENTRY_POINTS = {  # each command that loads a model file (the GUI's live tab shows the same message)
    "listen --file": lambda model, d: ["listen", "--model", model, "--file", d / "yes.wav"],
    "export": lambda model, d: ["export", "--model", model, d / "m.onnx"],
    "evaluate": lambda model, d: ["evaluate", "--model", model, "--report-dir", d / "report", d / "data"],
    "train --init-from": lambda model, d: ["train", d / "data", "--out", d / "m.safetensors", "--init-from", model],
    "train --teacher": lambda model, d: ["train", d / "data", "--out", d / "m.safetensors", "--init-from", "none",
                                         "--recipe", "dataset", "--teacher", model],
}


@pytest.mark.parametrize("command", sorted(ENTRY_POINTS))
def test_every_command_that_loads_a_model_says_why_in_one_line(capsys, tmp_path, small_model, command):
    path = tampered(small_model, setting("features", "hop_ms", 1e-9))
    (tmp_path / "data" / "yes").mkdir(parents=True)
    for name in ("yes.wav", "data/yes/a.wav"):
        sf.write(str(tmp_path / name), np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    status = main([str(a) for a in ENTRY_POINTS[command](path, tmp_path)])
    line = one_line(capsys.readouterr().err)
    assert status == 2 and str(path) in line and "features.hop_ms" in line, line


MEMORY_PROBE = """
import json, resource, sys
import torch
from speech_app.modelfile import ModelFileError, load_model

torch.set_num_threads(1)
valid, headroom, tampered = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
load_model(valid)  # imports and first-use work done before the limit is set
with open("/proc/self/status") as status:
    in_use = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (in_use + headroom, resource.getrlimit(resource.RLIMIT_AS)[1]))
messages = []
for path in tampered:
    try:
        load_model(path)
        messages.append("loaded")
    except ModelFileError as err:
        messages.append(str(err))
load_model(valid)  # the limit leaves room for a normal load
print(json.dumps(messages))
"""


def test_settings_too_big_for_the_tensors_are_refused_before_allocating(small_model):
    """Run in a process whose address space may grow by LOAD_HEADROOM_BYTES only (the small file is 50 KB):
    the old loader built the model the metadata described before comparing shapes, gigabytes for these."""
    paths = [tampered(small_model, edit, f"big{i}.safetensors")
             for i, (edit, _) in enumerate(TOO_BIG_FOR_THE_TENSORS.values())]
    paths.append(tampered(small_model, setting("model", "num_layers", 10**6), "layers.safetensors"))
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(small_model), str(LOAD_HEADROOM_BYTES),
                            *map(str, paths)], capture_output=True, text=True, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert probe.returncode == 0, probe.stderr[-2000:]
    messages = json.loads(probe.stdout)
    fragments = [fragment for _, fragment in TOO_BIG_FOR_THE_TENSORS.values()] + ["model.num_layers"]
    for path, message, fragment in zip(paths, messages, fragments):
        assert message.startswith(f"{path}: ") and fragment in message, message


def test_the_loaded_weights_are_the_files_own(small_model):
    """The model is built without memory and takes the file's tensors as its parameters: nothing is left
    on the meta device, and the weights are exactly those saved."""
    loaded = load_model(small_model)
    tensors = dict(loaded.model.named_parameters()) | dict(loaded.model.named_buffers())
    assert not [name for name, tensor in tensors.items() if tensor.is_meta]
    with safe_open(str(small_model), framework="pt") as handle:
        assert sorted(handle.keys()) == sorted(loaded.model.state_dict())
        for name in handle.keys():
            assert torch.equal(handle.get_tensor(name), loaded.model.state_dict()[name]), name
    with torch.no_grad():
        assert torch.isfinite(loaded.model(torch.randn(2, 40, 101))).all()


DETACHED_PROBE = """
import sys
import torch
from speech_app.modelfile import load_model

model = load_model(sys.argv[1]).model
before = model.head[1].weight.sum().item()
open(sys.argv[1], "r+b").truncate(0)  # as `cp` onto it begins: the file is cut short, then rewritten
with torch.no_grad():
    assert torch.isfinite(model(torch.randn(1, 40, 101))).all()
assert model.head[1].weight.sum().item() == before
"""


def test_a_loaded_model_keeps_its_weights_when_the_file_is_overwritten(small_model):
    """The weights are copied out of the file, not mapped from it (a mapped file cut short is a bus error,
    so this runs in a process of its own)."""
    probe = subprocess.run([sys.executable, "-c", DETACHED_PROBE, str(small_model)], capture_output=True,
                           text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert probe.returncode == 0, (probe.returncode, probe.stderr[-2000:])


@pytest.mark.parametrize("features", [
    FeatureConfig(),
    *(FeatureConfig(clip_seconds=float(s)) for s in np.arange(MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS + 1e-9,
                                                               WINDOW_STEP_SECONDS)),
    FeatureConfig(n_mfcc=20, n_mels=32, hop_ms=20.0, window_ms=25.0, f_min_hz=60.0, f_max_hz=6000.0),
    FeatureConfig(clip_seconds=2.0, hop_ms=12.5),
    FeatureConfig(top_db=40.0),
    FeatureConfig(n_mels=MAX_MEL_BANDS, n_mfcc=13),
], ids=str)
def test_every_front_end_the_project_makes_passes_the_checks(tmp_path, features):
    """The recipes' windows (data/clips.py: 1-4 s in quarter seconds) and the front ends the tests use."""
    config = ModelConfig(n_features=features.n_mfcc, n_classes=len(LABELS), hidden_size=8, num_layers=2)
    path = save_model(tmp_path / "m.safetensors", ModelBundle(BiLstmClassifier(config).eval(), LABELS, features))
    assert load_model(path).features == features


def test_the_shipped_model_passes_the_checks():
    loaded = load_model(None)
    assert loaded.features.sample_rate == SAMPLE_RATE and len(loaded.labels) == loaded.model.config.n_classes
    assert MAX_WINDOW_SECONDS <= MAX_CLIP_SECONDS  # every window `train --window-seconds` takes loads


def test_a_model_without_a_convolution_passes_the_checks(tmp_path):
    config = ModelConfig(n_classes=len(LABELS), hidden_size=8, num_layers=1, conv_channels=0)
    path = save_model(tmp_path / "m.safetensors", ModelBundle(BiLstmClassifier(config).eval(), LABELS,
                                                              FeatureConfig()))
    assert load_model(path).model.conv is None
