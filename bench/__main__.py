"""``python -m bench``: runs the benchmark and prints the table."""

import sys

from bench.cli import main

if __name__ == "__main__":  # client processes are spawned and re-import this module
    sys.exit(main())
