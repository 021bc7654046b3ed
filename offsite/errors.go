package offsite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kinds of failure an operator acts on differently; test with errors.Is.
var (
	ErrUnreachable  = errors.New("cannot reach the store")
	ErrAccessDenied = errors.New("access denied")
	ErrNoSuchBucket = errors.New("no such bucket")
	ErrNotFound     = errors.New("no such object")
	ErrDamaged      = errors.New("stored object differs from what was sent")
)

// Error is a failed store operation, naming the bucket, key and endpoint,
// with the store's own message.
type Error struct {
	Op       string // put, get, list, ...
	Bucket   string
	Key      string
	Endpoint string
	Kind     error // one of the Err* above, or nil
	Err      error // the SDK's error
	Hint     string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "s3 %s s3://%s", e.Op, e.Bucket)
	if e.Key != "" {
		b.WriteString("/" + e.Key)
	}
	fmt.Fprintf(&b, " (endpoint %s): ", e.Endpoint)
	if e.Kind != nil {
		b.WriteString(e.Kind.Error() + ": ")
	}
	b.WriteString(storeMessage(e.Err))
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// storeMessage is the store's code and message when it answered, else the
// transport's error.
func storeMessage(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		msg := api.ErrorMessage()
		if msg == "" || msg == api.ErrorCode() {
			return api.ErrorCode()
		}
		return api.ErrorCode() + ": " + msg
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Error()
	}
	var op *smithy.OperationError
	if errors.As(err, &op) {
		return op.Err.Error()
	}
	return err.Error()
}

func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3 %s s3://%s/%s: %w", op, s.Bucket, key, err)
	}
	e := &Error{Op: op, Bucket: s.Bucket, Key: key, Endpoint: s.Endpoint, Err: err}
	e.Hint, e.Kind = classify(err)
	return e
}

const credentialsHint = "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials) and the bucket's policy"

func classify(err error) (hint string, kind error) {
	if errors.Is(err, ErrDamaged) {
		return "", nil
	}
	msg := err.Error()
	var oe *net.OpError
	var dns *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &dns) || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "no such host") || strings.Contains(msg, "connection reset") {
		return "check AWS_ENDPOINT_URL (or the profile's endpoint_url), the network and that the store is running", ErrUnreachable
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
			"InvalidToken", "TokenRefreshRequired", "AccountProblem", "AllAccessDisabled", "Forbidden":
			return credentialsHint, ErrAccessDenied
		case "NoSuchBucket":
			return "create the bucket or correct its name", ErrNoSuchBucket
		case "NoSuchKey", "NotFound":
			return "", ErrNotFound
		}
		// Stores' own words for an unknown key id (versitygw: XAdminUserNotFound).
		if strings.Contains(code, "AccessKey") || strings.Contains(code, "UserNotFound") || strings.Contains(code, "Signature") {
			return credentialsHint, ErrAccessDenied
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case 401, 403:
			return credentialsHint, ErrAccessDenied
		case 404:
			return "", ErrNotFound // HEAD answers have no body to say bucket or key
		}
		return "", nil
	}
	if strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no EC2 IMDS role found") {
		return "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials", ErrAccessDenied
	}
	return "", nil
}
