/**
 * A WatchEvents consumer for tests/clients/event_consumers.py, which restarts the server
 * under it: `node dist/test/watch-events.js HOST:PORT [AFTER_CURSOR]` prints one JSON line
 * per event delivered (`{"id", "type", "cursor"}`) and one per disconnect
 * (`{"disconnect": code}`), and stops when its standard input closes.
 */
import { ConnectError, EventConsumer, createAuthClient } from "../src/index.js";

const [address, afterCursor = ""] = process.argv.slice(2);
if (address === undefined) {
  throw new Error("usage: watch-events.js HOST:PORT [AFTER_CURSOR]");
}
const auth = createAuthClient({ address, timeoutMs: 10_000 });
const consumer = new EventConsumer(auth, {
  afterCursor,
  maxBackoffMs: 500,
  onDisconnect: (error) => {
    console.log(JSON.stringify({ disconnect: ConnectError.from(error).code }));
  },
});
process.stdin.resume();
process.stdin.on("end", () => consumer.stop());
await consumer.run((event) => {
  console.log(JSON.stringify({ id: event.id, type: event.type, cursor: event.cursor }));
});
process.exit(0);
