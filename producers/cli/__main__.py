"""`python -m producers.cli`: the `tfq` command line."""

from producers.cli import main

main()
