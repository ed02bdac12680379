/**
 * End-to-end test of the generated TypeScript client against a LIVE authsvc.
 *
 * The server's `host:port` comes from AUTHSVC_TEST_ADDRESS; tests/test_typescript_client.py
 * starts a real server and runs this file (`make test`). Without the variable the test fails
 * instead of skipping, so a broken wiring cannot pass silently.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Code, authFailure, createAuthClient } from "../src/index.js";
import type { AuthClient, AuthFailure } from "../src/index.js";

const PASSWORD = "correct horse battery staple";

function client(): AuthClient {
  const address = process.env.AUTHSVC_TEST_ADDRESS;
  assert.ok(address, "set AUTHSVC_TEST_ADDRESS to the host:port of a running authsvc");
  return createAuthClient({ address, timeoutMs: 10_000 });
}

/** Awaits a call that must fail and returns the decoded google.rpc.Status. */
async function failure(call: Promise<unknown>): Promise<AuthFailure> {
  try {
    await call;
  } catch (error) {
    const decoded = authFailure(error);
    assert.ok(decoded, `no grpc-status-details-bin on ${String(error)}`);
    return decoded;
  }
  assert.fail("the call succeeded but should have failed");
}

function uniqueEmail(): string {
  return `Ada.${randomUUID()}@Example.com`;
}

test("sign up, sign in, validate, refresh, sign out", async () => {
  const auth = client();
  const email = uniqueEmail();

  const { user } = await auth.createUser({
    email,
    password: PASSWORD,
    firstName: "Ada",
    lastName: "Lovelace",
  });
  assert.ok(user);
  assert.equal(user.email, email.toLowerCase());
  assert.equal(user.firstName, "Ada");
  assert.ok(user.createTime, "create_time is set");

  const signIn = await auth.createSession({ email, password: PASSWORD, userAgent: "e2e" });
  assert.equal(signIn.user?.id, user.id);
  assert.equal(signIn.session?.userId, user.id);
  assert.equal(signIn.session?.userAgent, "e2e");
  assert.notEqual(signIn.sessionToken, "");
  assert.notEqual(signIn.updateToken, "");

  const valid = await auth.validateToken({ sessionToken: signIn.sessionToken });
  assert.equal(valid.user?.id, user.id);
  assert.equal(valid.session?.id, signIn.session?.id);

  const refreshed = await auth.refreshSession({ updateToken: signIn.updateToken });
  assert.equal(refreshed.session?.id, signIn.session?.id);
  assert.notEqual(refreshed.sessionToken, signIn.sessionToken);
  assert.notEqual(refreshed.updateToken, signIn.updateToken);
  const old = await failure(auth.validateToken({ sessionToken: signIn.sessionToken }));
  assert.equal(old.reason, "TOKEN_INVALID");
  const again = await auth.validateToken({ sessionToken: refreshed.sessionToken });
  assert.equal(again.user?.id, user.id);

  await auth.deleteSession({ sessionToken: refreshed.sessionToken });
  const gone = await failure(auth.validateToken({ sessionToken: refreshed.sessionToken }));
  assert.equal(gone.code, Code.Unauthenticated);
  assert.equal(gone.reason, "TOKEN_INVALID");
});

test("signing up twice with one email fails with reason EMAIL_TAKEN", async () => {
  const auth = client();
  const email = uniqueEmail();
  const request = { email, password: PASSWORD, firstName: "Ada", lastName: "Lovelace" };
  await auth.createUser(request);

  const taken = await failure(auth.createUser({ ...request, email: email.toUpperCase() }));
  assert.equal(taken.code, Code.AlreadyExists);
  assert.equal(taken.reason, "EMAIL_TAKEN");
  assert.equal(taken.domain, "authsvc");
});

test("a bad field fails with INVALID_ARGUMENT naming it in BadRequest", async () => {
  const auth = client();
  const bad = await failure(
    auth.createUser({ email: "not-an-email", password: PASSWORD, firstName: "Ada", lastName: "" }),
  );
  assert.equal(bad.code, Code.InvalidArgument);
  assert.equal(bad.reason, "INVALID_ARGUMENT");
  assert.deepEqual([...bad.fields].sort(), ["email", "last_name"]);
});

test("five wrong passwords throttle the account: TOO_MANY_ATTEMPTS with RetryInfo", async () => {
  const auth = client();
  const email = uniqueEmail();
  await auth.createUser({ email, password: PASSWORD, firstName: "Ada", lastName: "Lovelace" });

  for (let attempt = 1; attempt <= 5; attempt++) {
    const wrong = await failure(auth.createSession({ email, password: `wrong ${attempt}` }));
    assert.equal(wrong.code, Code.Unauthenticated, `attempt ${attempt}`);
    assert.equal(wrong.reason, "INVALID_CREDENTIALS");
    assert.equal(wrong.retryAfterMs, undefined);
  }
  const throttled = await failure(auth.createSession({ email, password: PASSWORD }));
  assert.equal(throttled.code, Code.ResourceExhausted);
  assert.equal(throttled.reason, "TOO_MANY_ATTEMPTS");
  assert.equal(throttled.domain, "authsvc");
  assert.equal(typeof throttled.retryAfterMs, "number");
  assert.ok(throttled.retryAfterMs! > 0, `retryAfterMs ${throttled.retryAfterMs}`);
});

test("password reset ends every session; a disabled user is refused", async () => {
  const auth = client();
  const email = uniqueEmail();
  const { user } = await auth.createUser({
    email,
    password: PASSWORD,
    firstName: "Ada",
    lastName: "Lovelace",
  });
  assert.ok(user);
  const before = await auth.createSession({ email, password: PASSWORD });

  const unknown = await auth.startPasswordReset({ email: uniqueEmail() });
  assert.equal(unknown.resetToken, "", "an unknown email gets an empty token");
  const started = await auth.startPasswordReset({ email });
  assert.ok(started.resetToken.startsWith("asv_rt_"));
  const newPassword = "a reset passphrase for e2e";
  const reset = await auth.completePasswordReset({ resetToken: started.resetToken, newPassword });
  assert.equal(reset.user?.emailVerified, true);
  const ended = await failure(auth.validateToken({ sessionToken: before.sessionToken }));
  assert.equal(ended.reason, "TOKEN_INVALID");
  const used = await failure(
    auth.completePasswordReset({ resetToken: started.resetToken, newPassword }),
  );
  assert.equal(used.reason, "TOKEN_INVALID");

  await auth.disableUser({ id: user.id });
  const refused = await failure(auth.createSession({ email, password: newPassword }));
  assert.equal(refused.code, Code.PermissionDenied);
  assert.equal(refused.reason, "USER_DISABLED");
});
