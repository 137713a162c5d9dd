"""Whether bfloat16 is chosen: the probe's record is kept per machine and torch version, and read back."""

import json

import pytest
import torch

from speech_app import device


@pytest.fixture
def avx512_bf16_without_amx(monkeypatch, tmp_path):
    """A CPU with AVX-512 BF16 and no AMX, whose probe is counted; a fresh cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(device, "native_bfloat16", lambda: True)
    probes = []

    def set_ratio(ratio):
        def probe():
            probes.append(ratio)
            return ratio
        monkeypatch.setattr(device, "_bfloat16_time_ratio", probe)

    device.bfloat16_pays.cache_clear()
    yield set_ratio, probes, tmp_path / "speech-app" / "cpu" / "bfloat16.json"
    device.bfloat16_pays.cache_clear()


@pytest.mark.parametrize("ratio, pays", [(0.57, True), (1.8, False), (device.BFLOAT16_GAIN + 0.01, False)])
def test_the_probe_decides_and_its_record_is_read_back_without_probing_again(avx512_bf16_without_amx, ratio, pays):
    set_ratio, probes, record = avx512_bf16_without_amx
    set_ratio(ratio)
    assert device.bfloat16_pays() is pays
    assert json.loads(record.read_text())["pays"] is pays
    device.bfloat16_pays.cache_clear()  # a new process
    set_ratio(1.0 / ratio)  # a probe now would say the opposite
    assert device.bfloat16_pays() is pays
    assert probes == [ratio]


def test_a_record_of_another_torch_or_a_damaged_one_is_probed_again(avx512_bf16_without_amx, monkeypatch):
    set_ratio, probes, record = avx512_bf16_without_amx
    set_ratio(0.5)
    assert device.bfloat16_pays() is True
    device.bfloat16_pays.cache_clear()
    monkeypatch.setattr(torch, "__version__", "0.0-other")
    set_ratio(2.0)
    assert device.bfloat16_pays() is False
    device.bfloat16_pays.cache_clear()
    record.write_text("{not json")
    set_ratio(0.6)
    assert device.bfloat16_pays() is True
    assert probes == [0.5, 2.0, 0.6]


def test_amx_pays_and_a_cpu_without_bfloat16_does_not_without_a_probe(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(device, "_bfloat16_time_ratio", lambda: pytest.fail("probed"))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    device.bfloat16_pays.cache_clear()
    assert device.bfloat16_pays() is True
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(device, "native_bfloat16", lambda: False)
    device.bfloat16_pays.cache_clear()
    assert device.bfloat16_pays() is False
    device.bfloat16_pays.cache_clear()
    assert not (tmp_path / "speech-app").exists()


def test_the_probe_times_both_precisions_and_leaves_the_thread_count_as_it_was():
    threads = torch.get_num_threads()
    ratio = device._bfloat16_time_ratio()
    assert 0.0 < ratio < float("inf")
    assert torch.get_num_threads() == threads
