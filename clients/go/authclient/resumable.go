package authclient

import (
	"context"
	"errors"
	"io"
	"math/rand"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reconnect sets the backoff and liveness of a resumable stream (ConsumeEvents, the
// Verifier's revocation feed). Zero fields take the defaults.
type Reconnect struct {
	// MinBackoff is the first wait after a disconnect, doubled on each failure in a row
	// (default 100 ms).
	MinBackoff time.Duration
	// MaxBackoff caps the wait between attempts (default 5 s).
	MaxBackoff time.Duration
	// IdleTimeout drops and reopens a stream that sent nothing, not even a heartbeat, for
	// this long (default 30 s for WatchEvents, 15 s for WatchRevocations).
	IdleTimeout time.Duration
	// OnDisconnect, when set, is called after each disconnect with its cause and the wait
	// before the next attempt.
	OnDisconnect func(err error, retryIn time.Duration)
}

func (r Reconnect) withDefaults(idle time.Duration) Reconnect {
	if r.MinBackoff <= 0 {
		r.MinBackoff = 100 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 5 * time.Second
	}
	if r.IdleTimeout <= 0 {
		r.IdleTimeout = idle
	}
	return r
}

// finalCodes are the status codes after which reopening a stream cannot help.
var finalCodes = map[codes.Code]bool{
	codes.InvalidArgument:    true,
	codes.FailedPrecondition: true,
	codes.PermissionDenied:   true,
	codes.Unauthenticated:    true,
	codes.Unimplemented:      true,
	codes.NotFound:           true,
}

// errStreamEnded is the cause reported when the server closes a stream without an error.
var errStreamEnded = status.Error(codes.Unavailable, "the server ended the stream")

// backoff is the wait before attempt failures+1: exponential, capped, "equal jitter".
func backoff(failures int, min, max time.Duration) time.Duration {
	ceiling := max
	if failures < 30 && min<<failures < max {
		ceiling = min << failures
	}
	return ceiling/2 + time.Duration(rand.Int63n(int64(ceiling/2)+1))
}

// cursored is a stream message that carries its position.
type cursored interface{ GetCursor() string }

// resumable runs one stream after another, resuming after the cursor of the last message
// handled, until ctx is done (returns ctx.Err()), handle fails (returns its error) or a
// final error comes: onFinal may then return a cursor to restart from instead.
type resumable[M cursored] struct {
	open    func(ctx context.Context, cursor string) (func() (M, error), error)
	handle  func(M) error
	onFinal func(error) (string, bool)
	opts    Reconnect
}

func (r resumable[M]) run(ctx context.Context, cursor string) error {
	failures := 0
	for {
		next, cause, failed := r.stream(ctx, cursor, &failures)
		if failed != nil {
			return failed
		}
		cursor = next
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if finalCodes[status.Code(cause)] {
			if r.onFinal == nil {
				return FromError(cause)
			}
			restart, ok := r.onFinal(cause)
			if !ok {
				return FromError(cause)
			}
			cursor = restart
		}
		wait := backoff(failures, r.opts.MinBackoff, r.opts.MaxBackoff)
		failures++
		if r.opts.OnDisconnect != nil {
			r.opts.OnDisconnect(cause, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// stream runs one stream: it returns the cursor to resume after and why the stream ended,
// or (last) what the handler returned.
func (r resumable[M]) stream(ctx context.Context, cursor string, failures *int) (string, error, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(r.opts.IdleTimeout, cancel)
	defer idle.Stop()
	recv, err := r.open(ctx, cursor)
	if err != nil {
		return cursor, err, nil
	}
	for {
		message, err := recv()
		if errors.Is(err, io.EOF) {
			return cursor, errStreamEnded, nil
		}
		if err != nil {
			return cursor, err, nil
		}
		idle.Reset(r.opts.IdleTimeout)
		*failures = 0
		if err := r.handle(message); err != nil {
			return cursor, nil, err
		}
		if c := message.GetCursor(); c != "" {
			cursor = c
		}
	}
}
