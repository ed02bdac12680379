package authclient_test

// Offline tests of the wrapper against an in-process Go server speaking the generated
// authsvc.v1 contract: API key metadata, default deadline, error decoding, TLS and
// mutual TLS. The end-to-end test against a real authsvc is in ../e2e.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/ptypes/duration"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"example.com/authsvc/clients/go/authclient"
	"example.com/authsvc/clients/go/authsvcv1"
)

// fakeServer records what each call carried and fails as told.
type fakeServer struct {
	authsvcv1.UnimplementedAuthServiceServer
	apiKeys     chan []string
	hadDeadline chan time.Duration
	fail        error
}

func (s *fakeServer) GetUser(ctx context.Context, req *authsvcv1.GetUserRequest) (*authsvcv1.GetUserResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.apiKeys <- md.Get(authclient.APIKeyHeader)
	left := time.Duration(0)
	if deadline, ok := ctx.Deadline(); ok {
		left = time.Until(deadline)
	}
	s.hadDeadline <- left
	if s.fail != nil {
		return nil, s.fail
	}
	return &authsvcv1.GetUserResponse{User: &authsvcv1.User{Id: req.GetId()}}, nil
}

func newFake() *fakeServer {
	return &fakeServer{apiKeys: make(chan []string, 1), hadDeadline: make(chan time.Duration, 1)}
}

func serve(t *testing.T, impl *fakeServer, opts ...grpc.ServerOption) string {
	t.Helper()
	return serveImpl(t, impl, opts...)
}

func serveImpl(t *testing.T, impl authsvcv1.AuthServiceServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	authsvcv1.RegisterAuthServiceServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, target string, opts authclient.Options) *authclient.Client {
	t.Helper()
	c, err := authclient.Dial(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestAPIKeyAndDefaultDeadlineOnEveryCall(t *testing.T) {
	fake := newFake()
	c := dial(t, serve(t, fake), authclient.Options{
		Plaintext: true, APIKey: "k-123", Timeout: 3 * time.Second,
	})
	for i := 0; i < 2; i++ {
		got, err := c.GetUser(context.Background(), &authsvcv1.GetUserRequest{Id: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetUser().GetId() != "u1" {
			t.Fatalf("user id %q", got.GetUser().GetId())
		}
		if keys := <-fake.apiKeys; !reflect.DeepEqual(keys, []string{"k-123"}) {
			t.Fatalf("x-api-key metadata %v, want [k-123]", keys)
		}
		if left := <-fake.hadDeadline; left <= 0 || left > 3*time.Second {
			t.Fatalf("deadline left %v, want the 3s default", left)
		}
	}
	// A caller's own deadline wins over the default.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Stub().GetUser(ctx, &authsvcv1.GetUserRequest{Id: "u2"}); err != nil {
		t.Fatal(err)
	}
	<-fake.apiKeys
	if left := <-fake.hadDeadline; left <= 3*time.Second {
		t.Fatalf("deadline left %v, want the caller's minute", left)
	}
}

func TestNoAPIKeyNoDeadlineWhenUnset(t *testing.T) {
	fake := newFake()
	c := dial(t, serve(t, fake), authclient.Options{Plaintext: true, Timeout: -1})
	if _, err := c.GetUser(context.Background(), &authsvcv1.GetUserRequest{Id: "u"}); err != nil {
		t.Fatal(err)
	}
	if keys := <-fake.apiKeys; len(keys) != 0 {
		t.Fatalf("x-api-key sent without an APIKey: %v", keys)
	}
	if left := <-fake.hadDeadline; left != 0 {
		t.Fatalf("a deadline was set with Timeout -1: %v", left)
	}
}

func richStatus(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.InvalidArgument, "the request has invalid fields").WithDetails(
		&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT", Domain: "authsvc", Metadata: map[string]string{"k": "v"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "email", Description: "not an email address"},
			{Field: "last_name", Description: "required"},
		}},
		&errdetails.RetryInfo{RetryDelay: &duration.Duration{Seconds: 2, Nanos: 500_000_000}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestErrorDecodedFromStatusDetails(t *testing.T) {
	fake := newFake()
	fake.fail = richStatus(t)
	c := dial(t, serve(t, fake), authclient.Options{Plaintext: true})
	_, err := c.GetUser(context.Background(), &authsvcv1.GetUserRequest{Id: "u"})
	var e *authclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not *authclient.Error", err)
	}
	if e.Code != codes.InvalidArgument || e.Reason != "INVALID_ARGUMENT" || e.Domain != "authsvc" {
		t.Fatalf("decoded %+v", e)
	}
	if e.Message != "the request has invalid fields" || e.Metadata["k"] != "v" {
		t.Fatalf("decoded %+v", e)
	}
	if !reflect.DeepEqual(e.Fields(), []string{"email", "last_name"}) ||
		e.FieldViolations[0].Description != "not an email address" {
		t.Fatalf("field violations %+v", e.FieldViolations)
	}
	if e.RetryAfter != 2500*time.Millisecond {
		t.Fatalf("RetryAfter %v", e.RetryAfter)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("status.Code(err) = %v", status.Code(err))
	}
	if n := strings.Count(e.Error(), "INVALID_ARGUMENT"); n != 1 {
		t.Fatalf("reason appears %d times in %q", n, e.Error())
	}
	if authclient.ReasonOf(err) != "INVALID_ARGUMENT" {
		t.Fatalf("ReasonOf %q", authclient.ReasonOf(err))
	}
}

func TestErrorStringNamesReasonOnce(t *testing.T) {
	e := &authclient.Error{Code: codes.AlreadyExists, Reason: "EMAIL_TAKEN", Message: "email is taken"}
	if got, want := e.Error(), "authsvc: AlreadyExists EMAIL_TAKEN: email is taken"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	e.Message = "EMAIL_TAKEN: email is taken"
	if n := strings.Count(e.Error(), "EMAIL_TAKEN"); n != 1 {
		t.Fatalf("reason appears %d times in %q", n, e.Error())
	}
	if authclient.FromError(nil) != nil {
		t.Fatal("FromError(nil) != nil")
	}
	plain := errors.New("not grpc")
	if authclient.FromError(plain) != plain {
		t.Fatal("FromError changed an error without a status")
	}
}

func TestDialRejectsContradictoryOptions(t *testing.T) {
	for name, opts := range map[string]authclient.Options{
		"plaintext with CA": {Plaintext: true, CAFile: "ca.pem"},
		"cert without key":  {CertFile: "c.pem"},
		"missing CA file":   {CAFile: filepath.Join(t.TempDir(), "missing.pem")},
	} {
		if c, err := authclient.Dial("127.0.0.1:1", opts); err == nil {
			_ = c.Close()
			t.Errorf("%s: Dial succeeded", name)
		}
	}
}

// --- TLS -------------------------------------------------------------------------

type issued struct{ cert, key string }

type testPKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), caCert: cert, caKey: key}
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *testPKI) issue(t *testing.T, name string, usage x509.ExtKeyUsage, dns ...string) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return issued{
		cert: p.write(t, name+".pem", "CERTIFICATE", der),
		key:  p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER),
	}
}

func tlsServer(t *testing.T, p *testPKI, mutual bool) string {
	t.Helper()
	srv := p.issue(t, "server", x509.ExtKeyUsageServerAuth, "authsvc.test")
	pair, err := tls.LoadX509KeyPair(srv.cert, srv.key)
	if err != nil {
		t.Fatal(err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if mutual {
		pool := x509.NewCertPool()
		pool.AddCert(p.caCert)
		config.ClientCAs = pool
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return serve(t, newFake(), grpc.Creds(credentials.NewTLS(config)))
}

func getUser(c *authclient.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.GetUser(ctx, &authsvcv1.GetUserRequest{Id: "u"})
	return err
}

func TestTLSWithCAFileAndServerName(t *testing.T) {
	p := newPKI(t)
	addr := tlsServer(t, p, false)
	ok := dial(t, addr, authclient.Options{CAFile: p.caFile, ServerName: "authsvc.test"})
	if err := getUser(ok); err != nil {
		t.Fatalf("TLS call failed: %v", err)
	}
	wrongName := dial(t, addr, authclient.Options{CAFile: p.caFile, ServerName: "other.test"})
	if err := getUser(wrongName); status.Code(err) != codes.Unavailable {
		t.Fatalf("a wrong server name gave %v, want Unavailable", err)
	}
	plain := dial(t, addr, authclient.Options{Plaintext: true})
	if err := getUser(plain); err == nil {
		t.Fatal("a plaintext call to a TLS server succeeded")
	}
}

func TestMutualTLSPresentsClientCertificate(t *testing.T) {
	p := newPKI(t)
	addr := tlsServer(t, p, true)
	client := p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	ok := dial(t, addr, authclient.Options{
		CAFile: p.caFile, ServerName: "authsvc.test", CertFile: client.cert, KeyFile: client.key,
	})
	if err := getUser(ok); err != nil {
		t.Fatalf("mTLS call failed: %v", err)
	}
	noCert := dial(t, addr, authclient.Options{CAFile: p.caFile, ServerName: "authsvc.test"})
	if err := getUser(noCert); err == nil {
		t.Fatal("a call without a client certificate succeeded")
	}
}
