"""Importing users: ``authsvc import`` of 100,000 users into a fresh PostgreSQL database.

    python -m bench.import_users [--users 100000] [--batch-size 1000] [--write]

Writes a JSON-lines file of users whose hashes are real ones of every accepted format
(Werkzeug scrypt and pbkdf2, bcrypt, argon2id, Django pbkdf2_sha256, at their libraries'
default costs): a few distinct hashes of each, repeated, since computing 100,000 slow
hashes would take hours and an import never computes one (it only parses them). Then
runs the real command line twice, as an operator would: the import, and the same import
again (every user then exists: the speed of resuming). ``--write`` puts the result in
docs/benchmarks.md, section "Importing users".
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import argon2
import bcrypt
import psycopg2
from werkzeug.security import generate_password_hash

from bench.cli import DEFAULT_DSN
from bench.population import fresh_database

PASSWORD = "bench-password-8c1f"
DISTINCT_PER_FORMAT = 3
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## Importing users"
NOTE = """
Read the load average before comparing runs: well above the core count, it means the
import got a fraction of a core. At a quieter moment a 5,000-user import
into SQLite ran at 2,611 users/s (README, "Migrating from the Flask accounts design").
Where the time goes (cProfile of a 10,000-user import into PostgreSQL): about a third in
PostgreSQL's `INSERT … ON CONFLICT (email) DO NOTHING RETURNING id` of 1,000 rows per
batch, the rest in Python, mostly checking each user (JSON, email and names, the strict
hash parse) and building its row. The second run costs about as much as the first: each
user is still read and checked, and the unique index turns the insert away.
"""
_SUMMARY = re.compile(r"^imported (\d+), existing (\d+), refused (\d+) \(\d+ users in ([\d.]+) s")


def real_hashes() -> list[str]:
    """A few hashes of PASSWORD per format, each made by its own library's defaults."""
    hashes = []
    for _ in range(DISTINCT_PER_FORMAT):
        salt = secrets.token_urlsafe(9)
        key = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), 1_000_000)
        hashes += [
            generate_password_hash(PASSWORD, "scrypt"),
            generate_password_hash(PASSWORD, "pbkdf2:sha256"),
            bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode(),
            argon2.PasswordHasher().hash(PASSWORD),
            f"pbkdf2_sha256$1000000${salt}${base64.b64encode(key).decode()}",
        ]
    return hashes


def write_users(path: Path, count: int) -> None:
    """``count`` users as the README's export from the Flask design writes them."""
    hashes = real_hashes()
    with path.open("w") as out:
        for i in range(count):
            user = {
                "email": f"user{i}@bench.example",
                "first_name": "Bench",
                "last_name": f"User {i}",
                "password_hash": hashes[i % len(hashes)],
                "create_time": "2019-03-01T12:00:00.123456+00:00",
                "email_verified": i % 2 == 0,
            }
            out.write(json.dumps(user) + "\n")


@dataclass(frozen=True)
class Run:
    """One ``authsvc import`` run: its counts and its wall-clock time."""

    imported: int
    existing: int
    refused: int
    seconds: float  # the whole command, start-up included
    loop_seconds: float  # reading, checking and inserting the users (its own count)

    @property
    def users(self) -> int:
        """Users read."""
        return self.imported + self.existing + self.refused

    @property
    def rate(self) -> float:
        """Users per second of the whole command."""
        return self.users / self.seconds


def run_import(path: Path, url: str, batch_size: int) -> Run:
    """Runs the real command line and reads its closing counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    command = [sys.executable, "-m", "authsvc", "import", str(path), "--database-url", url]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--batch-size", str(batch_size)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    match = _SUMMARY.match(done.stdout)
    if done.returncode != 0 or not match:
        raise SystemExit(f"authsvc import failed ({done.returncode}): {done.stdout[:500]}")
    imported, existing, refused = (int(g) for g in match.groups()[:3])
    return Run(imported, existing, refused, seconds, float(match.group(4)))


def count_users(dsn: str) -> int:
    """Users the database holds."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users")
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


def report(users: int, batch_size: int, first: Run, again: Run, held: int) -> str:
    """The docs section."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"""{SECTION}

`python -m bench.import_users` ({time.strftime("%Y-%m-%d")}, {os.cpu_count()} cores
shared with other work; load average {load} at the end): `authsvc import` of a
{users:,}-user JSON-lines file into a fresh PostgreSQL database, batches of
{batch_size}, measured around the whole command (start-up and the schema check
included) and by the command itself (the import loop). The hashes are real ones of
every accepted format at their libraries' defaults ({DISTINCT_PER_FORMAT} distinct per
format, repeated): an import parses each hash strictly but never computes one.

{_table(first, again)}

The database then held {held:,} users: the second run duplicated none.
{NOTE}"""


def _table(first: Run, again: Run) -> str:
    rows = [
        "| run | imported | existing | refused | command s | users/s | import loop s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("first import", first), ("the same file again (resume)", again)):
        rows.append(
            f"| {name} | {r.imported:,} | {r.existing:,} | {r.refused} | {r.seconds:.1f} "
            f"| **{r.rate:,.0f}** | {r.loop_seconds:.1f} |"
        )
    return "\n".join(rows)


def write_section(text: str) -> None:
    """Replaces (or appends) the section in docs/benchmarks.md."""
    doc = DOCS.read_text()
    start = doc.find(SECTION)
    if start == -1:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text + (doc[end + 1 :] if end != -1 else "")
    DOCS.write_text(doc)


def main() -> None:
    """Runs the benchmark and prints (or writes) its section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="maintenance database of PostgreSQL")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.dsn) as db:
        path = Path(tmp) / "users.jsonl"
        write_users(path, args.users)
        first = run_import(path, db.url, args.batch_size)
        again = run_import(path, db.url, args.batch_size)
        text = report(args.users, args.batch_size, first, again, count_users(db.dsn))
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
