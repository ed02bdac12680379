package com.example.authsvc.client;

import java.time.Instant;
import java.util.List;

/** What a valid access token says (see {@link Verifier#verify}). */
public final class VerifiedToken {
  private final String userId;
  private final String sessionId;
  private final int aal;
  private final List<String> methods;
  private final Instant issuedAt;
  private final Instant expiresAt;
  private final String email;

  VerifiedToken(
      String userId,
      String sessionId,
      int aal,
      List<String> methods,
      Instant issuedAt,
      Instant expiresAt,
      String email) {
    this.userId = userId;
    this.sessionId = sessionId;
    this.aal = aal;
    this.methods = List.copyOf(methods);
    this.issuedAt = issuedAt;
    this.expiresAt = expiresAt;
    this.email = email;
  }

  /** The user's id ({@code sub}). */
  public String userId() {
    return userId;
  }

  /** The session's id ({@code sid}). */
  public String sessionId() {
    return sessionId;
  }

  /** The session's assurance level ({@code aal}): 1 (AAL1) or 2 (AAL2). */
  public int aal() {
    return aal;
  }

  /** How the session authenticated ({@code amr}), e.g. {@code [PASSWORD, TOTP]}. */
  public List<String> methods() {
    return methods;
  }

  /** When the token was issued ({@code iat}). */
  public Instant issuedAt() {
    return issuedAt;
  }

  /** When the token expires ({@code exp}). */
  public Instant expiresAt() {
    return expiresAt;
  }

  /** The user's email, only when the server adds it (AUTHSVC_ACCESS_TOKEN_EMAIL); else "". */
  public String email() {
    return email;
  }
}
