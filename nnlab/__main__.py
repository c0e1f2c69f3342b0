"""`python -m nnlab ...` (also what `torchrun -m nnlab` runs)."""

from nnlab.cli import main

main()
