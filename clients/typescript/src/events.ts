/**
 * A consumer of authsvc's account events (WatchEvents) that survives disconnects: after
 * the stream breaks it reconnects, with backoff, after the cursor of the last event it
 * handed to you, so you see every event once and in commit order.
 */
import type { Client } from "@connectrpc/connect";

import type { AuthService, Event } from "./gen/authsvc/v1/auth_service_pb.js";
import { runResumable } from "./resumable.js";
import type { ReconnectOptions } from "./resumable.js";

/** The `type` of the keep-alive events WatchEvents sends when nothing happens. */
export const HEARTBEAT = "heartbeat";

/** Where an {@link EventConsumer} starts, what it receives and how it reconnects. */
export interface EventConsumerOptions extends ReconnectOptions {
  /**
   * Start after this cursor: the `cursor` of the last event you processed (persist it).
   * `""` (the default) starts at the oldest retained event, `"now"` at the end.
   */
  afterCursor?: string | undefined;
  /** Only events of these types (e.g. `["user.deleted"]`). Default: every type. */
  types?: string[] | undefined;
}

/**
 * Consumes WatchEvents with automatic resume.
 *
 * ```ts
 * const consumer = new EventConsumer(auth, { afterCursor: await loadCursor() });
 * await consumer.run(async (event) => {
 *   await handle(event);
 *   await saveCursor(event.cursor);
 * });
 * ```
 *
 * `run` calls `onEvent` for each event (never for heartbeats, whose cursor it still
 * tracks) one at a time, in order. When the stream breaks (server restart, network) it
 * waits (exponential backoff with jitter, see {@link ReconnectOptions}) and reopens it
 * after the last event `onEvent` returned from, so no event is skipped or repeated. It
 * resolves after {@link stop}; it rejects when `onEvent` throws (that event counts as not
 * delivered: {@link cursor} stays before it) or on an error reconnecting cannot fix, e.g.
 * FAILED_PRECONDITION with reason CURSOR_EXPIRED, or PERMISSION_DENIED.
 */
export class EventConsumer {
  readonly #client: Client<typeof AuthService>;
  readonly #options: EventConsumerOptions;
  readonly #stop = new AbortController();
  #cursor: string;

  constructor(client: Client<typeof AuthService>, options: EventConsumerOptions = {}) {
    this.#client = client;
    this.#options = options;
    this.#cursor = options.afterCursor ?? "";
  }

  /** The cursor to resume after: that of the last event delivered (or heartbeat seen). */
  get cursor(): string {
    return this.#cursor;
  }

  /** Streams events into `onEvent` until {@link stop} (see the class comment). */
  async run(onEvent: (event: Event) => void | Promise<void>): Promise<void> {
    const types = this.#options.types ?? [];
    await runResumable<Event>({
      cursor: this.#cursor,
      open: (afterCursor, signal) =>
        this.#client.watchEvents({ afterCursor, types }, { signal, timeoutMs: 0 }),
      handle: async (event) => {
        if (event.type !== HEARTBEAT) {
          await onEvent(event);
        }
      },
      onCursor: (cursor) => {
        this.#cursor = cursor;
      },
      stop: this.#stop.signal,
      options: this.#options,
    });
  }

  /** Ends {@link run}: the open stream is cancelled and `run` resolves. */
  stop(): void {
    this.#stop.abort();
  }
}
