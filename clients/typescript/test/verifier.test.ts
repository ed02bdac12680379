/**
 * The Verifier end to end against LIVE authsvc servers that
 * tests/clients/test_typescript_client.py starts:
 *
 * - AUTHSVC_TEST_ADDRESS: a server with the default settings;
 * - AUTHSVC_TEST_SHORT_TTL_ADDRESS: one whose access tokens live one second.
 *
 * Missing variables fail the tests instead of skipping them. Tokens are never printed.
 */
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { test } from "node:test";

import { Verifier, VerifyError, createAuthClient } from "../src/index.js";
import type {
  AuthClient,
  Interceptor,
  VerifiedToken,
  VerifierOptions,
  VerifyErrorReason,
} from "../src/index.js";

const DEADLINE_MS = 20_000;

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `set ${name} (tests/clients/test_typescript_client.py does)`);
  return value;
}

function client(address = env("AUTHSVC_TEST_ADDRESS")): AuthClient {
  return createAuthClient({ address, timeoutMs: 10_000 });
}

/** Signs a new user in; returns the sign-in's access and session tokens and ids. */
async function signIn(auth: AuthClient) {
  const email = `verifier.${randomUUID()}@example.com`;
  const password = "correct horse battery staple";
  await auth.createUser({ email, password, firstName: "Ada", lastName: "Lovelace" });
  const signedIn = await auth.createSession({ email, password });
  assert.notEqual(signedIn.accessToken, "", "CreateSession returned no access token");
  return signedIn;
}

async function withVerifier<T>(
  auth: AuthClient,
  options: VerifierOptions,
  body: (verifier: Verifier) => Promise<T>,
): Promise<T> {
  const verifier = new Verifier(auth, options);
  try {
    await verifier.ready();
    return await body(verifier);
  } finally {
    await verifier.close();
  }
}

async function refusal(call: Promise<VerifiedToken>): Promise<VerifyErrorReason> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof VerifyError, String(error));
    return error.reason;
  }
  assert.fail("the token was accepted but should have been refused");
}

/** Polls `verify` until it refuses with `code`; fails after the deadline. */
async function refusedEventually(verify: () => Promise<VerifiedToken>, code: VerifyErrorReason) {
  const deadline = Date.now() + DEADLINE_MS;
  let last: unknown = "accepted";
  while (Date.now() < deadline) {
    try {
      await verify();
      last = "accepted";
    } catch (error) {
      if (error instanceof VerifyError && error.reason === code) {
        return;
      }
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`not refused with ${code} in time; last: ${String(last)}`);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

function parts(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; signature: string } {
  const [header, payload, signature] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header!, "base64url").toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload!, "base64url").toString()) as Record<string, unknown>,
    signature: signature!,
  };
}

test("a valid access token verifies to its user, session, aal and methods", async () => {
  const auth = client();
  const signedIn = await signIn(auth);
  await withVerifier(auth, {}, async (verifier) => {
    const verified = await verifier.verify(signedIn.accessToken);
    assert.equal(verified.userId, signedIn.user?.id);
    assert.equal(verified.sessionId, signedIn.session?.id);
    assert.equal(verified.aal, 1);
    assert.deepEqual(verified.methods, ["PASSWORD"]);
    // Answered again from what was verified (same result).
    assert.deepEqual(await verifier.verify(signedIn.accessToken), verified);
  });
});

test("tampered, forged and foreign tokens are refused with their reason", async () => {
  const auth = client();
  const { accessToken } = await signIn(auth);
  const { header, payload, signature } = parts(accessToken);
  const { jwksJson } = await auth.getSigningKeys({});
  const publicKey = Buffer.from((JSON.parse(jwksJson) as { keys: { x: string }[] }).keys[0]!.x, "base64url");
  const hs256Header = b64({ ...header, alg: "HS256" });
  const hs256Input = `${hs256Header}.${b64(payload)}`;
  const hs256 = `${hs256Input}.${createHmac("sha256", publicKey).update(hs256Input).digest("base64url")}`;
  await withVerifier(auth, {}, async (verifier) => {
    const tampered = `${b64(header)}.${b64({ ...payload, sub: randomUUID() })}.${signature}`;
    assert.equal(await refusal(verifier.verify(tampered)), "BAD_SIGNATURE");
    const unknownKid = `${b64({ ...header, kid: "no-such-key" })}.${b64(payload)}.${signature}`;
    assert.equal(await refusal(verifier.verify(unknownKid)), "UNKNOWN_KEY");
    const none = `${b64({ ...header, alg: "none" })}.${b64(payload)}.`;
    assert.equal(await refusal(verifier.verify(none)), "BAD_SIGNATURE");
    assert.equal(await refusal(verifier.verify(hs256)), "BAD_SIGNATURE");
    assert.equal(await refusal(verifier.verify("not.a.jwt")), "MALFORMED_TOKEN");
    // The genuine token still passes: none of the above poisoned the cache.
    await verifier.verify(accessToken);
  });
  await withVerifier(auth, { issuer: "https://someone-else.example" }, async (verifier) => {
    assert.equal(await refusal(verifier.verify(accessToken)), "WRONG_ISSUER");
  });
});

test("unknown kids refetch the keys at most once a second", async () => {
  const auth = client();
  const { accessToken } = await signIn(auth);
  const [header, payload, signature] = accessToken.split(".");
  const kid = (JSON.parse(Buffer.from(header!, "base64url").toString()) as { kid: string }).kid;
  let keyFetches = 0;
  const counting: Interceptor = (next) => async (request) => {
    keyFetches += request.method.name === "GetSigningKeys" ? 1 : 0;
    return await next(request);
  };
  const watched = createAuthClient({ address: env("AUTHSVC_TEST_ADDRESS"), interceptors: [counting] });
  const started = Date.now();
  await withVerifier(watched, {}, async (verifier) => {
    for (let i = 0; i < 50; i++) {
      const forged = `${b64({ alg: "EdDSA", typ: "at+jwt", kid: `${kid}-${i}` })}.${payload}.${signature}`;
      assert.equal(await refusal(verifier.verify(forged)), "UNKNOWN_KEY");
    }
  });
  const seconds = Math.ceil((Date.now() - started) / 1000);
  assert.ok(keyFetches >= 1 && keyFetches <= seconds + 1, `${keyFetches} fetches in ${seconds} s`);
});

test("an access token is refused once it expires", async () => {
  const auth = client(env("AUTHSVC_TEST_SHORT_TTL_ADDRESS"));
  const { accessToken } = await signIn(auth);
  await withVerifier(auth, {}, async (verifier) => {
    await refusedEventually(() => verifier.verify(accessToken), "TOKEN_EXPIRED");
  });
});

test("a signed-out session is refused within the bound", async () => {
  const auth = client();
  const signedIn = await signIn(auth);
  await withVerifier(auth, {}, async (verifier) => {
    await verifier.verify(signedIn.accessToken);
    await auth.deleteSession({ sessionToken: signedIn.sessionToken });
    await refusedEventually(() => verifier.verify(signedIn.accessToken), "TOKEN_REVOKED");
  });
});

test("with the feed stale, fallbackToValidateToken asks the server per call", async () => {
  const auth = client();
  const signedIn = await signIn(auth);
  let validateCalls = 0;
  const counting: Interceptor = (next) => async (request) => {
    validateCalls += request.method.name === "ValidateToken" ? 1 : 0;
    return await next(request);
  };
  const watched = createAuthClient({ address: env("AUTHSVC_TEST_ADDRESS"), interceptors: [counting] });
  // Heartbeats come every second: with a 1 ms bound the feed is stale between them.
  const options = { maxStalenessMs: 1, fallbackToValidateToken: true };
  await withVerifier(watched, options, async (verifier) => {
    const deadline = Date.now() + DEADLINE_MS;
    while (validateCalls === 0) {
      assert.ok(Date.now() < deadline, "no call went to ValidateToken");
      const verified = await verifier.verify(signedIn.accessToken);
      assert.equal(verified.sessionId, signedIn.session?.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await auth.deleteSession({ sessionToken: signedIn.sessionToken });
    await refusedEventually(() => verifier.verify(signedIn.accessToken), "TOKEN_REVOKED");
  });
});

/** A TCP relay to `target` that can go silent without closing (a network partition). */
async function relay(target: string): Promise<{ address: string; cut: () => void; close: () => void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const sockets: net.Socket[] = [];
  let cut = false;
  const server = net.createServer((downstream) => {
    const upstream = net.connect(port, host);
    sockets.push(downstream, upstream);
    downstream.on("data", (chunk) => cut || upstream.write(chunk));
    upstream.on("data", (chunk) => cut || downstream.write(chunk));
    downstream.on("error", () => upstream.destroy());
    upstream.on("error", () => downstream.destroy());
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => {
      cut = true;
    },
    close: () => {
      sockets.forEach((socket) => socket.destroy());
      server.close();
    },
  };
}

test("a verifier cut off from the feed fails closed after maxStalenessMs", async () => {
  const direct = client();
  const { accessToken } = await signIn(direct);
  const link = await relay(env("AUTHSVC_TEST_ADDRESS"));
  try {
    await withVerifier(client(link.address), { maxStalenessMs: 1000 }, async (verifier) => {
      await verifier.verify(accessToken);
      link.cut();
      await refusedEventually(() => verifier.verify(accessToken), "REVOCATION_FEED_STALE");
    });
  } finally {
    link.close();
  }
});
