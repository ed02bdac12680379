package authclient

import (
	"container/list"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/authsvc/clients/go/authsvcv1"
)

// VerifyError is why a Verifier refused an access token. Compare it with errors.Is
// against ErrMalformedToken, ErrBadSignature, ErrUnknownKey, ErrWrongIssuer,
// ErrTokenExpired, ErrTokenRevoked and ErrRevocationFeedStale (the reason decides; the
// message and cause do not).
type VerifyError struct {
	// Reason names why, as the other clients do: "MALFORMED_TOKEN", "BAD_SIGNATURE",
	// "UNKNOWN_KEY", "WRONG_ISSUER", "TOKEN_EXPIRED", "TOKEN_REVOKED" or
	// "REVOCATION_FEED_STALE".
	Reason string
	// Message says what was wrong, for people; never the token.
	Message string
	// Err is the underlying error (e.g. ValidateToken's), or nil.
	Err error
}

// The reasons a Verifier refuses a token.
var (
	// ErrMalformedToken: not a compact JWS with the header and claims of an access token.
	ErrMalformedToken = &VerifyError{Reason: "MALFORMED_TOKEN"}
	// ErrBadSignature: the signature does not verify, or alg is not EdDSA (none, HS256...).
	ErrBadSignature = &VerifyError{Reason: "BAD_SIGNATURE"}
	// ErrUnknownKey: signed with a kid that GetSigningKeys does not publish.
	ErrUnknownKey = &VerifyError{Reason: "UNKNOWN_KEY"}
	// ErrWrongIssuer: the iss claim is not the issuer the Verifier expects.
	ErrWrongIssuer = &VerifyError{Reason: "WRONG_ISSUER"}
	// ErrTokenExpired: past its exp; refresh the session for a new access token.
	ErrTokenExpired = &VerifyError{Reason: "TOKEN_EXPIRED"}
	// ErrTokenRevoked: its session was revoked, or its user's tokens were (disable, new
	// password...).
	ErrTokenRevoked = &VerifyError{Reason: "TOKEN_REVOKED"}
	// ErrRevocationFeedStale: the revocation feed has been silent longer than
	// MaxStaleness (fail closed), and the fallback to ValidateToken is off or failed.
	ErrRevocationFeedStale = &VerifyError{Reason: "REVOCATION_FEED_STALE"}
)

func (e *VerifyError) Error() string {
	if e.Message == "" {
		return "authsvc: access token refused: " + e.Reason
	}
	return "authsvc: access token refused (" + e.Reason + "): " + e.Message
}

// Is matches any *VerifyError with the same Reason.
func (e *VerifyError) Is(target error) bool {
	t, ok := target.(*VerifyError)
	return ok && t.Reason == e.Reason
}

// Unwrap returns the underlying error.
func (e *VerifyError) Unwrap() error { return e.Err }

func refuse(reason *VerifyError, format string, args ...interface{}) *VerifyError {
	return &VerifyError{Reason: reason.Reason, Message: fmt.Sprintf(format, args...)}
}

// VerifiedToken is what a valid access token says.
type VerifiedToken struct {
	// UserID is the user's id (sub).
	UserID string
	// SessionID is the session's id (sid).
	SessionID string
	// AAL is the session's assurance level (aal): 1 (AAL1) or 2 (AAL2).
	AAL int
	// Methods says how the session authenticated (amr), e.g. ["PASSWORD", "TOTP"].
	Methods []string
	// IssuedAt is when the token was issued (iat).
	IssuedAt time.Time
	// ExpiresAt is when the token expires (exp).
	ExpiresAt time.Time
	// Email is the user's email, only when the server adds it (AUTHSVC_ACCESS_TOKEN_EMAIL).
	Email string
}

// VerifierOptions configure NewVerifier; zero fields take the defaults.
type VerifierOptions struct {
	// Issuer is the iss every token must carry: the server's AUTHSVC_ISSUER ("authsvc").
	Issuer string
	// MaxStaleness: when the revocation feed has been silent (not even a heartbeat) for
	// longer, Verify fails closed (default 5 s).
	MaxStaleness time.Duration
	// FallbackToValidateToken makes Verify ask ValidateToken while the feed is stale,
	// instead of refusing with ErrStale.
	FallbackToValidateToken bool
	// CacheSize is how many verified tokens are remembered, least recently used going
	// first (default 10000).
	CacheSize int
	// KeysRefresh is how often the signing keys are fetched again: at most the server's
	// AUTHSVC_JWKS_REFRESH, since a new key is published that long (plus one access-token
	// TTL) before it signs (default 5 min, its default).
	KeysRefresh time.Duration
	// KeysMinRefetch: a token with an unknown kid makes the Verifier fetch the keys at
	// once, but not more often than this (default 1 s), so forged kids cannot flood authsvc.
	KeysMinRefetch time.Duration
	// ClockSkew is the leeway allowed on exp (default 0).
	ClockSkew time.Duration
	// Feed sets the revocation feed's backoff and idle timeout (default 15 s).
	Feed Reconnect
}

// checked is what the signature check established, remembered per token.
type checked struct {
	token    VerifiedToken
	issuedAt float64 // iat, seconds since the epoch
}

type userRevocation struct {
	notBefore float64 // seconds since the epoch
	expires   time.Time
}

// Verifier verifies authsvc access tokens in-process: signing keys from GetSigningKeys,
// revocations from the WatchRevocations feed held open (and resumed) in the background.
// A token's signature is checked once and remembered (bounded); its expiry and the
// revocations are checked on every call. It fails closed: when the feed has been silent
// longer than MaxStaleness, Verify refuses with ErrStale, or asks ValidateToken when
// FallbackToValidateToken is set. Safe for concurrent use; Close it when done.
type Verifier struct {
	client *Client
	opts   VerifierOptions
	cancel context.CancelFunc
	done   chan struct{}

	fetching sync.Mutex // one key fetch at a time

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	lastFetch time.Time
	cache     map[string]*list.Element // of *cacheEntry
	order     *list.List               // most recently used first
	sessions  map[string]time.Time     // revoked session id -> forget after
	users     map[string]userRevocation
	synced    bool
	lastHeard time.Time
	lastPrune time.Time
	feedErr   error
}

type cacheEntry struct {
	token   string
	checked checked
}

// NewVerifier starts a Verifier on c's connection: it fetches the signing keys and opens
// the revocation feed in the background (see Ready).
func NewVerifier(c *Client, opts VerifierOptions) *Verifier {
	if opts.Issuer == "" {
		opts.Issuer = "authsvc"
	}
	if opts.MaxStaleness <= 0 {
		opts.MaxStaleness = 5 * time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.KeysRefresh <= 0 {
		opts.KeysRefresh = 5 * time.Minute
	}
	if opts.KeysMinRefetch <= 0 {
		opts.KeysMinRefetch = time.Second
	}
	opts.Feed = opts.Feed.withDefaults(15 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	v := &Verifier{
		client: c, opts: opts, cancel: cancel, done: make(chan struct{}),
		keys: map[string]ed25519.PublicKey{}, cache: map[string]*list.Element{}, order: list.New(),
		sessions: map[string]time.Time{}, users: map[string]userRevocation{},
	}
	go v.watchRevocations(ctx)
	go v.refreshKeys(ctx)
	return v
}

// Ready waits until the signing keys are loaded and the revocation feed has caught up
// (its first heartbeat), or ctx is done, or the feed failed for good.
func (v *Verifier) Ready(ctx context.Context) error {
	for {
		v.mu.Lock()
		ready, feedErr, haveKeys := len(v.keys) > 0 && v.synced, v.feedErr, len(v.keys) > 0
		mayFetch := time.Since(v.lastFetch) >= v.opts.KeysMinRefetch
		v.mu.Unlock()
		if feedErr != nil {
			return feedErr
		}
		if ready {
			return nil
		}
		if !haveKeys && mayFetch {
			_ = v.fetchKeys(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("authclient: verifier not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stale reports whether the revocation feed has been silent longer than MaxStaleness.
func (v *Verifier) Stale() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.staleLocked()
}

func (v *Verifier) staleLocked() bool {
	return !v.synced || time.Since(v.lastHeard) > v.opts.MaxStaleness
}

// Close stops the revocation feed and the key refresh.
func (v *Verifier) Close() {
	v.cancel()
	<-v.done
}

// Verify checks an access token: its EdDSA signature by a published key, typ at+jwt, the
// issuer, its expiry and the revocations. It returns what the token says, or a
// *VerifyError (see ErrExpired and the others). ctx bounds the network calls Verify may
// make: a key fetch for an unknown kid, or ValidateToken while the feed is stale.
func (v *Verifier) Verify(ctx context.Context, accessToken string) (*VerifiedToken, error) {
	c, ok := v.cached(accessToken)
	if !ok {
		var err error
		if c, err = v.checkSignature(ctx, accessToken); err != nil {
			return nil, err
		}
		v.remember(accessToken, c)
	}
	if !time.Now().Before(c.token.ExpiresAt.Add(v.opts.ClockSkew)) {
		return nil, refuse(ErrTokenExpired, "the access token has expired")
	}
	v.mu.Lock()
	revoked, stale := v.revokedLocked(c), v.staleLocked()
	v.mu.Unlock()
	if revoked {
		return nil, refuse(ErrTokenRevoked, "the access token was revoked")
	}
	if stale {
		if !v.opts.FallbackToValidateToken {
			return nil, refuse(ErrRevocationFeedStale, "the revocation feed is stale: refused (fail closed)")
		}
		if err := v.validateRemotely(ctx, accessToken); err != nil {
			return nil, err
		}
	}
	token := c.token
	token.Methods = append([]string(nil), c.token.Methods...)
	return &token, nil
}

func (v *Verifier) cached(accessToken string) (checked, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	element, ok := v.cache[accessToken]
	if !ok {
		return checked{}, false
	}
	v.order.MoveToFront(element)
	return element.Value.(*cacheEntry).checked, true
}

func (v *Verifier) remember(accessToken string, c checked) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.cache[accessToken]; ok {
		return
	}
	for v.order.Len() >= v.opts.CacheSize {
		oldest := v.order.Back()
		delete(v.cache, oldest.Value.(*cacheEntry).token)
		v.order.Remove(oldest)
	}
	v.cache[accessToken] = v.order.PushFront(&cacheEntry{token: accessToken, checked: c})
}

func (v *Verifier) revokedLocked(c checked) bool {
	if _, ok := v.sessions[c.token.SessionID]; ok {
		return true
	}
	user, ok := v.users[c.token.UserID]
	return ok && c.issuedAt < user.notBefore
}

// jwsHeader is the protected header of an access token.
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// claims are the claims of an access token.
type claims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Sid   string   `json:"sid"`
	Iat   *float64 `json:"iat"`
	Exp   *float64 `json:"exp"`
	Aal   *int     `json:"aal"`
	Amr   []string `json:"amr"`
	Email string   `json:"email"`
}

var b64 = base64.RawURLEncoding.Strict()

// checkSignature parses a compact JWS strictly and checks its signature and claims
// (everything but expiry and revocation, which Verify checks on every call).
func (v *Verifier) checkSignature(ctx context.Context, token string) (checked, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return checked{}, refuse(ErrMalformedToken, "not a compact JWS")
	}
	var header jwsHeader
	if err := decodePart(parts[0], &header); err != nil {
		return checked{}, refuse(ErrMalformedToken, "bad JWS header")
	}
	if header.Alg != "EdDSA" {
		return checked{}, refuse(ErrBadSignature, "algorithm %q is not EdDSA", header.Alg)
	}
	if typ := strings.TrimPrefix(strings.ToLower(header.Typ), "application/"); typ != "at+jwt" {
		return checked{}, refuse(ErrMalformedToken, "typ is not at+jwt")
	}
	if header.Crit != nil {
		return checked{}, refuse(ErrMalformedToken, "unsupported crit header")
	}
	key, err := v.key(ctx, header.Kid)
	if err != nil {
		return checked{}, err
	}
	signature, err := b64.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), signature) {
		return checked{}, refuse(ErrBadSignature, "the signature does not verify")
	}
	var claimed claims
	if err := decodePart(parts[1], &claimed); err != nil {
		return checked{}, refuse(ErrMalformedToken, "bad JWT claims")
	}
	return v.checkClaims(claimed)
}

func (v *Verifier) checkClaims(claimed claims) (checked, error) {
	if claimed.Iss != v.opts.Issuer {
		return checked{}, refuse(ErrWrongIssuer, "the issuer is not %q", v.opts.Issuer)
	}
	if claimed.Sub == "" || claimed.Sid == "" || claimed.Iat == nil || claimed.Exp == nil ||
		claimed.Amr == nil {
		return checked{}, refuse(ErrMalformedToken, "sub, sid, iat, exp or amr missing")
	}
	aal := 1
	if claimed.Aal != nil {
		aal = *claimed.Aal
	}
	return checked{
		token: VerifiedToken{
			UserID: claimed.Sub, SessionID: claimed.Sid, AAL: aal, Methods: claimed.Amr,
			IssuedAt: epoch(*claimed.Iat), ExpiresAt: epoch(*claimed.Exp), Email: claimed.Email,
		},
		issuedAt: *claimed.Iat,
	}, nil
}

func epoch(seconds float64) time.Time {
	return time.Unix(0, 0).Add(time.Duration(seconds * float64(time.Second)))
}

func decodePart(part string, into interface{}) error {
	raw, err := b64.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// key returns the public key kid names, fetching the keys again (rate-limited) when it is
// unknown.
func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if kid == "" {
		return nil, refuse(ErrMalformedToken, "the token names no key (kid)")
	}
	v.mu.Lock()
	key, ok := v.keys[kid]
	mayFetch := time.Since(v.lastFetch) >= v.opts.KeysMinRefetch
	v.mu.Unlock()
	if !ok && mayFetch {
		_ = v.fetchKeys(ctx)
		v.mu.Lock()
		key, ok = v.keys[kid]
		v.mu.Unlock()
	}
	if !ok {
		return nil, refuse(ErrUnknownKey, "no published key has this kid")
	}
	return key, nil
}

// fetchKeys replaces the keys with those GetSigningKeys publishes; callers that queue
// behind a fetch that started after them reuse its result.
func (v *Verifier) fetchKeys(ctx context.Context) error {
	asked := time.Now()
	v.fetching.Lock()
	defer v.fetching.Unlock()
	v.mu.Lock()
	fresh := v.lastFetch.After(asked)
	v.mu.Unlock()
	if fresh {
		return nil
	}
	v.mu.Lock()
	v.lastFetch = time.Now()
	v.mu.Unlock()
	res, err := v.client.GetSigningKeys(ctx, &authsvcv1.GetSigningKeysRequest{})
	if err != nil {
		return err
	}
	keys, err := parseJWKS(res.GetJwksJson())
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.keys = keys
	v.mu.Unlock()
	return nil
}

// parseJWKS returns the Ed25519 signing keys of a JWK Set by kid; other keys are skipped.
func parseJWKS(jwksJSON string) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty, Crv, X, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(jwksJSON), &set); err != nil {
		return nil, fmt.Errorf("authclient: bad JWKS: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Kid == "" ||
			(k.Alg != "" && k.Alg != "EdDSA") || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	return keys, nil
}

func (v *Verifier) refreshKeys(ctx context.Context) {
	_ = v.fetchKeys(ctx)
	ticker := time.NewTicker(v.opts.KeysRefresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			_ = v.fetchKeys(ctx)
		}
	}
}

// validateRemotely asks ValidateToken whether the token still stands (feed stale).
func (v *Verifier) validateRemotely(ctx context.Context, token string) error {
	_, err := v.client.ValidateToken(ctx, &authsvcv1.ValidateTokenRequest{SessionToken: token})
	// Unauthenticated: the token's session or user no longer stands. Anything else
	// (unreachable, PermissionDenied by a caller policy...) decides nothing about it.
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.Unauthenticated:
		return &VerifyError{Reason: ErrTokenRevoked.Reason, Message: "ValidateToken refused it", Err: err}
	}
	return &VerifyError{
		Reason: ErrRevocationFeedStale.Reason, Message: "the feed is stale and ValidateToken failed", Err: err,
	}
}

func (v *Verifier) watchRevocations(ctx context.Context) {
	defer close(v.done)
	feed := resumable[*authsvcv1.Revocation]{
		open: func(ctx context.Context, cursor string) (func() (*authsvcv1.Revocation, error), error) {
			stream, err := v.client.WatchRevocations(ctx, &authsvcv1.WatchRevocationsRequest{AfterCursor: cursor})
			if err != nil {
				return nil, err
			}
			return stream.Recv, nil
		},
		handle: func(r *authsvcv1.Revocation) error {
			v.apply(r)
			return nil
		},
		onFinal: func(err error) (string, bool) {
			// A cursor past the feed's retention: every revocation that can still matter is
			// in a fresh snapshot, so start over from it (unsynced until it is read).
			if status.Code(err) != codes.FailedPrecondition {
				return "", false
			}
			v.mu.Lock()
			v.synced = false
			v.mu.Unlock()
			return "", true
		},
		opts: v.opts.Feed,
	}
	err := feed.run(ctx, "")
	if ctx.Err() == nil {
		v.mu.Lock()
		v.feedErr = err
		v.mu.Unlock()
	}
}

func (v *Verifier) apply(r *authsvcv1.Revocation) {
	now := time.Now()
	expires := now.Add(24 * time.Hour)
	if r.GetExpireTime() != nil {
		expires = r.GetExpireTime().AsTime()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastHeard = now
	switch subject := r.GetSubject().(type) {
	case *authsvcv1.Revocation_SessionId:
		v.sessions[subject.SessionId] = expires
	case *authsvcv1.Revocation_UserId:
		notBefore := float64(now.UnixNano()) / 1e9
		if r.GetNotBefore() != nil {
			notBefore = float64(r.GetNotBefore().AsTime().UnixNano()) / 1e9
		}
		known, ok := v.users[subject.UserId]
		if ok && known.notBefore > notBefore {
			notBefore = known.notBefore
		}
		if ok && known.expires.After(expires) {
			expires = known.expires
		}
		v.users[subject.UserId] = userRevocation{notBefore: notBefore, expires: expires}
	default: // a heartbeat: the snapshot (or the resumed feed) is caught up
		v.synced = true
		if now.Sub(v.lastPrune) > time.Second {
			v.pruneLocked(now)
		}
	}
}

// pruneLocked forgets revocations after which no token they concern can be unexpired.
func (v *Verifier) pruneLocked(now time.Time) {
	v.lastPrune = now
	for id, expires := range v.sessions {
		if expires.Before(now) {
			delete(v.sessions, id)
		}
	}
	for id, user := range v.users {
		if user.expires.Before(now) {
			delete(v.users, id)
		}
	}
}
