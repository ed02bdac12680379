"""The ``authsvc`` command's entry point: answers ``--version`` before anything heavy is
imported (gRPC, SQLAlchemy, the generated stubs take about two seconds), then hands every
other command to ``authsvc.runtime.cli``."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``authsvc --version`` prints the installed version at once; anything else runs
    ``cli.main`` (a bad setting is a one-line error and exit status 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"authsvc {package_version()}")
        return 0
    from authsvc.runtime import cli  # deferred: it imports everything

    return cli.main(args)


def package_version() -> str:
    """The installed authsvc distribution's version ("unknown" when not installed)."""
    from importlib import metadata  # deferred: only --version needs it

    try:
        return metadata.version("authsvc")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
