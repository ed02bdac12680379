/**
 * A small typed wrapper over the generated authsvc client.
 *
 * The messages and the service descriptor in `./gen` are generated from `protos/` by
 * protoc-gen-es (`make gen`); this module only wires them to Connect's gRPC transport and
 * decodes authsvc's rich errors.
 */
import { Code, ConnectError, createClient, decodeBinaryHeader } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { anyIs, anyUnpack } from "@bufbuild/protobuf/wkt";

import { AuthService } from "./gen/authsvc/v1/auth_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "./gen/google/rpc/status_pb.js";

export * from "./gen/authsvc/v1/auth_service_pb.js";
export { Code, ConnectError };

/** The typed client: one async method per RPC, e.g. `client.createUser({...})`. */
export type AuthClient = Client<typeof AuthService>;

/** How to reach authsvc. */
export interface AuthClientOptions {
  /** `host:port` of the authsvc gRPC server (plaintext HTTP/2), e.g. `127.0.0.1:50051`. */
  address: string;
  /** Deadline of every call unless the call sets its own `timeoutMs`. Default 5000. */
  timeoutMs?: number;
}

/** Creates a client for AuthService over gRPC (HTTP/2 without TLS). */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const transport = createGrpcTransport({
    baseUrl: `http://${options.address}`,
    defaultTimeoutMs: options.timeoutMs ?? 5000,
  });
  return createClient(AuthService, transport);
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
  };
  for (const detail of status.details) {
    if (anyIs(detail, ErrorInfoSchema)) {
      const info = anyUnpack(detail, ErrorInfoSchema);
      failure.reason = info?.reason ?? "";
      failure.domain = info?.domain ?? "";
    } else if (anyIs(detail, BadRequestSchema)) {
      const bad = anyUnpack(detail, BadRequestSchema);
      failure.fields.push(...(bad?.fieldViolations.map((v) => v.field) ?? []));
    }
  }
  return failure;
}
