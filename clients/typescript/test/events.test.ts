/**
 * EventConsumer's resume rules against a scripted local gRPC server (Connect's Node
 * adapter serving the generated AuthService): which cursor each reconnect asks for, that
 * heartbeats are tracked but not delivered, and which errors end `run`. Needs no authsvc;
 * the restart of a real server is tests/clients/test_typescript_client.py's.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { connectNodeAdapter } from "@connectrpc/connect-node";

import { AuthService, Code, ConnectError, EventConsumer, createAuthClient } from "../src/index.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

import type { EventSchema } from "../src/index.js";

type EventInit = MessageInitShape<typeof EventSchema>;
type Script = (afterCursor: string) => AsyncGenerator<EventInit>;

let script: Script = async function* () {};
const requested: string[] = [];
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
        async *watchEvents(request) {
          requested.push(request.afterCursor);
          yield* script(request.afterCursor);
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
  for (const session of sessions) {
    session.destroy();
  }
  server.close();
});

const event = (id: string, cursor: string): EventInit => ({ id, cursor, type: "user.created" });
const heartbeat = (cursor: string): EventInit => ({ cursor, type: "heartbeat" });

test("resumes after the last cursor delivered, heartbeats included, and stops on CURSOR_EXPIRED", async () => {
  requested.length = 0;
  script = async function* (afterCursor) {
    if (afterCursor === "") {
      yield event("e1", "c1");
      yield heartbeat("c2");
      throw new ConnectError("going away", Code.Unavailable);
    }
    if (afterCursor === "c2") {
      yield event("e3", "c3");
      return; // a clean end of stream is a disconnect too
    }
    throw new ConnectError("cursor expired", Code.FailedPrecondition);
  };
  const disconnects: Code[] = [];
  const consumer = new EventConsumer(createAuthClient({ address }), {
    minBackoffMs: 1,
    onDisconnect: (error) => disconnects.push(ConnectError.from(error).code),
  });
  const delivered: string[] = [];
  await assert.rejects(
    consumer.run((e) => {
      delivered.push(e.id);
    }),
    (error: unknown) => ConnectError.from(error).code === Code.FailedPrecondition,
  );
  assert.deepEqual(delivered, ["e1", "e3"]);
  assert.deepEqual(requested, ["", "c2", "c3"]);
  assert.deepEqual(disconnects, [Code.Unavailable, Code.Unavailable]);
  assert.equal(consumer.cursor, "c3");
});

test("an event whose handler throws is not delivered: run rejects before its cursor", async () => {
  requested.length = 0;
  script = async function* () {
    yield event("e1", "c1");
    yield event("e2", "c2");
  };
  const consumer = new EventConsumer(createAuthClient({ address }), { afterCursor: "c0" });
  await assert.rejects(
    consumer.run((e) => {
      if (e.id === "e2") {
        throw new Error("handler failed");
      }
    }),
    /handler failed/,
  );
  assert.equal(consumer.cursor, "c1");
  assert.deepEqual(requested, ["c0"]);
});

test("stop() ends run while the stream waits for events", async () => {
  script = async function* () {
    yield event("e1", "c1");
    await new Promise(() => {}); // never sends again
  };
  const consumer = new EventConsumer(createAuthClient({ address }));
  const running = consumer.run(() => consumer.stop());
  await running;
  assert.equal(consumer.cursor, "c1");
});
