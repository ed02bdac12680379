package com.example.authsvc.client;

import com.example.authsvc.v1.CreateSessionResponse;
import com.example.authsvc.v1.GetSigningKeysRequest;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The {@link Verifier} against live authsvc servers (run by {@link E2eTest}): {@code address}
 * has the default settings, {@code shortTtlAddress} issues access tokens that live a second.
 * Tokens are never printed.
 */
final class VerifierE2e {
  private static final Duration DEADLINE = Duration.ofSeconds(20);
  private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();
  private static final Base64.Decoder UNB64 = Base64.getUrlDecoder();

  private final E2eTest suite;
  private final String address;
  private final String shortTtlAddress;

  VerifierE2e(E2eTest suite, String address, String shortTtlAddress) {
    this.suite = suite;
    this.address = address;
    this.shortTtlAddress = shortTtlAddress;
  }

  void run() {
    suite.test("verifier: a valid token verifies to its user, session, aal, methods", this::valid);
    suite.test("verifier: forged and foreign tokens are refused with their reason", this::forged);
    suite.test("verifier: unknown kids refetch the keys at most once a second", this::refetch);
    suite.test("verifier: an expired token is refused", this::expired);
    suite.test("verifier: a signed-out session is refused within the bound", this::signedOut);
    suite.test("verifier: a stale feed falls back to ValidateToken when told", this::fallback);
    suite.test("verifier: cut off from the feed it fails closed", this::cutOff);
  }

  private void valid() throws Exception {
    try (AuthClient client = client(address)) {
      CreateSessionResponse signedIn = signIn(client);
      try (Verifier verifier = ready(Verifier.builder(client))) {
        VerifiedToken token = verifier.verify(signedIn.getAccessToken());
        check(token.userId().equals(signedIn.getUser().getId()), "user id");
        check(token.sessionId().equals(signedIn.getSession().getId()), "session id");
        check(token.aal() == 1, "aal " + token.aal());
        check(token.methods().equals(List.of("PASSWORD")), "methods " + token.methods());
        check(verifier.verify(signedIn.getAccessToken()) == token, "answered from the cache");
      }
    }
  }

  private void forged() throws Exception {
    try (AuthClient client = client(address)) {
      String token = signIn(client).getAccessToken();
      String[] parts = token.split("\\.");
      JsonObject header = json(parts[0]);
      JsonObject payload = json(parts[1]);
      String jwks = client.call(s -> s.getSigningKeys(GetSigningKeysRequest.getDefaultInstance()))
          .getJwksJson();
      String x = JsonParser.parseString(jwks).getAsJsonObject().getAsJsonArray("keys")
          .get(0).getAsJsonObject().get("x").getAsString();
      String hsInput = b64(with(header, "alg", "HS256")) + "." + parts[1];
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(UNB64.decode(x), "HmacSHA256"));
      String hs256 = hsInput + "." + B64.encodeToString(mac.doFinal(hsInput.getBytes(StandardCharsets.US_ASCII)));
      try (Verifier verifier = ready(Verifier.builder(client))) {
        String tampered = parts[0] + "." + b64(with(payload, "sub", UUID.randomUUID().toString())) + "." + parts[2];
        refused(verifier, tampered, VerificationException.Reason.BAD_SIGNATURE);
        String unknownKid = b64(with(header, "kid", "no-such-key")) + "." + parts[1] + "." + parts[2];
        refused(verifier, unknownKid, VerificationException.Reason.UNKNOWN_KEY);
        refused(verifier, b64(with(header, "alg", "none")) + "." + parts[1] + ".",
            VerificationException.Reason.BAD_SIGNATURE);
        refused(verifier, hs256, VerificationException.Reason.BAD_SIGNATURE);
        refused(verifier, "not.a.jwt", VerificationException.Reason.MALFORMED_TOKEN);
        verifier.verify(token); // the genuine one still passes
      }
      try (Verifier other = ready(Verifier.builder(client).issuer("https://someone-else.example"))) {
        refused(other, token, VerificationException.Reason.WRONG_ISSUER);
      }
    }
  }

  private void expired() throws Exception {
    try (AuthClient client = client(shortTtlAddress)) {
      String token = signIn(client).getAccessToken();
      try (Verifier verifier = ready(Verifier.builder(client))) {
        refusedEventually(verifier, token, VerificationException.Reason.TOKEN_EXPIRED);
      }
    }
  }

  private void signedOut() throws Exception {
    try (AuthClient client = client(address)) {
      CreateSessionResponse signedIn = signIn(client);
      try (Verifier verifier = ready(Verifier.builder(client))) {
        verifier.verify(signedIn.getAccessToken());
        client.deleteSession(signedIn.getSessionToken());
        refusedEventually(verifier, signedIn.getAccessToken(), VerificationException.Reason.TOKEN_REVOKED);
      }
    }
  }

  /** Counts the calls of one method. */
  private static ClientInterceptor counting(String method, AtomicInteger calls) {
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(
          MethodDescriptor<Q, R> called, CallOptions options, Channel next) {
        if (called.getFullMethodName().endsWith("/" + method)) {
          calls.incrementAndGet();
        }
        return next.newCall(called, options);
      }
    };
  }

  private void refetch() throws Exception {
    AtomicInteger fetches = new AtomicInteger();
    long started = System.nanoTime();
    try (AuthClient client = client(address);
        AuthClient watched =
            AuthClient.builder(address).intercept(counting("GetSigningKeys", fetches)).build()) {
      String[] parts = signIn(client).getAccessToken().split("\\.");
      JsonObject header = json(parts[0]);
      try (Verifier verifier = ready(Verifier.builder(watched))) {
        for (int i = 0; i < 50; i++) {
          String kid = header.get("kid").getAsString() + "-" + i;
          String forged = b64(with(header, "kid", kid)) + "." + parts[1] + "." + parts[2];
          refused(verifier, forged, VerificationException.Reason.UNKNOWN_KEY);
        }
      }
    }
    long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started) + 1;
    check(fetches.get() >= 1 && fetches.get() <= seconds + 1,
        fetches.get() + " key fetches in " + seconds + " s");
  }

  private void fallback() throws Exception {
    AtomicInteger validateCalls = new AtomicInteger();
    ClientInterceptor counting = counting("ValidateToken", validateCalls);
    try (AuthClient client = client(address);
        AuthClient watched = AuthClient.builder(address).intercept(counting).build()) {
      CreateSessionResponse signedIn = signIn(client);
      // Heartbeats come every second: with a 1 ms bound the feed is stale between them.
      Verifier.Builder builder =
          Verifier.builder(watched).maxStaleness(Duration.ofMillis(1)).fallbackToValidateToken(true);
      try (Verifier verifier = ready(builder)) {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (validateCalls.get() == 0) {
          check(System.nanoTime() < deadline, "no call went to ValidateToken");
          VerifiedToken token = verifier.verify(signedIn.getAccessToken());
          check(token.sessionId().equals(signedIn.getSession().getId()), "session id");
          Thread.sleep(2);
        }
        client.deleteSession(signedIn.getSessionToken());
        refusedEventually(verifier, signedIn.getAccessToken(), VerificationException.Reason.TOKEN_REVOKED);
      }
    }
  }

  private void cutOff() throws Exception {
    String token;
    try (AuthClient direct = client(address)) {
      token = signIn(direct).getAccessToken();
    }
    try (Relay relay = new Relay(address);
        AuthClient client = client("127.0.0.1:" + relay.port());
        Verifier verifier = ready(Verifier.builder(client).maxStaleness(Duration.ofSeconds(1)))) {
      verifier.verify(token);
      relay.cut();
      refusedEventually(verifier, token, VerificationException.Reason.REVOCATION_FEED_STALE);
    }
  }

  // --- helpers ---

  private static AuthClient client(String target) {
    return AuthClient.builder(target).deadline(Duration.ofSeconds(10)).build();
  }

  private static CreateSessionResponse signIn(AuthClient client) {
    String email = "java-verifier-" + UUID.randomUUID() + "@example.com";
    String password = "correct horse battery staple";
    client.createUser(email, password, "Ada", "Lovelace");
    CreateSessionResponse signedIn = client.createSession(email, password);
    check(!signedIn.getAccessToken().isEmpty(), "CreateSession returned no access token");
    return signedIn;
  }

  private static Verifier ready(Verifier.Builder builder) throws InterruptedException {
    Verifier verifier = builder.build();
    if (!verifier.awaitReady(Duration.ofSeconds(10))) {
      verifier.close();
      throw new AssertionError("the verifier did not get ready");
    }
    return verifier;
  }

  private static void refused(Verifier verifier, String token, VerificationException.Reason want) {
    try {
      verifier.verify(token);
    } catch (VerificationException error) {
      check(error.reason() == want, "expected " + want + ", got " + error.reason());
      return;
    }
    throw new AssertionError("accepted, but should be refused with " + want);
  }

  /** Polls verify until it refuses with {@code want}; fails after the deadline. */
  private static void refusedEventually(Verifier verifier, String token, VerificationException.Reason want)
      throws InterruptedException {
    long deadline = System.nanoTime() + DEADLINE.toNanos();
    Object last = "accepted";
    while (System.nanoTime() < deadline) {
      try {
        verifier.verify(token);
        last = "accepted";
      } catch (VerificationException error) {
        if (error.reason() == want) {
          return;
        }
        last = error.reason();
      }
      Thread.sleep(20);
    }
    throw new AssertionError("not refused with " + want + " in time; last: " + last);
  }

  private static JsonObject json(String part) {
    return JsonParser.parseString(new String(UNB64.decode(part), StandardCharsets.UTF_8)).getAsJsonObject();
  }

  private static JsonObject with(JsonObject object, String name, String value) {
    JsonObject copy = object.deepCopy();
    copy.addProperty(name, value);
    return copy;
  }

  private static String b64(JsonObject object) {
    return B64.encodeToString(object.toString().getBytes(StandardCharsets.UTF_8));
  }

  private static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError(what);
    }
  }

  /** A TCP relay to a server that can go silent without closing: a network partition. */
  private static final class Relay implements AutoCloseable {
    private final ServerSocket listener;
    private final List<Socket> sockets = new ArrayList<>();
    private volatile boolean cut;

    Relay(String target) throws IOException {
      int colon = target.lastIndexOf(':');
      String host = target.substring(0, colon);
      int port = Integer.parseInt(target.substring(colon + 1));
      listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
      Thread accept = new Thread(() -> accept(host, port), "relay-accept");
      accept.setDaemon(true);
      accept.start();
    }

    int port() {
      return listener.getLocalPort();
    }

    void cut() {
      cut = true;
    }

    private void accept(String host, int port) {
      try {
        while (true) {
          Socket down = listener.accept();
          Socket up = new Socket(host, port);
          synchronized (sockets) {
            sockets.add(down);
            sockets.add(up);
          }
          pipe(down, up);
          pipe(up, down);
        }
      } catch (IOException closed) {
        // the relay is closed
      }
    }

    private void pipe(Socket from, Socket to) {
      Thread thread =
          new Thread(
              () -> {
                byte[] buffer = new byte[32 * 1024];
                try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                  for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
                    if (!cut) {
                      out.write(buffer, 0, n);
                      out.flush();
                    }
                  }
                } catch (IOException closed) {
                  // one side closed
                }
              },
              "relay-pipe");
      thread.setDaemon(true);
      thread.start();
    }

    @Override
    public void close() throws IOException {
      listener.close();
      synchronized (sockets) {
        for (Socket socket : sockets) {
          socket.close();
        }
      }
    }
  }
}
