"""Importing users from another system, with their old password hashes.

One batch is one transaction: the users that can be imported are inserted together
(an email registered already is skipped by the unique index, not an error), and one
audit event counts them. The users refused while parsing come in as their errors and
go out unchanged, in place, so the caller gets one result per user in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from authsvc.errors import AuthError, EmailTaken
from authsvc.flows.changes import Changes, Who
from authsvc.rules import users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.users import ImportedUser

#: One user's outcome: the new user's id, or why it was not imported.
Outcome = uuid.UUID | AuthError


class Importing:
    """ImportUsers (and ``authsvc import``, which runs the same flow)."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def import_users(self, batch: Sequence[ImportedUser | AuthError]) -> list[Outcome]:
        """Imports the checked users of ``batch``; one outcome per entry, in order.

        An entry that is already an error (refused while parsing) stays as it is; a user
        whose email is registered gets EmailTaken, so running an import again reports
        the users it brought before instead of duplicating them. Raises only what the
        database raises (the whole batch is then rolled back).
        """
        valid = [(i, user) for i, user in enumerate(batch) if isinstance(user, ImportedUser)]
        if not valid:
            return [u for u in batch if isinstance(u, AuthError)]
        with self._changes.open() as change:
            ids = users.insert_imported(change.db, [user for _, user in valid], change.now)
            imported = sum(1 for new_id in ids if new_id is not None)
            if imported:
                detail = f"imported {imported} of {len(batch)} users"
                change.audit(AuditEvent.USERS_IMPORTED, detail=detail, count=str(imported))
            for (_, user), new_id in zip(valid, ids, strict=True):
                if new_id is not None:
                    change.event("user.imported", Who(new_id), **user.profile.event_data())
        new_ids = {i: new_id for (i, _), new_id in zip(valid, ids, strict=True)}
        taken = EmailTaken()  # the insert skipped it: the email was registered
        return [u if isinstance(u, AuthError) else new_ids[i] or taken for i, u in enumerate(batch)]
