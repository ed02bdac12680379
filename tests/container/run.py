"""Builds the real container image with podman, runs it, and checks it from outside.

``make container-test`` runs this as root (``.ci/deps-container.sh`` installs podman,
runc and debootstrap). Steps:

1. The base image ``localhost/authsvc-base:bookworm``: a Debian bookworm made with
   ``debootstrap --variant=minbase`` (python3, python3-venv, ca-certificates), imported
   into podman once and reused while its package list is unchanged. No image registry is
   reachable here, so the Dockerfile's default ``python:3.11-slim-bookworm`` cannot be
   pulled; ``--build-arg BASE`` points the same Dockerfile at this base instead.
2. ``podman build`` of the Dockerfile (docker format, so HEALTHCHECK is kept).
3. ``podman run`` with the gRPC and metrics ports published on 127.0.0.1, then the checks:
   health inside and from the host, the image's HEALTHCHECK, the unprivileged uid,
   sign-up and sign-in from the host, metrics, JSON logs, and SIGTERM draining a call in
   flight with exit status 0.

This machine's limits, found by trying (README "Container"): crun refuses the cgroup v1
"hybrid" layout, so ``--runtime runc``; neither runtime may raise RLIMIT_NOFILE or
RLIMIT_NPROC above the host's hard limits (podman's default nofile is 1048576), so
``--ulimit nofile=1024:1024 --ulimit nproc=1024:1024``.

Prints PASS/FAIL per check and ``N passed, M failed``; exits 1 on any failure. Removes
the containers it started; keeps the images (the next run reuses the base and the
build's layer cache).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Run as a script (``make container-test``): the repository root makes ``tests`` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("AUTHSVC_BASE_IMAGE", "localhost/authsvc-base:bookworm")
IMAGE = os.environ.get("AUTHSVC_TEST_IMAGE", "localhost/authsvc:container-test")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# What the Dockerfile needs of its base: python3 with venv/ensurepip, groupadd/useradd
# (passwd is in minbase), CA certificates for pip.
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_LABEL = "org.authsvc.base-packages"
# crun refuses cgroup v1 "hybrid" mode here; the rlimits may not be raised.
RUNTIME = ["--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
UID = 10001
GRACE_SECONDS = 10  # the image's default AUTHSVC_GRACE_PERIOD
PASSWORD = "correct horse battery staple"

results: list[tuple[str, bool]] = []


def report(name: str, ok: bool, detail: str = "") -> bool:
    results.append((name, ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def step(name: str, body: Callable[[], str]) -> bool:
    """Runs ``body``; an exception (or AssertionError) is a FAIL with its message."""
    start = time.monotonic()
    try:
        detail = body()
    except Exception as exc:
        return report(name, False, f"{type(exc).__name__}: {exc}")
    return report(name, True, f"{detail} ({time.monotonic() - start:.1f}s)")


def podman(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args[:2])} exited {proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
        )
    return proc


def run_logged(cmd: Sequence[str], log: Path) -> None:
    """Runs ``cmd`` with its output in ``log``; raises with the log's tail on failure."""
    with log.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode} (log {log}):\n{tail}")


# --- 1. base image ----------------------------------------------------------------------


def base_is_current() -> bool:
    proc = podman("image", "inspect", "--format", "{{json .Labels}}", BASE_IMAGE, check=False)
    if proc.returncode != 0:
        return False
    labels = json.loads(proc.stdout.strip() or "null") or {}
    return bool(labels.get(BASE_LABEL) == BASE_PACKAGES)


def make_base(logs: Path) -> str:
    if os.environ.get("AUTHSVC_REBUILD_BASE") != "1" and base_is_current():
        return f"{BASE_IMAGE} present, reused"
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is missing: run .ci/deps-container.sh")
    with tempfile.TemporaryDirectory(prefix="authsvc-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run_logged(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            logs / "debootstrap.log",
        )
        # The host's own CAs (e.g. of a TLS-inspecting egress proxy, as on the machines
        # this runs on) so that pip inside the build trusts what the host trusts.
        local_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
        for ca in local_cas:
            shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
        if local_cas:
            run_logged(["chroot", str(rootfs), "update-ca-certificates"], logs / "ca.log")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                "podman",
                "import",
                "--change",
                'CMD ["/bin/bash"]',
                "--change",
                f"LABEL {BASE_LABEL}={BASE_PACKAGES}",
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(f"import failed: {imported.stderr.strip()[-1500:]}")
    cas = f", {len(local_cas)} local CA(s) added" if local_cas else ""
    return f"{BASE_IMAGE} made by debootstrap ({BASE_PACKAGES}){cas}"


# --- 2. image ----------------------------------------------------------------------------


def image_id(name: str) -> str | None:
    proc = podman("image", "inspect", "--format", "{{.Id}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def build(logs: Path) -> str:
    previous = image_id(IMAGE)
    run_logged(
        [
            "podman",
            "build",
            "--format",
            "docker",  # the OCI format drops HEALTHCHECK
            "--pull=never",
            *RUNTIME,
            *ULIMITS,
            "--build-arg",
            f"BASE={BASE_IMAGE}",
            "--tag",
            IMAGE,
            str(ROOT),
        ],
        logs / "build.log",
    )
    if previous and previous != image_id(IMAGE):
        podman("rmi", previous, check=False)  # the image this build replaced, now untagged
    size = podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip()
    return f"{IMAGE}, {int(size) / 1e6:.0f} MB"


# --- 3. the running container ---------------------------------------------------------------


class Container:
    def __init__(self) -> None:
        self.name = f"authsvc-container-test-{uuid.uuid4().hex[:8]}"
        podman(
            "run",
            "--detach",
            "--name",
            self.name,
            *RUNTIME,
            *ULIMITS,
            "--publish",
            "127.0.0.1::50051",
            "--publish",
            "127.0.0.1::9090",
            IMAGE,
        )
        self.grpc_port = self._host_port(50051)
        self.metrics_port = self._host_port(9090)

    def _host_port(self, port: int) -> int:
        out = podman("port", self.name, f"{port}/tcp").stdout.strip()
        return int(out.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def exec(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *cmd, check=False, timeout=60)

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def state(self) -> dict[str, object]:
        out = podman("inspect", "--format", "{{json .State}}", self.name).stdout
        state: dict[str, object] = json.loads(out)
        return state

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


def wait_serving(box: Container) -> str:
    last = ""

    def serving() -> bool:
        nonlocal last
        proc = box.exec("authsvc", "health", "--address", "127.0.0.1:50051", "--timeout", "2")
        last = (proc.stdout + proc.stderr).strip()
        if proc.returncode == 0 and last == "SERVING":
            return True
        if box.state().get("Status") != "running":
            raise RuntimeError(f"container stopped: {box.logs()[-2000:]}")
        return False

    wait_until(serving, 60, interval=0.5, what=lambda: f"SERVING (last: {last!r})")
    return "podman exec: authsvc health -> SERVING"


def health_from_host(box: Container) -> str:
    with grpc.insecure_channel(box.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    assert status == "SERVING", status
    return f"grpc.health.v1 Check on {box.address} -> {status}"


def image_healthcheck(box: Container) -> str:
    proc = podman("healthcheck", "run", box.name, check=False, timeout=60)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"exit {proc.returncode}: {out}"
    return f"podman healthcheck run -> {out or 'healthy'}"


def unprivileged(box: Container) -> str:
    uid = box.exec("id", "-u").stdout.strip()
    assert uid == str(UID), f"podman exec id -u: {uid!r}"
    status = box.exec("cat", "/proc/1/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    name = fields.get("Name", "").strip()
    uids = fields.get("Uid", "").split()
    gids = fields.get("Gid", "").split()
    assert name == "authsvc", f"PID 1 is {name!r}"
    assert uids == [str(UID)] * 4, f"PID 1 Uid: {uids}"
    assert gids == [str(UID)] * 4, f"PID 1 Gid: {gids}"
    return f"exec id -u = {uid}; PID 1 ({name}) real/effective/saved uid and gid {UID}"


def sign_up_and_in(box: Container) -> str:
    email = f"container-{uuid.uuid4().hex[:8]}@example.com"
    with grpc.insecure_channel(box.address) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        created = stub.CreateUser(
            pb.CreateUserRequest(email=email, password=PASSWORD, first_name="C", last_name="T"),
            timeout=30,
        )
        session = stub.CreateSession(
            pb.CreateSessionRequest(email=email.upper(), password=PASSWORD), timeout=30
        )
        valid = stub.ValidateToken(
            pb.ValidateTokenRequest(session_token=session.session_token), timeout=30
        )
    assert session.user.id == created.user.id, "sign-in returned another user"
    assert valid.user.id == created.user.id, "token validated to another user"
    return f"CreateUser, CreateSession, ValidateToken via {box.address} (user {created.user.id})"


def metrics(box: Container) -> str:
    url = f"http://127.0.0.1:{box.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = reply.read().decode()
    lines = [line for line in body.splitlines() if "CreateUser" in line]
    assert lines, "no CreateUser series in /metrics"
    return f"{url} answered, {len(lines)} CreateUser series"


def json_logs(box: Container) -> str:
    lines = [line for line in box.logs().splitlines() if line.strip()]
    assert lines, "no log lines"
    bad = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            bad.append(line)
    assert not bad, f"{len(bad)} non-JSON line(s), first: {bad[0][:200]!r}"
    return f"{len(lines)} log lines, all JSON"


def sigterm_drains(box: Container) -> str:
    """CreateUser calls (default scrypt, 0.3 s of CPU each) in flight at SIGTERM finish OK."""
    calls = 6  # the container sees 2 CPUs: 2 hash, 4 wait for a hash slot
    with grpc.insecure_channel(box.address) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        finished: list[float] = []
        lock = threading.Lock()

        def sign_up(i: int) -> str:
            reply = stub.CreateUser(
                pb.CreateUserRequest(
                    email=f"drain-{i}-{uuid.uuid4().hex[:6]}@example.com",
                    password=PASSWORD,
                    first_name="D",
                    last_name="R",
                ),
                timeout=30,
            )
            with lock:
                finished.append(time.monotonic())
            return str(reply.user.id)

        with concurrent.futures.ThreadPoolExecutor(calls) as pool:
            futures = [pool.submit(sign_up, i) for i in range(calls)]
            # Once the server answered one call, all of them (sent together) reached it;
            # the 4 that queue behind the first 2 hashes are still in flight.
            wait_until(lambda: any(f.done() for f in futures), what="the server to answer a call")
            sent_term = time.monotonic()
            # SIGTERM to PID 1; SIGKILL only after 30 s, well past the 10 s grace period.
            podman("stop", "--time", "30", box.name, timeout=60)
            stopped = time.monotonic() - sent_term
            outcomes = []
            for future in futures:
                try:
                    future.result(timeout=30)
                    outcomes.append("OK")
                except grpc.RpcError as exc:
                    outcomes.append(exc.code().name)
    state = box.state()
    in_flight = sum(1 for t in finished if t > sent_term)
    assert outcomes == ["OK"] * calls, f"calls: {outcomes}"
    assert in_flight >= 1, "no call was still in flight at SIGTERM (the check proved nothing)"
    assert state.get("ExitCode") == 0, f"exit code {state.get('ExitCode')}"
    assert stopped < GRACE_SECONDS, f"stopping took {stopped:.1f}s"
    events = {}
    for line in box.logs().splitlines():
        entry = json.loads(line)
        if entry.get("message") in ("received SIGTERM: draining", "stopped"):
            events[entry["message"]] = datetime.fromisoformat(entry["time"])
    assert len(events) == 2, f"log lacks 'received SIGTERM: draining' or 'stopped': {events}"
    drained = (events["stopped"] - events["received SIGTERM: draining"]).total_seconds()
    return (
        f"{in_flight}/{calls} CreateUser calls still in flight at SIGTERM all OK; "
        f"server drained in {drained:.1f}s, exit status 0, podman stop took {stopped:.1f}s "
        f"(grace {GRACE_SECONDS}s)"
    )


def main() -> int:
    if shutil.which("podman") is None:
        report("podman installed", False, "run .ci/deps-container.sh (as root)")
    elif os.geteuid() != 0:
        report("running as root", False, "debootstrap and rootful podman need root")
    else:
        logs = Path(tempfile.mkdtemp(prefix="authsvc-container-test-"))
        print(f"logs in {logs}", flush=True)
        if step("base image", lambda: make_base(logs)) and step(
            "podman build", lambda: build(logs)
        ):
            run_checks()
    failed = sum(1 for _, ok in results if not ok)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def run_checks() -> None:
    box: Container | None = None

    def start() -> str:
        nonlocal box
        box = Container()
        return f"{box.name}, gRPC on {box.address}, metrics on :{box.metrics_port}"

    try:
        if not step("podman run", start):
            return
        assert box is not None
        running = box
        if not step("health in the container", lambda: wait_serving(running)):
            print(running.logs()[-3000:])
            return
        step("health from the host", lambda: health_from_host(running))
        step("image HEALTHCHECK", lambda: image_healthcheck(running))
        step(f"runs as uid {UID}", lambda: unprivileged(running))
        step("sign-up and sign-in from the host", lambda: sign_up_and_in(running))
        step("metrics from the host", lambda: metrics(running))
        step("JSON logs", lambda: json_logs(running))
        step("SIGTERM drains calls in flight", lambda: sigterm_drains(running))
    finally:
        if box is not None:
            box.remove()


if __name__ == "__main__":
    sys.exit(main())
