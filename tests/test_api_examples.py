"""The README's "Python API" examples, run as written.

Each test takes one fenced `python` block of that section from README.md and executes it. The
classification and streaming examples run from the repository root on the real sample clips. The
training examples run in a temporary folder holding tiny generated takes, with one substitution:
`CustomWordsRecipe()` becomes a recipe of a few batches and a few synthetic clips (TINY_RECIPE),
so they train in seconds; everything else is the README's code. A README example that no test
runs fails `test_every_example_is_run`.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_dataset
from stand_ins import TAKES_PER_WORD

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SECTION = "## Python API"
FENCED_PYTHON = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
SAMPLE_PATH = re.compile(r"datasets/samples/([a-z]+)_[^\"']+")
# each example, by a call only it makes
EXAMPLES = {"classify": "classify_files(", "stream": "recognizer.feed(", "takes": 'train_custom_words(["takes"]',
            "text": "train_custom_words([]", "load": "model_card("}
# the training examples' recipe, made tiny: a few batches, synthetic clips and bundled negatives
TINY_RECIPE = dict(steps=2, batch_size=8, warmup_steps=1, estimate_steps=1, negatives_per_word=2,
                   synth_per_word=2, near_miss_clips=1, device="cpu")
TINY_SUBSTITUTION = {"CustomWordsRecipe()": "CustomWordsRecipe(**TINY_RECIPE)"}
DETECTION_LINE = re.compile(r"^(\d+\.\d\d) s: (.+) \((\d+)%\)$")


def api_examples() -> list[str]:
    """The fenced Python blocks of the README's Python API section, in order."""
    text = README.read_text(encoding="utf-8")
    assert f"\n{SECTION}\n" in text, f"README.md has no {SECTION!r} section"
    start = text.index(f"\n{SECTION}\n") + 1
    end = text.find("\n## ", start)
    return FENCED_PYTHON.findall(text[start : end if end >= 0 else len(text)])


def example(name: str) -> str:
    found = [code for code in api_examples() if EXAMPLES[name] in code]
    assert len(found) == 1, f"README {SECTION}: {len(found)} examples call {EXAMPLES[name]!r}, expected one"
    return found[0]


def run_example(code: str, substitutions: dict[str, str] | None = None, **names) -> dict:
    """Execute an example (after `substitutions`, each of which must apply exactly once); its names."""
    for old, new in (substitutions or {}).items():
        assert code.count(old) == 1, f"the example no longer holds {old!r} once: update the test's substitution"
        code = code.replace(old, new)
    namespace = {"__name__": "readme_example", **names}
    exec(compile(code, f"README.md ({SECTION})", "exec"), namespace)
    return namespace


def assigned_words(code: str) -> list[str]:
    """The literal list assigned to `words` in an example (the test writes takes for them first)."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "words" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("the example assigns no `words = [...]` list")


@pytest.fixture
def tiny_synthesis(monkeypatch):
    """Synthetic speech with one filler word of one clip (the words' clips are TINY_RECIPE's)."""
    from speech_app.synth import available_engines, text_training

    if not available_engines():
        pytest.skip("no speech engine installed (espeak-ng, flite, festival: `make test` installs them)")
    monkeypatch.setattr(text_training, "FILLER_WORDS", ("hello",))
    monkeypatch.setattr(text_training, "FILLER_CLIPS_PER_WORD", 1)


def test_every_example_is_run():
    blocks = api_examples()
    claimed = [[name for name, call in EXAMPLES.items() if call in code] for code in blocks]
    assert all(len(names) == 1 for names in claimed), f"examples not run, or run twice, by this test: {claimed}"
    assert sorted(name for names in claimed for name in names) == sorted(EXAMPLES)


def test_every_public_name_resolves_and_none_loads_qt():
    """`import speech_app` loads no torch; each exported name imports from its module, none of them Qt."""
    script = ("import sys, speech_app\n"
              "assert 'torch' not in sys.modules, 'import speech_app loaded torch'\n"
              "missing = [n for n in speech_app.__all__ if getattr(speech_app, n, None) is None]\n"
              "assert not missing, missing\n"
              "assert set(speech_app.__all__) <= set(dir(speech_app))\n"
              "assert 'PySide6' not in sys.modules, 'an export loaded Qt'\n")
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout first
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr


def test_the_classify_example_labels_its_clip_and_its_files(monkeypatch, capsys, shipped_classifier, reliable_words):
    from speech_app import load_audio

    monkeypatch.chdir(REPO)
    code = example("classify")
    names = run_example(code)
    lines = capsys.readouterr().out.splitlines()
    clip_word = SAMPLE_PATH.search(code).group(1)
    prediction = shipped_classifier.classify(load_audio(SAMPLE_PATH.search(code).group(0)), k=2)
    assert lines[0] == str(prediction) and len(prediction.labels) == 2
    if clip_word in reliable_words:
        assert prediction.labels[0] == clip_word
    files = [Path(p) for p in ast.literal_eval(re.search(r"classify_files\((\[.*?\])", code).group(1))]
    assert len(lines) == 1 + len(files)
    for path, line in zip(files, lines[1:]):
        assert line.startswith(f"{path} ")
        if path.is_file():  # a sample clip: the label the model gives it
            assert line.split()[1] == shipped_classifier.classify(load_audio(path)).labels[0]
        else:  # a missing file: no label, its error
            assert line.endswith(" None " + str(names["result"].error)) and str(path) in names["result"].error
    assert names["result"].label == "" and names["result"].confidence is None


def test_the_streaming_example_detects_each_word_once_whatever_the_blocks(monkeypatch, capsys, shipped_classifier,
                                                                          reliable_words):
    from speech_app import StreamingRecognizer

    monkeypatch.chdir(REPO)
    code = example("stream")
    names = run_example(code)
    printed = [DETECTION_LINE.match(line) for line in capsys.readouterr().out.splitlines()]
    assert printed and all(printed), "each printed line is one detection: time, label, confidence"
    spoken = SAMPLE_PATH.findall(code)
    labels = [match.group(2) for match in printed]
    assert set(labels) >= {w for w in spoken if w in reliable_words} and set(labels) <= set(spoken)
    assert len(labels) == len(set(labels))  # one detection per spoken word
    times = [float(match.group(1)) for match in printed]
    assert times == sorted(times) and times[-1] <= len(names["stream"]) / 16_000
    whole = StreamingRecognizer(shipped_classifier).feed(names["stream"])  # the same stream in one block
    assert [d.label for d in whole] == labels
    assert [f"{d.time_s:.2f}" for d in whole] == [match.group(1) for match in printed]


@pytest.mark.slow
def test_the_takes_example_trains_a_model_the_load_example_reads(tmp_path, monkeypatch, capsys, tiny_synthesis):
    from speech_app import read_metadata

    code = example("takes")
    words = assigned_words(code)
    make_dataset(tmp_path / "takes", words=words, n_speakers=TAKES_PER_WORD, noise=False)  # takes/<word>/*.wav
    monkeypatch.chdir(tmp_path)
    run_example(code, TINY_SUBSTITUTION, TINY_RECIPE=TINY_RECIPE)
    printed = capsys.readouterr().out
    meta = read_metadata(tmp_path / "mine.safetensors")
    assert meta["labels"] == ["_silence_", "_unknown_", *words]
    assert meta["takes"] == {word: TAKES_PER_WORD for word in words}
    assert meta["recipe"]["steps"] == TINY_RECIPE["steps"]  # the substitution reached the recipe
    assert "Takes recognized:" in printed and "Other speech ignored:" in printed  # the estimate

    names = run_example(example("load"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(meta["labels"]) and names["classifier"].labels == meta["labels"]
    assert lines[1] == str(meta["estimate"]["word_accuracy"])
    card = "\n".join(lines[2:])
    assert "mine.safetensors" in card and all(word in card for word in words) and "What to expect" in card
    assert names["classifier"].classify(np.zeros(16_000, np.float32)).labels[0] in meta["labels"]


@pytest.mark.slow
def test_the_text_example_trains_from_synthetic_speech_alone(tmp_path, monkeypatch, capsys, tiny_synthesis):
    from speech_app import read_metadata

    monkeypatch.chdir(tmp_path)
    names = run_example(example("text"), TINY_SUBSTITUTION, TINY_RECIPE=TINY_RECIPE)
    meta = read_metadata(tmp_path / "lights.safetensors")
    assert meta["labels"] == ["_silence_", "_unknown_", *names["words"]]
    assert meta["takes"] == {word: 0 for word in names["words"]}
    assert all(meta["trained_on"]["clips"]["training"][word] > 0 for word in names["words"])  # synthetic speech
    assert capsys.readouterr().out.startswith("lights.safetensors ")
