/**
 * Local verification of authsvc's access tokens (JWT, EdDSA): the signing keys come from
 * GetSigningKeys, revocations from the WatchRevocations feed, held open in the background.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { errors as jose, importJWK, jwtVerify } from "jose";
import type { JWK, JWTPayload } from "jose";

import type { AuthService, Revocation } from "./gen/authsvc/v1/auth_service_pb.js";
import { runResumable } from "./resumable.js";
import type { ReconnectOptions } from "./resumable.js";

/**
 * Why {@link Verifier.verify} refused a token: the same names as the Python client's
 * `VerificationError.reason` (and the Go and Java clients').
 */
export type VerifyErrorReason =
  /** Not a compact JWS with the header and claims of an authsvc access token. */
  | "MALFORMED_TOKEN"
  /** The signature does not verify, or the algorithm is not EdDSA (e.g. `none`, HS256). */
  | "BAD_SIGNATURE"
  /** Signed with a key (`kid`) that GetSigningKeys does not publish. */
  | "UNKNOWN_KEY"
  /** The `iss` claim is not the issuer the verifier expects. */
  | "WRONG_ISSUER"
  /** Past its `exp`: refresh the session for a new access token. */
  | "TOKEN_EXPIRED"
  /** Its session was revoked, or its user's tokens were (disable, new password...). */
  | "TOKEN_REVOKED"
  /**
   * The revocation feed has been silent longer than `maxStalenessMs` (fail closed), and
   * `fallbackToValidateToken` is off or ValidateToken could not be reached.
   */
  | "REVOCATION_FEED_STALE";

/** A token the verifier refused; `reason` says why. */
export class VerifyError extends Error {
  override readonly name = "VerifyError";
  constructor(
    readonly reason: VerifyErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a valid access token says. */
export interface VerifiedToken {
  /** The user's id (`sub`). */
  userId: string;
  /** The session's id (`sid`). */
  sessionId: string;
  /** The session's assurance level (`aal`): 1 (AAL1) or 2 (AAL2). */
  aal: number;
  /** How the session authenticated (`amr`), e.g. `["PASSWORD", "TOTP"]`. */
  methods: string[];
  /** When it was issued (`iat`), in seconds since the epoch. */
  issuedAt: number;
  /** When it expires (`exp`), in seconds since the epoch. */
  expiresAt: number;
  /** The user's email: only when the server adds it (AUTHSVC_ACCESS_TOKEN_EMAIL), else "". */
  email: string;
}

/** Options of a {@link Verifier}. */
export interface VerifierOptions {
  /** The `iss` every token must carry: the server's AUTHSVC_ISSUER. Default `"authsvc"`. */
  issuer?: string | undefined;
  /**
   * Fail closed when the revocation feed has been silent (not even a heartbeat) for
   * longer than this, in ms. Default 5000.
   */
  maxStalenessMs?: number | undefined;
  /**
   * While the feed is stale, ask ValidateToken instead of refusing (one network round trip
   * per call until the feed is back). Default false: refuse with REVOCATION_FEED_STALE.
   */
  fallbackToValidateToken?: boolean | undefined;
  /** How many verified tokens to remember (least recently used go first). Default 10000. */
  cacheSize?: number | undefined;
  /**
   * How often the signing keys are fetched again, in ms: at most the server's
   * AUTHSVC_JWKS_REFRESH, since a new key is published that long (plus one access-token
   * TTL) before it signs. Default 300000 (5 min, its default).
   */
  jwksRefreshMs?: number | undefined;
  /**
   * A token with an unknown `kid` makes the verifier fetch the keys at once, but not more
   * often than this, in ms (so forged `kid`s cannot flood authsvc). Default 1000.
   */
  jwksMinRefetchMs?: number | undefined;
  /** Leeway for `exp` against this machine's clock, in ms. Default 0. */
  clockToleranceMs?: number | undefined;
  /** Backoff and liveness of the revocation feed (its idle timeout defaults to 15 s). */
  reconnect?: ReconnectOptions | undefined;
}

/** A user's revocation: every token issued before `notBefore` (s); kept until `expireMs`. */
interface UserRevocation {
  notBefore: number;
  expireMs: number;
}

/** A public key as jose imports it. */
type VerifyKey = Awaited<ReturnType<typeof importJWK>>;

const ALGORITHM = "EdDSA";
const TOKEN_TYPE = "at+jwt";

/**
 * Verifies authsvc access tokens in-process.
 *
 * ```ts
 * const verifier = new Verifier(auth, { maxStalenessMs: 5000 });
 * await verifier.ready();
 * const { userId, sessionId, aal, methods } = await verifier.verify(accessToken);
 * ```
 *
 * A token's signature is checked once and remembered (bounded); its expiry and the
 * revocations are checked on every call. The verifier fails closed: when the revocation
 * feed has been silent longer than `maxStalenessMs` it refuses (REVOCATION_FEED_STALE),
 * or asks ValidateToken when `fallbackToValidateToken` is set. {@link close} it at
 * shutdown.
 */
export class Verifier {
  readonly #client: Client<typeof AuthService>;
  readonly #issuer: string;
  readonly #maxStalenessMs: number;
  readonly #fallback: boolean;
  readonly #cacheSize: number;
  readonly #minRefetchMs: number;
  readonly #toleranceMs: number;
  readonly #stop = new AbortController();
  readonly #refresh: NodeJS.Timeout;
  readonly #feed: Promise<void>;

  #keys = new Map<string, VerifyKey>();
  #keysFetch: Promise<void> | undefined;
  #lastKeysFetchMs = -Infinity;
  readonly #verified = new Map<string, VerifiedToken>(); // least recently used first
  readonly #revokedSessions = new Map<string, number>(); // session id -> expire ms
  readonly #revokedUsers = new Map<string, UserRevocation>();
  #synced = false;
  #lastHeardMs = -Infinity;
  #lastPruneMs = 0;
  #feedError: unknown;

  constructor(client: Client<typeof AuthService>, options: VerifierOptions = {}) {
    this.#client = client;
    this.#issuer = options.issuer ?? "authsvc";
    this.#maxStalenessMs = options.maxStalenessMs ?? 5000;
    this.#fallback = options.fallbackToValidateToken ?? false;
    this.#cacheSize = options.cacheSize ?? 10_000;
    this.#minRefetchMs = options.jwksMinRefetchMs ?? 1000;
    this.#toleranceMs = options.clockToleranceMs ?? 0;
    const refresh = (): void => void this.#fetchKeys().catch(() => {});
    this.#refresh = setInterval(refresh, options.jwksRefreshMs ?? 300_000);
    this.#refresh.unref();
    refresh();
    this.#feed = this.#watchRevocations({ idleTimeoutMs: 15_000, ...options.reconnect });
  }

  /**
   * Resolves once the signing keys are loaded and the revocation feed has caught up (its
   * first heartbeat); rejects after `timeoutMs` (default 10000) or when the feed failed.
   */
  async ready(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#keys.size === 0 || !this.#synced) {
      if (this.#feedError !== undefined) {
        throw this.#feedError;
      }
      if (Date.now() > deadline) {
        throw new Error("the verifier is not ready: no signing keys or no revocation feed yet");
      }
      if (this.#keys.size === 0 && this.#mayRefetch()) {
        await this.#fetchKeys().catch(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** True when the revocation feed has been silent longer than `maxStalenessMs`. */
  get stale(): boolean {
    return !this.#synced || Date.now() - this.#lastHeardMs > this.#maxStalenessMs;
  }

  /**
   * Verifies an access token: its EdDSA signature by a published key, `typ` at+jwt, the
   * issuer, its expiry and the revocations. Returns what it says, or rejects with a
   * {@link VerifyError} whose `reason` says why not.
   */
  async verify(accessToken: string): Promise<VerifiedToken> {
    let token = this.#verified.get(accessToken);
    if (token === undefined) {
      token = await this.#checkSignature(accessToken);
      this.#remember(accessToken, token);
    } else {
      this.#verified.delete(accessToken); // the most recently used goes last
      this.#verified.set(accessToken, token);
    }
    if (Date.now() >= token.expiresAt * 1000 + this.#toleranceMs) {
      this.#verified.delete(accessToken);
      throw new VerifyError("TOKEN_EXPIRED", "the access token has expired");
    }
    if (this.#isRevoked(token)) {
      throw new VerifyError("TOKEN_REVOKED", "the access token was revoked");
    }
    if (this.stale) {
      if (!this.#fallback) {
        const message = "the revocation feed is stale: refused (fail closed)";
        throw new VerifyError("REVOCATION_FEED_STALE", message);
      }
      await this.#validateRemotely(accessToken);
    }
    return { ...token, methods: [...token.methods] };
  }

  /** Stops the revocation feed and the key refresh. */
  async close(): Promise<void> {
    clearInterval(this.#refresh);
    this.#stop.abort();
    await this.#feed;
  }

  #remember(accessToken: string, token: VerifiedToken): void {
    if (this.#verified.size >= this.#cacheSize) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) {
        this.#verified.delete(oldest);
      }
    }
    this.#verified.set(accessToken, token);
  }

  async #checkSignature(accessToken: string): Promise<VerifiedToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(accessToken, (header) => this.#keyFor(header.kid), {
        algorithms: [ALGORITHM],
        typ: TOKEN_TYPE,
        issuer: this.#issuer,
        requiredClaims: ["iss", "sub", "sid", "iat", "exp"],
        clockTolerance: this.#toleranceMs / 1000,
      }));
    } catch (error) {
      throw refusal(error);
    }
    return verifiedToken(payload);
  }

  async #keyFor(kid: string | undefined): Promise<VerifyKey> {
    if (kid === undefined) {
      throw new VerifyError("MALFORMED_TOKEN", "the access token names no key (kid)");
    }
    let key = this.#keys.get(kid);
    if (key === undefined && (this.#keysFetch !== undefined || this.#mayRefetch())) {
      await this.#fetchKeys().catch(() => {});
      key = this.#keys.get(kid);
    }
    if (key === undefined) {
      throw new VerifyError("UNKNOWN_KEY", "the access token is signed by an unknown key");
    }
    return key;
  }

  #mayRefetch(): boolean {
    return Date.now() - this.#lastKeysFetchMs >= this.#minRefetchMs;
  }

  /** Fetches the JWKS; concurrent callers share one fetch. */
  #fetchKeys(): Promise<void> {
    this.#keysFetch ??= (async () => {
      this.#lastKeysFetchMs = Date.now();
      try {
        const { jwksJson } = await this.#client.getSigningKeys({});
        this.#keys = await parseJwks(jwksJson);
      } finally {
        this.#keysFetch = undefined;
      }
    })();
    return this.#keysFetch;
  }

  #isRevoked(token: VerifiedToken): boolean {
    if (this.#revokedSessions.has(token.sessionId)) {
      return true; // every token of a revoked session
    }
    const user = this.#revokedUsers.get(token.userId);
    return user !== undefined && token.issuedAt < user.notBefore;
  }

  /** While the feed is stale: ValidateToken decides whether the token still stands. */
  async #validateRemotely(accessToken: string): Promise<void> {
    try {
      await this.#client.validateToken({ sessionToken: accessToken });
    } catch (error) {
      // UNAUTHENTICATED: the token's session or user no longer stands. Anything else
      // (unreachable, PERMISSION_DENIED by a caller policy...) decides nothing about it.
      if (ConnectError.from(error).code === Code.Unauthenticated) {
        throw new VerifyError("TOKEN_REVOKED", "ValidateToken refused it", { cause: error });
      }
      const message = "the revocation feed is stale and ValidateToken failed";
      throw new VerifyError("REVOCATION_FEED_STALE", message, { cause: error });
    }
  }

  #watchRevocations(reconnect: ReconnectOptions): Promise<void> {
    return runResumable<Revocation>({
      cursor: "",
      open: (afterCursor, signal) =>
        this.#client.watchRevocations({ afterCursor }, { signal, timeoutMs: 0 }),
      handle: (revocation) => this.#apply(revocation),
      stop: this.#stop.signal,
      options: reconnect,
      onFinal: (error) => {
        // A cursor past the feed's retention: every revocation that can still matter is in
        // a fresh snapshot, so start over from it (and count as unsynced until it is read).
        if (ConnectError.from(error).code === Code.FailedPrecondition) {
          this.#synced = false;
          return "";
        }
        return undefined;
      },
    }).catch((error: unknown) => {
      this.#feedError = error;
    });
  }

  #apply(revocation: Revocation): void {
    const now = Date.now();
    this.#lastHeardMs = now;
    const expireMs = timestampMs(revocation.expireTime) ?? Infinity;
    switch (revocation.subject.case) {
      case "sessionId":
        this.#revokedSessions.set(revocation.subject.value, expireMs);
        break;
      case "userId": {
        const notBefore = (timestampMs(revocation.notBefore) ?? now) / 1000;
        const known = this.#revokedUsers.get(revocation.subject.value);
        this.#revokedUsers.set(revocation.subject.value, {
          notBefore: Math.max(notBefore, known?.notBefore ?? -Infinity),
          expireMs: Math.max(expireMs, known?.expireMs ?? -Infinity),
        });
        break;
      }
      default: // a heartbeat: the snapshot (or the resumed feed) is caught up
        this.#synced = true;
        if (now - this.#lastPruneMs > 1000) {
          this.#prune(now);
        }
    }
  }

  /** Forgets revocations after which no token they concern can still be unexpired. */
  #prune(now: number): void {
    this.#lastPruneMs = now;
    for (const [id, expireMs] of this.#revokedSessions) {
      if (expireMs < now) {
        this.#revokedSessions.delete(id);
      }
    }
    for (const [id, user] of this.#revokedUsers) {
      if (user.expireMs < now) {
        this.#revokedUsers.delete(id);
      }
    }
  }
}

function timestampMs(time: { seconds: bigint; nanos: number } | undefined): number | undefined {
  return time === undefined ? undefined : Number(time.seconds) * 1000 + time.nanos / 1e6;
}

/** The Ed25519 signing keys of a JWK Set, by kid; other keys are skipped. */
async function parseJwks(jwksJson: string): Promise<Map<string, VerifyKey>> {
  const keys = new Map<string, VerifyKey>();
  const parsed = JSON.parse(jwksJson) as { keys?: JWK[] };
  for (const jwk of parsed.keys ?? []) {
    const { kty, crv, x, kid, alg, use } = jwk;
    const usable =
      kty === "OKP" &&
      crv === "Ed25519" &&
      typeof x === "string" &&
      typeof kid === "string" &&
      (alg === undefined || alg === ALGORITHM) &&
      (use === undefined || use === "sig");
    if (usable) {
      keys.set(kid, await importJWK({ kty, crv, x }, ALGORITHM));
    }
  }
  return keys;
}

function verifiedToken(payload: JWTPayload): VerifiedToken {
  const { sub, sid, aal, amr, iat, exp, email } = payload as JWTPayload & {
    sid?: unknown;
    aal?: unknown;
    amr?: unknown;
    email?: unknown;
  };
  const methods = Array.isArray(amr) && amr.every((m) => typeof m === "string") ? amr : undefined;
  if (
    typeof sub !== "string" ||
    typeof sid !== "string" ||
    typeof iat !== "number" ||
    typeof exp !== "number" ||
    !(aal === undefined || typeof aal === "number") ||
    methods === undefined
  ) {
    throw new VerifyError("MALFORMED_TOKEN", "the access token's claims are not authsvc's");
  }
  return {
    userId: sub,
    sessionId: sid,
    aal: aal ?? 1,
    methods,
    issuedAt: iat,
    expiresAt: exp,
    email: typeof email === "string" ? email : "",
  };
}

/** Maps what jose throws (or what the key lookup threw) to a {@link VerifyError}. */
function refusal(error: unknown): VerifyError {
  if (error instanceof VerifyError) {
    return error;
  }
  if (error instanceof jose.JWTExpired) {
    return new VerifyError("TOKEN_EXPIRED", "the access token has expired", { cause: error });
  }
  if (error instanceof jose.JWTClaimValidationFailed) {
    return error.claim === "iss"
      ? new VerifyError("WRONG_ISSUER", "the access token's issuer is not the expected one")
      : new VerifyError("MALFORMED_TOKEN", `bad access token claim or header: ${error.claim}`);
  }
  if (
    error instanceof jose.JWSSignatureVerificationFailed ||
    error instanceof jose.JOSEAlgNotAllowed ||
    error instanceof jose.JOSENotSupported
  ) {
    return new VerifyError("BAD_SIGNATURE", "the access token's signature does not verify");
  }
  return new VerifyError("MALFORMED_TOKEN", "not an access token", { cause: error });
}
