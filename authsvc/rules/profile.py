"""What a user's profile holds, declared once: ``PROFILE``.

A profile field has one name everywhere: in the messages (``User``,
``CreateUserRequest``, ``ImportedUser``), the ``users`` column, the user view, the
UpdateUser mask and the import file. From this table come the checks of CreateUser,
UpdateUser and ImportUsers (``edge.requests``), the update mask's paths, the row a
sign-up or an import inserts (``rules.users``), the data of ``user.created`` and
``user.imported`` (``rules.events``) and the fields ``authsvc import`` reads. The read
model (``storage.read_model``) takes every column of ``users`` that is neither account
state nor the password hash as the profile; the edge renders the view's profile as is.

A new field is one entry here, its column (``storage.models``, and a migration) and its
field in the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from authsvc.rules import values
from authsvc.rules.values import Email


@dataclass(frozen=True)
class ProfileField:
    """One field of the profile.

    ``check`` normalizes a value or raises ``Rejected``. ``updatable``: UpdateUser's mask
    may name it. ``event_doc``: what ``user.created`` and ``user.imported`` say of it
    (their data carries the field only when it is set).
    """

    name: str
    check: Callable[[str], str]
    updatable: bool = True
    event_doc: str = ""


#: Every profile field, in the order requests are checked and masks are listed.
PROFILE: tuple[ProfileField, ...] = (
    ProfileField("email", values.email, event_doc="The email address."),
    ProfileField("first_name", values.name, event_doc="The first name."),
    ProfileField("last_name", values.name, event_doc="The last name."),
    ProfileField("locale", values.locale),
)

#: The names UpdateUser's mask accepts (besides ``*``).
UPDATABLE: tuple[str, ...] = tuple(f.name for f in PROFILE if f.updatable)

#: The fields of ``user.created`` and ``user.imported``: name → what it is.
EVENT_FIELDS: dict[str, str] = {f.name: f.event_doc for f in PROFILE if f.event_doc}


@dataclass(frozen=True)
class Profile:
    """Who a new user is: the checked value of every field of ``PROFILE``, by name."""

    values: Mapping[str, str]

    @property
    def email(self) -> Email:
        """The email address (checked: trimmed and lower-cased)."""
        return Email(self.values["email"])

    def event_data(self) -> dict[str, str]:
        """The fields as the data of ``user.created`` and ``user.imported``."""
        return {name: self.values[name] for name in EVENT_FIELDS}


@dataclass(frozen=True)
class ProfileChanges:
    """The checked profile fields an update sets, by name; the others stay as they are."""

    values: Mapping[str, str]

    @property
    def email(self) -> Email | None:
        """The new email address, if the update sets one."""
        new = self.values.get("email")
        return None if new is None else Email(new)
