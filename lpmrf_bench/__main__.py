"""`python -m lpmrf_bench ...` (what torchrun launches) is the same CLI."""
from lpmrf_bench.cli.main import main

main()
