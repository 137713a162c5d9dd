"""Adapt to your voice in the app: every command of the model in use prompted in turn with a countdown
and a level meter, each take saved, the model adapted in a worker thread and used in the Live tab, and
the base model one click away."""

from __future__ import annotations

import numpy as np
import soundfile
from stand_ins import WAIT_MS, FakeAudio, tone_word

from speech_app.audio import SAMPLE_RATE
from speech_app.gui import voice_dialog
from speech_app.gui.services import load_command_classifier
from speech_app.modelfile import load_model, read_metadata
from speech_app.training.adapt import AdaptRecipe, commands_of

TINY_RECIPE = AdaptRecipe(steps=2, batch_size=8, replay_per_word=2, device="cpu")
ADAPT_WAIT_MS = 300_000  # decoding the replayed clips and two steps: slow on a busy machine


def test_record_every_command_adapt_and_switch_the_live_tab(make_window, qtbot, monkeypatch, tiny_model):
    monkeypatch.setattr(voice_dialog, "COUNTDOWN_S", 1)
    monkeypatch.setattr(voice_dialog, "TAKE_SECONDS", 0.5)
    audio = FakeAudio(signal=np.concatenate([np.zeros(SAMPLE_RATE // 8, np.float32), tone_word("mid", 0.5)]),
                      speed=1.0, loop=True)
    window = make_window(audio.services(load_classifier=load_command_classifier))
    window.use_model(tiny_model)
    qtbot.waitUntil(lambda: window.live.model_path == tiny_model, timeout=WAIT_MS)
    commands = commands_of(load_model(tiny_model).labels)
    dialog = window.open_voice_dialog()
    dialog.recipe = TINY_RECIPE
    assert not dialog.adapt_button.isEnabled()  # nothing recorded yet
    levels = []
    dialog.recorder.level_changed.connect(levels.append)
    dialog.takes_spin.setValue(1)
    dialog.record_button.click()
    assert f"{commands[0]!r} (take 1) in" in dialog.prompt.text() and not dialog.record_button.isEnabled()
    qtbot.waitUntil(lambda: "Every command recorded" in dialog.prompt.text(), timeout=WAIT_MS * len(commands))
    assert dialog.counts() == {c: 1 for c in commands}
    take = dialog.session / commands[-1] / "take-1_nohash_0.wav"
    assert soundfile.info(str(take)).frames == int(voice_dialog.TAKE_SECONDS * SAMPLE_RATE)
    assert max(levels) > -20.0  # the tone was heard
    with qtbot.waitSignal(dialog.model_adapted, timeout=ADAPT_WAIT_MS) as adapted:
        dialog.adapt_button.click()
    path = adapted.args[0]
    assert read_metadata(path)["adapted"]["takes"] == {c: 1 for c in commands}
    qtbot.waitUntil(lambda: window.live.model_path == path, timeout=WAIT_MS)
    assert path in window.custom.models.paths()
    dialog.base_button.click()  # the base model, one click away
    qtbot.waitUntil(lambda: window.live.model_path == tiny_model, timeout=WAIT_MS)
    dialog.close()
