package com.example.authsvc.client;

import com.example.authsvc.v1.Event;
import com.example.authsvc.v1.WatchEventsRequest;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * Consumes authsvc's account events (WatchEvents) and survives disconnects: after the stream
 * breaks it reconnects, with backoff, after the cursor of the last event it handed over, so
 * every event arrives once and in commit order.
 *
 * <pre>{@code
 * EventConsumer consumer = EventConsumer.builder(client).afterCursor(loadCursor()).build();
 * consumer.run(event -> {
 *   handle(event);
 *   saveCursor(event.getCursor());
 * });
 * }</pre>
 *
 * <p>{@link #run} blocks: it calls the handler for each event (never for heartbeats, whose
 * cursor it still tracks), one at a time, in order. When the stream breaks (server restart,
 * network, no heartbeat for the idle timeout) it waits (exponential backoff with jitter) and
 * reopens it after the last event the handler returned from. It returns after {@link #stop}
 * (from another thread); it rethrows what the handler throws (that event counts as not
 * delivered: {@link #cursor} stays before it); and it throws an {@link AuthException} for an
 * error reconnecting cannot fix, e.g. FAILED_PRECONDITION with reason CURSOR_EXPIRED.
 */
public final class EventConsumer {
  /** The {@code type} of the keep-alive events WatchEvents sends when nothing happens. */
  public static final String HEARTBEAT = "heartbeat";

  private final AuthClient client;
  private final List<String> types;
  private final ResumableStream.Reconnect reconnect;
  private volatile String cursor;
  private volatile ResumableStream<Event> stream;
  private volatile boolean stopped;

  private EventConsumer(Builder builder) {
    this.client = builder.client;
    this.cursor = builder.afterCursor;
    this.types = List.copyOf(builder.types);
    this.reconnect = builder.reconnect;
  }

  /** Starts a builder of a consumer reading through {@code client}. */
  public static Builder builder(AuthClient client) {
    return new Builder(client);
  }

  /** The cursor to resume after: that of the last event delivered (or heartbeat seen). */
  public String cursor() {
    return cursor;
  }

  /** Streams events into {@code handler} until {@link #stop} (see the class comment). */
  public void run(Consumer<Event> handler) {
    ResumableStream<Event> current =
        new ResumableStream<>(
            after ->
                client
                    .stub()
                    .watchEvents(
                        WatchEventsRequest.newBuilder()
                            .setAfterCursor(after)
                            .addAllTypes(types)
                            .build()),
            Event::getCursor,
            event -> {
              if (!HEARTBEAT.equals(event.getType())) {
                handler.accept(event);
              }
              if (!event.getCursor().isEmpty()) {
                cursor = event.getCursor();
              }
            },
            error -> null,
            reconnect);
    stream = current;
    if (stopped) {
      return;
    }
    current.run(cursor);
  }

  /** Ends {@link #run}: the open stream is cancelled and {@code run} returns. */
  public void stop() {
    stopped = true;
    ResumableStream<Event> current = stream;
    if (current != null) {
      current.stop();
    }
  }

  /** Options of an {@link EventConsumer}. */
  public static final class Builder {
    private final AuthClient client;
    private String afterCursor = "";
    private final List<String> types = new ArrayList<>();
    private final ResumableStream.Reconnect reconnect =
        new ResumableStream.Reconnect(Duration.ofSeconds(30));

    private Builder(AuthClient client) {
      this.client = Objects.requireNonNull(client, "client");
    }

    /**
     * Start after this cursor: the cursor of the last event you processed (persist it).
     * {@code ""} (the default) starts at the oldest retained event, {@code "now"} at the end.
     */
    public Builder afterCursor(String afterCursor) {
      this.afterCursor = Objects.requireNonNull(afterCursor, "afterCursor");
      return this;
    }

    /** Only events of these types (e.g. {@code "user.deleted"}). Default: every type. */
    public Builder types(List<String> types) {
      this.types.clear();
      this.types.addAll(types);
      return this;
    }

    /** The first wait after a disconnect, doubled on each failure in a row (100 ms). */
    public Builder minBackoff(Duration minBackoff) {
      reconnect.minBackoff = positive(minBackoff, "minBackoff");
      return this;
    }

    /** The longest wait between attempts (5 s). */
    public Builder maxBackoff(Duration maxBackoff) {
      reconnect.maxBackoff = positive(maxBackoff, "maxBackoff");
      return this;
    }

    /** A stream silent (not even a heartbeat) this long is dropped and reopened (30 s). */
    public Builder idleTimeout(Duration idleTimeout) {
      reconnect.idleTimeout = positive(idleTimeout, "idleTimeout");
      return this;
    }

    /** Called after each disconnect with its cause and the wait before the next attempt. */
    public Builder onDisconnect(BiConsumer<StatusRuntimeException, Duration> onDisconnect) {
      reconnect.onDisconnect = Objects.requireNonNull(onDisconnect, "onDisconnect");
      return this;
    }

    /** Creates the consumer; it connects when {@link EventConsumer#run} is called. */
    public EventConsumer build() {
      return new EventConsumer(this);
    }

    static Duration positive(Duration value, String name) {
      if (value.isNegative() || value.isZero()) {
        throw new IllegalArgumentException(name + " must be positive");
      }
      return value;
    }
  }
}
