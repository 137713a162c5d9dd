# Two entry points (see README): `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torchaudio 2.11 (its last release) links against the CUDA build of torch from the standard index;
# that build runs on the CPU too, while the CPU-only torch wheel cannot load torchaudio.
TORCH_PINS ?= torch==2.14.1 torchaudio==2.11.0
export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test bench setup system-deps system-deps-test voices clean

demo: setup
	$(BIN)/speech-app classify datasets/samples --format table

test: setup system-deps-test
	$(BIN)/python -m pytest -q

# real one-second clips for the batch and training figures (Speech Commands layout)
BENCH_DATA ?= /work/shared/data/speech_commands

# every figure side by side in one run -> benchmarks/RESULTS.md; `make bench QUICK=1`: a smoke test of
# each section (benchmarks/RESULTS-quick.md)
bench: setup system-deps-test
	$(BIN)/python benchmarks/bench.py --data-dir $(BENCH_DATA) $(if $(QUICK),--quick)

setup: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

system-deps:
	@.ci/system-deps runtime

system-deps-test:
	@.ci/system-deps test

# optional extra voices for synthetic speech (SVOX pico; Debian non-free): never part of setup or CI.
# It helped text-only models when every weight trained; with today's recipe it adds nothing (CONVERSATION_STUDY.md).
voices:
	@.ci/optional-voices

clean:
	rm -rf $(VENV) .pytest_cache
