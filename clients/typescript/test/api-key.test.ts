/**
 * The `apiKey` option on the wire: a local gRPC server (Connect's Node adapter on plain
 * HTTP/2, serving the generated AuthService) records the `x-api-key` request header of
 * each call. Needs no authsvc.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { connectNodeAdapter } from "@connectrpc/connect-node";

import { AuthService, createAuthClient } from "../src/index.js";
import type { Interceptor } from "../src/index.js";

const seen: (string | null)[] = [];
let server: http2.Http2Server;
let address = "";
const sessions = new Set<http2.ServerHttp2Session>();

before(async () => {
  const handler = connectNodeAdapter({
    grpc: true,
    connect: false,
    grpcWeb: false,
    routes(router) {
      router.service(AuthService, {
        getUser(request, context) {
          seen.push(context.requestHeader.get("x-api-key"));
          return { user: { id: request.id } };
        },
      });
    },
  });
  server = http2.createServer(handler);
  server.on("session", (session: http2.ServerHttp2Session) => sessions.add(session));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  // The clients keep their HTTP/2 connections open: end them, or close() waits for them.
  for (const session of sessions) {
    session.destroy();
  }
  server.close();
});

test("apiKey is sent as x-api-key on every call", async () => {
  seen.length = 0;
  const auth = createAuthClient({ address, apiKey: "s3cr3t-key", timeoutMs: 10_000 });
  const first = await auth.getUser({ id: "u1" });
  const second = await auth.getUser({ id: "u2" });
  assert.equal(first.user?.id, "u1");
  assert.equal(second.user?.id, "u2");
  assert.deepEqual(seen, ["s3cr3t-key", "s3cr3t-key"]);
});

test("without apiKey no x-api-key header is sent", async () => {
  seen.length = 0;
  const auth = createAuthClient({ address, timeoutMs: 10_000 });
  await auth.getUser({ id: "u1" });
  assert.deepEqual(seen, [null]);
});

test("extra interceptors run alongside the API key", async () => {
  seen.length = 0;
  const methods: string[] = [];
  const record: Interceptor = (next) => async (request) => {
    methods.push(request.method.name);
    return await next(request);
  };
  const auth = createAuthClient({ address, apiKey: "k", interceptors: [record] });
  await auth.getUser({ id: "u1" });
  assert.deepEqual(seen, ["k"]);
  assert.deepEqual(methods, ["GetUser"]);
});

test("an empty apiKey or a URL for address is a usage error", () => {
  assert.throws(() => createAuthClient({ address, apiKey: "" }), /apiKey is empty/);
  assert.throws(() => createAuthClient({ address: `http://${address}` }), /not a URL/);
});
