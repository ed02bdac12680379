"""What checking an imported hash costs, against authsvc's own hash: the import caps.

    python -m bench.import_hash_costs [--method scrypt:32768:8:3] [--repeat 3]

Measures, on this machine, the CPU time (user + system, every thread of the process,
so a busy machine inflates it less than wall time would) of one check of authsvc's
own hash (``AUTHSVC_PASSWORD_HASH``, the default unless ``--method``) and of one check
of each imported format at a reference cost; each format's cost grows linearly with
one number (bcrypt ``2^cost``, scrypt ``N*r*p``, argon2 ``m*t``, pbkdf2 iterations),
so the reference time gives the largest value whose check costs at most twice the
own hash. It then checks a hash at each of ``rules.imported_hashes``' caps and prints
its ratio to the own hash: each must stay at about 2 or less. Results go to stdout;
the README's import section states them.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import resource
from collections.abc import Callable

import argon2
import bcrypt

from authsvc.rules import imported_hashes as caps
from authsvc.runtime.settings import Settings

BUDGET = 2.0  # a check may cost this many own checks


def cpu_seconds(run: Callable[[], object], repeat: int) -> float:
    """The least CPU time (all threads) of ``repeat`` runs."""
    best = math.inf
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_SELF)
        run()
        after = resource.getrusage(resource.RUSAGE_SELF)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, used)
    return best


def werkzeug_check(method: str) -> Callable[[], object]:
    from werkzeug.security import check_password_hash, generate_password_hash

    stored = generate_password_hash("bench-password", method=method)
    return lambda: check_password_hash(stored, "wrong-password")


def bcrypt_check(cost: int) -> Callable[[], object]:
    stored = bcrypt.hashpw(b"bench-password", bcrypt.gensalt(cost))
    return lambda: bcrypt.checkpw(b"wrong-password", stored)


def argon2_check(memory_kib: int, passes: int, lanes: int) -> Callable[[], object]:
    hasher = argon2.PasswordHasher(time_cost=passes, memory_cost=memory_kib, parallelism=lanes)
    stored = hasher.hash("bench-password")

    def check() -> object:
        try:
            return hasher.verify(stored, "wrong-password")
        except argon2.exceptions.VerificationError:
            return False

    return check


def pbkdf2_check(digest: str, iterations: int) -> Callable[[], object]:
    return lambda: hashlib.pbkdf2_hmac(digest, b"wrong-password", b"salt", iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default=Settings().password_hash)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    own = cpu_seconds(werkzeug_check(args.method), args.repeat)
    budget = BUDGET * own
    print(
        f"own hash {args.method}: {own * 1000:.0f} ms CPU per check; budget {budget * 1000:.0f} ms"
    )
    print("\nlargest affordable value per format (linear in the named number):")
    ten = cpu_seconds(bcrypt_check(10), args.repeat)
    most = 10 + math.log2(budget / ten)
    print(f"  bcrypt          cost 10: {ten * 1000:.0f} ms -> cost <= {most:.2f}")
    unit = cpu_seconds(werkzeug_check("scrypt:16384:8:1"), args.repeat) / (16384 * 8)
    print(f"  scrypt          N*r*p <= {budget / unit:,.0f} (2^{math.log2(budget / unit):.2f})")
    unit = cpu_seconds(argon2_check(65536, 1, 1), args.repeat) / 65536
    exponent = math.log2(budget / unit)
    print(f"  argon2          m*t <= {budget / unit:,.0f} KiB-passes (2^{exponent:.2f})")
    for digest in caps.PBKDF2_HASHES:
        unit = cpu_seconds(pbkdf2_check(digest, 100_000), args.repeat) / 100_000
        print(f"  pbkdf2-{digest:<8} iterations <= {budget / unit:,.0f}")
    print("\na hash at each cap, as a multiple of the own check (must stay about 2 or less):")
    at_caps: list[tuple[str, Callable[[], object]]] = [
        (f"bcrypt cost {caps.MAX_BCRYPT_COST}", bcrypt_check(caps.MAX_BCRYPT_COST)),
        (
            f"scrypt N*r*p = {caps.MAX_SCRYPT_WORK}",
            werkzeug_check(f"scrypt:{caps.MAX_SCRYPT_WORK // 8}:8:1"),
        ),
        (
            f"argon2 m*t = {caps.MAX_ARGON2_WORK} KiB",
            argon2_check(caps.MAX_ARGON2_WORK // 2, 2, 1),
        ),
        *((f"pbkdf2-{d} {n:,}", pbkdf2_check(d, n)) for d, n in caps.MAX_PBKDF2_ITERATIONS.items()),
    ]
    for label, run in at_caps:
        print(f"  {label:<32} {cpu_seconds(run, args.repeat) / own:5.2f}x")


if __name__ == "__main__":
    main()
