"""``authsvc serve | migrate | health | purge | api-key | webhook | import | mail |
reencrypt-secrets | keys``: the command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.exc import OperationalError

from authsvc.errors import AuthError, InvalidArgument, MfaNotConfigured
from authsvc.flows.access_tokens import AccessTokens
from authsvc.flows.api_keys import ApiKeys
from authsvc.flows.changes import Changes
from authsvc.flows.mail_delivery import MailDelivery
from authsvc.flows.reencryption import Reencryption
from authsvc.flows.webhooks import DeliveryQuery, NewWebhook, Webhooks
from authsvc.rules import mail, signing_keys, webhook_urls, webhooks
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.values import PAGE_SIZE_MAX, Rejected
from authsvc.runtime import health_probe, tls, user_import, workers
from authsvc.runtime.assembly import (
    create_server,
    housekeeping,
    mail_delivery,
    make_hash_capacity,
    token_policy,
)
from authsvc.runtime.assembly import webhooks as webhooks_flow
from authsvc.runtime.command import package_version
from authsvc.runtime.logs import configure_logging
from authsvc.runtime.settings import (
    ConfigError,
    Settings,
    flags,
    load_settings,
    unknown_variables,
)
from authsvc.setting_names import (
    AUTHSVC_ALLOW_UNKNOWN_SETTINGS,
    AUTHSVC_AUDIT_RETENTION,
    AUTHSVC_CALLERS,
    AUTHSVC_JWKS_REFRESH,
    AUTHSVC_MAIL_DELIVERY,
    AUTHSVC_SECRET_KEY,
)
from authsvc.storage import migrate
from authsvc.storage.engine import Database, connection_failure, make_engine
from authsvc.storage.models import utcnow
from authsvc.storage.validation_cache import ValidationCache

log = logging.getLogger("authsvc")


_COMMANDS = {
    "serve": "migrate the schema, then serve gRPC",
    "migrate": "upgrade the database schema and exit",
    "health": "exit 0 when a server reports SERVING",
    "purge": "run the housekeeping of serve's purge timer once: delete expired sessions in "
    f"batches, audit events past {AUTHSVC_AUDIT_RETENTION} and stale throttling state, rotate "
    "a due signing key, and exit",
    "api-key": "create, list or revoke the API keys calling services send as x-api-key",
    "webhook": "add, list or remove webhook endpoints, or show one's deliveries",
    "import": "migrate the schema, then import users (with their old password hashes) from a "
    "JSON-lines file, in batches; safe to run again",
    "mail": f"list the outbox of mail authsvc sends ({AUTHSVC_MAIL_DELIVERY}=smtp), or re-queue "
    "failed mail",
    "reencrypt-secrets": "seal every stored TOTP secret, webhook secret, signing key and "
    f"queued mail's token with the first {AUTHSVC_SECRET_KEY} (after putting a new key first), "
    "and exit",
    "keys": "rotate or list the keys that sign access tokens",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), like a bad setting."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    """A positive number of seconds (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="authsvc", description="gRPC authentication service")
    parser.add_argument("--version", action="version", version=f"authsvc {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, summary in _COMMANDS.items():
        cmd = sub.add_parser(command, help=summary)
        if command not in ("api-key", "webhook", "keys", "mail"):  # their actions take the flags
            _add_flags(cmd, command)
    health = sub.choices["health"]
    health.add_argument("--timeout", type=_seconds, default=3.0, help="seconds to wait")
    _api_key_parser(sub.choices["api-key"])
    _webhook_parser(sub.choices["webhook"])
    _keys_parser(sub.choices["keys"])
    _mail_parser(sub.choices["mail"])
    sub.choices["import"].add_argument(
        "file",
        type=Path,
        help=f"JSON lines, one user each: {', '.join(user_import.FIELDS)}",
    )
    return parser


def _add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    for name, flag, spec in flags(command):
        parser.add_argument(flag, dest=name, help=f"{spec.doc} ({spec.env})")


def _api_key_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("name", help=f"the caller identity the key stands for in {AUTHSVC_CALLERS}")
    listing = actions.add_parser("list", help="list keys: id, name, times; never the keys")
    revoke = actions.add_parser("revoke", help="revoke every live key of NAME, or one by --id")
    for action in (create, listing, revoke):
        _add_flags(action, "api-key")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?", help="revoke every live key with this name")
    target.add_argument("--id", dest="key_id", help="revoke only the key with this id")


def _webhook_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an endpoint and print its secret (shown only once)")
    add.add_argument("url", help="the http(s) URL events are POSTed to")
    add.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        help="send only events of this type (repeat it; none: every type)",
    )
    listing = actions.add_parser("list", help="list endpoints: id, state, URL, types")
    remove = actions.add_parser("remove", help="remove an endpoint (its pending deliveries too)")
    remove.add_argument("id", help="the endpoint's id")
    deliveries = actions.add_parser(
        "deliveries", help="show an endpoint's deliveries, newest first"
    )
    deliveries.add_argument("id", help="the endpoint's id")
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many (1 to 1000)")
    for action in (add, listing, remove, deliveries):
        _add_flags(action, "webhook")


def _keys_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser(
        "rotate",
        help="publish a new signing key now; it signs one access-token TTL plus "
        f"{AUTHSVC_JWKS_REFRESH} later (at once when no key signs yet)",
    )
    listing = actions.add_parser("list", help="list signing keys: kid, published, signs from")
    for action in (rotate, listing):
        _add_flags(action, "keys")


def _mail_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest mails: id, status, kind, recipient")
    listing.add_argument(
        "--status",
        type=_mail_status,
        help=f"only mails in this status ({', '.join(mail.STATUSES)})",
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    retry = actions.add_parser("retry", help="re-queue failed (or queued) mails: due now")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("ids", nargs="*", default=[], help="the ids of the mails to re-queue")
    target.add_argument("--failed", action="store_true", help="re-queue every failed mail")
    for action in (listing, retry):
        _add_flags(action, "mail")


def _mail_status(text: str) -> str:
    if text not in mail.STATUSES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(mail.STATUSES)}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a subcommand; a bad setting is a one-line error and exit status 2."""
    args = _parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name, _, _ in flags(args.command)}
    try:
        settings = load_settings(overrides=overrides)
    except ConfigError as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    for problem in unknown_variables():  # allowed: AUTHSVC_ALLOW_UNKNOWN_SETTINGS=true
        log.warning("%s; starting anyway (%s=true)", problem, AUTHSVC_ALLOW_UNKNOWN_SETTINGS)
    commands = {
        "serve": serve,
        "migrate": run_migrate,
        "health": check_health,
        "purge": run_purge,
        "api-key": run_api_key,
        "webhook": run_webhook,
        "import": run_import,
        "reencrypt-secrets": run_reencrypt,
        "keys": run_keys,
        "mail": run_mail,
    }
    try:
        return commands[args.command](settings, args)
    except OperationalError as exc:  # the database is unreachable: one line, no traceback
        print(f"authsvc: {_failure(args.command, settings, exc)}", file=sys.stderr)
        return 1


def run_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Upgrades the schema to the newest revision."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: {_failure('migration', settings, exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _failure(what: str, settings: Settings, error: Exception) -> str:
    """One line for a command that failed: where the database connection failed and why,
    or else the kind of error and the first line of its text."""
    found = connection_failure(settings.database_url, error)
    if found is not None:
        return found
    first = str(error).strip().split("\n", 1)[0]
    return f"{what} failed: {type(error).__name__}: {first}"


@contextmanager
def _changes(settings: Settings) -> Iterator[Changes]:
    """The audited change of a command, on a database of its own (closed after): no
    validation cache, as servers learn of its writes through their invalidation."""
    db = Database(make_engine(settings.database_url))
    try:
        yield Changes(db, ValidationCache(0), utcnow, settings.access_token_ttl)
    finally:
        db.dispose()


def run_purge(settings: Settings, _args: argparse.Namespace) -> int:
    """Runs the housekeeping once, as serve's purge timer does (``flows.housekeeping``):
    rotates a due signing key, deletes expired sessions (a batch per transaction),
    tokens, old audit events and stale throttling state, and prints how many."""
    try:
        with _changes(settings) as changes:
            tokens = AccessTokens(changes, settings.secret_key, token_policy(settings))
            done = housekeeping(settings, changes, tokens).purge()
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: {_failure('purge', settings, exc)}", file=sys.stderr)
        return 1
    print(f"purged {done.sessions} expired sessions")
    print(f"purged {done.user_tokens} expired reset and verification tokens")
    print(f"purged {done.audit_events} audit events and {done.throttle_rows} throttling rows")
    print(f"purged {done.ceremonies} expired challenges and unconfirmed TOTP enrolments")
    print(f"purged {done.webhook_deliveries} finished webhook deliveries")
    print(f"purged {done.revocations} expired revocations")
    print(f"purged {done.mails} mails sent or failed before the audit retention")
    print(f"purged {done.events} account events and {done.signing_keys} retired signing keys")
    return 0


def run_reencrypt(settings: Settings, _args: argparse.Namespace) -> int:
    """Seals every TOTP secret, webhook secret, signing key and queued mail's token again
    with the first key, in one audited change (``flows.reencryption``)."""
    try:
        with _changes(settings) as changes:
            done = Reencryption(changes, settings.secret_key).reseal_all()
    except MfaNotConfigured as exc:
        print(f"authsvc: {exc.message}", file=sys.stderr)
        return 1
    print(f"sealed {done.totp_secrets} TOTP secrets with the first key")
    print(f"sealed {done.webhook_secrets} webhook signing secrets with the first key")
    print(f"sealed {done.signing_keys} signing keys with the first key")
    print(f"sealed {done.mail_tokens} tokens of queued mail with the first key")
    return 0


def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    """``keys rotate | list``, after upgrading the schema. Exit status 1 on failure
    (``rotate`` without AUTHSVC_SECRET_KEY)."""
    if args.action == "rotate" and not settings.secret_key.configured:
        print(
            f"authsvc: keys rotate: signing keys are stored sealed: set {AUTHSVC_SECRET_KEY}",
            file=sys.stderr,
        )
        return 1
    if (status := run_migrate(settings, args)) != 0:
        return status
    try:
        with _changes(settings) as changes:
            _keys(changes, settings, args.action)
    except MfaNotConfigured as exc:
        print(f"authsvc: keys {args.action}: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: keys {args.action} failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


def _keys(changes: Changes, settings: Settings, action: str) -> None:
    if action == "rotate":
        key = AccessTokens(changes, settings.secret_key, token_policy(settings)).rotate()
        print(f"published signing key {key.kid}; it signs from {_when(key.signs_from)}")
        return
    with changes.read() as tx:
        rows = sorted(signing_keys.all_keys(tx), key=lambda k: k.signs_from)
    print(f"{'KID':43}  {'PUBLISHED':20}  SIGNS FROM")
    for k in rows:
        print(f"{k.kid:43}  {_when(k.published_at):20}  {_when(k.signs_from)}")


def run_api_key(settings: Settings, args: argparse.Namespace) -> int:
    """``api-key create NAME | list | revoke (NAME | --id ID)``, after upgrading the schema.

    ``create`` prints the key alone on stdout (``KEY=$(authsvc api-key create x)``);
    everything else goes to stderr. Exit status 1 when nothing matched or it failed,
    2 for a bad name or id.
    """
    if (status := run_migrate(settings, args)) != 0:
        return status
    actions = {"create": _create_key, "list": _list_keys, "revoke": _revoke_keys}
    try:
        with _changes(settings) as changes:
            return actions[args.action](ApiKeys(changes, settings.api_key_cache_ttl), args)
    except Rejected as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: api-key {args.action} failed: {type(exc).__name__}", file=sys.stderr)
        return 1


def _create_key(keys: ApiKeys, args: argparse.Namespace) -> int:
    try:
        record, key = keys.create(args.name)
    except Rejected as exc:
        raise Rejected(f"api-key name {args.name!r} {exc}") from None
    print(key)
    print(
        f"created API key {record.name!r} (id {record.id}). It is shown only this once: "
        f"give it to the calling service now (x-api-key), and name {record.name!r} in "
        f"{AUTHSVC_CALLERS}.",
        file=sys.stderr,
    )
    return 0


def _list_keys(keys: ApiKeys, _args: argparse.Namespace) -> int:
    records = keys.list_all()
    print(f"{'ID':36}  {'NAME':24}  {'CREATED':20}  {'LAST USED':20}  REVOKED")
    for r in records:
        times = (_when(r.created_at), _when(r.last_used_at), _when(r.revoked_at))
        print(f"{r.id!s:36}  {r.name:24}  {times[0]:20}  {times[1]:20}  {times[2]}")
    return 0


def _revoke_keys(keys: ApiKeys, args: argparse.Namespace) -> int:
    if args.key_id is not None:
        try:
            key_id = uuid.UUID(args.key_id)
        except ValueError:
            raise Rejected(f"--id {args.key_id!r} is not a key id (a UUID)") from None
        revoked = keys.revoke(key_id=key_id)
    else:
        revoked = keys.revoke(name=args.name)
    for record in revoked:
        print(f"revoked API key {record.name!r} (id {record.id})", file=sys.stderr)
    if not revoked:
        wanted = f"id {args.key_id}" if args.key_id is not None else f"name {args.name!r}"
        print(f"authsvc: no live API key has {wanted}", file=sys.stderr)
        return 1
    return 0


def run_mail(settings: Settings, args: argparse.Namespace) -> int:
    """``mail list [--status S] [--limit N] | retry (ID... | --failed)``, after upgrading
    the schema. Exit status 1 when retry matched nothing, 2 for a bad id."""
    if (status := run_migrate(settings, args)) != 0:
        return status
    try:
        with _changes(settings) as changes:
            delivery = mail_delivery(settings, changes)
            if args.action == "list":
                return _list_mail(delivery, args)
            return _retry_mail(delivery, args)
    except Rejected as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2


def _list_mail(delivery: MailDelivery, args: argparse.Namespace) -> int:
    print(f"{'ID':36}  {'STATUS':6}  {'KIND':25}  {'QUEUED':20}  {'TRIES':5}  RECIPIENT / ERROR")
    for m in delivery.listing(args.status, max(1, args.limit)):
        due = f" next {_when(m.next_attempt_at)}" if m.status == mail.QUEUED else ""
        error = f"  {m.last_error}" if m.last_error else ""
        print(
            f"{m.id!s:36}  {m.status:6}  {m.kind:25}  {_when(m.queued_at):20}  "
            f"{m.attempts:5}  {m.recipient}{due}{error}"
        )
    return 0


def _retry_mail(delivery: MailDelivery, args: argparse.Namespace) -> int:
    ids = []
    for text in args.ids:
        try:
            ids.append(uuid.UUID(text))
        except ValueError:
            raise Rejected(f"{text!r} is not a mail id (a UUID)") from None
    count = delivery.retry(ids, every_failed=args.failed)
    print(f"re-queued {count} mails", file=sys.stderr)
    return 0 if count else 1


def _when(time: datetime | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ") if time is not None else "-"


def run_webhook(settings: Settings, args: argparse.Namespace) -> int:
    """``webhook add URL [--type T ...] | list | remove ID | deliveries ID``, after
    upgrading the schema.

    ``add`` prints the secret alone on stdout (``SECRET=$(authsvc webhook add ...)``);
    its id goes to stderr. Exit status 1 when it failed or nothing matched, 2 for a bad
    argument.
    """
    if (status := run_migrate(settings, args)) != 0:
        return status
    actions = {
        "add": _add_webhook,
        "list": _list_webhooks,
        "remove": _remove_webhook,
        "deliveries": _show_deliveries,
    }
    try:
        with _changes(settings) as changes:
            return actions[args.action](webhooks_flow(settings, changes), args)
    except (Rejected, InvalidArgument) as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    except AuthError as exc:  # not found, not configured
        print(f"authsvc: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: webhook {args.action} failed: {type(exc).__name__}", file=sys.stderr)
        return 1


def _add_webhook(hooks: Webhooks, args: argparse.Namespace) -> int:
    try:
        webhook_urls.parse(args.url)
    except Rejected as exc:
        raise Rejected(f"URL {args.url!r} {exc}") from None
    try:
        types = webhooks.event_types(args.types)
    except Rejected as exc:
        raise Rejected(f"--type: {exc}") from None
    created, secret = hooks.create(NewWebhook(args.url, types))
    print(secret)
    print(
        f"added webhook {created.id} for {created.url}. Its signing secret is shown only "
        "this once: give it to the receiver's Standard Webhooks verifier now.",
        file=sys.stderr,
    )
    return 0


def _list_webhooks(hooks: Webhooks, _args: argparse.Namespace) -> int:
    print(f"{'ID':36}  {'STATE':8}  {'CREATED':20}  URL  TYPES")
    for w in hooks.list_all():
        types = ",".join(w.types) or "*"
        print(f"{w.id!s:36}  {w.state:8}  {_when(w.created_at):20}  {w.url}  {types}")
    return 0


def _remove_webhook(hooks: Webhooks, args: argparse.Namespace) -> int:
    removed = hooks.delete(_webhook_id(args.id))
    print(f"removed webhook {removed.id} ({removed.url})", file=sys.stderr)
    return 0


def _show_deliveries(hooks: Webhooks, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= PAGE_SIZE_MAX:
        raise Rejected(f"--limit must be 1 to {PAGE_SIZE_MAX}")
    page = hooks.deliveries(DeliveryQuery(_webhook_id(args.id), args.limit))
    print(
        f"{'EVENT':36}  {'TYPE':24}  {'STATE':9}  {'TRIES':5}  {'LAST TRY':20}  "
        f"{'NEXT TRY':20}  {'STATUS':6}  ERROR"
    )
    for d in page.items:
        tries = (_when(d.last_attempt_at), _when(d.next_attempt_at))
        print(
            f"{d.event_id!s:36}  {d.event_type:24}  {d.state:9}  {d.attempts:5}  "
            f"{tries[0]:20}  {tries[1]:20}  {d.last_status_code or '-'!s:6}  {d.last_error or '-'}"
        )
    return 0


def _webhook_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Rejected(f"{text!r} is not a webhook id (a UUID)") from None


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    """Migrates, then imports the users of ``args.file``; prints the counts and every
    refused line. Exits 0 when each user was imported or existed already, 1 otherwise."""
    if (status := run_migrate(settings, args)) != 0:
        return status
    # One statement line per batch would bury the progress line (they are INFO).
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    db = Database(make_engine(settings.database_url))
    try:
        tally = user_import.import_file(db, args.file, settings.import_batch_size)
    except OSError as exc:
        print(f"authsvc: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except user_import.Interrupted as exc:  # report, don't dump a traceback at the operator
        print(exc.tally.summary())
        print(
            f"authsvc: import {exc}; the lines before it are imported: run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 1
    finally:
        db.dispose()
    print(tally.summary())
    for number, why in tally.refused:
        print(f"line {number}: {why}")
    return 1 if tally.refused else 0


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Migrates once, then serves (in ``worker_count`` processes) until SIGTERM/SIGINT.

    Draining lets calls in flight finish; the exit status is then 0. A port someone else
    holds is a one-line error and status 2, found before the database is touched.
    """
    try:
        workers.check_port_free(settings.address)
    except RuntimeError as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    if (status := run_migrate(settings, args)) != 0:
        return status
    if settings.worker_count == 1:
        return serve_process(settings)
    # Made before the fork, so every worker shares the replica's hash slots.
    capacity = make_hash_capacity(settings, processes=settings.worker_count)

    def run_worker(worker_settings: Settings, slot: int) -> int:
        return serve_process(worker_settings, worker=True, capacity=capacity.for_process(slot))

    try:
        return workers.serve_workers(settings, run_worker, on_exit=capacity.reclaim)
    except RuntimeError as exc:  # the port was taken since the check above
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2


def serve_process(
    settings: Settings, *, worker: bool = False, capacity: HashCapacity | None = None
) -> int:
    """Serves in this process until SIGTERM/SIGINT, then drains calls in flight.

    ``capacity``: the replica's hash slots when this is one of its workers.
    """
    try:
        server, port = create_server(settings, worker=worker, hash_capacity=capacity)
    except RuntimeError as exc:  # an address that cannot be bound (gRPC's or the metrics')
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: draining", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not worker:
        log.info("authsvc listening on %s (port %d)", settings.address, port)
    stopping.wait()
    server.stop(settings.grace_period.total_seconds())
    log.info("stopped")
    return 0


def check_health(settings: Settings, args: argparse.Namespace) -> int:
    """Exits 0 when the server at ``--address`` answers SERVING, 1 otherwise.

    Speaks TLS when a CA or certificate is set (see ``authsvc.tls.open_channel``). A
    failure says why on stderr (refused, timeout, TLS expected or not, client certificate).
    """
    try:
        with health_probe.quiet_grpc_core(), tls.open_channel(settings, settings.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
    except grpc.RpcError as exc:
        why = health_probe.explain(settings, exc, args.timeout)
        print(f"authsvc: health check failed: {why}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
