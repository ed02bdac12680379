/**
 * Local verification of authsvc's access tokens (JWT, EdDSA): the signing keys come from
 * GetSigningKeys, revocations from the WatchRevocations feed, held open in the background.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { errors as jose, importJWK, jwtVerify } from "jose";
import type { JWK, JWTPayload } from "jose";

import {
  AssuranceLevel,
  AuthenticationMethodType,
} from "./gen/authsvc/v1/auth_service_pb.js";
import type { AuthService, Revocation, Session } from "./gen/authsvc/v1/auth_service_pb.js";
import { runResumable } from "./resumable.js";
import type { ReconnectOptions } from "./resumable.js";

/** Why {@link Verifier.verify} refused a token. */
export type VerifyErrorCode =
  /** Not a compact JWS with the claims authsvc puts in every access token. */
  | "malformed"
  /** The signature does not verify, or the algorithm is not EdDSA (e.g. `none`, HS256). */
  | "bad_signature"
  /** Signed with a key (`kid`) that GetSigningKeys does not publish. */
  | "unknown_key"
  /** The `iss` claim is not the issuer the verifier expects. */
  | "wrong_issuer"
  /** Past its `exp`. */
  | "expired"
  /** Its session, or every token of its user issued before some time, was revoked. */
  | "revoked"
  /**
   * The revocation feed has been silent longer than `maxStalenessMs` (fail closed), and
   * `fallbackToValidateToken` is off or ValidateToken could not be reached.
   */
  | "stale";

/** A token the verifier refused; `code` says why. */
export class VerifyError extends Error {
  override readonly name = "VerifyError";
  constructor(
    readonly code: VerifyErrorCode,
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
  /** The session's assurance level (`aal`), e.g. `"aal1"` or `"aal2"`. */
  aal: string;
  /** How the session was authenticated (`amr`), e.g. `["pwd", "otp"]`. */
  methods: string[];
  /** When the token expires (`exp`), in ms since the epoch. */
  expiresAtMs: number;
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
   * When the feed is stale, ask ValidateToken instead of refusing (one network round trip
   * per call until the feed is back). Default false: refuse with code `stale`.
   */
  fallbackToValidateToken?: boolean | undefined;
  /** How many verified tokens to remember (least recently used go first). Default 10000. */
  cacheSize?: number | undefined;
  /** How often the signing keys are fetched again, in ms. Default 60000. */
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

/** What the signature check established, remembered per token. */
interface Checked {
  token: VerifiedToken;
  issuedAt: number; // seconds since the epoch, as in `iat`
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
 * feed has been silent longer than `maxStalenessMs` it refuses (code `stale`), or asks
 * ValidateToken when `fallbackToValidateToken` is set. {@link close} it at shutdown.
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
  readonly #checked = new Map<string, Checked>();
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
    this.#refresh = setInterval(() => void this.#fetchKeys().catch(() => {}), options.jwksRefreshMs ?? 60_000);
    this.#refresh.unref();
    void this.#fetchKeys().catch(() => {});
    this.#feed = this.#watchRevocations({ idleTimeoutMs: 15_000, ...options.reconnect });
  }

  /**
   * Resolves once the signing keys are loaded and the revocation feed has caught up (its
   * first heartbeat); rejects after `timeoutMs` (default 10000) or when the feed failed.
   */
  async ready(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#feedError !== undefined) {
        throw this.#feedError;
      }
      if (this.#keys.size > 0 && this.#synced) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error("the verifier is not ready: no signing keys or no revocation feed yet");
      }
      if (this.#keys.size === 0) {
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
   * {@link VerifyError} naming why not.
   */
  async verify(accessToken: string): Promise<VerifiedToken> {
    let checked = this.#checked.get(accessToken);
    if (checked === undefined) {
      checked = await this.#checkSignature(accessToken);
      this.#remember(accessToken, checked);
    } else {
      this.#checked.delete(accessToken); // most recently used goes last
      this.#checked.set(accessToken, checked);
    }
    if (Date.now() >= checked.token.expiresAtMs + this.#toleranceMs) {
      this.#checked.delete(accessToken);
      throw new VerifyError("expired", "the access token has expired");
    }
    if (this.#isRevoked(checked)) {
      throw new VerifyError("revoked", "the access token's session was revoked");
    }
    if (this.stale) {
      if (!this.#fallback) {
        throw new VerifyError("stale", "the revocation feed is stale; refusing (fail closed)");
      }
      return await this.#validateRemotely(accessToken, checked);
    }
    return checked.token;
  }

  /** Stops the revocation feed and the key refresh. */
  async close(): Promise<void> {
    clearInterval(this.#refresh);
    this.#stop.abort();
    await this.#feed.catch(() => {});
  }

  #remember(accessToken: string, checked: Checked): void {
    if (this.#checked.size >= this.#cacheSize) {
      const oldest = this.#checked.keys().next().value;
      if (oldest !== undefined) {
        this.#checked.delete(oldest);
      }
    }
    this.#checked.set(accessToken, checked);
  }

  async #checkSignature(accessToken: string): Promise<Checked> {
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
    return { token: verifiedToken(payload), issuedAt: payload.iat ?? 0 };
  }

  async #keyFor(kid: string | undefined): Promise<VerifyKey> {
    if (kid === undefined) {
      throw new VerifyError("malformed", "the access token names no key (kid)");
    }
    let key = this.#keys.get(kid);
    if (key === undefined && (this.#keysFetch !== undefined || this.#mayRefetch())) {
      await this.#fetchKeys().catch(() => {});
      key = this.#keys.get(kid);
    }
    if (key === undefined) {
      throw new VerifyError("unknown_key", "the access token is signed by an unknown key");
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

  #isRevoked(checked: Checked): boolean {
    if (this.#revokedSessions.has(checked.token.sessionId)) {
      return true;
    }
    const user = this.#revokedUsers.get(checked.token.userId);
    return user !== undefined && checked.issuedAt < user.notBefore;
  }

  async #validateRemotely(accessToken: string, checked: Checked): Promise<VerifiedToken> {
    try {
      const { user, session } = await this.#client.validateToken({ sessionToken: accessToken });
      return {
        ...checked.token,
        userId: user?.id ?? checked.token.userId,
        sessionId: session?.id ?? checked.token.sessionId,
        ...(session !== undefined ? sessionAssurance(session) : {}),
      };
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
        throw new VerifyError("revoked", "ValidateToken refused the token", { cause: error });
      }
      throw new VerifyError("stale", "the revocation feed is stale and ValidateToken failed", {
        cause: error,
      });
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

async function parseJwks(jwksJson: string): Promise<Map<string, VerifyKey>> {
  const keys = new Map<string, VerifyKey>();
  const parsed = JSON.parse(jwksJson) as { keys?: JWK[] };
  for (const jwk of parsed.keys ?? []) {
    const usable =
      typeof jwk.x === "string" &&
      jwk.kty === "OKP" &&
      jwk.crv === "Ed25519" &&
      typeof jwk.kid === "string" &&
      (jwk.alg === undefined || jwk.alg === ALGORITHM) &&
      (jwk.use === undefined || jwk.use === "sig");
    if (usable) {
      keys.set(jwk.kid as string, await importJWK({ kty: "OKP", crv: "Ed25519", x: jwk.x as string }, ALGORITHM));
    }
  }
  return keys;
}

function verifiedToken(payload: JWTPayload): VerifiedToken {
  const { sub, sid, aal, amr, exp } = payload as JWTPayload & {
    sid?: unknown;
    aal?: unknown;
    amr?: unknown;
  };
  const methods = Array.isArray(amr) && amr.every((m) => typeof m === "string") ? amr : undefined;
  if (typeof sub !== "string" || typeof sid !== "string" || typeof exp !== "number" || !methods) {
    throw new VerifyError("malformed", "the access token lacks sub, sid, exp or amr");
  }
  return {
    userId: sub,
    sessionId: sid,
    aal: typeof aal === "string" ? aal : String(aal ?? ""),
    methods,
    expiresAtMs: exp * 1000,
  };
}

/** The names access tokens use for a session's assurance level and methods. */
function sessionAssurance(session: Session): { aal: string; methods: string[] } {
  const aal = AssuranceLevel[session.assuranceLevel] ?? "";
  return {
    aal: aal.replace(/^ASSURANCE_LEVEL_/, "").toLowerCase(),
    methods: session.authenticationMethods.map((m) =>
      (AuthenticationMethodType[m.method] ?? "").replace(/^AUTHENTICATION_METHOD_TYPE_/, "").toLowerCase(),
    ),
  };
}

/** Maps what jose throws (or what the key lookup threw) to a {@link VerifyError}. */
function refusal(error: unknown): VerifyError {
  if (error instanceof VerifyError) {
    return error;
  }
  if (error instanceof jose.JWTExpired) {
    return new VerifyError("expired", "the access token has expired", { cause: error });
  }
  if (error instanceof jose.JWTClaimValidationFailed) {
    return error.claim === "iss"
      ? new VerifyError("wrong_issuer", "the access token's issuer is not the expected one")
      : new VerifyError("malformed", `bad access token claim or header: ${error.claim}`);
  }
  if (
    error instanceof jose.JWSSignatureVerificationFailed ||
    error instanceof jose.JOSEAlgNotAllowed ||
    error instanceof jose.JOSENotSupported
  ) {
    return new VerifyError("bad_signature", "the access token's signature does not verify");
  }
  return new VerifyError("malformed", "not an access token", { cause: error });
}
