"""The audit vocabulary: one enum, the proto's AuditEventType, the log's event names."""

from __future__ import annotations

from authsvc.rules.audit import AuditEvent
from authsvc_client.v1 import auth_service_pb2 as pb


def test_every_audit_event_has_its_proto_number():
    for event in AuditEvent:
        assert pb.AuditEventType.Value(f"AUDIT_EVENT_TYPE_{event.name}") == event.value, event


def test_the_proto_lists_no_event_the_service_never_records():
    recorded = {f"AUDIT_EVENT_TYPE_{event.name}" for event in AuditEvent}
    assert set(pb.AuditEventType.keys()) - recorded == {"AUDIT_EVENT_TYPE_UNSPECIFIED"}


def test_log_names_are_the_event_names_in_lower_case():
    assert AuditEvent.SIGN_IN_FAILED.log_name == "sign_in_failed"
    assert len({event.log_name for event in AuditEvent}) == len(AuditEvent)
