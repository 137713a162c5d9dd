"""The side process: the custom recipe's estimate beside its final run gives what it gives in turn."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from speech_app.modelfile import load_model, read_metadata
from speech_app.training import side_process
from speech_app.training.custom_words import CustomWordsRecipe, train_custom_words
from speech_app.training.side_process import SideCall
from test_custom_words import write_takes

needs_fork = pytest.mark.skipif(not side_process.side_process_possible(torch.device("cpu")),
                                reason="no side process here (not Linux, one core, or turned off)")


def count_side_calls(monkeypatch) -> list:
    """The functions side processes were started with, from now on."""
    started = []
    original = SideCall.__init__

    def counting(self, function, *args):
        started.append(function.__name__)
        original(self, function, *args)
    monkeypatch.setattr(SideCall, "__init__", counting)
    return started


def threads_and_value(value):
    return torch.get_num_threads(), value * 2


def fails():
    raise KeyError("held-out")


def dies():
    os._exit(3)


@needs_fork
def test_a_side_call_gives_its_result_on_one_thread_and_raises_its_errors():
    call = SideCall(threads_and_value, 21)
    assert call.result() == (side_process.SIDE_THREADS, 42)
    assert call.cpu_seconds >= 0.0
    with pytest.raises(KeyError, match="held-out"):
        SideCall(fails).result()
    with pytest.raises(RuntimeError, match="exit code 3"):  # not a hang
        SideCall(dies).result()


@needs_fork
def test_the_estimate_beside_the_training_gives_the_same_model_and_figures(tiny_model, tmp_path, monkeypatch):
    """Each run's randomness comes from its seed: run beside the final model (two processes of one torch
    thread) or before it (one process of one thread), the model file and the estimate are the same."""
    root = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    recipe = CustomWordsRecipe(steps=3, batch_size=8, warmup_steps=1, estimate_steps=2, negatives_per_word=2,
                               device="cpu", precision="float32", hard_negative_steps=0, conversation_share=0.0)
    start = load_model(tiny_model)
    threads = torch.get_num_threads()
    started = count_side_calls(monkeypatch)
    results = {}
    try:
        for side in (False, True):
            monkeypatch.setenv(side_process.DISABLE_ENV, "" if side else "1")
            torch.set_num_threads(side_process.SIDE_THREADS)  # in turn: the thread count the sides use
            out = tmp_path / f"side_{side}.safetensors"
            train_custom_words([root], ["yes", "no"], out, recipe, init_from=start, progress=False)
            results[side] = (load_model(out).model.state_dict(), read_metadata(out))
    finally:
        torch.set_num_threads(threads)
    assert started == ["estimate_aside"]  # beside, not in turn
    (alone, alone_meta), (beside, beside_meta) = results[False], results[True]
    assert all(torch.equal(alone[k], beside[k]) for k in alone)
    for key in ("per_word", "false_accepts", "confusion"):
        assert alone_meta["estimate"][key] == beside_meta["estimate"][key]
    assert alone_meta.get("conversation") == beside_meta.get("conversation")  # with the held-out takes heard
    assert np.array(beside_meta["estimate"]["confusion"]).sum() > 0  # the estimate measured something


def test_no_side_process_when_turned_off_or_on_a_gpu(monkeypatch):
    monkeypatch.setenv(side_process.DISABLE_ENV, "1")
    assert not side_process.side_process_possible(torch.device("cpu"))
    monkeypatch.setenv(side_process.DISABLE_ENV, "")
    assert not side_process.side_process_possible(torch.device("cuda"))


@needs_fork
def test_from_text_alone_the_second_averaged_run_beside_gives_the_same_model(tiny_model, tmp_path, monkeypatch):
    synthetic = write_takes(tmp_path / "synth", ("yes", "no"), 3)  # stands for synthetic speech of the words
    recipe = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, negatives_per_word=2, estimate_steps=1,
                               device="cpu", precision="float32", hard_negative_steps=0, conversation_share=0.0,
                               conversation_budget=0.0, text_only_runs=2)
    start = load_model(tiny_model)
    threads = torch.get_num_threads()
    started = count_side_calls(monkeypatch)
    states = {}
    try:
        for side in (False, True):
            monkeypatch.setenv(side_process.DISABLE_ENV, "" if side else "1")
            torch.set_num_threads(side_process.SIDE_THREADS)
            out = tmp_path / f"text_{side}.safetensors"
            train_custom_words([], ["yes", "no"], out, recipe, init_from=start, synthetic_dir=synthetic, progress=False)
            states[side] = load_model(out).model.state_dict()
            assert read_metadata(out)["final_runs"] == 2
    finally:
        torch.set_num_threads(threads)
    assert sorted(started) == ["_run_aside", "estimate_aside"]  # the second run and the estimate beside the first
    assert all(torch.equal(states[False][k], states[True][k]) for k in states[False])


@needs_fork
def test_the_callers_torch_threads_are_back_after_the_runs_beside(tiny_model, tmp_path):
    root = write_takes(tmp_path / "takes", ("yes",), 3)
    recipe = CustomWordsRecipe(steps=1, batch_size=8, warmup_steps=1, estimate_steps=1, negatives_per_word=1,
                               device="cpu", hard_negative_steps=0, conversation_share=0.0, conversation_budget=0.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        train_custom_words([root], ["yes"], tmp_path / "m.safetensors", recipe, init_from=load_model(tiny_model),
                           progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
