// Package authclient is a small typed client for authsvc (authsvc.v1.AuthService).
//
//	c, err := authclient.Dial("auth.internal:50051", authclient.Options{CAFile: "ca.pem"})
//	if err != nil { ... }
//	defer c.Close()
//	v, err := c.ValidateToken(ctx, &authsvcv1.ValidateTokenRequest{SessionToken: token})
//	if e, ok := authclient.AsError(err); ok && e.Reason == "TOKEN_INVALID" { ... }
//
// Client embeds the generated authsvcv1.AuthServiceClient, so every RPC of the
// contract is a method of Client, including RPCs added to the contract later (after
// regenerating clients/go/authsvcv1). Every unary call made through the Client's
// connection gets the default deadline (when its context has none), the API key (if
// set) as metadata "x-api-key", and returns its errors as *Error.
package authclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"example.com/authsvc/clients/go/authsvcv1"
)

// DefaultTimeout is the per-call deadline used when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// APIKeyHeader is the call metadata key that carries Options.APIKey.
const APIKeyHeader = "x-api-key"

// Options configure Dial. The zero value means TLS with the system's root CAs and a
// 10 s default deadline.
type Options struct {
	// Plaintext dials without TLS (local development, or a sidecar/mesh that adds TLS).
	// It cannot be combined with CAFile, ServerName, CertFile or KeyFile.
	Plaintext bool
	// CAFile is a PEM file of the CAs that sign the server's certificate; empty means
	// the system's root CAs.
	CAFile string
	// ServerName overrides the name checked against the server's certificate (by
	// default the host part of the target).
	ServerName string
	// CertFile and KeyFile are the PEM client certificate and its key, for mutual TLS.
	// Set both or neither.
	CertFile string
	KeyFile  string
	// Timeout is the deadline given to each call whose context has none: 0 means
	// DefaultTimeout, a negative value means no default deadline.
	Timeout time.Duration
	// APIKey, when not empty, is sent as metadata "x-api-key" on every call.
	APIKey string
	// DialOptions are appended to the options Dial builds (e.g. grpc.WithBlock()).
	DialOptions []grpc.DialOption
}

// Client is a connection to authsvc. It embeds the generated stub, so it has one
// method per RPC (CreateUser, CreateSession, ValidateToken, RefreshSession,
// DeleteSession, GetUser, ChangePassword, ...), each returning *Error on failure.
// A Client is safe for concurrent use; Close it when done.
type Client struct {
	authsvcv1.AuthServiceClient
	conn    *grpc.ClientConn
	timeout time.Duration
	apiKey  string
}

// Dial connects to target ("host:port", or any gRPC target string). Like grpc.Dial it
// does not wait for the connection unless DialOptions say so.
func Dial(target string, opts Options) (*Client, error) {
	transport, err := transportOption(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{timeout: opts.Timeout, apiKey: opts.APIKey}
	switch {
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	case c.timeout < 0:
		c.timeout = 0
	}
	dialOpts := append([]grpc.DialOption{
		transport,
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	}, opts.DialOptions...)
	conn, err := grpc.Dial(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("authclient: dial %s: %w", target, err)
	}
	c.conn = conn
	c.AuthServiceClient = authsvcv1.NewAuthServiceClient(conn)
	return c, nil
}

// Stub returns the generated stub (the same one Client embeds).
func (c *Client) Stub() authsvcv1.AuthServiceClient { return c.AuthServiceClient }

// Conn returns the underlying connection (e.g. for the standard health service).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func transportOption(opts Options) (grpc.DialOption, error) {
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("authclient: set both CertFile and KeyFile for mutual TLS, or neither")
	}
	if opts.Plaintext {
		if opts.CAFile != "" || opts.ServerName != "" || opts.CertFile != "" {
			return nil, errors.New("authclient: Plaintext cannot be combined with TLS options")
		}
		return grpc.WithInsecure(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.ServerName}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("authclient: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("authclient: no PEM certificate in %s", opts.CAFile)
		}
		config.RootCAs = pool
	}
	if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("authclient: load client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(config)), nil
}

func (c *Client) outgoing(ctx context.Context) context.Context {
	if c.apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, APIKeyHeader, c.apiKey)
	}
	return ctx
}

func (c *Client) unaryInterceptor(
	ctx context.Context, method string, req, reply interface{},
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption,
) error {
	if _, has := ctx.Deadline(); !has && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return FromError(invoker(c.outgoing(ctx), method, req, reply, cc, opts...))
}

// Streaming RPCs (none in authsvc.v1 today) get the API key; their deadline is the
// caller's, since a stream outlives the call that opens it.
func (c *Client) streamInterceptor(
	ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption,
) (grpc.ClientStream, error) {
	stream, err := streamer(c.outgoing(ctx), desc, cc, method, opts...)
	return stream, FromError(err)
}
