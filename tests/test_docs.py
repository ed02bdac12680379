"""The documentation cannot drift from the code: its examples run, its links resolve, and its
RPC tables and client method lists match the proto.

- Every fenced ``python`` example of README.md and clients/*/README.md runs against a live
  authsvc (its ``HOST:50051`` target is pointed at the test server). An example that needs
  names from around it (``password``, a ``ca.pem``, a TLS server) is marked by the line
  ``<!-- snippet: NAME -->`` right before its fence; the fixture ``NAME`` below provides
  them and then checks what the example did. Unmarked examples run alone.
- Every ``buf curl`` example of README.md runs, with buf from node_modules.
- Every link inside the documentation (``#anchor``, ``file.md#anchor``, a file) resolves.
- The RPC list comes from the proto's descriptors, so an RPC added later is checked
  without touching this file: README's RPC table lists each one, marked privileged or
  open as the caller policy classifies it; the Python client has a method for each; the
  TypeScript, Go and Java clients reach each by a method or a documented generic call.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import standardwebhooks
from cryptography.fernet import Fernet
from werkzeug.security import generate_password_hash

from authsvc.edge.caller_policy import is_privileged
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.assembly import AuthServer
from authsvc_client import AuthClient, AuthClientError
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.certs import Pki, make_pki
from tests.helpers import PASSWORD
from tests.leak_watch import WATCH
from tests.node_tools import npm_tool

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "clients").glob("*/README.md"))]
LINKED_DOCS = [*DOCS, *sorted((ROOT / "docs").glob("*.md"))]
SERVICE = pb.DESCRIPTOR.services_by_name["AuthService"]
RPCS = [method.name for method in SERVICE.methods]
MARKER = re.compile(r"^<!-- snippet: (\w+) -->$")
TARGET = re.compile(r"\"[A-Za-z0-9.\-]+:50051\"")

sqlite_only = pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
StartServer = Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    return name[0].lower() + name[1:]


# --- Reading Markdown ---


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, first line number, text and snippet marker."""

    path: Path
    line: int
    language: str
    code: str
    needs: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        end = lines.index("```", i + 1)
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        marker = MARKER.match(before.strip())
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(path, i + 1, opening.group(1), code, marker and marker.group(1)))
        i = end + 1
    return found


def prose_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` outside code fences."""
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of ``path`` (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(path):
        heading = re.match(r"^#{1,6} (.+)$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


PYTHON_EXAMPLES = [b for path in DOCS for b in blocks(path) if b.language == "python"]


# --- Python examples against a live server ---


@dataclass
class Completion:
    """What a marked example gets around it (names, files, environment) and then a check
    of what it did; ``raises`` when the example is meant to end in that exception."""

    names: dict[str, Any]
    check: Callable[[dict[str, Any]], None]
    server: AuthServer
    raises: type[BaseException] | None = None
    #: With ``raises``: what to check once the example raised it.
    after: Callable[[dict[str, Any]], None] | None = None


def _created(namespace: dict[str, Any]) -> None:
    """The example's client works: a sign-up through it succeeds."""
    auth: AuthClient = namespace["auth"]
    assert auth.create_user("grace@example.com", PASSWORD, "Grace", "Hopper").id


def _live_key(server: AuthServer, name: str) -> str:
    _, key = server.flows.api_keys.create(name)
    WATCH.learn(key)
    return key


def _tls_files(pki: Pki, cwd: Path, *, client: bool) -> None:
    shutil.copy(pki.ca.cert, cwd / "ca.pem")
    if client:
        issued = pki.ca.client("orders")
        shutil.copy(issued.cert, cwd / "orders.pem")
        shutil.copy(issued.key, cwd / "orders.key")


class Completions:
    """One method per snippet marker; each starts the server the example needs."""

    def __init__(self, start: StartServer, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.start, self.cwd, self.monkeypatch = start, cwd, monkeypatch
        (cwd / "pki").mkdir()
        self.pki = make_pki(cwd / "pki")

    def plain(self) -> Completion:
        server, _ = self.start()
        return Completion({}, lambda ns: None, server)

    def signed_up(self) -> Completion:
        server, stub = self.start()
        request = pb.CreateUserRequest(
            email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Lovelace"
        )
        stub.CreateUser(request)
        names = {"password": PASSWORD, "client_ip": "203.0.113.7"}

        def check(ns: dict[str, Any]) -> None:
            assert ns["user"].email == "ada@example.com"
            assert ns["signed_in"].session_token

        return Completion(names, check, server)

    def throttled(self) -> Completion:
        """Five wrong passwords first: the example's sign-in is then refused with a wait."""
        server, stub = self.start()
        stub.CreateUser(
            pb.CreateUserRequest(
                email="ada@example.com", password=PASSWORD, first_name="A", last_name="L"
            )
        )
        auth = AuthClient(f"127.0.0.1:{server.port}")
        for _ in range(5):
            with pytest.raises(AuthClientError):
                auth.create_session("ada@example.com", "wrong password!", ip_address="203.0.113.7")

        class TryLater(Exception):  # the example's own exception
            def __init__(self, seconds: float) -> None:
                super().__init__(seconds)
                self.seconds = seconds

        names = {
            "auth": auth,
            "email": "ada@example.com",
            "password": PASSWORD,
            "client_ip": "203.0.113.7",
            "AuthClientError": AuthClientError,
            "TryLater": TryLater,
        }
        return Completion(names, lambda ns: None, server, raises=TryLater)

    def tls(self) -> Completion:
        server, _ = self.start(**self.pki.tls_settings(mutual=False))
        _tls_files(self.pki, self.cwd, client=False)
        return Completion({}, _created, server)

    def mutual_tls(self) -> Completion:
        server, _ = self.start(**self.pki.tls_settings(mutual=True))
        _tls_files(self.pki, self.cwd, client=True)
        names = {
            "AuthClient": AuthClient,
            "grpc": grpc,
            "Path": Path,
            "api_key": _live_key(server, "orders"),
        }
        return Completion(names, _created, server)

    def tls_api_key(self) -> Completion:
        server, _ = self.start(**self.pki.tls_settings(mutual=False))
        _tls_files(self.pki, self.cwd, client=False)
        self.monkeypatch.setenv("AUTHSVC_API_KEY", _live_key(server, "billing-service"))
        tls = grpc.ssl_channel_credentials((self.cwd / "ca.pem").read_bytes())
        names = {"AuthClient": AuthClient, "grpc": grpc, "os": os, "tls": tls}
        return Completion(names, _created, server)

    def flask_row(self) -> Completion:
        server, _ = self.start()
        digest = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
        names = {"row": SimpleNamespace(password_digest=digest)}

        def check(ns: dict[str, Any]) -> None:
            [result] = ns["results"]
            assert result.user_id, result

        return Completion(names, check, server)

    def orders_service(self) -> Completion:
        """A service of one's own guarded by require_session: its generated module and
        its data access are the example's, so stand-ins come from here."""
        server, _ = self.start()
        names = {
            "orders_pb2_grpc": SimpleNamespace(OrdersServicer=object),
            "list_orders_of": lambda user_id: [],
        }

        def check(ns: dict[str, Any]) -> None:
            assert isinstance(ns["server"], grpc.Server)
            assert hasattr(ns["Orders"], "ListOrders")

        return Completion(names, check, server)

    def event_consumer(self) -> Completion:
        """A deleted user's event waits in the stream; the example's loop is ended by its
        own ``save_cursor`` once it handled that event (a consumer runs forever)."""
        server, stub = self.start()
        user = stub.CreateUser(
            pb.CreateUserRequest(
                email="ada@example.com", password=PASSWORD, first_name="A", last_name="L"
            )
        ).user
        stub.DeleteUser(pb.DeleteUserRequest(id=user.id))
        closed: list[str] = []

        class Handled(Exception):
            """Raised by ``save_cursor``: the one event was handled."""

        def save_cursor(cursor: str) -> None:
            assert cursor
            raise Handled

        names = {
            "BILLING_KEY": _live_key(server, "billing-service"),
            "auth": AuthClient(f"127.0.0.1:{server.port}"),
            "load_cursor": lambda: "",
            "already_handled": lambda event_id: False,
            "close_subscriptions": closed.append,
            "handle": lambda event: closed.append(event.user_id),
            "save_cursor": save_cursor,
        }

        def check(ns: dict[str, Any]) -> None:
            assert closed == [user.id]

        return Completion(names, check, server, raises=Handled, after=check)

    def webhook_receiver(self) -> Completion:
        """The receiver accepts a delivery signed with the secret and refuses a forged one."""
        server, _ = self.start()
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.monkeypatch.setenv("AUTHSVC_WEBHOOK_SECRET", secret)
        handled: list[dict[str, Any]] = []
        names = {
            "os": os,
            "already_processed": lambda event_id: False,
            "handle": handled.append,
        }

        def check(ns: dict[str, Any]) -> None:
            body = json.dumps({"id": "e1", "type": "user.created", "data": {}})
            signer = standardwebhooks.Webhook(secret)
            now = datetime.now(UTC)
            headers = {
                "webhook-id": "e1",
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign("e1", now, body),
            }
            assert ns["receive"](body.encode(), headers) == 204
            assert [event["id"] for event in handled] == ["e1"]
            forged = {**headers, "webhook-signature": "v1,Zm9yZ2Vk"}
            assert ns["receive"](body.encode(), forged) == 400

        return Completion(names, check, server)

    def access_token(self) -> Completion:
        """A signed-in user's access token, from a server that signs them."""
        server, stub = self.start(secret_key=SecretKeys.parse(Fernet.generate_key().decode()))
        stub.CreateUser(
            pb.CreateUserRequest(
                email="ada@example.com", password=PASSWORD, first_name="A", last_name="L"
            )
        )
        signed_in = stub.CreateSession(
            pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)
        )
        WATCH.learn(signed_in.access_token)
        names = {"grpc": grpc, "access_token": signed_in.access_token}

        def check(ns: dict[str, Any]) -> None:
            assert ns["who"].session_id == signed_in.session.id
            ns["verifier"].close()

        return Completion(names, check, server)


@sqlite_only
@pytest.mark.parametrize("example", PYTHON_EXAMPLES, ids=lambda b: b.id)
def test_python_example_runs_against_a_live_server(
    example: Block,
    start_server: StartServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    completions = Completions(start_server, tmp_path, monkeypatch)
    completion: Completion = getattr(completions, example.needs or "plain")()
    code = TARGET.sub(f'"127.0.0.1:{completion.server.port}"', example.code)
    namespace: dict[str, Any] = {"__name__": "__doc_example__", **completion.names}
    compiled = compile(code, example.id, "exec")
    try:
        if completion.raises is not None:
            with pytest.raises(completion.raises):
                exec(compiled, namespace)
            if completion.after is not None:
                completion.after(namespace)
        else:
            exec(compiled, namespace)
            completion.check(namespace)
    finally:
        if isinstance(completion.names.get("auth"), AuthClient):
            completion.names["auth"].close()
        for client in ("auth",):
            if isinstance(namespace.get(client), AuthClient):
                namespace[client].close()
        if isinstance(namespace.get("server"), grpc.Server):
            namespace["server"].stop(0)


def test_every_marked_example_has_a_completion_and_the_docs_have_examples() -> None:
    for path in (ROOT / "README.md", ROOT / "clients/python/README.md"):
        assert any(b.path == path for b in PYTHON_EXAMPLES), path
    for example in PYTHON_EXAMPLES:
        if example.needs is not None:
            assert hasattr(Completions, example.needs), example.id


# --- buf curl ---


def buf_curl_commands() -> list[tuple[str, str]]:
    """(command, expected-output comment or "") of every ``buf curl`` in README.md."""
    found: list[tuple[str, str]] = []
    for block in blocks(ROOT / "README.md"):
        if block.language != "sh" or "buf curl" not in block.code:
            continue
        # One command per paragraph (a -d body may span lines inside its quotes).
        for paragraph in block.code.replace("\\\n", " ").split("\n\n"):
            if "buf curl" in paragraph:
                command, _, comment = paragraph.partition("  # ")
                found.append((command.strip(), comment.strip()))
    return found


@sqlite_only
def test_every_buf_curl_example_runs(server_address: str) -> None:
    commands = buf_curl_commands()
    assert commands
    outputs: dict[str, Any] = {}
    for command, comment in commands:

        def placeholder(match: re.Match[str]) -> str:
            field, method = match.group(1), match.group(2)
            return str(outputs[method][re.sub(r"_(\w)", lambda m: m.group(1).upper(), field)])

        filled = re.sub(r"<(\w+) from (\w+)>", placeholder, command)
        filled = filled.replace("http://127.0.0.1:50051", f"http://{server_address}")
        args = shlex.split(filled)
        assert args[:2] == ["npx", "buf"], command
        args = [npm_tool("buf"), *args[2:]]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        if "--list-methods" in args:
            listed = set(result.stdout.split())
            assert {f"authsvc.v1.AuthService/{name}" for name in RPCS} <= listed
            continue
        reply = json.loads(result.stdout)
        outputs[args[-1].rsplit("/", 1)[-1]] = reply
        if comment.startswith("{"):
            assert reply == json.loads(comment), command


# --- Links ---


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(path: Path) -> None:
    prose = "\n".join(prose_lines(path))  # a link's text may wrap onto the next line
    for target in LINK.findall(prose):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: {target} does not exist"
        assert linked.is_relative_to(ROOT), f"{path.name}: {target} is outside the repository"
        if anchor:
            assert anchor in anchors(linked), f"{path.name}: no heading for {target}"


@pytest.mark.parametrize("path", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_path_points_outside_the_repository(path: Path) -> None:
    for line in prose_lines(path):
        for quoted in re.findall(r"`(\.\./[^`]*)`", line):
            resolved = (path.parent / quoted).resolve()
            assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{path.name}: {quoted}"


REPO_PATH = re.compile(
    r"`((?:tests|clients|authsvc|deploy|docs|\.ci|bench|migrations|protos)/[^`\s]*)`"
)
#: Paths the docs name that a build makes (not in a checkout).
BUILT = ("clients/typescript/dist/",)


@pytest.mark.parametrize("path", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_the_docs_name_exists(path: Path) -> None:
    """``tests/...``, ``clients/...`` and the like, named in prose (relative to the
    repository or to the document), exist: moved tests and files are caught."""
    for line in prose_lines(path):
        for named in REPO_PATH.findall(line):
            if named.startswith(BUILT):
                continue
            exists = (ROOT / named).exists() or (path.parent / named).exists()
            assert exists, f"{path.relative_to(ROOT)} names {named}, which does not exist"


# --- The RPCs: README's table and each client, from the proto ---


def rpc_table() -> tuple[list[str], list[list[str]]]:
    """The header and rows of README's "The RPCs" table (which must be one table)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## The RPCs\n", 1)[1].split("\n## ", 1)[0]
    tables: list[list[str]] = [[]]
    for line in section.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 1, "the RPCs section holds rows outside its one table"
    header, separator, *rows = tables[0]
    assert re.fullmatch(r"\|(-+\|)+", separator.replace(" ", "")), separator

    def cells(row: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]

    return cells(header), [cells(row) for row in rows]


def test_the_readme_rpc_table_lists_every_rpc_with_its_access() -> None:
    header, rows = rpc_table()
    assert header[0] == "RPC" and header[-1] == "access", header
    names = [row[0].split()[0] for row in rows]
    assert sorted(names) == sorted(RPCS), "the table and the proto list different RPCs"
    for name, row in zip(names, rows, strict=True):
        privileged = is_privileged(f"/{SERVICE.full_name}/{name}")
        assert row[-1] == ("privileged" if privileged else "open"), name


def test_the_python_client_has_a_method_for_every_rpc_and_its_readme_lists_it() -> None:
    readme = (ROOT / "clients/python/README.md").read_text()
    for name in RPCS:
        method = getattr(AuthClient, snake(name), None)
        assert callable(method), f"AuthClient has no {snake(name)} for {name}"
        assert f"`{snake(name)}`" in readme, f"clients/python/README.md does not list {name}"


def test_the_typescript_client_is_the_generated_service_so_has_every_rpc() -> None:
    index = (ROOT / "clients/typescript/src/index.ts").read_text()
    assert "createClient(AuthService, transport)" in index
    generated = (ROOT / "clients/typescript/src/gen/authsvc/v1/auth_service_pb.ts").read_text()
    for name in RPCS:
        assert f"  {camel(name)}: {{" in generated, name
    readme = (ROOT / "clients/typescript/README.md").read_text()
    assert "a method for\nevery RPC" in readme or "a method for every RPC" in readme


def test_the_go_client_embeds_the_generated_stub_so_has_every_rpc() -> None:
    client = (ROOT / "clients/go/authclient/client.go").read_text()
    assert re.search(r"type Client struct \{\n\tauthsvcv1\.AuthServiceClient\n", client)
    generated = (ROOT / "clients/go/authsvcv1/auth_service_grpc.pb.go").read_text()
    for name in RPCS:
        assert f"\t{name}(ctx context.Context, in *{name}Request" in generated, name
    assert "has a method for\nevery RPC" in (ROOT / "clients/go/README.md").read_text()


def test_the_java_client_reaches_every_rpc_by_method_or_its_documented_call() -> None:
    client = ROOT / "clients/java/src/main/java/com/example/authsvc/client/AuthClient.java"
    source = client.read_text()
    generic = "public <R> R call(Function<AuthServiceGrpc.AuthServiceBlockingStub, R> rpc)"
    documented = "auth.call(stub -> stub." in (ROOT / "clients/java/README.md").read_text()
    # build.sh generates the blocking stub from protos/ on every build: it has every RPC.
    assert "protos" in (ROOT / "clients/java/build.sh").read_text()
    for name in RPCS:
        wrapped = re.search(rf"public \w+ {camel(name)}\(", source) is not None
        assert wrapped or (generic in source and documented), name
