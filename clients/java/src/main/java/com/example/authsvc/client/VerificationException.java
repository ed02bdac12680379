package com.example.authsvc.client;

/**
 * An access token that a {@link Verifier} refused; {@link #reason()} says why, with the same
 * names as the other clients' verifiers.
 */
public final class VerificationException extends Exception {
  private static final long serialVersionUID = 1L;

  /** Why a token was refused. */
  public enum Reason {
    /** Not a compact JWS with the header and claims of an authsvc access token. */
    MALFORMED_TOKEN,
    /** The signature does not verify, or the algorithm is not EdDSA (e.g. none, HS256). */
    BAD_SIGNATURE,
    /** Signed with a key ({@code kid}) that GetSigningKeys does not publish. */
    UNKNOWN_KEY,
    /** The {@code iss} claim is not the issuer the verifier expects. */
    WRONG_ISSUER,
    /** Past its {@code exp}: refresh the session for a new access token. */
    TOKEN_EXPIRED,
    /** Its session was revoked, or its user's tokens were (disable, new password...). */
    TOKEN_REVOKED,
    /**
     * The revocation feed has been silent longer than the maximum staleness (fail closed),
     * and the fallback to ValidateToken is off or failed.
     */
    REVOCATION_FEED_STALE,
  }

  private final Reason reason;

  VerificationException(Reason reason, String message) {
    this(reason, message, null);
  }

  VerificationException(Reason reason, String message, Throwable cause) {
    super(reason + ": " + message, cause);
    this.reason = reason;
  }

  /** Why the token was refused. */
  public Reason reason() {
    return reason;
  }
}
