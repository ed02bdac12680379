/**
 * The reconnect loop shared by the event consumer and the verifier's revocation feed: open
 * a server stream after a cursor, hand each message over, remember the cursor of the last
 * message handled, and after a disconnect reopen the stream after that cursor, with
 * exponential backoff and jitter. A stream that stays silent longer than `idleTimeoutMs`
 * (the server sends heartbeats) counts as a disconnect.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** Backoff and liveness of a resumable stream. */
export interface ReconnectOptions {
  /** The first wait after a disconnect, in ms; doubled on each failure in a row. Default 100. */
  minBackoffMs?: number | undefined;
  /** The longest wait between attempts, in ms. Default 5000. */
  maxBackoffMs?: number | undefined;
  /**
   * A stream with no message (not even a heartbeat) for this long is dropped and reopened,
   * in ms. Default 30000 (three missed heartbeats of WatchEvents).
   */
  idleTimeoutMs?: number | undefined;
  /** Called after each disconnect with its cause and the wait before the next attempt. */
  onDisconnect?: ((error: unknown, retryInMs: number) => void) | undefined;
}

/** Status codes after which reopening the stream cannot help: they are the caller's to fix. */
const FINAL_CODES = new Set<Code>([
  Code.InvalidArgument,
  Code.FailedPrecondition,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.Unimplemented,
  Code.NotFound,
]);

/** True when the stream may be reopened after `error`. */
export function isRetryable(error: unknown): boolean {
  return !FINAL_CODES.has(ConnectError.from(error).code);
}

/** Wraps an error thrown by the message handler, so the loop never mistakes it for a disconnect. */
class HandlerFailed {
  constructor(readonly cause: unknown) {}
}

/** The wait before attempt `failures + 1`: exponential, capped, with "equal jitter". */
export function backoffMs(failures: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs one stream after another until `stop` aborts or a final error comes.
 *
 * `open(cursor, signal)` opens the stream after `cursor`; `handle(message)` processes one
 * message, after which the loop takes `message.cursor` (when not empty) as the position to
 * resume from. `onFinal(error)` may return a cursor to restart from instead of giving up
 * (the revocation feed restarts from its snapshot on CURSOR_EXPIRED). Resolves when stopped;
 * rejects with a final error or with what `handle` threw.
 */
export async function runResumable<M extends { cursor: string }>(args: {
  cursor: string;
  open: (cursor: string, signal: AbortSignal) => AsyncIterable<M>;
  handle: (message: M) => void | Promise<void>;
  stop: AbortSignal;
  options: ReconnectOptions;
  onCursor?: (cursor: string) => void;
  onFinal?: (error: unknown) => string | undefined;
}): Promise<void> {
  const minMs = args.options.minBackoffMs ?? 100;
  const maxMs = args.options.maxBackoffMs ?? 5000;
  const idleMs = args.options.idleTimeoutMs ?? 30_000;
  let cursor = args.cursor;
  let failures = 0;
  while (!args.stop.aborted) {
    const call = new AbortController();
    const abortCall = (): void => call.abort();
    args.stop.addEventListener("abort", abortCall, { once: true });
    let idle = setTimeout(abortCall, idleMs);
    let cause: unknown;
    try {
      for await (const message of args.open(cursor, call.signal)) {
        clearTimeout(idle);
        idle = setTimeout(abortCall, idleMs);
        failures = 0;
        try {
          await args.handle(message);
        } catch (error) {
          throw new HandlerFailed(error);
        }
        if (message.cursor !== "") {
          cursor = message.cursor;
          args.onCursor?.(cursor);
        }
      }
      cause = new ConnectError("the server ended the stream", Code.Unavailable);
    } catch (error) {
      if (error instanceof HandlerFailed) {
        throw error.cause;
      }
      if (args.stop.aborted) {
        return;
      }
      if (!isRetryable(error)) {
        const restart = args.onFinal?.(error);
        if (restart === undefined) {
          throw error;
        }
        cursor = restart;
      }
      cause = error;
    } finally {
      clearTimeout(idle);
      args.stop.removeEventListener("abort", abortCall);
      call.abort();
    }
    const wait = backoffMs(failures++, minMs, maxMs);
    args.options.onDisconnect?.(cause, wait);
    await sleep(wait, args.stop);
  }
}
