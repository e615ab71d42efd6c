// Package queue is the one AMQP layer of the plugin and of the in-pod agent: dialing, telling
// refusals that retrying cannot fix from those it can, declaring work queues with a retry limit
// and a dead-letter queue, publishing items with publisher confirms, consuming them, and
// inspecting queue depths. It knows nothing of Kubernetes: callers hand it a URL, and add to its
// messages where that URL came from.
package queue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// WithHost returns rawURL with its host:port replaced, keeping scheme, credentials and vhost;
// used to point a URL that names an in-cluster service at a local port-forward.
func WithHost(rawURL, hostport string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("the broker URL is not a valid URL (expected amqp://USER:PASSWORD@HOST:PORT/VHOST)")
	}
	u.Host = hostport
	return u.String(), nil
}

// BuildURL makes an AMQP URL for the default vhost. It has no path: by the AMQP URI spec a lone
// "/" names the empty vhost, and amqp-tools (the seed's amqp-consume) read it that way.
func BuildURL(username, password, hostport string) string {
	return (&url.URL{Scheme: "amqp", User: url.UserPassword(username, password), Host: hostport}).String()
}

// TimeoutError says that attempts were given up after the time a Retry was allowed.
type TimeoutError struct {
	Err   error
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%v (gave up after %s)", e.Err, e.After)
}
func (e *TimeoutError) Unwrap() error { return e.Err }

// PermanentError is an error that retrying cannot fix (bad URL, a refusal: see Refusal).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Retry bounds how long to keep trying.
type Retry struct {
	Attempts int           // at least 1
	Initial  time.Duration // first wait; doubles each time
	Max      time.Duration // longest wait
	// Within, when set, bounds the whole: no attempt starts after it has passed.
	Within time.Duration
	// OnRetry, when set, hears about each failed attempt that will be retried.
	OnRetry func(err error, wait time.Duration)
}

// DefaultRetry rides out a broker pod that is still starting: about 70 s in all, since RabbitMQ
// under a small CPU limit takes half a minute to listen.
var DefaultRetry = Retry{Attempts: 12, Initial: 500 * time.Millisecond, Max: 8 * time.Second}

// Do calls attempt until it succeeds, returns a PermanentError, the context ends, or the attempts
// run out; it returns the last error.
func (r Retry) Do(ctx context.Context, attempt func(ctx context.Context) error) error {
	wait := r.Initial
	start := time.Now()
	var err error
	for i := 1; ; i++ {
		if err = attempt(ctx); err == nil {
			return nil
		}
		var permanent *PermanentError
		if errors.As(err, &permanent) || i >= r.Attempts {
			return err
		}
		if r.Within > 0 && time.Since(start)+wait > r.Within {
			return &TimeoutError{Err: err, After: r.Within}
		}
		if r.OnRetry != nil {
			r.OnRetry(err, wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, r.Max)
	}
}
