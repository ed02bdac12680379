package com.example.authsvc.client;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The reconnect loop shared by {@link EventConsumer} and {@link Verifier}'s revocation feed:
 * opens a server stream after a cursor, hands each message over, remembers the cursor of the
 * last message handled, and after a disconnect reopens the stream after that cursor with
 * exponential backoff and jitter. A stream silent longer than the idle timeout (the server
 * sends heartbeats) counts as a disconnect.
 */
final class ResumableStream<M> {
  /** Status codes after which reopening the stream cannot help: the caller's to fix. */
  static final Set<Status.Code> FINAL_CODES =
      EnumSet.of(
          Status.Code.INVALID_ARGUMENT,
          Status.Code.FAILED_PRECONDITION,
          Status.Code.PERMISSION_DENIED,
          Status.Code.UNAUTHENTICATED,
          Status.Code.UNIMPLEMENTED,
          Status.Code.NOT_FOUND);

  private static final ScheduledExecutorService TIMERS =
      Executors.newSingleThreadScheduledExecutor(
          runnable -> {
            Thread thread = new Thread(runnable, "authsvc-stream-idle");
            thread.setDaemon(true);
            return thread;
          });

  /** Carries what the handler threw, so that it is never mistaken for a disconnect. */
  private static final class HandlerFailed extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final RuntimeException error;

    HandlerFailed(RuntimeException error) {
      super(null, null, false, false);
      this.error = error;
    }
  }

  /** Backoff and liveness of a resumable stream. */
  static final class Reconnect {
    Duration minBackoff = Duration.ofMillis(100);
    Duration maxBackoff = Duration.ofSeconds(5);
    Duration idleTimeout;
    BiConsumer<StatusRuntimeException, Duration> onDisconnect = (error, wait) -> {};

    Reconnect(Duration idleTimeout) {
      this.idleTimeout = idleTimeout;
    }
  }

  private final Function<String, Iterator<M>> open;
  private final Function<M, String> cursorOf;
  private final Consumer<M> handle;
  private final Function<StatusRuntimeException, String> onFinal;
  private final Reconnect reconnect;
  private final Object lock = new Object();
  private volatile boolean stopped;
  private Context.CancellableContext call;

  /**
   * {@code open} starts the stream after a cursor; {@code handle} processes one message (what
   * it throws ends {@link #run}); {@code onFinal} may return a cursor to restart from after a
   * final error, or null to give up.
   */
  ResumableStream(
      Function<String, Iterator<M>> open,
      Function<M, String> cursorOf,
      Consumer<M> handle,
      Function<StatusRuntimeException, String> onFinal,
      Reconnect reconnect) {
    this.open = open;
    this.cursorOf = cursorOf;
    this.handle = handle;
    this.onFinal = onFinal;
    this.reconnect = reconnect;
  }

  /**
   * Runs streams until {@link #stop} (returns the cursor reached), a final error (throws it as
   * an {@link AuthException}) or an exception from the handler (rethrown).
   */
  String run(String cursor) {
    int failures = 0;
    while (!stopped) {
      StatusRuntimeException cause;
      Context.CancellableContext context = Context.current().withCancellation();
      synchronized (lock) {
        if (stopped) {
          break;
        }
        call = context;
      }
      ScheduledFuture<?>[] idle = {schedule(context)};
      String[] position = {cursor};
      int[] received = {0};
      try {
        context.run(
            () -> {
              Iterator<M> messages = open.apply(position[0]);
              while (messages.hasNext()) {
                M message = messages.next();
                idle[0].cancel(false);
                idle[0] = schedule(context);
                received[0]++;
                try {
                  handle.accept(message);
                } catch (RuntimeException error) {
                  throw new HandlerFailed(error);
                }
                String next = cursorOf.apply(message);
                if (!next.isEmpty()) {
                  position[0] = next;
                }
              }
            });
        cause = Status.UNAVAILABLE.withDescription("the server ended the stream").asRuntimeException();
      } catch (HandlerFailed failed) {
        throw failed.error;
      } catch (StatusRuntimeException error) {
        cause = error;
      } finally {
        idle[0].cancel(false);
        context.cancel(null);
      }
      cursor = position[0];
      failures = received[0] > 0 ? 0 : failures;
      if (stopped) {
        break;
      }
      if (FINAL_CODES.contains(cause.getStatus().getCode())) {
        String restart = onFinal.apply(cause);
        if (restart == null) {
          throw AuthException.from(cause);
        }
        cursor = restart;
      }
      Duration wait = backoff(failures++);
      reconnect.onDisconnect.accept(cause, wait);
      sleep(wait);
    }
    return cursor;
  }

  /** Ends {@link #run}: the open stream is cancelled. Safe from any thread. */
  void stop() {
    synchronized (lock) {
      stopped = true;
      if (call != null) {
        call.cancel(null);
      }
      lock.notifyAll();
    }
  }

  private ScheduledFuture<?> schedule(Context.CancellableContext context) {
    return TIMERS.schedule(
        () -> context.cancel(null), reconnect.idleTimeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  /** The wait before attempt {@code failures + 1}: exponential, capped, "equal jitter". */
  private Duration backoff(int failures) {
    long min = reconnect.minBackoff.toNanos();
    long max = reconnect.maxBackoff.toNanos();
    long ceiling = failures >= 30 || min << failures > max ? max : min << failures;
    return Duration.ofNanos(ceiling / 2 + ThreadLocalRandom.current().nextLong(ceiling / 2 + 1));
  }

  private void sleep(Duration wait) {
    long until = System.nanoTime() + wait.toNanos();
    synchronized (lock) {
      while (!stopped) {
        long left = until - System.nanoTime();
        if (left <= 0) {
          return;
        }
        try {
          TimeUnit.NANOSECONDS.timedWait(lock, left);
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          stopped = true;
          return;
        }
      }
    }
  }
}
