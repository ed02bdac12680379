"""The scenarios of issue 4, as data: which server, which settings, which load."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.burst import Burst
from bench.load import Stream

SMALL, LARGE = "small", "large"


@dataclass(frozen=True)
class Scenario:
    """One measured run: a server (``empty`` or ``authsvc``), its settings, its load."""

    name: str
    label: str
    server: str
    streams: tuple[Stream, ...]
    settings: dict[str, str] = field(default_factory=dict)
    size: str = SMALL  # which population the tokens come from
    burst: Burst | None = None  # sign-ups then sign-ins all at once, beside the streams


@dataclass(frozen=True)
class Load:
    """The knobs every scenario is built from."""

    in_flight: int
    paced_rate: float
    sign_in_in_flight: int
    cache_size: int
    burst_calls: int = 50


def all_scenarios(load: Load, small: int, large: int) -> list[Scenario]:
    """Every scenario, in the order they run (the population grows once, before ``large``)."""
    closed = (Stream(load.in_flight),)
    paced = Stream(max(4, load.in_flight // 2), rate=load.paced_rate)
    one, no_cache = {"AUTHSVC_WORKERS": "1"}, {"AUTHSVC_VALIDATION_CACHE": "0"}
    cache = {"AUTHSVC_VALIDATION_CACHE": str(load.cache_size)}
    s, big = _count(small), _count(large)
    return [
        Scenario("baseline", "Empty ValidateToken (baseline)", "empty", closed),
        Scenario(
            "validate", f"ValidateToken, {s} sessions, no cache", "authsvc", closed, one | no_cache
        ),
        Scenario(
            "validate-cache", f"ValidateToken, {s} sessions, cache", "authsvc", closed, one | cache
        ),
        Scenario(
            "validate-workers2",
            f"ValidateToken, {s} sessions, no cache, 2 workers",
            "authsvc",
            closed,
            {"AUTHSVC_WORKERS": "2"} | no_cache,
        ),
        Scenario(
            "validate-paced",
            f"ValidateToken at {load.paced_rate:g}/s",
            "authsvc",
            (paced,),
        ),
        Scenario(
            "storm",
            f"Sign-in storm ({load.sign_in_in_flight} in flight)"
            f" + ValidateToken at {load.paced_rate:g}/s",
            "authsvc",
            (Stream(load.sign_in_in_flight, validate_share=0.0), paced),
        ),
        Scenario(
            "mix",
            "95/5 ValidateToken/CreateSession",
            "authsvc",
            # Paced at run time (cli._paced_mix), once the raw hash rate is known; enough
            # slots that sign-ins waiting on a hash never hold up the validations.
            (Stream(32, 0.95),),
        ),
        Scenario(
            "burst-alone",
            f"Burst of {load.burst_calls} sign-ups then {load.burst_calls} sign-ins from one"
            " channel, alone",
            "authsvc",
            (),
            burst=Burst(load.burst_calls, channels=1),
        ),
        Scenario(
            "burst-channels-alone",
            f"The same burst from {load.burst_calls} channels, alone",
            "authsvc",
            (),
            burst=Burst(load.burst_calls, channels=load.burst_calls),
        ),
        Scenario(
            "burst",
            f"Burst of {load.burst_calls} sign-ups then {load.burst_calls} sign-ins from one"
            f" channel + ValidateToken at {load.paced_rate:g}/s",
            "authsvc",
            (paced,),
            burst=Burst(load.burst_calls, channels=1),
        ),
        Scenario(
            "burst-channels",
            f"The same burst from {load.burst_calls} channels"
            f" + ValidateToken at {load.paced_rate:g}/s",
            "authsvc",
            (paced,),
            burst=Burst(load.burst_calls, channels=load.burst_calls),
        ),
        Scenario(
            "validate-large",
            f"ValidateToken, {big} sessions, no cache",
            "authsvc",
            closed,
            one | no_cache,
            LARGE,
        ),
        Scenario(
            "validate-large-cache",
            f"ValidateToken, {big} sessions, cache",
            "authsvc",
            closed,
            one | cache,
            LARGE,
        ),
        Scenario(
            "baseline-end", "Empty ValidateToken (baseline, again at the end)", "empty", closed
        ),
    ]


def _count(n: int) -> str:
    exponent = len(str(n)) - 1
    return f"10^{exponent}" if n == 10**exponent else f"{n:,}"
