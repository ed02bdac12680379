// Package e2e tests the Go client end to end against a LIVE authsvc.
//
// The server's host:port comes from AUTHSVC_TEST_ADDRESS (plaintext);
// tests/test_go_client.py starts a real server on SQLite and on PostgreSQL and runs
// these tests (`make test`). Without the variable the tests fail instead of skipping,
// so a broken wiring cannot pass silently. Tokens and passwords are never printed.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"example.com/authsvc/clients/go/authclient"
	pb "example.com/authsvc/clients/go/authsvcv1"
)

const password = "correct horse battery staple"

func client(t *testing.T) *authclient.Client {
	t.Helper()
	return dialAddress(t, address(t, "AUTHSVC_TEST_ADDRESS"))
}

func uniqueEmail(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "Ada." + hex.EncodeToString(b) + "@Example.com"
}

func signUp(t *testing.T, c *authclient.Client, email string) *pb.User {
	t.Helper()
	res, err := c.CreateUser(context.Background(), &pb.CreateUserRequest{
		Email: email, Password: password, FirstName: "Ada", LastName: "Lovelace",
	})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return res.GetUser()
}

// failure asserts err is an *authclient.Error with code and reason, and returns it.
// Only the decoded error is printed: it never carries a token or a password.
func failure(t *testing.T, what string, err error, code codes.Code, reason string) *authclient.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded but should have failed with %s", what, reason)
	}
	e, ok := authclient.AsError(err)
	if !ok {
		t.Fatalf("%s: error %T is not *authclient.Error: %v", what, err, err)
	}
	if e.Code != code || e.Reason != reason {
		t.Fatalf("%s: got %v, want code %v reason %s", what, e, code, reason)
	}
	if e.Domain != authclient.Domain {
		t.Fatalf("%s: domain %q, want %q", what, e.Domain, authclient.Domain)
	}
	return e
}

func TestSignUpSignInValidateRefreshReuseSignOut(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	email := uniqueEmail(t)

	user := signUp(t, c, email)
	if user.GetEmail() != strings.ToLower(email) || user.GetFirstName() != "Ada" || user.GetCreateTime() == nil {
		t.Fatalf("created user %v", user)
	}
	got, err := c.GetUser(ctx, &pb.GetUserRequest{Id: user.GetId()})
	if err != nil || got.GetUser().GetEmail() != user.GetEmail() {
		t.Fatalf("GetUser: %v %v", got, err)
	}

	signIn, err := c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: password, UserAgent: "go-e2e"})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if signIn.GetUser().GetId() != user.GetId() || signIn.GetSession().GetUserAgent() != "go-e2e" {
		t.Fatal("CreateSession returned another user or session")
	}
	if signIn.GetSessionToken() == "" || signIn.GetUpdateToken() == "" {
		t.Fatal("CreateSession returned an empty token")
	}

	valid, err := c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: signIn.GetSessionToken()})
	if err != nil {
		t.Fatalf("ValidateToken: %v", err)
	}
	if valid.GetUser().GetId() != user.GetId() || valid.GetSession().GetId() != signIn.GetSession().GetId() {
		t.Fatal("ValidateToken returned another user or session")
	}

	refreshed, err := c.RefreshSession(ctx, &pb.RefreshSessionRequest{UpdateToken: signIn.GetUpdateToken()})
	if err != nil {
		t.Fatalf("RefreshSession: %v", err)
	}
	if refreshed.GetSession().GetId() != signIn.GetSession().GetId() {
		t.Fatal("RefreshSession changed the session id")
	}
	if refreshed.GetSessionToken() == signIn.GetSessionToken() || refreshed.GetUpdateToken() == signIn.GetUpdateToken() {
		t.Fatal("RefreshSession did not rotate the tokens")
	}
	_, err = c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: signIn.GetSessionToken()})
	failure(t, "validating the rotated-away session token", err, codes.Unauthenticated, "TOKEN_INVALID")
	if _, err := c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: refreshed.GetSessionToken()}); err != nil {
		t.Fatalf("ValidateToken after refresh: %v", err)
	}

	// Theft detection: the old update token again revokes the whole session.
	_, err = c.RefreshSession(ctx, &pb.RefreshSessionRequest{UpdateToken: signIn.GetUpdateToken()})
	failure(t, "reusing the rotated-away update token", err, codes.Unauthenticated, "REFRESH_TOKEN_REUSED")
	_, err = c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: refreshed.GetSessionToken()})
	failure(t, "validating after theft detection", err, codes.Unauthenticated, "TOKEN_INVALID")

	// A fresh sign-in works, then signing out ends it.
	again, err := c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("CreateSession after revocation: %v", err)
	}
	if again.GetSession().GetId() == signIn.GetSession().GetId() {
		t.Fatal("a fresh sign-in reused the revoked session")
	}
	if _, err := c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: again.GetSessionToken()}); err != nil {
		t.Fatalf("ValidateToken of the fresh session: %v", err)
	}
	if _, err := c.ChangePassword(ctx, &pb.ChangePasswordRequest{
		SessionToken: again.GetSessionToken(), CurrentPassword: "wrong " + password, NewPassword: password + " 2",
	}); err == nil {
		t.Fatal("ChangePassword with a wrong current password succeeded")
	}
	if _, err := c.DeleteSession(ctx, &pb.DeleteSessionRequest{SessionToken: again.GetSessionToken()}); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: again.GetSessionToken()})
	failure(t, "validating after sign-out", err, codes.Unauthenticated, "TOKEN_INVALID")
}

func TestChangePasswordKeepsCallingSession(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	email := uniqueEmail(t)
	signUp(t, c, email)
	session, err := c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	newPassword := password + " again"
	if _, err := c.ChangePassword(ctx, &pb.ChangePasswordRequest{
		SessionToken: session.GetSessionToken(), CurrentPassword: password, NewPassword: newPassword,
	}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if _, err := c.ValidateToken(ctx, &pb.ValidateTokenRequest{SessionToken: session.GetSessionToken()}); err != nil {
		t.Fatalf("the calling session stopped working: %v", err)
	}
	_, err = c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: password})
	failure(t, "signing in with the old password", err, codes.Unauthenticated, "INVALID_CREDENTIALS")
	if _, err := c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: newPassword}); err != nil {
		t.Fatalf("signing in with the new password: %v", err)
	}
}

func TestDuplicateSignUpFailsEmailTaken(t *testing.T) {
	c := client(t)
	email := uniqueEmail(t)
	signUp(t, c, email)
	_, err := c.CreateUser(context.Background(), &pb.CreateUserRequest{
		Email: strings.ToUpper(email), Password: password, FirstName: "Ada", LastName: "Lovelace",
	})
	e := failure(t, "signing up twice", err, codes.AlreadyExists, "EMAIL_TAKEN")
	if n := strings.Count(e.Error(), "EMAIL_TAKEN"); n != 1 {
		t.Fatalf("reason appears %d times in %q", n, e.Error())
	}
	if authclient.ReasonOf(err) != "EMAIL_TAKEN" {
		t.Fatalf("ReasonOf = %q", authclient.ReasonOf(err))
	}
}

func TestInvalidArgumentNamesFieldViolations(t *testing.T) {
	c := client(t)
	_, err := c.CreateUser(context.Background(), &pb.CreateUserRequest{
		Email: "not-an-email", Password: password, FirstName: "Ada", LastName: "",
	})
	e := failure(t, "signing up with bad fields", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	fields := e.Fields()
	sort.Strings(fields)
	if !reflect.DeepEqual(fields, []string{"email", "last_name"}) {
		t.Fatalf("field violations %v, want email and last_name", fields)
	}
	for _, v := range e.FieldViolations {
		if v.Description == "" {
			t.Fatalf("field %s has no description", v.Field)
		}
	}
	if e.RetryAfter != 0 {
		t.Fatalf("RetryAfter %v without RetryInfo", e.RetryAfter)
	}
}

func TestTooManyWrongPasswordsGivesRetryAfter(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	email := uniqueEmail(t)
	signUp(t, c, email)
	for i := 1; i <= 5; i++ {
		_, err := c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: "wrong " + password})
		failure(t, "a wrong password", err, codes.Unauthenticated, "INVALID_CREDENTIALS")
	}
	// Throttled before the password is checked, so even the right one is refused.
	_, err := c.CreateSession(ctx, &pb.CreateSessionRequest{Email: email, Password: password})
	e := failure(t, "signing in after 5 wrong passwords", err, codes.ResourceExhausted, "TOO_MANY_ATTEMPTS")
	if e.RetryAfter <= 0 {
		t.Fatalf("RetryAfter %v, want > 0", e.RetryAfter)
	}
	t.Logf("throttled: retry after %v", e.RetryAfter)
}
