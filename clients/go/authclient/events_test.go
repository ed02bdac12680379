package authclient_test

// ConsumeEvents' resume rules against a scripted in-process server: the cursor each
// reconnect asks for, heartbeats tracked but not delivered, which errors end it. The
// restart of a real authsvc under a consumer is tests/clients/test_go_client.py's.

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/authsvc/clients/go/authclient"
	"example.com/authsvc/clients/go/authsvcv1"
)

// scriptedEvents answers WatchEvents from script, recording each after_cursor.
type scriptedEvents struct {
	authsvcv1.UnimplementedAuthServiceServer
	mu        sync.Mutex
	requested []string
	script    func(ctx context.Context, cursor string, send func(*authsvcv1.Event)) error
}

func (s *scriptedEvents) WatchEvents(req *authsvcv1.WatchEventsRequest, stream authsvcv1.AuthService_WatchEventsServer) error {
	s.mu.Lock()
	s.requested = append(s.requested, req.GetAfterCursor())
	s.mu.Unlock()
	return s.script(stream.Context(), req.GetAfterCursor(), func(e *authsvcv1.Event) { _ = stream.Send(e) })
}

func event(id, cursor string) *authsvcv1.Event {
	return &authsvcv1.Event{Id: id, Cursor: cursor, Type: "user.created"}
}

func TestConsumeEventsResumesAfterLastCursorAndStopsOnCursorExpired(t *testing.T) {
	fake := &scriptedEvents{script: func(_ context.Context, cursor string, send func(*authsvcv1.Event)) error {
		switch cursor {
		case "":
			send(event("e1", "c1"))
			send(&authsvcv1.Event{Type: authclient.Heartbeat, Cursor: "c2"})
			return status.Error(codes.Unavailable, "going away")
		case "c2":
			send(event("e3", "c3"))
			return nil // a clean end of stream is a disconnect too
		}
		return status.Error(codes.FailedPrecondition, "cursor expired")
	}}
	c := dial(t, serveImpl(t, fake), authclient.Options{Plaintext: true})
	var delivered []string
	var disconnects []codes.Code
	opts := authclient.EventOptions{Reconnect: authclient.Reconnect{
		MinBackoff:   time.Millisecond,
		OnDisconnect: func(err error, _ time.Duration) { disconnects = append(disconnects, status.Code(err)) },
	}}
	err := c.ConsumeEvents(context.Background(), opts, func(e *authsvcv1.Event) error {
		delivered = append(delivered, e.GetId())
		return nil
	})
	if e, ok := authclient.AsError(err); !ok || e.Code != codes.FailedPrecondition {
		t.Fatalf("ConsumeEvents returned %v, want FailedPrecondition", err)
	}
	if want := []string{"e1", "e3"}; !reflect.DeepEqual(delivered, want) {
		t.Fatalf("delivered %v, want %v", delivered, want)
	}
	if want := []string{"", "c2", "c3"}; !reflect.DeepEqual(fake.requested, want) {
		t.Fatalf("reconnects asked for %v, want %v", fake.requested, want)
	}
	if want := []codes.Code{codes.Unavailable, codes.Unavailable}; !reflect.DeepEqual(disconnects, want) {
		t.Fatalf("disconnects %v, want %v", disconnects, want)
	}
}

func TestConsumeEventsReturnsHandlerErrorAndCancellation(t *testing.T) {
	fake := &scriptedEvents{script: func(ctx context.Context, _ string, send func(*authsvcv1.Event)) error {
		send(event("e1", "c1"))
		<-ctx.Done() // the stream stays open, silent
		return nil
	}}
	c := dial(t, serveImpl(t, fake), authclient.Options{Plaintext: true})
	failed := errors.New("handler failed")
	err := c.ConsumeEvents(context.Background(), authclient.EventOptions{AfterCursor: "c0"},
		func(*authsvcv1.Event) error { return failed })
	if !errors.Is(err, failed) {
		t.Fatalf("ConsumeEvents returned %v, want the handler's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = c.ConsumeEvents(ctx, authclient.EventOptions{}, func(*authsvcv1.Event) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ConsumeEvents returned %v after cancel, want context.Canceled", err)
	}
}
