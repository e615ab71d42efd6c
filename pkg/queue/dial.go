package queue

import (
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultDialTimeout bounds one TCP connect and AMQP handshake.
const DefaultDialTimeout = 10 * time.Second

// inferredRefusalPause is the wait before believing a refusal the client only inferred.
const inferredRefusalPause = 250 * time.Millisecond

type dialConfig struct {
	name     string
	timeout  time.Duration
	coalesce bool
	onRetry  func(err error)
}

// DialOption changes how Dial connects.
type DialOption func(*dialConfig)

// WithConnectionName names the connection in the broker's management UI and logs.
func WithConnectionName(name string) DialOption {
	return func(c *dialConfig) { c.name = name }
}

// WithDialTimeout bounds the TCP connect and the AMQP handshake; DefaultDialTimeout otherwise.
func WithDialTimeout(d time.Duration) DialOption {
	return func(c *dialConfig) { c.timeout = d }
}

// WithCoalescing says whether to batch small writes into fewer TCP writes (on by default). It
// pays off when publishing with many confirms in flight; a consumer that settles one message at a
// time would only wait the flush delay for each ack.
func WithCoalescing(on bool) DialOption {
	return func(c *dialConfig) { c.coalesce = on }
}

// WithRetryNotice has Dial tell onRetry about a refusal it tries once more (see Dial), so that a
// log can say why connecting took longer.
func WithRetryNotice(onRetry func(err error)) DialOption {
	return func(c *dialConfig) { c.onRetry = onRetry }
}

// Dial connects once. A refusal that retrying cannot fix (a bad URL, the login, the vhost) is a
// PermanentError, so Retry.Do stops at once; a refusal the client inferred from a socket closed
// during the handshake is tried once more before it is believed. Errors never contain the
// password.
func Dial(rawURL string, opts ...DialOption) (conn *amqp.Connection, err error) {
	// err never holds the password: every return below scrubs it.
	defer func() { logOp("connect", err, "broker", Redact(rawURL)) }()
	cfg := dialConfig{name: "kubectl-workqueue", timeout: DefaultDialTimeout, coalesce: true}
	for _, opt := range opts {
		opt(&cfg)
	}
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("invalid broker URL %s (expected amqp://USER:PASSWORD@HOST:PORT/VHOST): %w", Redact(rawURL), scrub(err, rawURL))}
	}
	conn, err = dialOnce(rawURL, cfg)
	if err != nil && Inferred(err) && Refusal(err, "", uri.Vhost) != nil {
		if cfg.onRetry != nil {
			cfg.onRetry(scrub(err, rawURL))
		}
		time.Sleep(inferredRefusalPause)
		conn, err = dialOnce(rawURL, cfg)
	}
	if err != nil {
		err = scrub(err, rawURL)
		if refusal := Refusal(err, "", uri.Vhost); refusal != nil {
			AsRefusal(refusal).Broker = Redact(rawURL)
			return nil, refusal
		}
		return nil, fmt.Errorf("cannot connect to the broker at %s: %w", Redact(rawURL), err)
	}
	return conn, nil
}

func dialOnce(rawURL string, cfg dialConfig) (*amqp.Connection, error) {
	dial := amqp.DefaultDial(cfg.timeout)
	if cfg.coalesce {
		plain := dial
		dial = func(network, addr string) (net.Conn, error) {
			c, err := plain(network, addr)
			if err != nil {
				return nil, err
			}
			return newCoalescingConn(c), nil
		}
	}
	properties := amqp.NewConnectionProperties()
	properties.SetClientConnectionName(cfg.name)
	return amqp.DialConfig(rawURL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       dial,
		Properties: properties,
	})
}
