package authclient

import (
	"context"
	"time"

	"example.com/authsvc/clients/go/authsvcv1"
)

// Heartbeat is the Type of the keep-alive events WatchEvents sends when nothing happens.
const Heartbeat = "heartbeat"

// EventOptions say where ConsumeEvents starts, what it receives and how it reconnects.
type EventOptions struct {
	// AfterCursor starts after this cursor: the Cursor of the last event you processed
	// (persist it). "" starts at the oldest retained event, "now" at the end.
	AfterCursor string
	// Types, when not empty, limits the stream to these event types.
	Types []string
	// Reconnect sets the backoff between attempts and the idle timeout (default 30 s).
	Reconnect
}

// ConsumeEvents streams account events (WatchEvents) into handle, one at a time and in
// commit order, and survives disconnects: when the stream breaks (a server restart, the
// network, no heartbeat for IdleTimeout) it waits (exponential backoff with jitter) and
// reopens it after the cursor of the last event handle returned nil for, so no event is
// skipped or repeated. Heartbeats are not passed to handle, but their cursor is tracked.
//
//	err := c.ConsumeEvents(ctx, authclient.EventOptions{AfterCursor: saved},
//		func(e *authsvcv1.Event) error {
//			if err := process(e); err != nil {
//				return err
//			}
//			return save(e.GetCursor())
//		})
//
// It returns ctx.Err() when ctx is done, what handle returned when that is not nil (that
// event counts as not delivered), or an error reconnecting cannot fix: an *Error with
// code FailedPrecondition and reason CURSOR_EXPIRED, PermissionDenied, and the like.
func (c *Client) ConsumeEvents(
	ctx context.Context, opts EventOptions, handle func(*authsvcv1.Event) error,
) error {
	stream := resumable[*authsvcv1.Event]{
		open: func(ctx context.Context, cursor string) (func() (*authsvcv1.Event, error), error) {
			req := &authsvcv1.WatchEventsRequest{AfterCursor: cursor, Types: opts.Types}
			events, err := c.WatchEvents(ctx, req)
			if err != nil {
				return nil, err
			}
			return events.Recv, nil
		},
		handle: func(event *authsvcv1.Event) error {
			if event.GetType() == Heartbeat {
				return nil
			}
			return handle(event)
		},
		opts: opts.Reconnect.withDefaults(30 * time.Second),
	}
	return stream.run(ctx, opts.AfterCursor)
}
