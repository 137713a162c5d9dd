"""Audio in: decoding of every supported format, mono mix, resampling, windowing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speech_app.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    fit_to_window,
    is_audio_file,
    load_audio,
    load_clip,
    resample,
    write_wav,
)


def _source(seconds: float = 0.5, rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.uniform(-1, 1, len(t))).astype(np.float64)


def _peak_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("subtype, tolerance", [
    ("PCM_U8", 1.0 / 64),  # 8 bits: one step is 1/128
    ("PCM_16", 1.0 / 16000),
    ("PCM_24", 1e-6),
    ("PCM_32", 1e-7),
    ("FLOAT", 1e-7),
    ("DOUBLE", 1e-7),
])
def test_wav_subtypes_decode_to_the_source_samples(tmp_path, subtype, tolerance):
    source = _source()
    path = tmp_path / f"clip_{subtype}.wav"
    sf.write(str(path), source, SAMPLE_RATE, subtype=subtype, format="WAV")
    decoded = load_audio(path)
    assert decoded.dtype == np.float32
    assert decoded.ndim == 1 and len(decoded) == len(source)
    assert np.max(np.abs(decoded - source)) < tolerance


@pytest.mark.parametrize("channels, rate", [(1, SAMPLE_RATE), (2, SAMPLE_RATE), (2, 44_100), (3, 8_000)])
def test_16_bit_wav_gives_libsndfiles_samples_exactly(tmp_path, channels, rate):
    """16-bit WAV is read by the standard library's wave module (cheaper); it must give what libsndfile
    gives, sample for sample, after the same mono mix and resampling."""
    source = np.random.default_rng(channels).uniform(-1, 1, (rate // 2, channels))
    path = tmp_path / "clip.wav"
    sf.write(str(path), source, rate, subtype="PCM_16")
    reference, _ = sf.read(str(path), dtype="float32", always_2d=True)
    mono = reference[:, 0] if channels == 1 else reference.mean(axis=1)
    expected = mono if rate == SAMPLE_RATE else resample(mono, rate)
    np.testing.assert_array_equal(load_audio(path), expected)


def test_a_16_bit_wav_cut_short_gives_the_whole_frames_that_are_there(tmp_path):
    source = np.random.default_rng(5).uniform(-1, 1, (4000, 2))
    path = tmp_path / "cut.wav"
    sf.write(str(path), source, SAMPLE_RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4 * 1000 - 3])  # 1000 stereo frames and 3 bytes of one more gone
    decoded = load_audio(path)
    reference, _ = sf.read(str(path), dtype="float32", always_2d=True)
    assert len(decoded) == 2999
    np.testing.assert_array_equal(decoded, reference[: len(decoded)].mean(axis=1))


def test_a_folder_named_like_audio_says_it_is_a_folder(tmp_path):
    path = tmp_path / "take.wav"
    path.mkdir()
    with pytest.raises(AudioDecodeError, match="is a folder") as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_a_broken_link_says_so(tmp_path):
    path = tmp_path / "take.wav"
    path.symlink_to(tmp_path / "gone.wav")
    with pytest.raises(AudioDecodeError, match="broken symbolic link") as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_flac_decodes_losslessly_to_16_bit(tmp_path):
    source = _source()
    path = tmp_path / "clip.flac"
    sf.write(str(path), source, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    decoded = load_audio(path)
    assert len(decoded) == len(source)
    assert np.max(np.abs(decoded - source)) < 1.0 / 16000


@pytest.mark.parametrize("suffix", [".ogg", ".oga"])
def test_ogg_vorbis_decodes_close_to_the_source(tmp_path, suffix):
    source = _source(1.0)
    path = tmp_path / f"clip{suffix}"
    sf.write(str(path), source, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    decoded = load_audio(path)
    assert abs(len(decoded) - len(source)) <= 64  # lossy codec: the length survives
    n = min(len(decoded), len(source))
    assert np.corrcoef(decoded[:n], source[:n])[0, 1] > 0.95
    assert abs(_peak_hz(decoded) - 440) < 5


def test_stereo_is_mixed_to_mono_by_averaging(tmp_path):
    n = SAMPLE_RATE // 2
    left = np.linspace(-0.5, 0.5, n)
    right = 0.25 * np.ones(n)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    decoded = load_audio(path)
    assert decoded.shape == (n,)
    np.testing.assert_allclose(decoded, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [44_100, 8_000, 22_050, 48_000])
def test_other_rates_are_resampled_to_16k_keeping_length_and_pitch(tmp_path, rate):
    seconds, freq = 1.0, 1000.0
    t = np.arange(int(seconds * rate)) / rate
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
    decoded = load_audio(path)
    assert abs(len(decoded) - SAMPLE_RATE * seconds) <= 2
    assert abs(_peak_hz(decoded) - freq) < 3
    assert 0.4 < np.max(np.abs(decoded[1000:-1000])) < 0.6  # the level survives too


def test_load_audio_can_target_another_rate(tmp_path):
    path = tmp_path / "tone.wav"
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 500 * t), SAMPLE_RATE, subtype="PCM_16")
    decoded = load_audio(path, sample_rate=8000)
    assert abs(len(decoded) - 8000) <= 1
    assert abs(_peak_hz(decoded, 8000) - 500) < 3


def test_fit_to_window_crops_to_the_loud_burst():
    rng = np.random.default_rng(1)
    samples = (0.001 * rng.standard_normal(4 * SAMPLE_RATE)).astype(np.float32)
    burst_start, burst_len = int(2.3 * SAMPLE_RATE), int(0.3 * SAMPLE_RATE)
    samples[burst_start : burst_start + burst_len] += 0.8 * np.sin(np.arange(burst_len) * 0.3)
    window = fit_to_window(samples, SAMPLE_RATE)
    assert window.shape == (SAMPLE_RATE,)
    burst_energy = np.sum(samples[burst_start : burst_start + burst_len].astype(np.float64) ** 2)
    assert np.sum(window.astype(np.float64) ** 2) >= 0.999 * burst_energy
    # the window is a contiguous piece of the input that holds the whole burst
    start = int(np.flatnonzero(samples == window[0])[0])
    np.testing.assert_array_equal(samples[start : start + SAMPLE_RATE], window)
    assert start <= burst_start and burst_start + burst_len <= start + SAMPLE_RATE


def test_fit_to_window_pads_a_short_clip_to_exactly_the_window():
    short = np.ones(5_001, dtype=np.float32)
    window = fit_to_window(short, SAMPLE_RATE)
    assert window.shape == (SAMPLE_RATE,)
    assert window.dtype == np.float32
    assert window.sum() == pytest.approx(5_001)
    nonzero = np.flatnonzero(window)
    assert len(nonzero) == 5_001 and nonzero[-1] - nonzero[0] == 5_000
    left, right = nonzero[0], SAMPLE_RATE - 1 - nonzero[-1]
    assert abs(left - right) <= 1  # centred


def test_fit_to_window_keeps_an_exact_clip():
    clip = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32)
    np.testing.assert_array_equal(fit_to_window(clip, SAMPLE_RATE), clip)


def test_load_clip_gives_one_window(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(str(path), _source(2.5), SAMPLE_RATE, subtype="PCM_16")
    assert load_clip(path).shape == (SAMPLE_RATE,)
    assert load_clip(path, window_seconds=1.5).shape == (int(1.5 * SAMPLE_RATE),)


def _assert_one_line_naming(err: AudioDecodeError, path) -> None:
    message = str(err)
    assert str(path) in message
    assert "\n" not in message and "\r" not in message


def test_garbage_bytes_raise_audio_decode_error(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_empty_file_raises_audio_decode_error(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_wav_without_samples_raises_audio_decode_error(tmp_path):
    path = tmp_path / "no_samples.wav"
    sf.write(str(path), np.zeros(0), SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_truncated_flac_raises_or_decodes_without_crashing(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(str(path), _source(1.0), SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    path.write_bytes(path.read_bytes()[:40])  # header only, cut inside the stream info
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_missing_file_raises_audio_decode_error(tmp_path):
    path = tmp_path / "missing.wav"
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_missing_file_message_says_no_such_file(tmp_path):
    path = tmp_path / "missing.wav"
    with pytest.raises(AudioDecodeError, match="no such file"):
        load_audio(path)


def test_non_finite_samples_raise(tmp_path):
    path = tmp_path / "nan.wav"
    samples = np.zeros(1000, dtype=np.float32)
    samples[10] = np.nan
    sf.write(str(path), samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    _assert_one_line_naming(info.value, path)


def test_write_wav_writes_16_bit_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "out.wav"
    samples = np.concatenate([_source(0.25), [1.7, -3.0]]).astype(np.float32)  # out of range: clipped
    write_wav(path, samples)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (SAMPLE_RATE, 1, "PCM_16", "WAV")
    decoded = load_audio(path)
    assert len(decoded) == len(samples)
    np.testing.assert_allclose(decoded, np.clip(samples, -1, 1), atol=1.0 / 16000)


def test_write_wav_replaces_an_existing_file(tmp_path):
    path = tmp_path / "out.wav"
    write_wav(path, np.zeros(100, dtype=np.float32))
    write_wav(path, 0.5 * np.ones(300, dtype=np.float32))
    assert len(load_audio(path)) == 300
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_is_audio_file_by_extension_and_not_hidden(tmp_path):
    assert is_audio_file(tmp_path / "a.WAV")
    assert is_audio_file(tmp_path / "a.flac") and is_audio_file(tmp_path / "a.ogg") and is_audio_file(tmp_path / "a.oga")
    assert not is_audio_file(tmp_path / "a.txt")
    assert not is_audio_file(tmp_path / ".hidden.wav")
