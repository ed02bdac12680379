package com.example.authsvc.client;

import com.example.authsvc.v1.GetSigningKeysRequest;
import com.example.authsvc.v1.Revocation;
import com.example.authsvc.v1.WatchRevocationsRequest;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.gson.Gson;
import com.google.gson.TypeAdapter;
import com.google.protobuf.Timestamp;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Verifies authsvc access tokens in-process (EdDSA JWTs): the signing keys come from
 * GetSigningKeys (fetched again periodically, and at once, rate-limited, for an unknown
 * {@code kid}), revocations from the WatchRevocations feed held open (and resumed after a
 * disconnect) on a background thread.
 *
 * <pre>{@code
 * try (Verifier verifier = Verifier.builder(client).build()) {
 *   verifier.awaitReady(Duration.ofSeconds(10));
 *   VerifiedToken token = verifier.verify(accessToken); // or VerificationException
 *   token.userId(); token.sessionId(); token.aal(); token.methods();
 * }
 * }</pre>
 *
 * <p>A token's signature is checked once and remembered (bounded, least recently used first
 * out); its expiry and the revocations are checked on every call. It fails closed: when the
 * feed has been silent longer than the maximum staleness (5 s) {@link #verify} refuses with
 * {@code REVOCATION_FEED_STALE}, or asks ValidateToken when {@code fallbackToValidateToken}
 * is set. Parsing is strict: {@code alg} must be {@code EdDSA} and {@code typ} {@code
 * at+jwt}. Needs Java 15 or later (the JDK's Ed25519). Thread-safe; close it at shutdown.
 */
public final class Verifier implements AutoCloseable {
  /** The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow. */
  private static final byte[] ED25519_SPKI_PREFIX = {
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
  };

  /** Gson's JsonElement adapter reads from a non-lenient JsonReader: strict JSON only. */
  private static final TypeAdapter<JsonElement> STRICT_JSON = new Gson().getAdapter(JsonElement.class);
  private static final Base64.Decoder BASE64URL = Base64.getUrlDecoder();

  private final AuthClient client;
  private final String issuer;
  private final long maxStalenessNanos;
  private final boolean fallback;
  private final int cacheSize;
  private final long minRefetchNanos;
  private final Duration clockSkew;

  private final Object keysLock = new Object();
  private volatile Map<String, PublicKey> keys = Map.of();
  private volatile long lastFetch = System.nanoTime() - TimeUnit.DAYS.toNanos(1);
  private final LinkedHashMap<String, VerifiedToken> verified;
  private final Map<String, Instant> revokedSessions = new ConcurrentHashMap<>();
  private final Map<String, Instant[]> revokedUsers = new ConcurrentHashMap<>(); // notBefore, expire
  private volatile boolean synced;
  private volatile long lastHeard;
  private volatile long lastPrune;
  private volatile RuntimeException feedError;

  private final ResumableStream<Revocation> feed;
  private final Thread feedThread;
  private final ScheduledExecutorService refresher;

  private Verifier(Builder builder) {
    this.client = builder.client;
    this.issuer = builder.issuer;
    this.maxStalenessNanos = builder.maxStaleness.toNanos();
    this.fallback = builder.fallbackToValidateToken;
    this.cacheSize = builder.cacheSize;
    this.minRefetchNanos = builder.keysMinRefetch.toNanos();
    this.clockSkew = builder.clockSkew;
    this.verified = new LinkedHashMap<>(16, 0.75f, true);
    this.feed =
        new ResumableStream<>(
            after ->
                client
                    .stub()
                    .watchRevocations(
                        WatchRevocationsRequest.newBuilder().setAfterCursor(after).build()),
            Revocation::getCursor,
            this::apply,
            this::restartAfter,
            builder.reconnect);
    this.feedThread = new Thread(this::followFeed, "authsvc-verifier-feed");
    this.feedThread.setDaemon(true);
    this.feedThread.start();
    this.refresher =
        Executors.newSingleThreadScheduledExecutor(
            runnable -> {
              Thread thread = new Thread(runnable, "authsvc-verifier-keys");
              thread.setDaemon(true);
              return thread;
            });
    long refresh = builder.keysRefresh.toNanos();
    refresher.scheduleWithFixedDelay(this::refreshQuietly, 0, refresh, TimeUnit.NANOSECONDS);
  }

  /** Starts a builder of a verifier that calls authsvc through {@code client}. */
  public static Builder builder(AuthClient client) {
    return new Builder(client);
  }

  /**
   * Waits until the signing keys are loaded and the revocation feed has caught up (its first
   * heartbeat). Returns false after {@code timeout}; throws the feed's error if it failed.
   */
  public boolean awaitReady(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (keys.isEmpty() || !synced) {
      if (feedError != null) {
        throw feedError;
      }
      if (System.nanoTime() > deadline) {
        return false;
      }
      if (keys.isEmpty() && mayRefetch()) {
        refreshQuietly();
      }
      Thread.sleep(20);
    }
    return true;
  }

  /** True when the revocation feed has been silent longer than the maximum staleness. */
  public boolean isStale() {
    return !synced || System.nanoTime() - lastHeard > maxStalenessNanos;
  }

  /**
   * Verifies an access token: its EdDSA signature by a published key, {@code typ} at+jwt, the
   * issuer, its expiry and the revocations.
   *
   * @throws VerificationException with the reason it is refused
   */
  public VerifiedToken verify(String accessToken) throws VerificationException {
    VerifiedToken token;
    synchronized (verified) {
      token = verified.get(accessToken);
    }
    if (token == null) {
      token = checkSignature(accessToken);
      synchronized (verified) {
        verified.put(accessToken, token);
        if (verified.size() > cacheSize) {
          verified.remove(verified.keySet().iterator().next());
        }
      }
    }
    if (!Instant.now().isBefore(token.expiresAt().plus(clockSkew))) {
      throw new VerificationException(
          VerificationException.Reason.TOKEN_EXPIRED, "the access token has expired");
    }
    if (isRevoked(token)) {
      throw new VerificationException(
          VerificationException.Reason.TOKEN_REVOKED, "the access token was revoked");
    }
    if (isStale()) {
      if (!fallback) {
        throw new VerificationException(
            VerificationException.Reason.REVOCATION_FEED_STALE,
            "the revocation feed is stale: refused (fail closed)");
      }
      validateRemotely(accessToken);
    }
    return token;
  }

  /** Stops the revocation feed and the key refresh. */
  @Override
  public void close() {
    feed.stop();
    refresher.shutdownNow();
    try {
      feedThread.join(TimeUnit.SECONDS.toMillis(5));
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  private boolean isRevoked(VerifiedToken token) {
    if (revokedSessions.containsKey(token.sessionId())) {
      return true; // every token of a revoked session
    }
    Instant[] user = revokedUsers.get(token.userId());
    return user != null && token.issuedAt().isBefore(user[0]);
  }

  private void validateRemotely(String accessToken) throws VerificationException {
    try {
      client.validateToken(accessToken);
    } catch (AuthException error) {
      // UNAUTHENTICATED: the token's session or user no longer stands. Anything else
      // (unreachable, PERMISSION_DENIED by a caller policy...) decides nothing about it.
      if (error.getCode() == Status.Code.UNAUTHENTICATED) {
        throw new VerificationException(
            VerificationException.Reason.TOKEN_REVOKED, "ValidateToken refused it", error);
      }
      throw new VerificationException(
          VerificationException.Reason.REVOCATION_FEED_STALE,
          "the revocation feed is stale and ValidateToken failed",
          error);
    }
  }

  // Signatures

  private VerifiedToken checkSignature(String token) throws VerificationException {
    String[] parts = token.split("\\.", -1);
    if (parts.length != 3) {
      throw malformed("not a compact JWS");
    }
    JsonObject header = jsonPart(parts[0]);
    if (!"EdDSA".equals(string(header, "alg"))) {
      throw new VerificationException(
          VerificationException.Reason.BAD_SIGNATURE, "the algorithm is not EdDSA");
    }
    if (!"at+jwt".equals(string(header, "typ")) || header.has("crit")) {
      throw malformed("not an access token (typ)");
    }
    String kid = string(header, "kid");
    if (kid == null) {
      throw malformed("the token names no key (kid)");
    }
    PublicKey key = key(kid);
    byte[] input = (parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII);
    if (!signatureVerifies(key, input, bytes(parts[2]))) {
      throw new VerificationException(
          VerificationException.Reason.BAD_SIGNATURE, "the signature does not verify");
    }
    return claims(jsonPart(parts[1]));
  }

  private static boolean signatureVerifies(PublicKey key, byte[] input, byte[] signature) {
    try {
      Signature ed25519 = Signature.getInstance("Ed25519");
      ed25519.initVerify(key);
      ed25519.update(input);
      return ed25519.verify(signature);
    } catch (GeneralSecurityException invalid) {
      return false;
    }
  }

  private VerifiedToken claims(JsonObject claims) throws VerificationException {
    if (!issuer.equals(string(claims, "iss"))) {
      throw new VerificationException(
          VerificationException.Reason.WRONG_ISSUER, "the issuer is not " + issuer);
    }
    String sub = string(claims, "sub");
    String sid = string(claims, "sid");
    Instant iat = instant(claims, "iat");
    Instant exp = instant(claims, "exp");
    JsonElement amr = claims.get("amr");
    JsonElement aal = claims.has("aal") ? claims.get("aal") : new JsonPrimitive(1);
    if (sub == null || sid == null || iat == null || exp == null || amr == null
        || !amr.isJsonArray() || !isNumber(aal)) {
      throw malformed("sub, sid, iat, exp, aal or amr missing or mistyped");
    }
    List<String> methods = new ArrayList<>();
    for (JsonElement method : (JsonArray) amr) {
      if (!method.isJsonPrimitive() || !method.getAsJsonPrimitive().isString()) {
        throw malformed("amr holds a non-string");
      }
      methods.add(method.getAsString());
    }
    String email = string(claims, "email");
    return new VerifiedToken(
        sub, sid, aal.getAsInt(), methods, iat, exp, email == null ? "" : email);
  }

  private static boolean isNumber(JsonElement value) {
    return value.isJsonPrimitive() && value.getAsJsonPrimitive().isNumber();
  }

  private static String string(JsonObject object, String name) {
    JsonElement value = object.get(name);
    return value != null && value.isJsonPrimitive() && value.getAsJsonPrimitive().isString()
        ? value.getAsString()
        : null;
  }

  private static Instant instant(JsonObject object, String name) {
    JsonElement value = object.get(name);
    if (value == null || !isNumber(value)) {
      return null;
    }
    double seconds = value.getAsDouble();
    long whole = (long) Math.floor(seconds);
    return Instant.ofEpochSecond(whole, (long) ((seconds - whole) * 1e9));
  }

  private static JsonObject jsonPart(String part) throws VerificationException {
    JsonElement parsed;
    try {
      parsed = STRICT_JSON.fromJson(new String(bytes(part), StandardCharsets.UTF_8));
    } catch (IOException | RuntimeException invalid) {
      throw malformed("a part is not JSON");
    }
    if (parsed == null || !parsed.isJsonObject()) {
      throw malformed("a part is not a JSON object");
    }
    return parsed.getAsJsonObject();
  }

  private static byte[] bytes(String part) throws VerificationException {
    if (part.indexOf('=') >= 0) {
      throw malformed("padded base64url");
    }
    try {
      return BASE64URL.decode(part);
    } catch (IllegalArgumentException invalid) {
      throw malformed("bad base64url");
    }
  }

  private static VerificationException malformed(String message) {
    return new VerificationException(VerificationException.Reason.MALFORMED_TOKEN, message);
  }

  // Keys

  private PublicKey key(String kid) throws VerificationException {
    PublicKey key = keys.get(kid);
    if (key == null && mayRefetch()) {
      refreshQuietly();
      key = keys.get(kid);
    }
    if (key == null) {
      throw new VerificationException(
          VerificationException.Reason.UNKNOWN_KEY, "no published key has this kid");
    }
    return key;
  }

  private boolean mayRefetch() {
    return System.nanoTime() - lastFetch >= minRefetchNanos;
  }

  private void refreshQuietly() {
    long asked = System.nanoTime();
    synchronized (keysLock) {
      if (lastFetch - asked > 0) {
        return; // another thread fetched while this one waited
      }
      lastFetch = System.nanoTime();
      try {
        GetSigningKeysRequest request = GetSigningKeysRequest.getDefaultInstance();
        keys = parseJwks(client.call(stub -> stub.getSigningKeys(request)).getJwksJson());
      } catch (RuntimeException | IOException unavailable) {
        // Keep the keys we have; the next refresh or unknown kid tries again.
      }
    }
  }

  /** The Ed25519 signing keys of a JWK Set, by kid; other keys are skipped. */
  static Map<String, PublicKey> parseJwks(String jwksJson) throws IOException {
    Map<String, PublicKey> found = new HashMap<>();
    JsonElement set = STRICT_JSON.fromJson(jwksJson);
    if (set == null || !set.isJsonObject() || !set.getAsJsonObject().has("keys")) {
      return found;
    }
    for (JsonElement element : set.getAsJsonObject().getAsJsonArray("keys")) {
      if (!element.isJsonObject()) {
        continue;
      }
      JsonObject jwk = element.getAsJsonObject();
      String alg = string(jwk, "alg");
      String use = string(jwk, "use");
      String kid = string(jwk, "kid");
      String x = string(jwk, "x");
      boolean usable =
          "OKP".equals(string(jwk, "kty"))
              && "Ed25519".equals(string(jwk, "crv"))
              && kid != null
              && x != null
              && (alg == null || alg.equals("EdDSA"))
              && (use == null || use.equals("sig"));
      if (usable) {
        try {
          found.put(kid, ed25519PublicKey(BASE64URL.decode(x)));
        } catch (IllegalArgumentException | GeneralSecurityException invalid) {
          // not a usable key: skipped
        }
      }
    }
    return found;
  }

  private static PublicKey ed25519PublicKey(byte[] x) throws GeneralSecurityException {
    if (x.length != 32) {
      throw new GeneralSecurityException("an Ed25519 key has 32 bytes");
    }
    byte[] der = new byte[ED25519_SPKI_PREFIX.length + x.length];
    System.arraycopy(ED25519_SPKI_PREFIX, 0, der, 0, ED25519_SPKI_PREFIX.length);
    System.arraycopy(x, 0, der, ED25519_SPKI_PREFIX.length, x.length);
    return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(der));
  }

  // Revocations

  private void followFeed() {
    try {
      feed.run("");
    } catch (RuntimeException failed) {
      feedError = failed;
    }
  }

  /** A cursor past the feed's retention: start over from a fresh snapshot (unsynced). */
  private String restartAfter(io.grpc.StatusRuntimeException error) {
    if (error.getStatus().getCode() != Status.Code.FAILED_PRECONDITION) {
      return null;
    }
    synced = false;
    return "";
  }

  private void apply(Revocation revocation) {
    long now = System.nanoTime();
    lastHeard = now;
    Instant expires =
        revocation.hasExpireTime() ? instant(revocation.getExpireTime()) : Instant.MAX;
    switch (revocation.getSubjectCase()) {
      case SESSION_ID:
        revokedSessions.put(revocation.getSessionId(), expires);
        break;
      case USER_ID:
        Instant notBefore =
            revocation.hasNotBefore() ? instant(revocation.getNotBefore()) : Instant.now();
        revokedUsers.merge(
            revocation.getUserId(),
            new Instant[] {notBefore, expires},
            (known, added) ->
                new Instant[] {max(known[0], added[0]), max(known[1], added[1])});
        break;
      default: // a heartbeat: the snapshot (or the resumed feed) is caught up
        synced = true;
        if (now - lastPrune > TimeUnit.SECONDS.toNanos(1)) {
          lastPrune = now;
          prune(Instant.now());
        }
    }
  }

  /** Forgets revocations after which no token they concern can still be unexpired. */
  private void prune(Instant now) {
    revokedSessions.values().removeIf(expires -> expires.isBefore(now));
    revokedUsers.values().removeIf(user -> user[1].isBefore(now));
  }

  private static Instant instant(Timestamp time) {
    return Instant.ofEpochSecond(time.getSeconds(), time.getNanos());
  }

  private static Instant max(Instant a, Instant b) {
    return a.isAfter(b) ? a : b;
  }

  /** Options of a {@link Verifier}. */
  public static final class Builder {
    private final AuthClient client;
    private String issuer = "authsvc";
    private Duration maxStaleness = Duration.ofSeconds(5);
    private boolean fallbackToValidateToken;
    private int cacheSize = 10_000;
    private Duration keysRefresh = Duration.ofMinutes(5);
    private Duration keysMinRefetch = Duration.ofSeconds(1);
    private Duration clockSkew = Duration.ZERO;
    private final ResumableStream.Reconnect reconnect =
        new ResumableStream.Reconnect(Duration.ofSeconds(15));

    private Builder(AuthClient client) {
      this.client = Objects.requireNonNull(client, "client");
    }

    /** The {@code iss} every token must carry: the server's AUTHSVC_ISSUER ("authsvc"). */
    public Builder issuer(String issuer) {
      this.issuer = Objects.requireNonNull(issuer, "issuer");
      return this;
    }

    /** Fail closed when the feed has been silent (not even a heartbeat) this long (5 s). */
    public Builder maxStaleness(Duration maxStaleness) {
      this.maxStaleness = EventConsumer.Builder.positive(maxStaleness, "maxStaleness");
      return this;
    }

    /** While the feed is stale, ask ValidateToken instead of refusing (off by default). */
    public Builder fallbackToValidateToken(boolean fallback) {
      this.fallbackToValidateToken = fallback;
      return this;
    }

    /** How many verified tokens to remember, least recently used first out (10000). */
    public Builder cacheSize(int cacheSize) {
      if (cacheSize < 1) {
        throw new IllegalArgumentException("cacheSize must be positive");
      }
      this.cacheSize = cacheSize;
      return this;
    }

    /**
     * How often the signing keys are fetched again: at most the server's AUTHSVC_JWKS_REFRESH,
     * since a new key is published that long (plus one access-token TTL) before it signs (5
     * min, its default).
     */
    public Builder keysRefresh(Duration keysRefresh) {
      this.keysRefresh = EventConsumer.Builder.positive(keysRefresh, "keysRefresh");
      return this;
    }

    /** An unknown kid fetches the keys at once, but not more often than this (1 s). */
    public Builder keysMinRefetch(Duration keysMinRefetch) {
      this.keysMinRefetch = EventConsumer.Builder.positive(keysMinRefetch, "keysMinRefetch");
      return this;
    }

    /** Leeway allowed on {@code exp} against this machine's clock (0). */
    public Builder clockSkew(Duration clockSkew) {
      if (clockSkew.isNegative()) {
        throw new IllegalArgumentException("clockSkew must not be negative");
      }
      this.clockSkew = clockSkew;
      return this;
    }

    /** Creates the verifier; it starts fetching keys and following the feed at once. */
    public Verifier build() {
      return new Verifier(this);
    }
  }
}
