// Command watchevents runs authclient.ConsumeEvents for tests/clients/event_consumers.py,
// which restarts the server under it:
//
//	watchevents HOST:PORT [AFTER_CURSOR]
//
// prints one JSON line per event delivered ({"id", "type", "cursor"}) and one per
// disconnect ({"disconnect": code}), and stops when its standard input closes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc/status"

	"example.com/authsvc/clients/go/authclient"
	"example.com/authsvc/clients/go/authsvcv1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: watchevents HOST:PORT [AFTER_CURSOR]")
		os.Exit(2)
	}
	c, err := authclient.Dial(os.Args[1], authclient.Options{Plaintext: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	out := json.NewEncoder(os.Stdout)
	opts := authclient.EventOptions{Reconnect: authclient.Reconnect{
		MaxBackoff: 500 * time.Millisecond,
		OnDisconnect: func(err error, _ time.Duration) {
			_ = out.Encode(map[string]string{"disconnect": status.Code(err).String()})
		},
	}}
	if len(os.Args) > 2 {
		opts.AfterCursor = os.Args[2]
	}
	err = c.ConsumeEvents(ctx, opts, func(e *authsvcv1.Event) error {
		return out.Encode(map[string]string{"id": e.GetId(), "type": e.GetType(), "cursor": e.GetCursor()})
	})
	if !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
