"""The profile declared once (``rules.profile``): every place it reaches agrees with it."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor

from authsvc.rules.events import EVENT_TYPES
from authsvc.rules.profile import PROFILE, UPDATABLE
from authsvc.runtime.user_import import FIELDS
from authsvc.storage.read_model import PROFILE_NAMES
from authsvc_client.v1 import auth_service_pb2 as pb

NAMES = [field.name for field in PROFILE]
README = Path(__file__).parents[2] / "README.md"


def test_the_users_columns_besides_state_and_hash_are_exactly_the_profile():
    assert sorted(PROFILE_NAMES) == sorted(NAMES)


def test_every_profile_field_is_a_text_field_of_each_message_that_carries_a_profile():
    for message in (pb.User, pb.CreateUserRequest, pb.ImportedUser):
        for name in NAMES:
            field = message.DESCRIPTOR.fields_by_name.get(name)
            assert field is not None, f"{message.DESCRIPTOR.name} has no {name}"
            assert field.type == FieldDescriptor.TYPE_STRING


def test_the_import_file_takes_every_profile_field():
    assert set(NAMES) <= set(FIELDS)


def test_the_mask_names_the_fields_in_the_tables_order():
    assert [name for name in NAMES if name in UPDATABLE] == list(UPDATABLE)


def test_sign_up_and_import_events_carry_the_fields_the_table_puts_in_them():
    for name in ("user.created", "user.imported"):
        declared = next(t for t in EVENT_TYPES if t.name == name)
        assert list(declared.data) == ["email", "first_name", "last_name"]


def test_the_readme_names_every_profile_field_where_it_defines_the_profile():
    text = README.read_text()
    paragraph = text[text.index("A user's **profile** is") :].split("\n\n")[0]
    assert [name for name in NAMES if f"`{name}`" not in paragraph] == []
