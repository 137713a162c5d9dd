"""Training-time waveform augmentation: speed perturbation keeps the clip length, moves the pitch,
folds nothing back from past 8 kHz, and stays out of the random stream when it is off."""

from __future__ import annotations

import numpy as np
import pytest

from speech_app.audio import SAMPLE_RATE
from speech_app.data.augment import AugmentConfig, WaveformAugmenter, _change_speed
from speech_app.data.noise import NoiseBank


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / SAMPLE_RATE)[spectrum.argmax()])


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_change_speed_scales_pitch_and_keeps_the_length(factor):
    wave = tone(440.0)
    changed = _change_speed(wave, factor)
    assert changed.shape == wave.shape and changed.dtype == wave.dtype
    assert peak_hz(changed) == pytest.approx(440.0 * factor, abs=3.0)


def band_energy(wave: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) ** 2
    hz = np.fft.rfftfreq(len(wave), 1.0 / SAMPLE_RATE)
    return float(spectrum[(hz >= low_hz) & (hz < high_hz)].sum())


def test_speeding_up_removes_what_would_pass_8khz_instead_of_folding_it_back():
    # 7.5 kHz played 1.2 times faster is 9 kHz, above the 8 kHz a 16 kHz clip can hold: it must go,
    # not come back as a false 7 kHz tone (16 - 9 kHz), which is what plain interpolation does
    high, low = tone(7500.0), tone(1000.0)
    changed = _change_speed(high + low, 1.2)[SAMPLE_RATE // 4 : -SAMPLE_RATE // 4]  # inside the sped-up clip
    kept = band_energy(changed, 1100.0, 1300.0)  # the 1 kHz tone, now at 1.2 kHz
    assert band_energy(changed, 6000.0, 8000.0) < 1e-3 * kept
    assert peak_hz(changed) == pytest.approx(1200.0, abs=3.0)


def test_slowing_down_keeps_the_top_of_the_band_below_the_old_edge():
    slower = _change_speed(tone(7500.0), 0.8)[SAMPLE_RATE // 4 : -SAMPLE_RATE // 4]
    assert peak_hz(slower) == pytest.approx(6000.0, abs=5.0)
    assert band_energy(slower, 6500.0, 8000.0) < 1e-3 * band_energy(slower, 5500.0, 6500.0)


def test_faster_speech_is_centred_with_silence_around_it():
    word = np.zeros(SAMPLE_RATE, np.float32)
    word[4000:12000] = tone(300.0, 0.5)
    faster = _change_speed(word, 1.25)
    loud = np.flatnonzero(np.abs(faster) > 0.05)
    assert loud[-1] - loud[0] == pytest.approx(8000 / 1.25, rel=0.02)
    assert (loud[0] + loud[-1]) / 2 == pytest.approx(SAMPLE_RATE / 2, abs=40)


def test_speed_off_leaves_the_augmentation_as_it_was():
    waves = np.stack([tone(440.0), tone(880.0)])
    silence = np.zeros(2, bool)
    noise = NoiseBank.generated(0)
    plain = WaveformAugmenter(AugmentConfig(), noise, seed=3)(waves, silence)
    again = WaveformAugmenter(AugmentConfig(speed=0.0), noise, seed=3)(waves, silence)
    sped = WaveformAugmenter(AugmentConfig(speed=0.2), noise, seed=3)(waves, silence)
    assert np.array_equal(plain.numpy(), again.numpy())
    assert not np.allclose(plain.numpy(), sped.numpy())


def test_reverb_adds_a_decaying_tail_and_stays_out_of_the_random_stream_when_off():
    click = np.zeros((1, SAMPLE_RATE), np.float32)
    click[0, 1000] = 0.5
    speech = np.zeros(1, bool)
    dry = dict(time_shift_ms=0.0, noise_probability=0.0, gain_db=0.0)
    noise = NoiseBank.generated(0)
    plain = WaveformAugmenter(AugmentConfig(**dry), noise, seed=3)(click, speech).numpy()[0]
    off = WaveformAugmenter(AugmentConfig(**dry, reverb=0.0), noise, seed=3)(click, speech).numpy()[0]
    wet = WaveformAugmenter(AugmentConfig(**dry, reverb=1.0), noise, seed=3)(click, speech).numpy()[0]
    assert np.array_equal(plain, off) and np.count_nonzero(plain) == 1
    assert wet[1000] == pytest.approx(0.5, rel=1e-4) and np.abs(wet[:1000]).max() < 1e-6  # direct sound first
    early, late = (float(np.sum(wet[start : start + 800] ** 2)) for start in (1001, 1801))  # 50 ms each
    assert early > late > 0.0  # a tail that decays


def test_level_scales_the_whole_window_noise_included_and_stays_out_of_the_random_stream_when_off():
    wave = tone(440.0)[None, :]
    speech = np.zeros(1, bool)
    noise = NoiseBank.generated(0)
    level, ratios_db = 20.0, []
    for seed in range(32):
        plain = WaveformAugmenter(AugmentConfig(), noise, seed=seed)(wave, speech).numpy()[0]
        off = WaveformAugmenter(AugmentConfig(level_db=0.0), noise, seed=seed)(wave, speech).numpy()[0]
        scaled = WaveformAugmenter(AugmentConfig(level_db=level), noise, seed=seed)(wave, speech).numpy()[0]
        assert np.array_equal(plain, off)
        # the same draws up to the level, drawn last: the window is the plain one times one factor
        factor = float(np.dot(scaled, plain) / np.dot(plain, plain))
        assert np.allclose(scaled, np.clip(plain * factor, -1, 1), atol=1e-5)
        ratios_db.append(20 * np.log10(factor))
    assert min(ratios_db) >= -level - 1e-3 and max(ratios_db) <= level / 4 + 1e-3
    assert min(ratios_db) < -level / 2 and max(ratios_db) > 0  # the range is used, not a fixed gain
