"""`python -m sortition`: the same command line as the `sortition` script."""

from .cli import main

main()
