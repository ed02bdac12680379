/**
 * TLS and mutual TLS against LIVE authsvc servers that tests/test_typescript_client.py
 * starts with a throwaway CA (tests/certs.py). It passes:
 *
 * - AUTHSVC_TEST_TLS_ADDRESS: a TLS server (no client certificate asked);
 * - AUTHSVC_TEST_MTLS_ADDRESS: a mutual-TLS server (client certificate from the CA required);
 * - AUTHSVC_TEST_CA, AUTHSVC_TEST_CLIENT_CERT, AUTHSVC_TEST_CLIENT_KEY: PEM file paths;
 * - AUTHSVC_TEST_SERVER_NAME: the DNS name in the server certificate.
 *
 * Missing variables fail the tests instead of skipping them.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Code, ConnectError, authFailure, createAuthClient } from "../src/index.js";
import type { AuthClient, TlsOptions } from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `set ${name} (tests/test_typescript_client.py does)`);
  return value;
}

function pem(name: string): Buffer {
  return readFileSync(env(name));
}

async function signUp(auth: AuthClient): Promise<string> {
  const email = `ada.${randomUUID()}@example.com`;
  const { user } = await auth.createUser({
    email,
    password: "correct horse battery staple",
    firstName: "Ada",
    lastName: "Lovelace",
  });
  assert.equal(user?.email, email);
  return user.id;
}

/**
 * Awaits a call that must fail before authsvc answers: no google.rpc.Status, and Connect's
 * code for a broken connection (Internal for a certificate the client rejects, Canceled or
 * Unavailable when the server drops the handshake). `message` matches the error's text.
 */
async function refused(call: Promise<unknown>, message?: RegExp): Promise<void> {
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    assert.equal(authFailure(error), undefined, `authsvc answered: ${String(error)}`);
    assert.ok(
      [Code.Internal, Code.Canceled, Code.Unavailable].includes(connectError.code),
      String(error),
    );
    if (message) {
      assert.match(connectError.message, message);
    }
    return;
  }
  assert.fail("the call succeeded but should have failed");
}

test("TLS: a client trusting the CA signs up (server name from tls.serverName)", async () => {
  const auth = createAuthClient({
    address: env("AUTHSVC_TEST_TLS_ADDRESS"),
    tls: { ca: pem("AUTHSVC_TEST_CA"), serverName: env("AUTHSVC_TEST_SERVER_NAME") },
    timeoutMs: 10_000,
  });
  const id = await signUp(auth);
  const { user } = await auth.getUser({ id });
  assert.equal(user?.id, id);
});

test("TLS: a CA given as a string works and the certificate's IP SAN matches", async () => {
  const auth = createAuthClient({
    address: env("AUTHSVC_TEST_TLS_ADDRESS"),
    tls: { ca: pem("AUTHSVC_TEST_CA").toString("utf8") },
    timeoutMs: 10_000,
  });
  await signUp(auth);
});

test("TLS: the client refuses a server name the certificate does not carry", async () => {
  const auth = createAuthClient({
    address: env("AUTHSVC_TEST_TLS_ADDRESS"),
    tls: { ca: pem("AUTHSVC_TEST_CA"), serverName: "not-authsvc.test" },
    timeoutMs: 10_000,
  });
  await refused(signUp(auth), /altnames/);
});

test("TLS: the client refuses a server whose CA it does not trust", async () => {
  const auth = createAuthClient({
    address: env("AUTHSVC_TEST_TLS_ADDRESS"),
    tls: {}, // the system's CAs only
    timeoutMs: 10_000,
  });
  await refused(signUp(auth), /certificate/);
});

test("plaintext to a TLS server fails", async () => {
  const auth = createAuthClient({ address: env("AUTHSVC_TEST_TLS_ADDRESS"), timeoutMs: 10_000 });
  await refused(signUp(auth));
});

test("mutual TLS: a client certificate from the client CA signs up", async () => {
  const tls: TlsOptions = {
    ca: pem("AUTHSVC_TEST_CA"),
    serverName: env("AUTHSVC_TEST_SERVER_NAME"),
    cert: pem("AUTHSVC_TEST_CLIENT_CERT"),
    key: pem("AUTHSVC_TEST_CLIENT_KEY"),
  };
  const auth = createAuthClient({ address: env("AUTHSVC_TEST_MTLS_ADDRESS"), tls, timeoutMs: 10_000 });
  const id = await signUp(auth);
  const { user } = await auth.getUser({ id });
  assert.equal(user?.id, id);
});

test("mutual TLS: a client without a certificate is refused", async () => {
  const auth = createAuthClient({
    address: env("AUTHSVC_TEST_MTLS_ADDRESS"),
    tls: { ca: pem("AUTHSVC_TEST_CA"), serverName: env("AUTHSVC_TEST_SERVER_NAME") },
    timeoutMs: 10_000,
  });
  await refused(signUp(auth));
});

test("a certificate without its key is a usage error", () => {
  assert.throws(
    () =>
      createAuthClient({
        address: "127.0.0.1:1",
        tls: { cert: pem("AUTHSVC_TEST_CLIENT_CERT") },
      }),
    /tls.cert and tls.key go together/,
  );
});
