"""speech-app synth: engine adapters, augmentation, the word-folder layout, determinism, errors.

Runs are kept tiny (a couple of words, a few clips) because the engines are real processes.
Optional contrib/non-free engines are exercised only where they are installed.
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
import soundfile

from speech_app.audio import SAMPLE_RATE
from speech_app.data.noise import NoiseBank
from speech_app.cli import synth as synth_command
from speech_app.synth import (ALL_ENGINES, NoEngineError, SpeechEngine, SynthesisError, SynthUsageError,
                              available_engines, synthesize_words)
from speech_app.synth.effects import (VoiceEffects, add_noise, augment_utterance, fit_duration,
                                      place_in_window, trim_silence)
from speech_app.synth.engines import EspeakEngine, MbrolaEngine, RhvoiceEngine
from speech_app.synth.generator import (ClipMaker, SynthSummary, VoicePool, WordBatch, check_words,
                                        engine_shares, speak, synthesize_batches)

WORDS = ["yes", "lights on"]
CLIPS_PER_WORD = 4
CLIP_NAME = re.compile(rf"^(?P<engine>{'|'.join(e.name for e in ALL_ENGINES)})-(?P<voice>.+)_nohash_(?P<index>\d+)\.wav$")
INSTALLED = {e.name for e in available_engines()}


def _tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _spoken_seconds(speech: np.ndarray) -> float:
    return len(trim_silence(speech)) / SAMPLE_RATE


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> SynthSummary:
    if not INSTALLED:
        pytest.skip("no speech engine installed")
    out = tmp_path_factory.mktemp("synth") / "seed1"
    return synthesize_words(WORDS, out, per_word=CLIPS_PER_WORD, seed=1, jobs=1, progress=False)


def _file_bytes(summary: SynthSummary) -> dict[str, bytes]:
    return {str(p.relative_to(summary.out_dir)): p.read_bytes() for p in summary.files}


# --- engines ------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ALL_ENGINES, ids=lambda e: e.name)
def test_each_installed_engine_speaks_and_obeys_speed_and_pitch(engine: SpeechEngine):
    if engine.name not in INSTALLED:
        pytest.skip(f"{engine.name} not installed ({engine.packages})")
    voices = engine.voices()
    for voice in voices[:: max(1, len(voices) // 3)]:  # a few voices, spread over the list
        speech = speak(engine, voice, "yes", speed=1.0, pitch_semitones=0.0)
        assert speech.dtype == np.float32 and speech.ndim == 1
        assert np.max(np.abs(speech)) > 0.01, f"{engine.name} {voice} is silent"
        clip = augment_utterance(speech, np.random.default_rng(0), NoiseBank.generated(0))
        assert clip.shape == (SAMPLE_RATE,) and clip.dtype == np.float32 and np.max(np.abs(clip)) > 0.01
    voice = voices[0]
    slow = speak(engine, voice, "lights on", speed=0.8, pitch_semitones=0.0)
    fast = speak(engine, voice, "lights on", speed=1.25, pitch_semitones=0.0)
    assert _spoken_seconds(fast) < 0.95 * _spoken_seconds(slow), f"{engine.name} ignores the speed"
    high = speak(engine, voice, "yes", speed=1.0, pitch_semitones=3.0)
    low = speak(engine, voice, "yes", speed=1.0, pitch_semitones=-3.0)
    assert len(high) != len(low) or not np.allclose(high, low), f"{engine.name} ignores the pitch"


def test_empty_path_means_no_engine_and_the_error_names_the_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", "")
    assert available_engines() == []
    with pytest.raises(NoEngineError, match=r"apt-get install espeak-ng flite festival festvox-kallpc16k"):
        synthesize_words(["yes"], tmp_path, per_word=1, progress=False)
    with pytest.raises(NoEngineError, match="libttspico-utils"):
        synthesize_words(["yes"], tmp_path, per_word=1, engines="pico", progress=False)
    assert not any(tmp_path.iterdir())


def test_unknown_engine_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SynthUsageError, match="nonexistent"):
        synthesize_words(["yes"], tmp_path, per_word=1, engines="nonexistent", progress=False)
    parser = argparse.ArgumentParser()
    synth_command.add_arguments(parser)
    args = parser.parse_args(["--words", "yes", "--out", str(tmp_path), "--engines", "espeak-ng,nonexistent"])
    assert synth_command.run(args) == 2
    err = capsys.readouterr().err.strip()
    assert "nonexistent" in err and len(err.splitlines()) == 1


def test_engine_shares_cap_espeak_only_when_others_exist():
    espeak, flite, festival = ALL_ENGINES[:3]
    shares = engine_shares([espeak, flite, festival], [64, 4, 3])
    assert shares[0] == pytest.approx(1 / 3) and sum(shares) == pytest.approx(1.0)
    assert shares[1] == pytest.approx(2 / 3 * 4 / 7)
    assert engine_shares([espeak], [64]) == [1.0]
    assert engine_shares([flite, festival], [4, 4]) == [0.5, 0.5]


def test_words_become_folder_names_as_typed():
    assert check_words([" yes", "lights on ", "yes", ""]) == ["yes", "lights on"]
    for bad in (["a/b"], ["_silence_"], [".hidden"], ["", " "]):
        with pytest.raises(SynthUsageError):
            check_words(bad)


# --- augmentation -------------------------------------------------------------------------------

def test_long_utterances_are_compressed_to_fit_and_shifted_into_the_window():
    squeezed = fit_duration(_tone(2.0))
    assert 0.85 * SAMPLE_RATE <= len(squeezed) <= 0.9 * SAMPLE_RATE
    windows = [place_in_window(_tone(0.3), np.random.default_rng(s), SAMPLE_RATE) for s in range(5)]
    starts = {int(np.flatnonzero(w)[0]) for w in windows}
    assert all(w.shape == (SAMPLE_RATE,) for w in windows) and len(starts) > 1


def test_noise_is_mixed_at_the_requested_snr():
    clip = _tone(1.0)
    speech_power = float(np.mean(clip.astype(np.float64) ** 2))
    noisy = add_noise(clip, speech_power, NoiseBank.generated(0), np.random.default_rng(0), snr_db=10.0)
    noise_power = float(np.mean((noisy - clip).astype(np.float64) ** 2))
    assert 10 * np.log10(speech_power / noise_power) == pytest.approx(10.0, abs=0.01)


def test_augmented_clips_never_clip_and_silence_is_refused():
    loud = VoiceEffects(gain_db=(3.0, 3.0), reverb_probability=1.0, noise_probability=1.0, snr_db=(5.0, 5.0))
    for seed in range(3):
        clip = augment_utterance(_tone(2.5), np.random.default_rng(seed), NoiseBank.generated(0), loud)
        assert clip.shape == (SAMPLE_RATE,) and np.max(np.abs(clip)) <= 0.99 + 1e-6
    with pytest.raises(ValueError, match="silence"):
        augment_utterance(np.zeros(8000, np.float32), np.random.default_rng(0), NoiseBank.generated(0))


def test_a_clip_as_long_as_the_window_keeps_a_slow_word_whole():
    """The custom recipe's clips are as long as its window: a 1.2 s word is not squeezed to 0.9 s."""
    plain = VoiceEffects(pitch_tempo_probability=0.0, reverb_probability=0.0, noise_probability=0.0)
    slow_word = _tone(1.2)
    short = augment_utterance(slow_word, np.random.default_rng(0), NoiseBank.generated(0), plain)
    long = augment_utterance(slow_word, np.random.default_rng(0), NoiseBank.generated(0), plain, clip_seconds=1.5)
    assert short.shape == (SAMPLE_RATE,) and long.shape == (int(1.5 * SAMPLE_RATE),)
    def span_seconds(clip):  # from the first to the last sample of the word (no noise was added)
        sounding = np.flatnonzero(np.abs(clip) > 1e-3)
        return (sounding[-1] - sounding[0]) / SAMPLE_RATE

    assert span_seconds(short) == pytest.approx(0.9, abs=0.01)  # squeezed into the one-second clip
    assert span_seconds(long) == pytest.approx(1.2, abs=0.01)


# --- whole runs ---------------------------------------------------------------------------------

def test_run_writes_the_word_folder_layout_and_counts_match(first_run: SynthSummary):
    out = first_run.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(WORDS)
    assert first_run.requested == first_run.clips_written == len(WORDS) * CLIPS_PER_WORD and not first_run.failures
    seen_per_voice: dict[tuple[str, str], int] = {}
    for word in WORDS:
        files = sorted((out / word).iterdir())
        assert len(files) == CLIPS_PER_WORD
        for path in files:
            match = CLIP_NAME.match(path.name)
            assert match and match["engine"] in INSTALLED, path.name
            info = soundfile.info(str(path))
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (SAMPLE_RATE, 1, SAMPLE_RATE, "PCM_16")
            key = (match["engine"], match["voice"])
            seen_per_voice[key] = seen_per_voice.get(key, 0) + 1
        assert {int(CLIP_NAME.match(p.name)["index"]) for p in files} == set(range(CLIPS_PER_WORD))
    assert dict(first_run.clips_per_voice) == seen_per_voice
    assert sum(first_run.clips_per_engine.values()) == first_run.clips_written
    assert first_run.other_files == 0 and "clips written" in first_run.table()


def test_same_seed_gives_the_same_files_whatever_the_jobs(first_run: SynthSummary, tmp_path):
    again = synthesize_words(WORDS, tmp_path / "again", per_word=CLIPS_PER_WORD, seed=1, jobs=2, progress=False)
    assert _file_bytes(again) == _file_bytes(first_run)
    other = synthesize_words(WORDS, tmp_path / "other", per_word=CLIPS_PER_WORD, seed=2, jobs=1, progress=False)
    assert _file_bytes(other) != _file_bytes(first_run)


def test_batches_in_one_pool_give_each_batch_the_files_it_gets_alone(first_run: SynthSummary, tmp_path):
    other_seed = synthesize_words(["go"], tmp_path / "alone", per_word=2, seed=3, jobs=1, progress=False)
    batches = [WordBatch(tuple(WORDS), tmp_path / "one", CLIPS_PER_WORD, 1), WordBatch(("go",), tmp_path / "two", 2, 3)]
    together = synthesize_batches(batches, jobs=2, progress=False)
    assert [_file_bytes(s) for s in together] == [_file_bytes(first_run), _file_bytes(other_seed)]
    assert [s.out_dir for s in together] == [tmp_path / "one", tmp_path / "two"]


def test_cli_run_prints_the_summary_and_exits_zero(tmp_path, capsys):
    engine = "flite" if "flite" in INSTALLED else "auto"
    if not INSTALLED:
        pytest.skip("no speech engine installed")
    parser = argparse.ArgumentParser()
    synth_command.add_arguments(parser)
    args = parser.parse_args(["--words", "go, marvin", "--out", str(tmp_path), "--per-word", "2",
                              "--engines", engine, "--jobs", "1", "--no-progress"])
    assert synth_command.run(args) == 0
    table = capsys.readouterr().out
    assert "4 of 4 clips written" in table and (engine == "auto" or engine in table)
    assert len(list((tmp_path / "marvin").glob("*_nohash_*.wav"))) == 2


class _BrokenEngine(SpeechEngine):
    name = "broken"
    licence = "none"

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        raise SynthesisError(f"{self.name} {voice}: crashed")


def test_failed_clips_are_counted_not_written(tmp_path):
    pool = VoicePool(engines=(_BrokenEngine(),), voices=(("v1",),), shares=(1.0,))
    maker = ClipMaker(pool, tmp_path, seed=0, noise_files=None)
    summary = SynthSummary.from_results(tmp_path, [maker("yes", i) for i in range(2)], seconds=1.0)
    assert summary.clips_written == 0 and len(summary.failures) == 2 and "crashed" in summary.failures[0]
    assert not (tmp_path / "yes").exists()


class _MixedLicenceEngine(SpeechEngine):
    name = "mixed"

    def voices(self):
        return ["free-a", "free-b", "nc"]

    def commercial_use(self, voice):
        return voice != "nc"


class _NonCommercialEngine(SpeechEngine):
    name = "nc-only"

    def voices(self):
        return ["v"]

    def commercial_use(self, voice):
        return False


def test_commercial_voices_leave_out_non_commercial_ones():
    everything = VoicePool.from_engines([_MixedLicenceEngine(), _NonCommercialEngine()])
    assert everything.voices == (("free-a", "free-b", "nc"), ("v",))
    shippable = VoicePool.from_engines([_MixedLicenceEngine(), _NonCommercialEngine()], commercial_only=True)
    assert [e.name for e in shippable.engines] == ["mixed"] and shippable.voices == (("free-a", "free-b"),)
    assert shippable.shares == (1.0,)
    with pytest.raises(NoEngineError, match="commercial"):
        VoicePool.from_engines([_NonCommercialEngine()], commercial_only=True)
    # the licences the real adapters declare
    assert not MbrolaEngine().commercial_use("us1")
    assert not RhvoiceEngine().commercial_use("lyubov") and RhvoiceEngine().commercial_use("bdl")
    assert EspeakEngine().commercial_use("en-us")


def test_clip_names_give_back_their_engine_and_voice():
    from speech_app.synth.generator import clip_file_name, engine_and_voice

    for engine, voice in [("espeak-ng", "en-gb-x-rp+f2"), ("rhvoice", "evgeniy-eng"), ("flite", "kal16")]:
        name = clip_file_name(engine, voice, 7)
        assert name.endswith("_nohash_7.wav") and engine_and_voice(f"/x/yes/{name}") == (engine, voice)
    assert engine_and_voice("/x/yes/3cfc6b3a_nohash_1.wav") is None  # a real Speech Commands clip
