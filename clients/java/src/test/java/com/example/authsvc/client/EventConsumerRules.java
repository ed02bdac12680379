package com.example.authsvc.client;

import com.example.authsvc.v1.AuthServiceGrpc;
import com.example.authsvc.v1.Event;
import com.example.authsvc.v1.WatchEventsRequest;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * {@link EventConsumer}'s resume rules against a scripted AuthService in this process (run by
 * {@link E2eTest}): the cursor each reconnect asks for, heartbeats tracked but not delivered,
 * a clean end of stream reconnected, and FAILED_PRECONDITION ending {@code run}. The restart
 * of a real authsvc under a consumer is tests/clients/test_java_client.py's.
 */
final class EventConsumerRules {
  private EventConsumerRules() {}

  static void resumesAfterLastCursor() throws Exception {
    List<String> requested = new CopyOnWriteArrayList<>();
    AuthServiceGrpc.AuthServiceImplBase service =
        new AuthServiceGrpc.AuthServiceImplBase() {
          @Override
          public void watchEvents(WatchEventsRequest request, StreamObserver<Event> events) {
            requested.add(request.getAfterCursor());
            switch (request.getAfterCursor()) {
              case "":
                events.onNext(event("e1", "c1", "user.created"));
                events.onNext(event("", "c2", EventConsumer.HEARTBEAT));
                events.onError(Status.UNAVAILABLE.withDescription("going away").asRuntimeException());
                break;
              case "c2":
                events.onNext(event("e3", "c3", "user.deleted"));
                events.onCompleted(); // a clean end of stream is a disconnect too
                break;
              default:
                events.onError(Status.FAILED_PRECONDITION.asRuntimeException());
            }
          }
        };
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(service)
            .build()
            .start();
    List<String> delivered = new ArrayList<>();
    List<Status.Code> disconnects = new ArrayList<>();
    try (AuthClient client = AuthClient.builder("127.0.0.1:" + server.getPort()).build()) {
      EventConsumer consumer =
          EventConsumer.builder(client)
              .minBackoff(Duration.ofMillis(1))
              .onDisconnect((error, wait) -> disconnects.add(error.getStatus().getCode()))
              .build();
      try {
        consumer.run(event -> delivered.add(event.getId()));
        throw new AssertionError("run returned without the final error");
      } catch (AuthException expected) {
        check(expected.getCode() == Status.Code.FAILED_PRECONDITION, expected.getMessage());
      }
      check(delivered.equals(List.of("e1", "e3")), "delivered " + delivered);
      check(requested.equals(List.of("", "c2", "c3")), "reconnects asked for " + requested);
      check(disconnects.equals(List.of(Status.Code.UNAVAILABLE, Status.Code.UNAVAILABLE)),
          "disconnects " + disconnects);
      check(consumer.cursor().equals("c3"), "cursor " + consumer.cursor());
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static Event event(String id, String cursor, String type) {
    return Event.newBuilder().setId(id).setCursor(cursor).setType(type).build();
  }

  private static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError(what);
    }
  }
}
