package com.example.authsvc.client;

import java.time.Duration;

/**
 * An {@link EventConsumer} for tests/clients/event_consumers.py, which restarts the server
 * under it: {@code java ... WatchEvents HOST:PORT [AFTER_CURSOR]} prints one JSON line per
 * event delivered ({@code {"id", "type", "cursor"}}) and one per disconnect ({@code
 * {"disconnect": code}}), and stops when its standard input closes.
 */
public final class WatchEvents {
  private WatchEvents() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 1) {
      System.err.println("usage: WatchEvents HOST:PORT [AFTER_CURSOR]");
      System.exit(2);
    }
    try (AuthClient client = AuthClient.builder(args[0]).build()) {
      EventConsumer consumer =
          EventConsumer.builder(client)
              .afterCursor(args.length > 1 ? args[1] : "")
              .maxBackoff(Duration.ofMillis(500))
              .onDisconnect(
                  (error, wait) ->
                      print("{\"disconnect\": \"" + error.getStatus().getCode() + "\"}"))
              .build();
      Thread stdin =
          new Thread(
              () -> {
                try {
                  while (System.in.read() >= 0) {
                    // wait for end of input
                  }
                } catch (java.io.IOException closed) {
                  // as good as the end
                }
                consumer.stop();
              });
      stdin.setDaemon(true);
      stdin.start();
      consumer.run(
          event ->
              print(
                  "{\"id\": \"" + event.getId() + "\", \"type\": \"" + event.getType()
                      + "\", \"cursor\": \"" + event.getCursor() + "\"}"));
    }
    System.exit(0);
  }

  private static synchronized void print(String line) {
    System.out.println(line);
    System.out.flush();
  }
}
