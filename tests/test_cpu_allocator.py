"""`retain_freed_memory` against glibc's own accounting: a large block stops being mapped from the kernel."""
import subprocess
import sys

import pytest

# Prints the bytes glibc holds in mmapped blocks that one 24 MiB tensor added (mallinfo2().hblkhd, glibc >= 2.33).
PROBE = """
import ctypes, sys
import torch
from lpmrf_bench.cpu_allocator import retain_freed_memory, retaining_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
if sys.argv[1] == "retain":
    assert retain_freed_memory() and retaining_freed_memory()
else:
    assert not retaining_freed_memory()
before = mallinfo2().hblkhd
block = torch.empty(24 * 2**20, dtype=torch.uint8)
print(mallinfo2().hblkhd - before)
"""


def mapped_bytes_of_one_block(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.slow
def test_a_large_block_is_mapped_by_default_and_comes_from_the_heap_once_retained():
    assert mapped_bytes_of_one_block("default") >= 24 * 2**20
    assert mapped_bytes_of_one_block("retain") == 0


@pytest.mark.slow
def test_every_command_retains_freed_memory_and_runs_record_it():
    probe = ("from click.testing import CliRunner\n"
             "from lpmrf_bench.cli.main import main\n"
             "from lpmrf_bench.cpu_allocator import retaining_freed_memory\n"
             "from lpmrf_bench.environment import device_info\n"
             "import torch\n"
             "assert CliRunner().invoke(main, ['list', 'methods']).exit_code == 0\n"
             "print(retaining_freed_memory(), device_info(torch.device('cpu'))['glibc_retains_freed_memory'])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
