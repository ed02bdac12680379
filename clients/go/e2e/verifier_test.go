package e2e

// The Verifier against live authsvc servers: AUTHSVC_TEST_ADDRESS (default settings) and
// AUTHSVC_TEST_SHORT_TTL_ADDRESS (access tokens live one second). Tokens are never printed.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"example.com/authsvc/clients/go/authclient"
	pb "example.com/authsvc/clients/go/authsvcv1"
)

const verifyDeadline = 20 * time.Second

func dialAddress(t *testing.T, address string) *authclient.Client {
	t.Helper()
	c, err := authclient.Dial(address, authclient.Options{Plaintext: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func signInForToken(t *testing.T, c *authclient.Client) *pb.CreateSessionResponse {
	t.Helper()
	email := uniqueEmail(t)
	signUp(t, c, email)
	res, err := c.CreateSession(context.Background(), &pb.CreateSessionRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if res.GetAccessToken() == "" {
		t.Fatal("CreateSession returned no access token")
	}
	return res
}

func readyVerifier(t *testing.T, c *authclient.Client, opts authclient.VerifierOptions) *authclient.Verifier {
	t.Helper()
	v := authclient.NewVerifier(c, opts)
	t.Cleanup(v.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return v
}

func refused(t *testing.T, what string, v *authclient.Verifier, token string, want *authclient.VerifyError) {
	t.Helper()
	_, err := v.Verify(context.Background(), token)
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %s", what, err, want.Reason)
	}
}

// refusedEventually polls Verify until it refuses with want; fails after the deadline.
func refusedEventually(t *testing.T, v *authclient.Verifier, token string, want *authclient.VerifyError) {
	t.Helper()
	deadline := time.Now().Add(verifyDeadline)
	var err error
	for time.Now().Before(deadline) {
		if _, err = v.Verify(context.Background(), token); errors.Is(err, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not refused with %s in time; last: %v", want.Reason, err)
}

func address(t *testing.T, name string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		t.Fatalf("set %s (tests/clients/test_go_client.py does)", name)
	}
	return value
}

func TestVerifierAcceptsValidToken(t *testing.T) {
	c := client(t)
	res := signInForToken(t, c)
	v := readyVerifier(t, c, authclient.VerifierOptions{})
	got, err := v.Verify(context.Background(), res.GetAccessToken())
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != res.GetUser().GetId() || got.SessionID != res.GetSession().GetId() {
		t.Fatalf("verified user %s session %s, want %s %s", got.UserID, got.SessionID,
			res.GetUser().GetId(), res.GetSession().GetId())
	}
	if got.AAL != 1 || !reflect.DeepEqual(got.Methods, []string{"PASSWORD"}) {
		t.Fatalf("aal %q methods %v", got.AAL, got.Methods)
	}
	again, err := v.Verify(context.Background(), res.GetAccessToken())
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("second Verify (from the cache): %v, %v", again, err)
	}
}

func b64JSON(t *testing.T, value interface{}) string {
	t.Helper()
	raw, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeJSON(t *testing.T, part string) map[string]interface{} {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]interface{}{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func with(m map[string]interface{}, key string, value interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range m {
		out[k] = v
	}
	out[key] = value
	return out
}

func TestVerifierRefusesForgedTokens(t *testing.T) {
	c := client(t)
	token := signInForToken(t, c).GetAccessToken()
	parts := strings.Split(token, ".")
	header, payload := decodeJSON(t, parts[0]), decodeJSON(t, parts[1])
	keys, err := c.GetSigningKeys(context.Background(), &pb.GetSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []struct{ X string } }
	if err := json.Unmarshal([]byte(keys.GetJwksJson()), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v", err)
	}
	public, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	hsInput := b64JSON(t, with(header, "alg", "HS256")) + "." + parts[1]
	mac := hmac.New(sha256.New, public)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	v := readyVerifier(t, c, authclient.VerifierOptions{})
	refused(t, "tampered", v, parts[0]+"."+b64JSON(t, with(payload, "sub", "someone-else"))+"."+parts[2], authclient.ErrBadSignature)
	refused(t, "unknown kid", v, b64JSON(t, with(header, "kid", "no-such-key"))+"."+parts[1]+"."+parts[2], authclient.ErrUnknownKey)
	refused(t, "alg none", v, b64JSON(t, with(header, "alg", "none"))+"."+parts[1]+".", authclient.ErrBadSignature)
	refused(t, "HS256 with the public key", v, hs256, authclient.ErrBadSignature)
	refused(t, "garbage", v, "not.a.jwt", authclient.ErrMalformedToken)
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("the genuine token after the forgeries: %v", err)
	}
	other := readyVerifier(t, c, authclient.VerifierOptions{Issuer: "https://someone-else.example"})
	refused(t, "wrong issuer", other, token, authclient.ErrWrongIssuer)
}

// countingClient dials AUTHSVC_TEST_ADDRESS and counts the calls of one method.
func countingClient(t *testing.T, method string, calls *int32) *authclient.Client {
	t.Helper()
	counting := grpc.WithChainUnaryInterceptor(func(ctx context.Context, m string, req, reply interface{},
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(m, "/"+method) {
			atomic.AddInt32(calls, 1)
		}
		return invoker(ctx, m, req, reply, cc, opts...)
	})
	c, err := authclient.Dial(address(t, "AUTHSVC_TEST_ADDRESS"), authclient.Options{
		Plaintext: true, DialOptions: []grpc.DialOption{counting},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestVerifierRefetchesKeysAtMostOnceASecondForUnknownKids(t *testing.T) {
	parts := strings.Split(signInForToken(t, client(t)).GetAccessToken(), ".")
	header := decodeJSON(t, parts[0])
	var fetches int32
	started := time.Now()
	v := readyVerifier(t, countingClient(t, "GetSigningKeys", &fetches), authclient.VerifierOptions{})
	for i := 0; i < 50; i++ {
		forged := b64JSON(t, with(header, "kid", fmt.Sprintf("%v-%d", header["kid"], i))) + "." + parts[1] + "." + parts[2]
		refused(t, "unknown kid", v, forged, authclient.ErrUnknownKey)
	}
	seconds := int32(time.Since(started)/time.Second) + 1
	if n := atomic.LoadInt32(&fetches); n < 1 || n > seconds+1 {
		t.Fatalf("%d key fetches in %d s", n, seconds)
	}
}

func TestVerifierRefusesExpiredToken(t *testing.T) {
	c := dialAddress(t, address(t, "AUTHSVC_TEST_SHORT_TTL_ADDRESS"))
	token := signInForToken(t, c).GetAccessToken()
	v := readyVerifier(t, c, authclient.VerifierOptions{})
	refusedEventually(t, v, token, authclient.ErrTokenExpired)
}

func TestVerifierRefusesSignedOutSessionWithinBound(t *testing.T) {
	c := client(t)
	res := signInForToken(t, c)
	v := readyVerifier(t, c, authclient.VerifierOptions{})
	if _, err := v.Verify(context.Background(), res.GetAccessToken()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSession(context.Background(), &pb.DeleteSessionRequest{SessionToken: res.GetSessionToken()}); err != nil {
		t.Fatal(err)
	}
	refusedEventually(t, v, res.GetAccessToken(), authclient.ErrTokenRevoked)
}

func TestVerifierFallsBackToValidateTokenWhenStale(t *testing.T) {
	c := client(t)
	res := signInForToken(t, c)
	var validateCalls int32
	watched := countingClient(t, "ValidateToken", &validateCalls)
	// Heartbeats come every second: with a 1 ms bound the feed is stale between them.
	v := readyVerifier(t, watched, authclient.VerifierOptions{MaxStaleness: time.Millisecond, FallbackToValidateToken: true})
	deadline := time.Now().Add(verifyDeadline)
	for atomic.LoadInt32(&validateCalls) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no call went to ValidateToken")
		}
		got, err := v.Verify(context.Background(), res.GetAccessToken())
		if err != nil || got.SessionID != res.GetSession().GetId() || got.AAL != 1 {
			t.Fatalf("Verify while stale: %v, %v", got, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := c.DeleteSession(context.Background(), &pb.DeleteSessionRequest{SessionToken: res.GetSessionToken()}); err != nil {
		t.Fatal(err)
	}
	refusedEventually(t, v, res.GetAccessToken(), authclient.ErrTokenRevoked)
}

// relay forwards TCP connections to target until cut, after which it forwards nothing
// but keeps the connections open: a network partition, not a disconnect.
type relay struct {
	listener net.Listener
	mu       sync.Mutex
	cut      bool
	conns    []net.Conn
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{listener: lis}
	t.Cleanup(r.close)
	go r.accept(target)
	return r
}

func (r *relay) accept(target string) {
	for {
		down, err := r.listener.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = down.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, down, up)
		r.mu.Unlock()
		go r.pipe(down, up)
		go r.pipe(up, down)
	}
}

func (r *relay) pipe(from, to net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := from.Read(buf)
		if err != nil {
			_ = to.Close()
			return
		}
		r.mu.Lock()
		cut := r.cut
		r.mu.Unlock()
		if !cut {
			if _, err := to.Write(buf[:n]); err != nil && !errors.Is(err, io.EOF) {
				return
			}
		}
	}
}

func (r *relay) cutOff() {
	r.mu.Lock()
	r.cut = true
	r.mu.Unlock()
}

func (r *relay) close() {
	_ = r.listener.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		_ = c.Close()
	}
}

func TestVerifierCutOffFromFeedFailsClosed(t *testing.T) {
	token := signInForToken(t, client(t)).GetAccessToken()
	link := newRelay(t, address(t, "AUTHSVC_TEST_ADDRESS"))
	v := readyVerifier(t, dialAddress(t, link.listener.Addr().String()), authclient.VerifierOptions{MaxStaleness: time.Second})
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	link.cutOff()
	refusedEventually(t, v, token, authclient.ErrRevocationFeedStale)
}
