package com.example.authsvc.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A failed authsvc call, with the rich error authsvc sends decoded: the gRPC code, the
 * {@code google.rpc.ErrorInfo} reason and domain, the {@code google.rpc.BadRequest} field
 * violations and the {@code google.rpc.RetryInfo} delay.
 *
 * <p>Programs branch on {@link #getReason()} (stable, UPPER_SNAKE, e.g. {@code EMAIL_TAKEN});
 * {@link #getMessage()} is for people and logs. A failure that never reached authsvc (no
 * connection, a deadline that passed on the client) has the code only: an empty reason and
 * domain, no field violations and a null retry delay.
 */
public final class AuthException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status.Code code;
  private final String description;
  private final String reason;
  private final String domain;
  private final Map<String, String> metadata;
  private final List<BadRequest.FieldViolation> fieldViolations;
  private final Duration retryAfter;

  private AuthException(
      Status.Code code,
      String description,
      String reason,
      String domain,
      Map<String, String> metadata,
      List<BadRequest.FieldViolation> fieldViolations,
      Duration retryAfter,
      Throwable cause) {
    super(format(code, description, reason), cause);
    this.code = code;
    this.description = description;
    this.reason = reason;
    this.domain = domain;
    this.metadata = metadata;
    this.fieldViolations = fieldViolations;
    this.retryAfter = retryAfter;
  }

  /**
   * Decodes a failure of a gRPC call (a {@code StatusRuntimeException} or {@code
   * StatusException}, or anything that wraps one) with {@link StatusProto#fromThrowable}.
   */
  public static AuthException from(Throwable error) {
    Status status = Status.fromThrowable(error);
    com.google.rpc.Status rich = StatusProto.fromThrowable(error);
    String description = status.getDescription() == null ? "" : status.getDescription();
    String reason = "";
    String domain = "";
    Map<String, String> metadata = Collections.emptyMap();
    List<BadRequest.FieldViolation> violations = new ArrayList<>();
    Duration retryAfter = null;
    if (rich != null) {
      if (!rich.getMessage().isEmpty()) {
        description = rich.getMessage();
      }
      for (Any detail : rich.getDetailsList()) {
        try {
          if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            reason = info.getReason();
            domain = info.getDomain();
            metadata = Collections.unmodifiableMap(info.getMetadataMap());
          } else if (detail.is(BadRequest.class)) {
            violations.addAll(detail.unpack(BadRequest.class).getFieldViolationsList());
          } else if (detail.is(RetryInfo.class)) {
            com.google.protobuf.Duration delay = detail.unpack(RetryInfo.class).getRetryDelay();
            retryAfter = Duration.ofSeconds(delay.getSeconds(), delay.getNanos());
          }
        } catch (InvalidProtocolBufferException malformed) {
          // A detail that does not parse is skipped; the code and message still stand.
        }
      }
    }
    return new AuthException(
        status.getCode(),
        description,
        reason,
        domain,
        metadata,
        Collections.unmodifiableList(violations),
        retryAfter,
        error);
  }

  /** "CODE: description", with the reason in brackets when it says more than the code. */
  private static String format(Status.Code code, String description, String reason) {
    StringBuilder text = new StringBuilder(code.name());
    if (!reason.isEmpty() && !reason.equals(code.name()) && !description.contains(reason)) {
      text.append(" [").append(reason).append(']');
    }
    if (!description.isEmpty()) {
      text.append(": ").append(description);
    }
    return text.toString();
  }

  /** The gRPC status code, e.g. {@code ALREADY_EXISTS}. */
  public Status.Code getCode() {
    return code;
  }

  /** {@code ErrorInfo.reason}, e.g. {@code EMAIL_TAKEN}; empty when the status has none. */
  public String getReason() {
    return reason;
  }

  /** {@code ErrorInfo.domain}: {@code authsvc} for errors authsvc raised; else empty. */
  public String getDomain() {
    return domain;
  }

  /** {@code ErrorInfo.metadata}; empty when there is none. */
  public Map<String, String> getMetadata() {
    return metadata;
  }

  /** The status message as the server wrote it, without code or reason. */
  public String getDescription() {
    return description;
  }

  /** The bad request fields ({@code google.rpc.BadRequest}); empty unless INVALID_ARGUMENT. */
  public List<BadRequest.FieldViolation> getFieldViolations() {
    return fieldViolations;
  }

  /** The names of the bad request fields, e.g. {@code ["email", "password"]}. */
  public List<String> getFields() {
    List<String> fields = new ArrayList<>();
    for (BadRequest.FieldViolation violation : fieldViolations) {
      fields.add(violation.getField());
    }
    return Collections.unmodifiableList(fields);
  }

  /**
   * How long to wait before trying again ({@code google.rpc.RetryInfo}), e.g. after
   * TOO_MANY_ATTEMPTS; null when the server sent no RetryInfo.
   */
  public Duration getRetryAfter() {
    return retryAfter;
  }
}
