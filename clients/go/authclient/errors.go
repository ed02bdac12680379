package authclient

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the google.rpc.ErrorInfo domain of every error authsvc raises.
const Domain = "authsvc"

// FieldViolation names one bad request field (from google.rpc.BadRequest).
type FieldViolation struct {
	// Field is the proto field name, e.g. "email" or "last_name".
	Field string
	// Description says what is wrong with it.
	Description string
}

// Error is a failed authsvc call, decoded from the gRPC status and its details.
//
// Every call made through a Client returns errors of this type (use errors.As), and
// it still works with status.FromError / status.Code because it implements
// GRPCStatus.
type Error struct {
	// Code is the gRPC status code, e.g. codes.Unauthenticated.
	Code codes.Code
	// Reason is the google.rpc.ErrorInfo reason, e.g. "EMAIL_TAKEN", or "" when the
	// status carried no ErrorInfo (e.g. a deadline exceeded on the client side).
	Reason string
	// Domain is the google.rpc.ErrorInfo domain ("authsvc" for the server's own errors).
	Domain string
	// Metadata is the google.rpc.ErrorInfo metadata, or nil.
	Metadata map[string]string
	// Message is the status message, for people (never parse it: use Reason).
	Message string
	// FieldViolations lists the bad fields of an INVALID_ARGUMENT (google.rpc.BadRequest).
	FieldViolations []FieldViolation
	// RetryAfter is the google.rpc.RetryInfo delay of a throttled call (reason
	// TOO_MANY_ATTEMPTS), or 0 when the status carried none.
	RetryAfter time.Duration

	status *status.Status
}

// Error reads "authsvc: <code> <REASON>: <message>", naming the reason once.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("authsvc: ")
	b.WriteString(e.Code.String())
	if e.Reason != "" && !strings.Contains(e.Message, e.Reason) {
		b.WriteString(" ")
		b.WriteString(e.Reason)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// GRPCStatus returns the status the error was decoded from, so that status.FromError
// and status.Code keep working on it.
func (e *Error) GRPCStatus() *status.Status {
	if e.status == nil {
		return status.New(e.Code, e.Message)
	}
	return e.status
}

// Fields returns the names of the fields in FieldViolations, in order.
func (e *Error) Fields() []string {
	fields := make([]string, 0, len(e.FieldViolations))
	for _, v := range e.FieldViolations {
		fields = append(fields, v.Field)
	}
	return fields
}

// FromError decodes a gRPC error into an *Error. It returns nil for nil, the error
// itself when it already is an *Error, and the error unchanged (not an *Error) when it
// carries no gRPC status.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return fromStatus(st)
}

// AsError returns the *Error inside err, if there is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// ReasonOf returns the ErrorInfo reason of err, or "" if it has none.
func ReasonOf(err error) string {
	if e, ok := AsError(FromError(err)); ok {
		return e.Reason
	}
	return ""
}

func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Reason = d.GetReason()
			e.Domain = d.GetDomain()
			e.Metadata = d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{
					Field:       v.GetField(),
					Description: v.GetDescription(),
				})
			}
		case *errdetails.RetryInfo:
			if delay := d.GetRetryDelay(); delay != nil {
				e.RetryAfter = time.Duration(delay.GetSeconds())*time.Second +
					time.Duration(delay.GetNanos())
			}
		}
	}
	return e
}
