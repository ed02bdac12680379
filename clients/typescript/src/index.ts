/**
 * A small typed wrapper over the generated authsvc client.
 *
 * The messages and the service descriptor in `./gen` are generated from `protos/` by
 * protoc-gen-es (`make gen`); this module only wires them to Connect's gRPC transport
 * (plaintext, TLS or mutual TLS, an optional API key) and decodes authsvc's rich errors.
 */
import { Code, ConnectError, createClient, decodeBinaryHeader } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { anyIs, anyUnpack } from "@bufbuild/protobuf/wkt";

import { AuthService } from "./gen/authsvc/v1/auth_service_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "./gen/google/rpc/status_pb.js";

export * from "./gen/authsvc/v1/auth_service_pb.js";
export { EventConsumer, HEARTBEAT } from "./events.js";
export type { EventConsumerOptions } from "./events.js";
export type { ReconnectOptions } from "./resumable.js";
export { Verifier, VerifyError } from "./verifier.js";
export type { VerifiedToken, VerifierOptions, VerifyErrorReason } from "./verifier.js";
export { AuthService };
export { Code, ConnectError };
export type { Interceptor };

/** The typed client: one async method per RPC, e.g. `client.createUser({...})`. */
export type AuthClient = Client<typeof AuthService>;

/** A PEM-encoded certificate or key: its contents (not a file path). */
export type Pem = string | Buffer;

/**
 * TLS settings. Pass `{}` to verify the server against the system's trusted CAs; give `ca`
 * for a private CA, and `cert` with `key` for mutual TLS (a client certificate).
 */
export interface TlsOptions {
  /** The CA certificate(s) that signed the server's certificate. Default: the system's. */
  ca?: Pem | undefined;
  /**
   * The name the server's certificate must carry (and the TLS SNI), when it differs from
   * the host of `address`, e.g. `authsvc.internal` while dialing an IP address.
   */
  serverName?: string | undefined;
  /** The client certificate (chain), for mutual TLS. Requires `key`. */
  cert?: Pem | undefined;
  /** The private key of `cert`, for mutual TLS. Requires `cert`. */
  key?: Pem | undefined;
}

/**
 * How to reach authsvc. Every optional field also takes `undefined` (e.g.
 * `apiKey: process.env.AUTHSVC_API_KEY`), even under `exactOptionalPropertyTypes`.
 */
export interface AuthClientOptions {
  /** `host:port` of the authsvc gRPC server, e.g. `127.0.0.1:50051`. */
  address: string;
  /** Deadline of every call unless the call sets its own `timeoutMs`. Default 5000. */
  timeoutMs?: number | undefined;
  /** TLS (or mutual TLS with `cert` and `key`). Omit it for plaintext HTTP/2. */
  tls?: TlsOptions | undefined;
  /** Sent on every call as the `x-api-key` request header (gRPC metadata). */
  apiKey?: string | undefined;
  /** More Connect interceptors for every call (after the one that sets `x-api-key`). */
  interceptors?: Interceptor[] | undefined;
}

/** The request header that carries `AuthClientOptions.apiKey`. */
export const API_KEY_HEADER = "x-api-key";

/** An interceptor that sets the `x-api-key` header of every request to `apiKey`. */
export function apiKeyInterceptor(apiKey: string): Interceptor {
  return (next) => async (request) => {
    request.header.set(API_KEY_HEADER, apiKey);
    return await next(request);
  };
}

/**
 * Creates a client for AuthService over gRPC (HTTP/2): plaintext by default, TLS when
 * `options.tls` is given, mutual TLS when it holds `cert` and `key`.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const { address, tls } = options;
  if (address.includes("://")) {
    throw new TypeError(`address is host:port, not a URL: ${address}`);
  }
  const interceptors: Interceptor[] = [];
  if (options.apiKey !== undefined) {
    if (options.apiKey === "") {
      throw new TypeError("apiKey is empty");
    }
    interceptors.push(apiKeyInterceptor(options.apiKey));
  }
  interceptors.push(...(options.interceptors ?? []));
  const transport = createGrpcTransport({
    baseUrl: `${tls ? "https" : "http"}://${address}`,
    defaultTimeoutMs: options.timeoutMs ?? 5000,
    interceptors,
    ...(tls ? { nodeOptions: secureSessionOptions(tls) } : {}),
  });
  return createClient(AuthService, transport);
}

function secureSessionOptions(tls: TlsOptions): {
  ca?: Pem;
  servername?: string;
  cert?: Pem;
  key?: Pem;
} {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError("tls.cert and tls.key go together (mutual TLS)");
  }
  return {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
  };
}

/** What a caller can read from a failed call: authsvc's google.rpc.Status, decoded. */
export interface AuthFailure {
  /** The gRPC status code, e.g. `Code.AlreadyExists`. */
  code: Code;
  /** `ErrorInfo.reason`: UPPER_SNAKE, stable, meant for programs (e.g. `EMAIL_TAKEN`). */
  reason: string;
  /** `ErrorInfo.domain`: `authsvc` for errors authsvc raised. */
  domain: string;
  /** The human-readable message of the status. */
  message: string;
  /** The request fields named by `google.rpc.BadRequest`, for INVALID_ARGUMENT. */
  fields: string[];
  /**
   * `google.rpc.RetryInfo.retry_delay` in milliseconds: how long to wait before trying
   * again, for RESOURCE_EXHAUSTED with reason TOO_MANY_ATTEMPTS; undefined otherwise.
   */
  retryAfterMs: number | undefined;
}

const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

/**
 * Decodes the google.rpc.Status that authsvc sends in the `grpc-status-details-bin`
 * trailer of a failed call. Returns undefined when `error` carries no such status (e.g. a
 * deadline expired before the server answered); rethrow those.
 */
export function authFailure(error: unknown): AuthFailure | undefined {
  const connectError = ConnectError.from(error);
  const raw = connectError.metadata.get(STATUS_DETAILS_TRAILER);
  if (raw === null) {
    return undefined;
  }
  const status = decodeBinaryHeader(raw, StatusSchema);
  const failure: AuthFailure = {
    code: status.code as Code,
    reason: "",
    domain: "",
    message: status.message,
    fields: [],
    retryAfterMs: undefined,
  };
  for (const detail of status.details) {
    if (anyIs(detail, ErrorInfoSchema)) {
      const info = anyUnpack(detail, ErrorInfoSchema);
      failure.reason = info?.reason ?? "";
      failure.domain = info?.domain ?? "";
    } else if (anyIs(detail, BadRequestSchema)) {
      const bad = anyUnpack(detail, BadRequestSchema);
      failure.fields.push(...(bad?.fieldViolations.map((v) => v.field) ?? []));
    } else if (anyIs(detail, RetryInfoSchema)) {
      const delay = anyUnpack(detail, RetryInfoSchema)?.retryDelay;
      if (delay !== undefined) {
        failure.retryAfterMs = Number(delay.seconds) * 1000 + Math.ceil(delay.nanos / 1e6);
      }
    }
  }
  return failure;
}
