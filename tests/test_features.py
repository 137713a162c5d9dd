"""The MFCC front end: shapes, agreement with librosa, settings round trip, SpecAugment."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from speech_app.features import FeatureConfig, MfccFrontend, SpecAugment

SR = 16_000


def _speechlike(seconds: float = 1.0, seed: int = 0, level: float = 0.5) -> np.ndarray:
    """A chirp with a vibrato, a noise floor and a silent gap: real-looking, wide dynamic range."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    chirp = np.sin(2 * np.pi * (200 * t + 1500 * t**2 / seconds) + 3 * np.sin(2 * np.pi * 5 * t))
    envelope = np.clip(np.sin(np.pi * t / seconds) * 1.5, 0, 1)
    x = level * chirp * envelope + 0.01 * level * rng.standard_normal(len(t))
    x[int(0.45 * len(t)) : int(0.5 * len(t))] *= 1e-4  # a near-silent gap
    return x.astype(np.float32)


def _librosa_mfcc(x: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.window_samples, hop_length=cfg.hop_samples,
        n_mels=cfg.n_mels, fmin=cfg.f_min_hz, fmax=cfg.f_max_hz, htk=False, norm="slaney", center=True,
        pad_mode="reflect", power=2.0, window="hann")
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=cfg.top_db)
    return librosa.feature.mfcc(S=db, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho", lifter=0)


def _assert_matches_librosa(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    value_range = np.ptp(reference)
    assert np.max(np.abs(ours - reference)) < 1e-3 * value_range
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.999


def test_default_settings_are_the_documented_ones():
    cfg = FeatureConfig()
    assert (cfg.window_samples, cfg.hop_samples, cfg.n_fft) == (480, 160, 512)
    assert (cfg.n_mels, cfg.n_mfcc, cfg.clip_samples, cfg.n_frames) == (40, 40, 16_000, 101)


@pytest.mark.parametrize("batch", [1, 3])
def test_output_shape_for_one_second(batch):
    frontend = MfccFrontend()
    out = frontend(torch.zeros(batch, SR) + 0.01 * torch.randn(batch, SR))
    assert out.shape == (batch, 40, 101)
    assert out.shape[-1] == FeatureConfig().n_frames
    assert torch.isfinite(out).all()


def test_one_dimensional_input_gets_a_batch_axis():
    assert MfccFrontend()(torch.from_numpy(_speechlike())).shape == (1, 40, 101)


def test_frame_count_follows_the_settings():
    cfg = FeatureConfig(hop_ms=20.0, n_mfcc=20, n_mels=32, clip_seconds=1.5)
    out = MfccFrontend(cfg)(torch.from_numpy(_speechlike(1.5)))
    assert out.shape == (1, 20, cfg.n_frames) == (1, 20, 24_000 // 320 + 1)


@pytest.mark.parametrize("seed, level", [(0, 0.5), (1, 0.05)])
def test_mfcc_matches_librosa(seed, level):
    x = _speechlike(seed=seed, level=level)
    ours = MfccFrontend()(torch.from_numpy(x)[None])[0].numpy()
    _assert_matches_librosa(ours, _librosa_mfcc(x))


def test_mfcc_matches_librosa_with_other_settings():
    cfg = FeatureConfig(n_mfcc=20, n_mels=32, hop_ms=20.0, window_ms=25.0, f_min_hz=60.0, f_max_hz=6000.0)
    x = _speechlike(seed=2)
    ours = MfccFrontend(cfg)(torch.from_numpy(x)[None])[0].numpy()
    _assert_matches_librosa(ours, _librosa_mfcc(x, cfg))


def test_top_db_setting_is_applied():
    cfg = FeatureConfig(top_db=40.0)
    x = _speechlike(seed=3)
    ours = MfccFrontend(cfg)(torch.from_numpy(x)[None])[0].numpy()
    _assert_matches_librosa(ours, _librosa_mfcc(x, cfg))


def test_each_clip_in_a_batch_is_featurized_independently():
    frontend = MfccFrontend()
    quiet = _speechlike(seed=4, level=0.005)
    loud = (0.9 * np.random.default_rng(5).standard_normal(SR)).astype(np.float32)
    alone = frontend(torch.from_numpy(quiet)[None])[0]
    batched = frontend(torch.from_numpy(np.stack([quiet, loud])))[0]
    torch.testing.assert_close(batched, alone, atol=1e-3, rtol=1e-4)


def test_batched_clips_of_similar_level_match_librosa():
    """Holds today for clips of similar loudness (each one's floor stays below its own -80 dB)."""
    xs = np.stack([_speechlike(seed=s) for s in range(3)])
    ours = MfccFrontend()(torch.from_numpy(xs)).numpy()
    for i in range(3):
        assert np.corrcoef(ours[i].ravel(), _librosa_mfcc(xs[i]).ravel())[0, 1] > 0.999


def test_feature_config_round_trips_through_dict():
    cfg = FeatureConfig(window_ms=25.0, hop_ms=20.0, n_mels=32, n_mfcc=20, f_min_hz=50.0, f_max_hz=7000.0,
                        top_db=60.0, clip_seconds=1.75)
    data = cfg.to_dict()
    assert data["n_mfcc"] == 20 and data["clip_seconds"] == 1.75
    assert FeatureConfig.from_dict(data) == cfg
    # unknown keys (from a newer file) are ignored, missing ones take defaults
    assert FeatureConfig.from_dict({**data, "future_setting": 1}) == cfg
    assert FeatureConfig.from_dict({"n_mfcc": 13}) == FeatureConfig(n_mfcc=13)


def test_json_round_trip_keeps_equality():
    import json

    cfg = FeatureConfig(clip_seconds=2.0, hop_ms=12.5)
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_spec_augment_masks_with_each_clips_mean_and_keeps_shape():
    torch.manual_seed(0)
    features = MfccFrontend()(torch.from_numpy(np.stack([_speechlike(seed=s) for s in range(4)])))
    masking = SpecAugment(coefficient_mask=6, time_mask_frames=15, n_masks=2).train()
    out = masking(features)
    assert out.shape == features.shape
    changed = ~torch.isclose(out, features, atol=1e-3, rtol=1e-5)  # (x - mean) + mean rounds
    assert changed.any()
    for i in range(len(features)):
        if changed[i].any():  # masked cells hold the clip's mean, not zero
            mean = features[i].mean()
            torch.testing.assert_close(out[i][changed[i]], mean.expand(int(changed[i].sum())), atol=1e-3, rtol=1e-4)
    # the masks are random: another call masks other places
    assert not torch.equal(masking(features), out)
    # and at most n_masks bands of up to coefficient_mask rows are touched per clip
    rows_touched = changed.all(dim=2).sum(dim=1)
    assert (rows_touched <= 2 * 6).all()


def test_spec_augment_keeps_gradients():
    features = torch.randn(2, 40, 101, requires_grad=True)
    SpecAugment()(features).sum().backward()
    assert features.grad is not None and features.grad.shape == features.shape


@pytest.mark.parametrize("cfg", [FeatureConfig(), FeatureConfig(n_mfcc=20, n_mels=32, hop_ms=20.0, window_ms=25.0,
                                                                 f_min_hz=60.0, f_max_hz=6000.0, top_db=40.0)])
def test_plain_tensor_mfcc_matches_torchaudio_transform(cfg):
    """The front end is written with plain tensor operations; torchaudio's MFCC is the reference."""
    import torchaudio

    reference = torchaudio.transforms.MFCC(
        sample_rate=cfg.sample_rate, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho", log_mels=False,
        melkwargs={"n_fft": cfg.n_fft, "win_length": cfg.window_samples, "hop_length": cfg.hop_samples,
                   "n_mels": cfg.n_mels, "f_min": cfg.f_min_hz, "f_max": cfg.f_max_hz, "mel_scale": "slaney",
                   "norm": "slaney", "center": True, "pad_mode": "reflect", "power": 2.0})
    reference.amplitude_to_DB.top_db = cfg.top_db
    xs = torch.from_numpy(np.stack([_speechlike(seed=s, level=level) for s, level in [(6, 0.5), (7, 0.01)]]))
    expected = reference(xs.unsqueeze(1)).squeeze(1)  # (batch, 1, samples): a floor per clip
    ours = MfccFrontend(cfg)(xs)
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, atol=1e-3, rtol=1e-4)
