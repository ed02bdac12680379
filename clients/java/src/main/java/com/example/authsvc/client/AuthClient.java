package com.example.authsvc.client;

import com.example.authsvc.v1.AuthServiceGrpc;
import com.example.authsvc.v1.ChangePasswordRequest;
import com.example.authsvc.v1.ChangePasswordResponse;
import com.example.authsvc.v1.CreateSessionRequest;
import com.example.authsvc.v1.CreateSessionResponse;
import com.example.authsvc.v1.CreateUserRequest;
import com.example.authsvc.v1.CreateUserResponse;
import com.example.authsvc.v1.DeleteSessionRequest;
import com.example.authsvc.v1.DeleteSessionResponse;
import com.example.authsvc.v1.GetUserRequest;
import com.example.authsvc.v1.GetUserResponse;
import com.example.authsvc.v1.RefreshSessionRequest;
import com.example.authsvc.v1.RefreshSessionResponse;
import com.example.authsvc.v1.ValidateTokenRequest;
import com.example.authsvc.v1.ValidateTokenResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import javax.net.ssl.SSLException;

/**
 * A small typed client of authsvc's {@code authsvc.v1.AuthService}.
 *
 * <p>Each method sends one request message and returns the generated response message; a
 * failed call throws an unchecked {@link AuthException} carrying the code, the reason and
 * the other error details authsvc sent. Every call gets the default deadline unless it set
 * its own, and the API key (when one is set) as metadata {@code x-api-key}.
 *
 * <p>RPCs this class does not wrap (and those the contract gains later) are reachable
 * through {@link #call(Function)}, with the same deadline, API key and error decoding:
 *
 * <pre>{@code
 * ListUsersResponse page = client.call(stub -> stub.listUsers(ListUsersRequest.getDefaultInstance()));
 * }</pre>
 *
 * <p>Thread-safe; make one per process and {@link #close()} it at shutdown.
 */
public final class AuthClient implements AutoCloseable {
  /** The metadata key that carries the API key. */
  public static final Metadata.Key<String> API_KEY_HEADER =
      Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER);

  /** The deadline of a call that sets none, unless the builder says otherwise. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(5);

  private final ManagedChannel channel;
  private final AuthServiceGrpc.AuthServiceBlockingStub stub;

  private AuthClient(ManagedChannel channel) {
    this.channel = channel;
    this.stub = AuthServiceGrpc.newBlockingStub(channel);
  }

  /** Starts a builder for a client of the server at {@code target}, e.g. {@code host:50051}. */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  /**
   * The generated blocking stub, with the default deadline and the API key applied. Its
   * calls throw {@code StatusRuntimeException}; {@link #call(Function)} turns that into an
   * {@link AuthException}.
   */
  public AuthServiceGrpc.AuthServiceBlockingStub stub() {
    return stub;
  }

  /**
   * Runs {@code rpc} on the stub and turns a failure into an {@link AuthException}: for RPCs
   * without a method here, including those added to the contract after this class.
   */
  public <R> R call(Function<AuthServiceGrpc.AuthServiceBlockingStub, R> rpc) {
    try {
      return rpc.apply(stub);
    } catch (StatusRuntimeException error) {
      throw AuthException.from(error);
    } catch (RuntimeException error) {
      if (error.getCause() instanceof StatusException) {
        throw AuthException.from(error.getCause());
      }
      throw error;
    }
  }

  /** Signs a user up (CreateUser); EMAIL_TAKEN when the email is registered already. */
  public CreateUserResponse createUser(CreateUserRequest request) {
    return call(s -> s.createUser(request));
  }

  /** Signs a user up (CreateUser) from its four fields. */
  public CreateUserResponse createUser(
      String email, String password, String firstName, String lastName) {
    return createUser(
        CreateUserRequest.newBuilder()
            .setEmail(email)
            .setPassword(password)
            .setFirstName(firstName)
            .setLastName(lastName)
            .build());
  }

  /** Signs a user in (CreateSession): the session, its session and update tokens, the user. */
  public CreateSessionResponse createSession(CreateSessionRequest request) {
    return call(s -> s.createSession(request));
  }

  /** Signs a user in (CreateSession) with email and password only. */
  public CreateSessionResponse createSession(String email, String password) {
    return createSession(
        CreateSessionRequest.newBuilder().setEmail(email).setPassword(password).build());
  }

  /** Checks a session token (ValidateToken); TOKEN_INVALID or TOKEN_EXPIRED when it fails. */
  public ValidateTokenResponse validateToken(String sessionToken) {
    return call(
        s -> s.validateToken(
            ValidateTokenRequest.newBuilder().setSessionToken(sessionToken).build()));
  }

  /**
   * Exchanges an update token for new tokens (RefreshSession); REFRESH_TOKEN_REUSED, and the
   * session revoked, when that update token was exchanged before.
   */
  public RefreshSessionResponse refreshSession(String updateToken) {
    return call(
        s -> s.refreshSession(
            RefreshSessionRequest.newBuilder().setUpdateToken(updateToken).build()));
  }

  /** Signs out (DeleteSession): revokes the session of {@code sessionToken}. */
  public DeleteSessionResponse deleteSession(String sessionToken) {
    return call(
        s -> s.deleteSession(
            DeleteSessionRequest.newBuilder().setSessionToken(sessionToken).build()));
  }

  /** One user by id (GetUser); USER_NOT_FOUND when there is none. */
  public GetUserResponse getUser(String id) {
    return call(s -> s.getUser(GetUserRequest.newBuilder().setId(id).build()));
  }

  /** Changes the password of the session's user (ChangePassword); revokes its other sessions. */
  public ChangePasswordResponse changePassword(
      String sessionToken, String currentPassword, String newPassword) {
    return call(
        s -> s.changePassword(
            ChangePasswordRequest.newBuilder()
                .setSessionToken(sessionToken)
                .setCurrentPassword(currentPassword)
                .setNewPassword(newPassword)
                .build()));
  }

  /** The underlying channel, e.g. for a health check stub on the same connection. */
  public Channel channel() {
    return channel;
  }

  /** Stops the channel, waiting up to 5 seconds for calls in flight. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException interrupted) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Sets the default deadline on unary calls that have none. Streams (WatchEvents,
   * WatchRevocations) get none: they are meant to stay open.
   */
  static final class DeadlineInterceptor implements ClientInterceptor {
    private final Duration deadline;

    DeadlineInterceptor(Duration deadline) {
      this.deadline = deadline;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(
        MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      if (options.getDeadline() == null && method.getType() == MethodDescriptor.MethodType.UNARY) {
        options = options.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
      }
      return next.newCall(method, options);
    }
  }

  /** Sends the API key as metadata {@code x-api-key} on every call. */
  static final class ApiKeyInterceptor implements ClientInterceptor {
    private final String apiKey;

    ApiKeyInterceptor(String apiKey) {
      this.apiKey = apiKey;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(
        MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<Q, R>(
          next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          headers.put(API_KEY_HEADER, apiKey);
          super.start(listener, headers);
        }
      };
    }
  }

  /** Options of an {@link AuthClient}; plaintext unless a TLS option is set. */
  public static final class Builder {
    private final String target;
    private boolean tls;
    private Path caFile;
    private String serverNameOverride;
    private Path clientCertFile;
    private Path clientKeyFile;
    private Duration deadline = DEFAULT_DEADLINE;
    private String apiKey;
    private final List<ClientInterceptor> interceptors = new ArrayList<>();

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target");
    }

    /** Plaintext HTTP/2 (the default): for a server on the same host or a trusted network. */
    public Builder plaintext() {
      this.tls = false;
      return this;
    }

    /** TLS, trusting the JDK's default certificate authorities. */
    public Builder tls() {
      this.tls = true;
      return this;
    }

    /** TLS, trusting only the CA certificates of this PEM file. */
    public Builder tls(Path caFile) {
      this.tls = true;
      this.caFile = Objects.requireNonNull(caFile, "caFile");
      return this;
    }

    /**
     * The name the server's certificate must carry when it differs from the target's host
     * (e.g. target {@code 10.0.0.5:50051}, certificate for {@code authsvc.internal}).
     */
    public Builder serverNameOverride(String serverName) {
      this.serverNameOverride = Objects.requireNonNull(serverName, "serverName");
      return this;
    }

    /**
     * Mutual TLS: presents this client certificate chain and its private key (PEM files,
     * the key unencrypted PKCS#8 {@code BEGIN PRIVATE KEY}). Implies TLS.
     */
    public Builder clientCertificate(Path certFile, Path keyFile) {
      this.tls = true;
      this.clientCertFile = Objects.requireNonNull(certFile, "certFile");
      this.clientKeyFile = Objects.requireNonNull(keyFile, "keyFile");
      return this;
    }

    /** The deadline of each call that sets none; {@link #DEFAULT_DEADLINE} unless set. */
    public Builder deadline(Duration deadline) {
      if (deadline.isNegative() || deadline.isZero()) {
        throw new IllegalArgumentException("deadline must be positive");
      }
      this.deadline = deadline;
      return this;
    }

    /** An API key sent as metadata {@code x-api-key} on every call. */
    public Builder apiKey(String apiKey) {
      this.apiKey = Objects.requireNonNull(apiKey, "apiKey");
      return this;
    }

    /**
     * More interceptors for every call (e.g. metrics or tracing); they run after the ones
     * that set the API key and the default deadline.
     */
    public Builder intercept(ClientInterceptor... interceptors) {
      this.interceptors.addAll(List.of(interceptors));
      return this;
    }

    /** Creates the client; connects lazily, on the first call. */
    public AuthClient build() {
      NettyChannelBuilder channel = NettyChannelBuilder.forTarget(target);
      if (tls) {
        channel.useTransportSecurity().sslContext(sslContext());
        if (serverNameOverride != null) {
          channel.overrideAuthority(serverNameOverride);
        }
      } else {
        channel.usePlaintext();
      }
      // Interceptors run last-added first: the API key, the default deadline, then the
      // caller's own.
      channel.intercept(interceptors);
      channel.intercept(new DeadlineInterceptor(deadline));
      if (apiKey != null) {
        channel.intercept(new ApiKeyInterceptor(apiKey));
      }
      return new AuthClient(channel.build());
    }

    private SslContext sslContext() {
      SslContextBuilder ssl = GrpcSslContexts.forClient();
      if (caFile != null) {
        ssl.trustManager(caFile.toFile());
      }
      if (clientCertFile != null) {
        ssl.keyManager(clientCertFile.toFile(), clientKeyFile.toFile());
      }
      try {
        return ssl.build();
      } catch (SSLException error) {
        throw new IllegalArgumentException("cannot set up TLS: " + error.getMessage(), error);
      } catch (UnsupportedOperationException noAlpn) {
        // Debian's Netty cannot do ALPN over the JDK's TLS: it needs netty-tcnative loaded.
        throw new IllegalStateException(
            "TLS needs ALPN, which this Netty cannot do with the JDK's TLS; put netty-tcnative"
                + " (and its native library) on the classpath, see clients/java/README.md",
            noAlpn);
      }
    }
  }
}
