package com.example.authsvc.client;

import com.example.authsvc.v1.AuthServiceGrpc;
import com.example.authsvc.v1.CreateSessionResponse;
import com.example.authsvc.v1.CreateUserRequest;
import com.example.authsvc.v1.GetUserRequest;
import com.example.authsvc.v1.GetUserResponse;
import com.example.authsvc.v1.ListSessionsRequest;
import com.example.authsvc.v1.ListSessionsResponse;
import com.example.authsvc.v1.RefreshSessionResponse;
import com.example.authsvc.v1.User;
import com.example.authsvc.v1.ValidateTokenResponse;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * End-to-end checks of {@link AuthClient} against a live authsvc, run as a plain main class
 * (no JUnit jar needed). Prints one line per test and closes with "N passed, M failed";
 * exits non-zero when any failed.
 *
 * <p>AUTHSVC_TEST_ADDRESS ({@code host:port}, plaintext) runs the plaintext suite. With
 * AUTHSVC_TEST_TLS_ADDRESS (a mutual-TLS authsvc) and AUTHSVC_TEST_TLS_CA,
 * AUTHSVC_TEST_TLS_CERT, AUTHSVC_TEST_TLS_KEY and AUTHSVC_TEST_TLS_SERVER_NAME it runs the
 * TLS suite instead. With AUTHSVC_TEST_SHORT_TTL_ADDRESS too (a server whose access tokens
 * live a second) it also runs the {@link Verifier} suite ({@link VerifierE2e}). Tokens and
 * passwords are never printed.
 */
public final class E2eTest {
  private static final String PASSWORD = "correct horse battery staple";
  private static final String OTHER_PASSWORD = "a different long passphrase";

  interface Check {
    void run() throws Exception;
  }

  private final List<String> failures = new ArrayList<>();
  private int passed;

  public static void main(String[] args) throws Exception {
    E2eTest suite = new E2eTest();
    String plain = System.getenv("AUTHSVC_TEST_ADDRESS");
    String tls = System.getenv("AUTHSVC_TEST_TLS_ADDRESS");
    if (plain == null && tls == null) {
      System.out.println("set AUTHSVC_TEST_ADDRESS or AUTHSVC_TEST_TLS_ADDRESS");
      System.exit(2);
    }
    if (plain != null) {
      suite.plaintextSuite(plain);
    }
    String shortTtl = System.getenv("AUTHSVC_TEST_SHORT_TTL_ADDRESS");
    if (plain != null && shortTtl != null) {
      new VerifierE2e(suite, plain, shortTtl).run();
    }
    if (tls != null) {
      suite.tlsSuite(tls);
    }
    System.out.println(suite.passed + " passed, " + suite.failures.size() + " failed");
    System.exit(suite.failures.isEmpty() && suite.passed > 0 ? 0 : 1);
  }

  private void plaintextSuite(String address) throws Exception {
    try (AuthClient client = AuthClient.builder(address).deadline(Duration.ofSeconds(10)).build()) {
      test("session lifecycle: refresh, reuse detection, sign-out", () -> lifecycle(client));
      test("duplicate sign-up reads EMAIL_TAKEN", () -> emailTaken(client));
      test("invalid arguments carry field violations", () -> invalidArgument(client));
      test("throttled sign-in carries RetryInfo", () -> throttled(client));
      test("getUser and changePassword", () -> userAndPassword(client));
      test("call() reaches RPCs without a wrapper method", () -> genericCall(client));
    }
    test("API key and default deadline reach the server", this::apiKeyAndDeadline);
    test("EventConsumer resumes after the last cursor", EventConsumerRules::resumesAfterLastCursor);
  }

  private void tlsSuite(String address) throws Exception {
    Path ca = Path.of(env("AUTHSVC_TEST_TLS_CA"));
    Path cert = Path.of(env("AUTHSVC_TEST_TLS_CERT"));
    Path key = Path.of(env("AUTHSVC_TEST_TLS_KEY"));
    String serverName = env("AUTHSVC_TEST_TLS_SERVER_NAME");
    test(
        "mutual TLS with a client certificate serves calls",
        () -> {
          try (AuthClient client =
              AuthClient.builder(address)
                  .tls(ca)
                  .serverNameOverride(serverName)
                  .clientCertificate(cert, key)
                  .build()) {
            User user = signUp(client);
            check(client.getUser(user.getId()).getUser().getEmail().equals(user.getEmail()));
          }
        });
    test(
        "mutual TLS without a client certificate is refused",
        () -> {
          try (AuthClient client =
              AuthClient.builder(address).tls(ca).serverNameOverride(serverName).build()) {
            AuthException error = expectFailure(() -> signUp(client));
            check(error.getCode() == Status.Code.UNAVAILABLE, error.getMessage());
            check(error.getReason().isEmpty(), "no ErrorInfo without a server answer");
          }
        });
    test(
        "a server name the certificate lacks is refused",
        () -> {
          try (AuthClient client =
              AuthClient.builder(address)
                  .tls(ca)
                  .serverNameOverride("not-" + serverName)
                  .clientCertificate(cert, key)
                  .build()) {
            AuthException error = expectFailure(() -> signUp(client));
            check(error.getCode() == Status.Code.UNAVAILABLE, error.getMessage());
          }
        });
  }

  // --- the tests ---

  private void lifecycle(AuthClient client) {
    String email = uniqueEmail();
    User user = client.createUser(email, PASSWORD, "Ada", "Lovelace").getUser();
    check(user.getEmail().equals(email), "the email comes back lower-cased and trimmed");
    check(!user.getId().isEmpty(), "the user has an id");

    CreateSessionResponse signIn = client.createSession(email, PASSWORD);
    check(signIn.getUser().getId().equals(user.getId()), "sign-in returns the user");
    check(!signIn.getSessionToken().isEmpty() && !signIn.getUpdateToken().isEmpty(), "tokens");

    ValidateTokenResponse valid = client.validateToken(signIn.getSessionToken());
    check(valid.getUser().getId().equals(user.getId()), "validate names the user");
    check(valid.getSession().getId().equals(signIn.getSession().getId()), "and the session");

    RefreshSessionResponse refreshed = client.refreshSession(signIn.getUpdateToken());
    check(refreshed.getSession().getId().equals(signIn.getSession().getId()), "same session");
    check(!refreshed.getSessionToken().equals(signIn.getSessionToken()), "a new session token");
    check(!refreshed.getUpdateToken().equals(signIn.getUpdateToken()), "a new update token");
    client.validateToken(refreshed.getSessionToken());

    AuthException reused = expectFailure(() -> client.refreshSession(signIn.getUpdateToken()));
    expectReason(reused, Status.Code.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED");
    AuthException revoked =
        expectFailure(() -> client.validateToken(refreshed.getSessionToken()));
    expectReason(revoked, Status.Code.UNAUTHENTICATED, "TOKEN_INVALID");

    CreateSessionResponse again = client.createSession(email, PASSWORD);
    client.validateToken(again.getSessionToken());
    client.deleteSession(again.getSessionToken());
    AuthException signedOut = expectFailure(() -> client.validateToken(again.getSessionToken()));
    expectReason(signedOut, Status.Code.UNAUTHENTICATED, "TOKEN_INVALID");
  }

  private void emailTaken(AuthClient client) {
    User user = signUp(client);
    AuthException taken =
        expectFailure(() -> client.createUser(user.getEmail(), PASSWORD, "Ada", "Lovelace"));
    expectReason(taken, Status.Code.ALREADY_EXISTS, "EMAIL_TAKEN");
    check(taken.getFieldViolations().isEmpty(), "no field violations");
    check(taken.getRetryAfter() == null, "no RetryInfo");
    check(occurrences(taken.getMessage(), "EMAIL_TAKEN") == 1, taken.getMessage());
    check(taken.getMessage().startsWith("ALREADY_EXISTS"), taken.getMessage());
  }

  private void invalidArgument(AuthClient client) {
    AuthException bad =
        expectFailure(
            () -> client.createUser(
                CreateUserRequest.newBuilder()
                    .setEmail("not an email")
                    .setPassword("short")
                    .setLastName("Lovelace")
                    .build()));
    expectReason(bad, Status.Code.INVALID_ARGUMENT, "INVALID_ARGUMENT");
    List<String> fields = bad.getFields();
    check(
        fields.contains("email") && fields.contains("password") && fields.contains("first_name"),
        "violations name email, password and first_name: " + fields);
    for (var violation : bad.getFieldViolations()) {
      check(!violation.getDescription().isEmpty(), "each violation says what is wrong");
    }
    check(occurrences(bad.getMessage(), "INVALID_ARGUMENT") == 1, bad.getMessage());
  }

  private void throttled(AuthClient client) {
    User user = signUp(client);
    for (int i = 0; i < 5; i++) {
      AuthException wrong =
          expectFailure(() -> client.createSession(user.getEmail(), OTHER_PASSWORD));
      expectReason(wrong, Status.Code.UNAUTHENTICATED, "INVALID_CREDENTIALS");
    }
    AuthException limited = expectFailure(() -> client.createSession(user.getEmail(), PASSWORD));
    expectReason(limited, Status.Code.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS");
    Duration retryAfter = limited.getRetryAfter();
    check(retryAfter != null && retryAfter.compareTo(Duration.ZERO) > 0, "retryAfter > 0");
  }

  private void userAndPassword(AuthClient client) {
    User user = signUp(client);
    GetUserResponse got = client.getUser(user.getId());
    check(got.getUser().equals(user), "getUser returns the user as created");
    AuthException unknown = expectFailure(() -> client.getUser(UUID.randomUUID().toString()));
    expectReason(unknown, Status.Code.NOT_FOUND, "USER_NOT_FOUND");

    CreateSessionResponse kept = client.createSession(user.getEmail(), PASSWORD);
    CreateSessionResponse other = client.createSession(user.getEmail(), PASSWORD);
    client.changePassword(kept.getSessionToken(), PASSWORD, OTHER_PASSWORD);
    client.validateToken(kept.getSessionToken());
    AuthException revoked = expectFailure(() -> client.validateToken(other.getSessionToken()));
    expectReason(revoked, Status.Code.UNAUTHENTICATED, "TOKEN_INVALID");
    AuthException old = expectFailure(() -> client.createSession(user.getEmail(), PASSWORD));
    expectReason(old, Status.Code.UNAUTHENTICATED, "INVALID_CREDENTIALS");
    client.createSession(user.getEmail(), OTHER_PASSWORD);
  }

  private void genericCall(AuthClient client) {
    User user = signUp(client);
    client.createSession(user.getEmail(), PASSWORD);
    ListSessionsResponse sessions =
        client.call(
            stub -> stub.listSessions(
                ListSessionsRequest.newBuilder().setUserId(user.getId()).build()));
    check(sessions.getSessionsCount() == 1, "one live session");
    AuthException bad =
        expectFailure(
            () -> client.call(
                stub -> stub.listSessions(
                    ListSessionsRequest.newBuilder().setUserId("not-a-uuid").build())));
    check(bad.getCode() == Status.Code.INVALID_ARGUMENT, bad.getMessage());
    check(bad.getFields().contains("user_id"), "violation names user_id: " + bad.getFields());
  }

  /** A stand-in AuthService in this process, on loopback, records what each call carried. */
  private void apiKeyAndDeadline() throws Exception {
    AtomicReference<String> apiKey = new AtomicReference<>();
    AtomicLong deadlineMillis = new AtomicLong(-1);
    ServerInterceptor recorder =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            apiKey.set(headers.get(AuthClient.API_KEY_HEADER));
            io.grpc.Deadline deadline = Context.current().getDeadline();
            deadlineMillis.set(deadline == null ? -1 : deadline.timeRemaining(TimeUnit.MILLISECONDS));
            return Contexts.interceptCall(Context.current(), call, headers, next);
          }
        };
    AuthServiceGrpc.AuthServiceImplBase service =
        new AuthServiceGrpc.AuthServiceImplBase() {
          @Override
          public void getUser(GetUserRequest request, StreamObserver<GetUserResponse> reply) {
            reply.onNext(
                GetUserResponse.newBuilder()
                    .setUser(User.newBuilder().setId(request.getId()))
                    .build());
            reply.onCompleted();
          }
        };
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(ServerInterceptors.intercept(service, recorder))
            .build()
            .start();
    String target = "127.0.0.1:" + server.getPort();
    try {
      try (AuthClient client =
          AuthClient.builder(target).apiKey("test-api-key").deadline(Duration.ofSeconds(3)).build()) {
        check(client.getUser("u1").getUser().getId().equals("u1"), "the stand-in answers");
        check("test-api-key".equals(apiKey.get()), "x-api-key reaches the server");
        check(deadlineMillis.get() > 0 && deadlineMillis.get() <= 3000, "default deadline 3s");
        // A call's own deadline wins over the default; the stub keeps the API key.
        client.stub().withDeadlineAfter(60, TimeUnit.SECONDS)
            .getUser(GetUserRequest.newBuilder().setId("u2").build());
        check(deadlineMillis.get() > 3000, "an explicit deadline is kept");
        check("test-api-key".equals(apiKey.get()), "the raw stub sends the API key too");
        // An RPC the stand-in does not implement fails UNIMPLEMENTED, without ErrorInfo.
        AuthException missing = expectFailure(() -> client.validateToken("x"));
        check(missing.getCode() == Status.Code.UNIMPLEMENTED, missing.getMessage());
        check(missing.getReason().isEmpty() && missing.getDomain().isEmpty(), "no ErrorInfo");
      }
      try (AuthClient client = AuthClient.builder(target).build()) {
        client.getUser("u3");
        check(apiKey.get() == null, "no API key unless one is set");
        check(deadlineMillis.get() > 3000 && deadlineMillis.get() <= 5000, "5s by default");
      }
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  // --- helpers ---

  void test(String name, Check body) {
    try {
      body.run();
      passed++;
      System.out.println("PASS " + name);
    } catch (Throwable error) {
      failures.add(name);
      // Messages here are authsvc's status messages and this file's own texts: no secrets.
      System.out.println("FAIL " + name + ": " + error);
      for (StackTraceElement frame : error.getStackTrace()) {
        if (frame.getClassName().startsWith("com.example")) {
          System.out.println("    at " + frame);
        }
      }
    }
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalStateException(name + " is not set");
    }
    return value;
  }

  private static String uniqueEmail() {
    return "java-" + UUID.randomUUID() + "@example.com";
  }

  private static User signUp(AuthClient client) {
    return client.createUser(uniqueEmail(), PASSWORD, "Ada", "Lovelace").getUser();
  }

  private static AuthException expectFailure(Runnable call) {
    try {
      call.run();
    } catch (AuthException error) {
      return error;
    }
    throw new AssertionError("the call succeeded but should have failed");
  }

  private static void expectReason(AuthException error, Status.Code code, String reason) {
    check(
        error.getCode() == code && error.getReason().equals(reason),
        "expected " + code + " " + reason + ", got " + error.getCode() + " " + error.getReason());
    check("authsvc".equals(error.getDomain()), "domain authsvc, got " + error.getDomain());
  }

  private static int occurrences(String text, String part) {
    int count = 0;
    for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) {
      count++;
    }
    return count;
  }

  private static void check(boolean condition) {
    check(condition, "check failed");
  }

  private static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError(what);
    }
  }
}
