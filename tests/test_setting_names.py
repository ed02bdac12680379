"""Setting names are written once, in authsvc/setting_names.py, and every layer uses them.

A setting renamed in its declaration must not leave its old name behind in an error
message, a CLI help text or a log line: so no module of authsvc but setting_names spells
out an ``AUTHSVC_`` name in a string (f-strings included; docstrings may mention them),
and each constant there is a declared setting, an old name of one, or a variable that is
documented as no setting.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import authsvc
from authsvc import setting_names
from authsvc.runtime.settings import specs

PACKAGE = Path(authsvc.__file__).parent
NAMES_MODULE = Path(setting_names.__file__)

#: The constants of setting_names that hold a variable's name (not the prefixes).
CONSTANTS = {
    name: value
    for name, value in vars(setting_names).items()
    if isinstance(value, str)
    and value.startswith(setting_names.PREFIX)
    and name not in ("PREFIX", "NOT_SETTINGS_PREFIX")
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module and its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def parse(source: str) -> ast.Module:
    """``ast.parse`` on a thread of its own.

    CPython 3.11's AST constructor checks its recursion depth against the calling
    thread's, and in a pytest-xdist worker that had run deep code before, that check
    failed spuriously ("AST constructor recursion depth mismatch"); a fresh thread starts
    with a shallow stack."""
    parsed: list[ast.Module] = []
    worker = threading.Thread(target=lambda: parsed.append(ast.parse(source)))
    worker.start()
    worker.join()
    if not parsed:
        raise AssertionError("the source did not parse")
    return parsed[0]


def spelled_out_names(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string in ``source``, f-string parts included, that contains
    ``AUTHSVC_``, docstrings excepted."""
    tree = parse(source)
    docstrings = _docstrings(tree)
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and setting_names.PREFIX in node.value
        and id(node) not in docstrings
    )


def test_the_scan_finds_names_in_strings_and_f_strings_but_not_in_docstrings() -> None:
    source = '''
"""Module: AUTHSVC_A."""
def f(x):
    """Function: AUTHSVC_B."""
    log("AUTHSVC_C is off")
    return f"{x} needs AUTHSVC_D" + "ok"
class C:
    """Class: AUTHSVC_E."""
    message = ("a " "AUTHSVC_F")
'''
    found = [text for _line, text in spelled_out_names(source)]
    assert found == ["AUTHSVC_C is off", " needs AUTHSVC_D", "a AUTHSVC_F"]


def test_no_module_but_setting_names_spells_out_a_setting_name() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != NAMES_MODULE
        for line, text in spelled_out_names(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use the constants of authsvc/setting_names.py:\n" + "\n".join(
        offenders
    )


def test_each_constant_holds_its_own_name() -> None:
    assert CONSTANTS
    assert {name: value for name, value in CONSTANTS.items() if name != value} == {}


def test_the_constants_are_exactly_the_declared_settings_and_their_old_names() -> None:
    declared = {name for spec in specs().values() for name in (spec.env, *spec.aliases)}
    assert set(CONSTANTS.values()) == declared


def test_the_variables_that_are_no_settings_are_not_declared_ones() -> None:
    declared = {spec.env for spec in specs().values()}
    exempt = setting_names.NOT_SETTINGS
    assert all(name.startswith(setting_names.PREFIX) for name in exempt)
    assert setting_names.NOT_SETTINGS_PREFIX.startswith(setting_names.PREFIX)
    assert not exempt & (declared | set(CONSTANTS.values()))
    assert not [n for n in declared if n.startswith(setting_names.NOT_SETTINGS_PREFIX)]
