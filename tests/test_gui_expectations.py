"""The Live tab's sensitivity in words, from the model file's conversation curve, and the runtime the
Live tab's model runs on (ONNX Runtime where it pays, PyTorch otherwise), with the same detections."""

from __future__ import annotations

import numpy as np
import pytest
from stand_ins import WAIT_MS, FakeAudio, sample_clip

from speech_app.audio import SAMPLE_RATE, load_audio
from speech_app.gui import expectations
from speech_app.gui.expectations import ConversationCurve, rate_text, sensitivity_text
from speech_app.gui.live_tab import sensitivity_to_threshold
from speech_app.gui.services import AppServices, load_live_classifier
from speech_app.training.conversation import CURVE_THRESHOLDS

HELD_OUT_RECOGNIZED = 0.9


def fixture_curve(heard: bool) -> list[list[float]]:
    """A known curve: false alarms fall with the threshold, and (where recorded) so do the words heard."""
    rows = []
    for t in CURVE_THRESHOLDS:
        row = [t, round(400.0 * (1.0 - t) ** 2, 2)]
        rows.append(row + [round(1.0 - 0.5 * t ** 4, 4)] if heard else row)
    return rows


def curve_model(path, heard: bool):
    """A small model file whose metadata holds a known conversation curve (as a custom model's does)."""
    from speech_app.features import FeatureConfig
    from speech_app.model import BiLstmClassifier, ModelConfig
    from speech_app.modelfile import ModelBundle, save_model

    labels = ["_silence_", "_unknown_", "low", "mid", "high"]
    model = BiLstmClassifier(ModelConfig(n_classes=len(labels), hidden_size=8, num_layers=1))
    info = {"recipe": {"name": "custom words"}, "estimate": {"word_accuracy": HELD_OUT_RECOGNIZED},
            "conversation": {"minutes": 4.0, "budget_per_hour": 0.5, "thresholds": {"low": 0.9},
                             "false_alarms": 3, "curve": fixture_curve(heard)}}
    return save_model(path, ModelBundle(model, labels, FeatureConfig(), info=info))


def expected_at(curve: list[list[float]], threshold: float) -> tuple[float, float | None]:
    """False alarms per hour and share heard at `threshold`: the stored row, or the straight line
    between the two stored rows around it."""
    ts = [row[0] for row in curve]
    hi = next(i for i, t in enumerate(ts) if t >= threshold - 1e-9)
    if abs(ts[hi] - threshold) < 1e-9:
        row = curve[hi]
        return row[1], (row[2] if len(row) > 2 else None)
    a, b = curve[hi - 1], curve[hi]
    w = (threshold - a[0]) / (b[0] - a[0])
    return a[1] + w * (b[1] - a[1]), (a[2] + w * (b[2] - a[2]) if len(a) > 2 else None)


def load_in_live(window, qtbot, path):
    window.live.set_model(path)
    qtbot.waitUntil(lambda: window.live.model is not None and window.live.model.path == path, timeout=WAIT_MS)


@pytest.mark.parametrize("heard", [True, False])
def test_the_sensitivity_says_what_it_means_from_the_models_curve(window, qtbot, tmp_path, heard):
    path = curve_model(tmp_path / "curve.safetensors", heard)
    curve = fixture_curve(heard)
    load_in_live(window, qtbot, path)
    lowest, highest = curve[0][0], curve[-1][0]
    inside = [v for v in range(5, 96) if lowest <= sensitivity_to_threshold(v) <= highest]
    for value in (inside[0], inside[len(inside) // 2] + 1, inside[-1]):
        window.live.sensitivity_slider.setValue(value)
        text, threshold = window.live.expectation_label.text(), sensitivity_to_threshold(value)
        per_hour, share = expected_at(curve, threshold)
        assert f"{rate_text(per_hour)} false alarms an hour of conversation" in text, (value, text)
        if heard:
            assert f"{share:.0%} of your words heard" in text, (value, text)
        else:
            assert "not recorded" in text and f"{HELD_OUT_RECOGNIZED:.0%} of held-out takes" in text
    # more sensitive than the lowest stored threshold: more false alarms than the curve's end, said so
    window.live.sensitivity_slider.setValue(int(round(100 * (1 - lowest))) + 10)
    assert window.live.expectation_label.text().startswith(f"More than {rate_text(curve[0][1])} false alarms")
    assert "4.0 min" in window.live.expectation_label.toolTip()


def test_a_model_without_a_curve_says_so(window, qtbot, random_model):
    qtbot.waitUntil(lambda: window.live.model is not None, timeout=WAIT_MS)
    assert window.live.model.path is None and window.live.expectation_label.text() == expectations.NO_CURVE_SHIPPED
    load_in_live(window, qtbot, random_model)
    assert window.live.expectation_label.text() == expectations.NO_CURVE


def test_a_curve_interpolates_and_a_damaged_one_is_none():
    curve = ConversationCurve.from_metadata({"conversation": {"minutes": 2, "curve": [[0.9, 10.0], [0.5, 50.0]]}})
    assert curve.at(0.7) == (pytest.approx(30.0), None, "inside")
    assert curve.at(0.3)[2] == "below" and curve.at(0.95)[2] == "above"
    assert sensitivity_text(curve, 0.95).startswith("Fewer than 10 false alarms")
    for damaged in ({}, {"conversation": {"curve": "x"}}, {"conversation": {"curve": [[0.5]]}}):
        assert ConversationCurve.from_metadata(damaged) is None


# -- the runtime -------------------------------------------------------------------------------------

def test_auto_runs_the_shipped_model_on_onnx_and_a_model_without_export_on_torch_at_once(random_model, monkeypatch):
    from speech_app import onnx_runtime

    pytest.importorskip("onnxruntime")
    assert load_live_classifier(None, "auto").runtime == "onnx"
    assert load_live_classifier(None, "torch").runtime == "torch"
    monkeypatch.setattr(onnx_runtime, "make_export", lambda *a: pytest.fail("auto must not wait for an export"))
    live = load_live_classifier(random_model, "auto")
    assert live.runtime == "torch" and "no ONNX export" in live.note


def test_onnx_asked_for_and_impossible_runs_on_torch_and_says_why(random_model, monkeypatch):
    from speech_app import onnx_runtime

    monkeypatch.setattr(onnx_runtime, "onnxruntime_installed", lambda: False)
    live = load_live_classifier(random_model, "onnx")
    assert live.runtime == "torch" and "onnxruntime is not installed" in live.note


def test_the_live_tab_detects_the_same_words_on_onnx_and_on_torch(make_window, qtbot, reliable_words):
    """Real sample clips through the Live tab's worker, on each runtime: the same words at the same
    times as PyTorch's recognizer on the same audio."""
    pytest.importorskip("onnxruntime")
    from speech_app.inference import CommandClassifier
    from speech_app.streaming import StreamingRecognizer, recognize_samples

    gap = np.zeros(SAMPLE_RATE, np.float32)
    signal = np.concatenate([part for w in reliable_words for part in (load_audio(sample_clip(w)), gap)] + [gap])
    expected = [(d.label, f"{d.time_s:.2f}") for d in
                recognize_samples(StreamingRecognizer(CommandClassifier.from_file()), signal)]
    audio = FakeAudio(signal=signal)
    window = make_window(AppServices(list_devices=lambda: list(audio.devices), open_source=audio.open_source,
                                     play=lambda s, r: None))
    heard = {}
    for runtime in ("onnx", "torch"):
        window.live.set_runtime(runtime)
        qtbot.waitUntil(lambda r=runtime: window.live.model is not None and window.live.model.runtime == r,
                        timeout=WAIT_MS)
        window.live.clear_transcript()
        window.live.start_listening()
        qtbot.waitUntil(lambda: len(window.live.detected_words()) >= len(expected), timeout=WAIT_MS)
        qtbot.wait(300)  # nothing more comes
        window.live.stop_listening()
        qtbot.waitUntil(lambda: not window.live.listening, timeout=WAIT_MS)
        heard[runtime] = [(row[2], row[1]) for row in window.live.transcript_rows()]
        assert window.live.model_label.text().endswith({"onnx": "ONNX Runtime", "torch": "PyTorch"}[runtime])
    assert heard["onnx"] == heard["torch"] == expected
