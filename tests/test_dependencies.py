"""Dependencies: everything the package imports is declared, the core classifies files without any
extra, and a command that needs a missing extra says in one line which one to install.

A missing package is simulated in a fresh interpreter by `sys.modules[name] = None`, which makes
every `import name` there fail as if it were not installed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech_app.cli.exit_status import EXIT_NO_AUDIO

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "speech_app"
SAMPLES_DIR = REPO / "datasets" / "samples"
EXTRA_MODULES = ("matplotlib", "sounddevice", "PySide6", "pyqtgraph")  # what the lean core goes without


def project():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_top_level_modules() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"speech_app", "__future__"}


def test_every_imported_package_is_declared():
    declared = {requirement_name(r) for r in project()["dependencies"]}
    for requirements in project()["optional-dependencies"].values():
        declared |= {requirement_name(r) for r in requirements}
    distributions = importlib.metadata.packages_distributions()
    for module in imported_top_level_modules():
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert names & declared, f"speech_app imports {module} ({', '.join(names)}) but pyproject.toml does not declare it"


def test_the_core_leaves_the_extras_out_the_app_extra_brings_them_and_test_brings_every_extra():
    core = {requirement_name(r) for r in project()["dependencies"]}
    assert not core & {"matplotlib", "sounddevice", "pyside6-essentials", "pyqtgraph"}
    extras = project()["optional-dependencies"]

    def expand(extra: str) -> set[str]:
        names = set()
        for requirement in extras[extra]:
            inner = re.fullmatch(r"speech-app\[(.+)\]", requirement)
            names |= set().union(*(expand(e) for e in inner[1].split(","))) if inner else {requirement_name(requirement)}
        return names

    assert expand("gui") >= expand("mic") | expand("train") | {"pyside6-essentials", "pyqtgraph"}
    assert expand("test") >= set().union(*(expand(extra) for extra in extras if extra != "test"))


def run_without(modules: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    blocker = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", blocker + code], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_classify_runs_on_the_core_alone():
    out = run_without(EXTRA_MODULES, "from speech_app.cli import main\n"
                      f"sys.exit(main(['classify', '--format', 'jsonl', {str(SAMPLES_DIR)!r}]))")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len([p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg")])
    assert all(r["label"] and r["error"] is None for r in rows)


def test_listen_without_the_mic_extra_names_it():
    out = run_without(("sounddevice",), "from speech_app.cli import main\nsys.exit(main(['listen']))")
    assert out.returncode == EXIT_NO_AUDIO
    assert out.stderr.strip().count("\n") == 0 and "pip install 'speech-app[mic]'" in out.stderr


def test_gui_without_qt_names_the_gui_extra():
    out = run_without(("PySide6",), "from speech_app.cli import main\nsys.exit(main(['gui']))")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "pip install 'speech-app[gui]'" in out.stderr


def test_a_report_without_matplotlib_keeps_every_figure_and_names_the_train_extra(tmp_path):
    matrix = [[3, 1], [0, 4]]
    out = run_without(("matplotlib",), "import numpy as np\nfrom speech_app.training.report import write_report\n"
                      f"write_report({str(tmp_path)!r}, ['yes', 'no'], {{'validation': np.array({matrix})}}, "
                      "history=[{'epoch': 1, 'train_loss': 1.0, 'val_loss': 1.0, 'train_accuracy': 0.5, "
                      "'val_accuracy': 0.5}])")
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "pip install 'speech-app[train]'" in out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] == pytest.approx(7 / 8)
    assert metrics["validation"]["confusion_matrix"] == matrix and len(metrics["history"]) == 1
    assert "| yes |" in (tmp_path / "report.md").read_text()
    assert not list(tmp_path.glob("*.png")) and ".png" not in (tmp_path / "report.md").read_text()
    assert np.array(matrix).sum() == metrics["validation"]["clips"]
