"""The allocator settings of the batch commands (speech_app/memory.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BLOCK_MIB = 16  # over glibc's first mmap threshold (128 KiB), under the one keep_freed_memory sets (32 MiB)
# a fresh process: allocate a block, free it, allocate one of the same size again and count the page faults
# of the second; glibc hands the first back to the system at its free, so the second is new memory
SECOND_BLOCK_FAULTS = f"""
import resource, sys
import numpy as np
from speech_app.memory import keep_freed_memory
if sys.argv[1] == "keep" and not keep_freed_memory():
    print("unsupported"); raise SystemExit
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(({BLOCK_MIB} << 20) // 8); del block
before = faults()
block = np.ones(({BLOCK_MIB} << 20) // 8)
print(faults() - before)
"""


def second_block_faults(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", SECOND_BLOCK_FAULTS, mode], capture_output=True, text=True,
                          check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_batch_sized_block_is_reused_not_faulted_in_again():
    faults = second_block_faults("keep")
    if faults == "unsupported":
        pytest.skip("not glibc")
    pages = (BLOCK_MIB << 20) // os.sysconf("SC_PAGE_SIZE")
    assert int(faults) < pages // 100  # the block written whole, without new pages (glibc's default: new ones)
