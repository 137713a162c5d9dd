"""training/ (recipes, the development test) and training/studies/ (study harnesses and notes): every
path the repository names into them exists, and every script there finds the repository root and the
scripts it imports from where it lies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FOLDERS = (ROOT / "training", ROOT / "training" / "studies")
# where the repository's text names files (the fixed top level; runs/ and data are never committed)
TEXT_PLACES = ("README.md", "docs", "model", "training", "tests", "benchmarks", "datasets", "speech_app")
TEXT_SUFFIXES = {".md", ".py", ".sh", ".txt", ".toml"}
# `training/...` not inside a longer path (so not `speech_app/training/...` or `runs/training/...`)
TRAINING_PATH = re.compile(r"(?<![\w./-])training/[\w./-]*?\.(?:py|sh|md|txt)(?![\w.])")
ROOT_CD = re.compile(r'^cd "\$\(dirname "\$0"\)[^"]*".*$', re.MULTILINE)


def _text_files() -> list[Path]:
    files = []
    for place in TEXT_PLACES:
        path = ROOT / place
        candidates = [path] if path.is_file() else path.rglob("*")
        files += [f for f in candidates if f.suffix in TEXT_SUFFIXES and f.is_file() and "__pycache__" not in f.parts]
    return files


def _scripts(suffix: str) -> list[Path]:
    return sorted(f for folder in SCRIPT_FOLDERS for f in folder.glob(f"*{suffix}"))


def test_every_path_named_into_training_exists():
    # docs/ARCHITECTURE.md names the package's modules relative to speech_app/ (`training/trainer.py`)
    missing = {f"{text.relative_to(ROOT)}: {name}"
               for text in _text_files() for name in TRAINING_PATH.findall(text.read_text(errors="replace"))
               if not (ROOT / name).exists() and not (ROOT / "speech_app" / name).exists()}
    assert not missing, "\n".join(sorted(missing))


def test_shell_scripts_move_to_the_repository_root_from_anywhere(tmp_path):
    scripts = [s for s in _scripts(".sh") if s.read_text().startswith("#!")]  # not the sourced common file
    assert any(s.parent.name == "studies" for s in scripts)
    for script in scripts:
        lines = ROOT_CD.findall(script.read_text())
        assert len(lines) == 1, f"{script.name}: no single `cd \"$(dirname \"$0\")...\"` line"
        # the script's own line, with $0 the script as a caller in another folder names it
        proc = subprocess.run(["bash", "-c", f"{lines[0]}\npwd -P", str(script)], cwd=tmp_path,
                              capture_output=True, text=True)
        assert proc.returncode == 0 and Path(proc.stdout.strip()) == ROOT.resolve(), (script.name, proc.stderr)


# Runs each script's top level as `python path/to/script.py` would (its own folder first on the path,
# the current folder elsewhere), without its main; a script's neighbours are forgotten between scripts
# so that each must find them itself.
_IMPORT_EVERY_SCRIPT = """
import runpy, sys
from pathlib import Path
training, failures = Path(sys.argv[1]), []
for script in sys.argv[2:]:
    path, modules = list(sys.path), set(sys.modules)
    sys.path[0] = str(Path(script).parent)
    try:
        runpy.run_path(script, run_name="layout_check")
    except BaseException as error:
        failures.append(f"{script}: {type(error).__name__}: {error}")
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if Path(getattr(sys.modules[name], "__file__", None) or "/").resolve().is_relative_to(training):
            del sys.modules[name]
print("\\n".join(failures))
"""


def test_python_scripts_import_what_they_need_from_where_they_lie(tmp_path):
    scripts = _scripts(".py")
    assert any(s.parent.name == "studies" for s in scripts)
    proc = subprocess.run([sys.executable, "-c", _IMPORT_EVERY_SCRIPT, str(ROOT / "training"), *map(str, scripts)],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", proc.stdout
