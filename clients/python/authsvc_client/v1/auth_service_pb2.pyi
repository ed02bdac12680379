import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USER_STATE_UNSPECIFIED: _ClassVar[UserState]
    USER_STATE_ACTIVE: _ClassVar[UserState]
    USER_STATE_DISABLED: _ClassVar[UserState]

class AuditEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_EVENT_TYPE_UNSPECIFIED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SIGN_IN_SUCCEEDED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SIGN_IN_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SIGN_IN_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SESSION_REFRESHED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_REFRESH_TOKEN_REUSED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SIGNED_OUT: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_CHANGED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_CHANGE_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_CHANGE_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USER_CREATED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USER_DELETED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_CALLER_DENIED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_RESET_STARTED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_RESET_COMPLETED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_RESET_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_RESET_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_EMAIL_VERIFICATION_STARTED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_EMAIL_VERIFIED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_EMAIL_VERIFICATION_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USER_DISABLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USER_ENABLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SESSION_REVOKED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USER_SESSIONS_REVOKED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSWORD_SET: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_EMAIL_VERIFICATION_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_API_KEY_CREATED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_API_KEY_REVOKED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_API_KEY_REJECTED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USERS_IMPORTED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_TOTP_ENROLLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_TOTP_REMOVED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_TOTP_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_TOTP_REPLAYED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_TOTP_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_RECOVERY_CODE_USED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SECOND_FACTOR_CHALLENGED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SIGN_IN_COMPLETED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SESSION_REAUTHENTICATED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_REAUTHENTICATION_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_REAUTHENTICATION_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSKEY_REGISTERED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSKEY_REMOVED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSKEY_SIGN_IN_SUCCEEDED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSKEY_SIGN_IN_FAILED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PASSKEY_COUNTER_REGRESSED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_TOTP_ENROLLMENT_STARTED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SIGN_UP_THROTTLED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_USER_UPDATED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_WEBHOOK_CREATED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_WEBHOOK_DELETED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_DATA_PURGED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_SECRETS_REENCRYPTED: _ClassVar[AuditEventType]

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_ARGUMENT: _ClassVar[ErrorReason]
    ERROR_REASON_EMAIL_TAKEN: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_CREDENTIALS: _ClassVar[ErrorReason]
    ERROR_REASON_TOKEN_INVALID: _ClassVar[ErrorReason]
    ERROR_REASON_TOKEN_EXPIRED: _ClassVar[ErrorReason]
    ERROR_REASON_REFRESH_TOKEN_REUSED: _ClassVar[ErrorReason]
    ERROR_REASON_TOO_MANY_ATTEMPTS: _ClassVar[ErrorReason]
    ERROR_REASON_USER_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_OVERLOADED: _ClassVar[ErrorReason]
    ERROR_REASON_DEADLINE_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_CALLER_NOT_ALLOWED: _ClassVar[ErrorReason]
    ERROR_REASON_DATABASE_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_EMAIL_NOT_VERIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_USER_DISABLED: _ClassVar[ErrorReason]
    ERROR_REASON_SESSION_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_API_KEY_INVALID: _ClassVar[ErrorReason]
    ERROR_REASON_UNSUPPORTED_HASH_FORMAT: _ClassVar[ErrorReason]
    ERROR_REASON_REAUTHENTICATION_REQUIRED: _ClassVar[ErrorReason]
    ERROR_REASON_MFA_NOT_CONFIGURED: _ClassVar[ErrorReason]
    ERROR_REASON_CHALLENGE_INVALID: _ClassVar[ErrorReason]
    ERROR_REASON_CODE_INVALID: _ClassVar[ErrorReason]
    ERROR_REASON_TOTP_ALREADY_ENROLLED: _ClassVar[ErrorReason]
    ERROR_REASON_TOTP_NOT_ENROLLED: _ClassVar[ErrorReason]
    ERROR_REASON_PASSKEY_INVALID: _ClassVar[ErrorReason]
    ERROR_REASON_CLONED_AUTHENTICATOR: _ClassVar[ErrorReason]
    ERROR_REASON_PASSKEY_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_CURSOR_EXPIRED: _ClassVar[ErrorReason]
    ERROR_REASON_WEBHOOK_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_WEBHOOKS_NOT_CONFIGURED: _ClassVar[ErrorReason]

class AuthenticationMethodType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHENTICATION_METHOD_TYPE_UNSPECIFIED: _ClassVar[AuthenticationMethodType]
    AUTHENTICATION_METHOD_TYPE_PASSWORD: _ClassVar[AuthenticationMethodType]
    AUTHENTICATION_METHOD_TYPE_TOTP: _ClassVar[AuthenticationMethodType]
    AUTHENTICATION_METHOD_TYPE_RECOVERY_CODE: _ClassVar[AuthenticationMethodType]
    AUTHENTICATION_METHOD_TYPE_PASSKEY: _ClassVar[AuthenticationMethodType]
    AUTHENTICATION_METHOD_TYPE_RESET: _ClassVar[AuthenticationMethodType]

class AssuranceLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSURANCE_LEVEL_UNSPECIFIED: _ClassVar[AssuranceLevel]
    ASSURANCE_LEVEL_AAL1: _ClassVar[AssuranceLevel]
    ASSURANCE_LEVEL_AAL2: _ClassVar[AssuranceLevel]

class SecondFactor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECOND_FACTOR_UNSPECIFIED: _ClassVar[SecondFactor]
    SECOND_FACTOR_TOTP: _ClassVar[SecondFactor]
    SECOND_FACTOR_RECOVERY_CODE: _ClassVar[SecondFactor]
    SECOND_FACTOR_PASSKEY: _ClassVar[SecondFactor]

class ActorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTOR_KIND_UNSPECIFIED: _ClassVar[ActorKind]
    ACTOR_KIND_USER: _ClassVar[ActorKind]
    ACTOR_KIND_API_KEY: _ClassVar[ActorKind]
    ACTOR_KIND_MTLS: _ClassVar[ActorKind]
    ACTOR_KIND_SYSTEM: _ClassVar[ActorKind]
    ACTOR_KIND_CALLER: _ClassVar[ActorKind]

class WebhookState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_STATE_UNSPECIFIED: _ClassVar[WebhookState]
    WEBHOOK_STATE_ACTIVE: _ClassVar[WebhookState]
    WEBHOOK_STATE_FAILING: _ClassVar[WebhookState]

class WebhookDeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_DELIVERY_STATE_UNSPECIFIED: _ClassVar[WebhookDeliveryState]
    WEBHOOK_DELIVERY_STATE_PENDING: _ClassVar[WebhookDeliveryState]
    WEBHOOK_DELIVERY_STATE_DELIVERED: _ClassVar[WebhookDeliveryState]
    WEBHOOK_DELIVERY_STATE_FAILED: _ClassVar[WebhookDeliveryState]
USER_STATE_UNSPECIFIED: UserState
USER_STATE_ACTIVE: UserState
USER_STATE_DISABLED: UserState
AUDIT_EVENT_TYPE_UNSPECIFIED: AuditEventType
AUDIT_EVENT_TYPE_SIGN_IN_SUCCEEDED: AuditEventType
AUDIT_EVENT_TYPE_SIGN_IN_FAILED: AuditEventType
AUDIT_EVENT_TYPE_SIGN_IN_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_SESSION_REFRESHED: AuditEventType
AUDIT_EVENT_TYPE_REFRESH_TOKEN_REUSED: AuditEventType
AUDIT_EVENT_TYPE_SIGNED_OUT: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_CHANGED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_CHANGE_FAILED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_CHANGE_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_USER_CREATED: AuditEventType
AUDIT_EVENT_TYPE_USER_DELETED: AuditEventType
AUDIT_EVENT_TYPE_CALLER_DENIED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_RESET_STARTED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_RESET_COMPLETED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_RESET_FAILED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_RESET_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_EMAIL_VERIFICATION_STARTED: AuditEventType
AUDIT_EVENT_TYPE_EMAIL_VERIFIED: AuditEventType
AUDIT_EVENT_TYPE_EMAIL_VERIFICATION_FAILED: AuditEventType
AUDIT_EVENT_TYPE_USER_DISABLED: AuditEventType
AUDIT_EVENT_TYPE_USER_ENABLED: AuditEventType
AUDIT_EVENT_TYPE_SESSION_REVOKED: AuditEventType
AUDIT_EVENT_TYPE_USER_SESSIONS_REVOKED: AuditEventType
AUDIT_EVENT_TYPE_PASSWORD_SET: AuditEventType
AUDIT_EVENT_TYPE_EMAIL_VERIFICATION_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_API_KEY_CREATED: AuditEventType
AUDIT_EVENT_TYPE_API_KEY_REVOKED: AuditEventType
AUDIT_EVENT_TYPE_API_KEY_REJECTED: AuditEventType
AUDIT_EVENT_TYPE_USERS_IMPORTED: AuditEventType
AUDIT_EVENT_TYPE_TOTP_ENROLLED: AuditEventType
AUDIT_EVENT_TYPE_TOTP_REMOVED: AuditEventType
AUDIT_EVENT_TYPE_TOTP_FAILED: AuditEventType
AUDIT_EVENT_TYPE_TOTP_REPLAYED: AuditEventType
AUDIT_EVENT_TYPE_TOTP_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_RECOVERY_CODE_USED: AuditEventType
AUDIT_EVENT_TYPE_SECOND_FACTOR_CHALLENGED: AuditEventType
AUDIT_EVENT_TYPE_SIGN_IN_COMPLETED: AuditEventType
AUDIT_EVENT_TYPE_SESSION_REAUTHENTICATED: AuditEventType
AUDIT_EVENT_TYPE_REAUTHENTICATION_FAILED: AuditEventType
AUDIT_EVENT_TYPE_REAUTHENTICATION_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_PASSKEY_REGISTERED: AuditEventType
AUDIT_EVENT_TYPE_PASSKEY_REMOVED: AuditEventType
AUDIT_EVENT_TYPE_PASSKEY_SIGN_IN_SUCCEEDED: AuditEventType
AUDIT_EVENT_TYPE_PASSKEY_SIGN_IN_FAILED: AuditEventType
AUDIT_EVENT_TYPE_PASSKEY_COUNTER_REGRESSED: AuditEventType
AUDIT_EVENT_TYPE_TOTP_ENROLLMENT_STARTED: AuditEventType
AUDIT_EVENT_TYPE_SIGN_UP_THROTTLED: AuditEventType
AUDIT_EVENT_TYPE_USER_UPDATED: AuditEventType
AUDIT_EVENT_TYPE_WEBHOOK_CREATED: AuditEventType
AUDIT_EVENT_TYPE_WEBHOOK_DELETED: AuditEventType
AUDIT_EVENT_TYPE_DATA_PURGED: AuditEventType
AUDIT_EVENT_TYPE_SECRETS_REENCRYPTED: AuditEventType
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_ARGUMENT: ErrorReason
ERROR_REASON_EMAIL_TAKEN: ErrorReason
ERROR_REASON_INVALID_CREDENTIALS: ErrorReason
ERROR_REASON_TOKEN_INVALID: ErrorReason
ERROR_REASON_TOKEN_EXPIRED: ErrorReason
ERROR_REASON_REFRESH_TOKEN_REUSED: ErrorReason
ERROR_REASON_TOO_MANY_ATTEMPTS: ErrorReason
ERROR_REASON_USER_NOT_FOUND: ErrorReason
ERROR_REASON_OVERLOADED: ErrorReason
ERROR_REASON_DEADLINE_EXCEEDED: ErrorReason
ERROR_REASON_CALLER_NOT_ALLOWED: ErrorReason
ERROR_REASON_DATABASE_UNAVAILABLE: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_EMAIL_NOT_VERIFIED: ErrorReason
ERROR_REASON_USER_DISABLED: ErrorReason
ERROR_REASON_SESSION_NOT_FOUND: ErrorReason
ERROR_REASON_API_KEY_INVALID: ErrorReason
ERROR_REASON_UNSUPPORTED_HASH_FORMAT: ErrorReason
ERROR_REASON_REAUTHENTICATION_REQUIRED: ErrorReason
ERROR_REASON_MFA_NOT_CONFIGURED: ErrorReason
ERROR_REASON_CHALLENGE_INVALID: ErrorReason
ERROR_REASON_CODE_INVALID: ErrorReason
ERROR_REASON_TOTP_ALREADY_ENROLLED: ErrorReason
ERROR_REASON_TOTP_NOT_ENROLLED: ErrorReason
ERROR_REASON_PASSKEY_INVALID: ErrorReason
ERROR_REASON_CLONED_AUTHENTICATOR: ErrorReason
ERROR_REASON_PASSKEY_NOT_FOUND: ErrorReason
ERROR_REASON_CURSOR_EXPIRED: ErrorReason
ERROR_REASON_WEBHOOK_NOT_FOUND: ErrorReason
ERROR_REASON_WEBHOOKS_NOT_CONFIGURED: ErrorReason
AUTHENTICATION_METHOD_TYPE_UNSPECIFIED: AuthenticationMethodType
AUTHENTICATION_METHOD_TYPE_PASSWORD: AuthenticationMethodType
AUTHENTICATION_METHOD_TYPE_TOTP: AuthenticationMethodType
AUTHENTICATION_METHOD_TYPE_RECOVERY_CODE: AuthenticationMethodType
AUTHENTICATION_METHOD_TYPE_PASSKEY: AuthenticationMethodType
AUTHENTICATION_METHOD_TYPE_RESET: AuthenticationMethodType
ASSURANCE_LEVEL_UNSPECIFIED: AssuranceLevel
ASSURANCE_LEVEL_AAL1: AssuranceLevel
ASSURANCE_LEVEL_AAL2: AssuranceLevel
SECOND_FACTOR_UNSPECIFIED: SecondFactor
SECOND_FACTOR_TOTP: SecondFactor
SECOND_FACTOR_RECOVERY_CODE: SecondFactor
SECOND_FACTOR_PASSKEY: SecondFactor
ACTOR_KIND_UNSPECIFIED: ActorKind
ACTOR_KIND_USER: ActorKind
ACTOR_KIND_API_KEY: ActorKind
ACTOR_KIND_MTLS: ActorKind
ACTOR_KIND_SYSTEM: ActorKind
ACTOR_KIND_CALLER: ActorKind
WEBHOOK_STATE_UNSPECIFIED: WebhookState
WEBHOOK_STATE_ACTIVE: WebhookState
WEBHOOK_STATE_FAILING: WebhookState
WEBHOOK_DELIVERY_STATE_UNSPECIFIED: WebhookDeliveryState
WEBHOOK_DELIVERY_STATE_PENDING: WebhookDeliveryState
WEBHOOK_DELIVERY_STATE_DELIVERED: WebhookDeliveryState
WEBHOOK_DELIVERY_STATE_FAILED: WebhookDeliveryState

class User(_message.Message):
    __slots__ = ("id", "email", "first_name", "last_name", "create_time", "update_time", "email_verified", "email_verify_time", "state", "locale")
    ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    id: str
    email: str
    first_name: str
    last_name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    email_verified: bool
    email_verify_time: _timestamp_pb2.Timestamp
    state: UserState
    locale: str
    def __init__(self, id: _Optional[str] = ..., email: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., email_verified: _Optional[bool] = ..., email_verify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[UserState, str]] = ..., locale: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("id", "user_id", "create_time", "expire_time", "refresh_expire_time", "user_agent", "ip_address", "authentication_methods", "assurance_level")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_METHODS_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    refresh_expire_time: _timestamp_pb2.Timestamp
    user_agent: str
    ip_address: str
    authentication_methods: _containers.RepeatedCompositeFieldContainer[AuthenticationMethod]
    assurance_level: AssuranceLevel
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_agent: _Optional[str] = ..., ip_address: _Optional[str] = ..., authentication_methods: _Optional[_Iterable[_Union[AuthenticationMethod, _Mapping]]] = ..., assurance_level: _Optional[_Union[AssuranceLevel, str]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("email", "password", "first_name", "last_name", "locale", "ip_address", "user_agent")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    first_name: str
    last_name: str
    locale: str
    ip_address: str
    user_agent: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., locale: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("user", "update_mask")
    USER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    user: User
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ChangePasswordRequest(_message.Message):
    __slots__ = ("session_token", "current_password", "new_password")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    current_password: str
    new_password: str
    def __init__(self, session_token: _Optional[str] = ..., current_password: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class ChangePasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("email", "password", "user_agent", "ip_address")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    user_agent: str
    ip_address: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., user_agent: _Optional[str] = ..., ip_address: _Optional[str] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session", "session_token", "update_token", "user", "challenge", "second_factor_enrollment_required", "access_token", "access_token_expire_time")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    SECOND_FACTOR_ENROLLMENT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    update_token: str
    user: User
    challenge: SignInChallenge
    second_factor_enrollment_required: bool
    access_token: str
    access_token_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., update_token: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., challenge: _Optional[_Union[SignInChallenge, _Mapping]] = ..., second_factor_enrollment_required: _Optional[bool] = ..., access_token: _Optional[str] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValidateTokenRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class ValidateTokenResponse(_message.Message):
    __slots__ = ("user", "session")
    USER_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    user: User
    session: Session
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class RefreshSessionRequest(_message.Message):
    __slots__ = ("update_token",)
    UPDATE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    update_token: str
    def __init__(self, update_token: _Optional[str] = ...) -> None: ...

class RefreshSessionResponse(_message.Message):
    __slots__ = ("session", "session_token", "update_token", "access_token", "access_token_expire_time")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    update_token: str
    access_token: str
    access_token_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., update_token: _Optional[str] = ..., access_token: _Optional[str] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeleteSessionRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class DeleteSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("id", "event_time", "type", "user_id", "session_id", "ip_address", "user_agent", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    event_time: _timestamp_pb2.Timestamp
    type: AuditEventType
    user_id: str
    session_id: str
    ip_address: str
    user_agent: str
    detail: str
    def __init__(self, id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[AuditEventType, str]] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "user_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    user_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("audit_events", "next_page_token")
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, audit_events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ImportedUser(_message.Message):
    __slots__ = ("email", "first_name", "last_name", "password_hash", "email_verified", "create_time", "locale")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    email: str
    first_name: str
    last_name: str
    password_hash: str
    email_verified: bool
    create_time: _timestamp_pb2.Timestamp
    locale: str
    def __init__(self, email: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., password_hash: _Optional[str] = ..., email_verified: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., locale: _Optional[str] = ...) -> None: ...

class ImportUsersRequest(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[ImportedUser]
    def __init__(self, users: _Optional[_Iterable[_Union[ImportedUser, _Mapping]]] = ...) -> None: ...

class ImportUsersResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImportUserResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ImportUserResult, _Mapping]]] = ...) -> None: ...

class ImportUserResult(_message.Message):
    __slots__ = ("user_id", "error")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    error: ImportUserError
    def __init__(self, user_id: _Optional[str] = ..., error: _Optional[_Union[ImportUserError, _Mapping]] = ...) -> None: ...

class ImportUserError(_message.Message):
    __slots__ = ("reason", "message", "field_violations")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    reason: ErrorReason
    message: str
    field_violations: _containers.RepeatedCompositeFieldContainer[ImportFieldViolation]
    def __init__(self, reason: _Optional[_Union[ErrorReason, str]] = ..., message: _Optional[str] = ..., field_violations: _Optional[_Iterable[_Union[ImportFieldViolation, _Mapping]]] = ...) -> None: ...

class ImportFieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class StartPasswordResetRequest(_message.Message):
    __slots__ = ("email", "ip_address", "user_agent")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    email: str
    ip_address: str
    user_agent: str
    def __init__(self, email: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class StartPasswordResetResponse(_message.Message):
    __slots__ = ("reset_token", "expire_time")
    RESET_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    reset_token: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, reset_token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompletePasswordResetRequest(_message.Message):
    __slots__ = ("reset_token", "new_password", "ip_address", "user_agent")
    RESET_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    reset_token: str
    new_password: str
    ip_address: str
    user_agent: str
    def __init__(self, reset_token: _Optional[str] = ..., new_password: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class CompletePasswordResetResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class StartEmailVerificationRequest(_message.Message):
    __slots__ = ("user_id", "session_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_token: str
    def __init__(self, user_id: _Optional[str] = ..., session_token: _Optional[str] = ...) -> None: ...

class StartEmailVerificationResponse(_message.Message):
    __slots__ = ("verification_token", "expire_time")
    VERIFICATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    verification_token: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, verification_token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VerifyEmailRequest(_message.Message):
    __slots__ = ("verification_token", "ip_address", "user_agent")
    VERIFICATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    verification_token: str
    ip_address: str
    user_agent: str
    def __init__(self, verification_token: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class VerifyEmailResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class DisableUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DisableUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class EnableUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class EnableUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class RevokeSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class RevokeSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RevokeUserSessionsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class RevokeUserSessionsResponse(_message.Message):
    __slots__ = ("revoked_count",)
    REVOKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    revoked_count: int
    def __init__(self, revoked_count: _Optional[int] = ...) -> None: ...

class SetPasswordRequest(_message.Message):
    __slots__ = ("user_id", "new_password")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    new_password: str
    def __init__(self, user_id: _Optional[str] = ..., new_password: _Optional[str] = ...) -> None: ...

class SetPasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuthenticationMethod(_message.Message):
    __slots__ = ("method", "time")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    method: AuthenticationMethodType
    time: _timestamp_pb2.Timestamp
    def __init__(self, method: _Optional[_Union[AuthenticationMethodType, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignInChallenge(_message.Message):
    __slots__ = ("challenge_token", "factors", "expire_time")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    factors: _containers.RepeatedScalarFieldContainer[SecondFactor]
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, challenge_token: _Optional[str] = ..., factors: _Optional[_Iterable[_Union[SecondFactor, str]]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartTotpEnrollmentRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class StartTotpEnrollmentResponse(_message.Message):
    __slots__ = ("secret", "otpauth_uri", "expire_time")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    OTPAUTH_URI_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    secret: str
    otpauth_uri: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, secret: _Optional[str] = ..., otpauth_uri: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConfirmTotpEnrollmentRequest(_message.Message):
    __slots__ = ("session_token", "code")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    code: str
    def __init__(self, session_token: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class ConfirmTotpEnrollmentResponse(_message.Message):
    __slots__ = ("recovery_codes",)
    RECOVERY_CODES_FIELD_NUMBER: _ClassVar[int]
    recovery_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, recovery_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTotpRequest(_message.Message):
    __slots__ = ("session_token", "code")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    code: str
    def __init__(self, session_token: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class RemoveTotpResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CompleteSignInRequest(_message.Message):
    __slots__ = ("challenge_token", "totp_code", "recovery_code", "passkey_assertion")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTP_CODE_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_CODE_FIELD_NUMBER: _ClassVar[int]
    PASSKEY_ASSERTION_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    totp_code: str
    recovery_code: str
    passkey_assertion: PasskeyAssertion
    def __init__(self, challenge_token: _Optional[str] = ..., totp_code: _Optional[str] = ..., recovery_code: _Optional[str] = ..., passkey_assertion: _Optional[_Union[PasskeyAssertion, _Mapping]] = ...) -> None: ...

class CompleteSignInResponse(_message.Message):
    __slots__ = ("session", "session_token", "update_token", "user", "access_token", "access_token_expire_time")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    update_token: str
    user: User
    access_token: str
    access_token_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., update_token: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., access_token: _Optional[str] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReauthenticateSessionRequest(_message.Message):
    __slots__ = ("session_token", "password", "totp_code", "passkey_assertion", "recovery_code")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TOTP_CODE_FIELD_NUMBER: _ClassVar[int]
    PASSKEY_ASSERTION_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_CODE_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    password: str
    totp_code: str
    passkey_assertion: PasskeyAssertion
    recovery_code: str
    def __init__(self, session_token: _Optional[str] = ..., password: _Optional[str] = ..., totp_code: _Optional[str] = ..., passkey_assertion: _Optional[_Union[PasskeyAssertion, _Mapping]] = ..., recovery_code: _Optional[str] = ...) -> None: ...

class PasskeyAssertion(_message.Message):
    __slots__ = ("challenge_token", "assertion_json")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_JSON_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    assertion_json: str
    def __init__(self, challenge_token: _Optional[str] = ..., assertion_json: _Optional[str] = ...) -> None: ...

class ReauthenticateSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class Passkey(_message.Message):
    __slots__ = ("id", "name", "create_time", "last_use_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    create_time: _timestamp_pb2.Timestamp
    last_use_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_use_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartPasskeyRegistrationRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class StartPasskeyRegistrationResponse(_message.Message):
    __slots__ = ("challenge_token", "options_json")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    options_json: str
    def __init__(self, challenge_token: _Optional[str] = ..., options_json: _Optional[str] = ...) -> None: ...

class FinishPasskeyRegistrationRequest(_message.Message):
    __slots__ = ("challenge_token", "credential_json", "name")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    credential_json: str
    name: str
    def __init__(self, challenge_token: _Optional[str] = ..., credential_json: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class FinishPasskeyRegistrationResponse(_message.Message):
    __slots__ = ("passkey",)
    PASSKEY_FIELD_NUMBER: _ClassVar[int]
    passkey: Passkey
    def __init__(self, passkey: _Optional[_Union[Passkey, _Mapping]] = ...) -> None: ...

class ListPasskeysRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class ListPasskeysResponse(_message.Message):
    __slots__ = ("passkeys",)
    PASSKEYS_FIELD_NUMBER: _ClassVar[int]
    passkeys: _containers.RepeatedCompositeFieldContainer[Passkey]
    def __init__(self, passkeys: _Optional[_Iterable[_Union[Passkey, _Mapping]]] = ...) -> None: ...

class RemovePasskeyRequest(_message.Message):
    __slots__ = ("session_token", "passkey_id")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PASSKEY_ID_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    passkey_id: str
    def __init__(self, session_token: _Optional[str] = ..., passkey_id: _Optional[str] = ...) -> None: ...

class RemovePasskeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartPasskeySignInRequest(_message.Message):
    __slots__ = ("email",)
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    email: str
    def __init__(self, email: _Optional[str] = ...) -> None: ...

class StartPasskeySignInResponse(_message.Message):
    __slots__ = ("challenge_token", "options_json")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    options_json: str
    def __init__(self, challenge_token: _Optional[str] = ..., options_json: _Optional[str] = ...) -> None: ...

class FinishPasskeySignInRequest(_message.Message):
    __slots__ = ("challenge_token", "assertion_json", "user_agent", "ip_address")
    CHALLENGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_JSON_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    challenge_token: str
    assertion_json: str
    user_agent: str
    ip_address: str
    def __init__(self, challenge_token: _Optional[str] = ..., assertion_json: _Optional[str] = ..., user_agent: _Optional[str] = ..., ip_address: _Optional[str] = ...) -> None: ...

class FinishPasskeySignInResponse(_message.Message):
    __slots__ = ("session", "session_token", "update_token", "user", "access_token", "access_token_expire_time")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    update_token: str
    user: User
    access_token: str
    access_token_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., update_token: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., access_token: _Optional[str] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "cursor", "type", "time", "user_id", "session_id", "actor", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    cursor: str
    type: str
    time: _timestamp_pb2.Timestamp
    user_id: str
    session_id: str
    actor: Actor
    data: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., cursor: _Optional[str] = ..., type: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Actor(_message.Message):
    __slots__ = ("kind", "name")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    kind: ActorKind
    name: str
    def __init__(self, kind: _Optional[_Union[ActorKind, str]] = ..., name: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("after_cursor", "types")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    after_cursor: str
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, after_cursor: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("after_cursor", "page_size", "types")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    after_cursor: str
    page_size: int
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, after_cursor: _Optional[str] = ..., page_size: _Optional[int] = ..., types: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_cursor")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_cursor: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("id", "url", "types", "create_time", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    types: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    state: WebhookState
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[WebhookState, str]] = ...) -> None: ...

class CreateWebhookRequest(_message.Message):
    __slots__ = ("url", "types")
    URL_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    url: str
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, url: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateWebhookResponse(_message.Message):
    __slots__ = ("webhook", "secret")
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    secret: str
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class DeleteWebhookRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteWebhookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhookDeliveriesRequest(_message.Message):
    __slots__ = ("webhook_id", "page_size", "page_token")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    page_size: int
    page_token: str
    def __init__(self, webhook_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWebhookDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[WebhookDelivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[WebhookDelivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("event_id", "event_type", "state", "attempts", "last_attempt_time", "next_attempt_time", "last_status_code", "last_error")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    state: WebhookDeliveryState
    attempts: int
    last_attempt_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    last_status_code: int
    last_error: str
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., state: _Optional[_Union[WebhookDeliveryState, str]] = ..., attempts: _Optional[int] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class GetSigningKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSigningKeysResponse(_message.Message):
    __slots__ = ("jwks_json",)
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    jwks_json: str
    def __init__(self, jwks_json: _Optional[str] = ...) -> None: ...

class WatchRevocationsRequest(_message.Message):
    __slots__ = ("after_cursor",)
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    after_cursor: str
    def __init__(self, after_cursor: _Optional[str] = ...) -> None: ...

class Revocation(_message.Message):
    __slots__ = ("cursor", "session_id", "user_id", "not_before", "expire_time")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    session_id: str
    user_id: str
    not_before: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, cursor: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
