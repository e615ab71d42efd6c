package queue

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Refused says what the broker refused for good.
type Refused int

const (
	// RefusedMechanism: the broker offers no login mechanism the client supports.
	RefusedMechanism Refused = iota + 1
	// RefusedLogin: wrong user name or password.
	RefusedLogin
	// RefusedVhost: no such vhost, or the user has no access to it.
	RefusedVhost
	// RefusedNoQueue: the queue does not exist.
	RefusedNoQueue
	// RefusedQueue: the user lacks permissions on the queue.
	RefusedQueue
)

// RefusalError is a broker refusal that retrying cannot fix; its message says what to change.
// Refusal returns it inside a PermanentError, so that Retry stops at once. Callers add where the
// URL or the queue name came from.
type RefusalError struct {
	What   Refused
	Broker string // the broker's redacted URL, when known
	Queue  string
	Vhost  string
	Err    error // the broker's reply
}

func (e *RefusalError) Error() string {
	broker := "the broker"
	if e.Broker != "" {
		broker += " at " + e.Broker
	}
	switch e.What {
	case RefusedMechanism:
		return fmt.Sprintf("%s offers no login mechanism this client supports, PLAIN or AMQPLAIN (%v)", broker, e.Err)
	case RefusedLogin:
		return fmt.Sprintf("%s refused the login (%v): check the user name and password (RabbitMQ admits the guest user only from localhost unless loopback_users is changed)", broker, e.Err)
	case RefusedVhost:
		return fmt.Sprintf("%s did not let the user into vhost %q (%v): check the vhost in the URL or grant the user access to it", broker, e.Vhost, e.Err)
	case RefusedNoQueue:
		return fmt.Sprintf("queue %q does not exist in vhost %q on %s", e.Queue, e.Vhost, broker)
	default:
		return fmt.Sprintf("%s refused access to queue %q (%v): grant the user read and write permissions on it", broker, e.Queue, e.Err)
	}
}

func (e *RefusalError) Unwrap() error { return e.Err }

// Refusal classifies an error from dialing or from a channel operation on queueName in vhost. It
// returns a PermanentError wrapping a *RefusalError when retrying cannot help, and nil when it
// may: a lost connection, a connection limit that is reached now, a vhost that is restarting.
//
// Refusals the client inferred from a socket closed during the handshake (see Inferred) are
// classified too; whether to believe them is the caller's decision (Dial tries once more).
func Refusal(err error, queueName, vhost string) error {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) {
		return nil
	}
	refused := func(what Refused) error {
		return &PermanentError{Err: &RefusalError{What: what, Queue: queueName, Vhost: vhost, Err: err}}
	}
	switch {
	case errors.Is(err, amqp.ErrSASL):
		return refused(RefusedMechanism)
	case amqpErr == amqp.ErrCredentials || (amqpErr.Code == amqp.AccessRefused && (isLoginRefusal(amqpErr) || queueName == "")):
		return refused(RefusedLogin)
	case amqpErr.Code == amqp.NotAllowed && isPassingRefusal(amqpErr), QueueUnavailable(err):
		return nil
	case amqpErr == amqp.ErrVhost || amqpErr.Code == amqp.NotAllowed || amqpErr.Code == amqp.InvalidPath:
		return refused(RefusedVhost)
	case amqpErr.Code == amqp.NotFound && queueName != "":
		return refused(RefusedNoQueue)
	case amqpErr.Code == amqp.AccessRefused:
		return refused(RefusedQueue)
	}
	return nil
}

// AsRefusal returns the RefusalError in err's chain, or nil.
func AsRefusal(err error) *RefusalError {
	var refusal *RefusalError
	if errors.As(err, &refusal) {
		return refusal
	}
	return nil
}

// Inferred reports a refusal that the client library inferred from a closed socket rather than
// one the broker stated: a broker that drops the connection during the handshake (restarting,
// overloaded) looks like one that refused the credentials or the vhost.
func Inferred(err error) bool {
	var amqpErr *amqp.Error
	return errors.As(err, &amqpErr) && !amqpErr.Server
}

// isPassingRefusal tells the 530 NOT_ALLOWED replies that waiting can fix, a user's or vhost's
// connection limit reached or a vhost that is restarting, from those that it cannot (no access
// to the vhost, no such vhost).
func isPassingRefusal(err *amqp.Error) bool {
	reason := strings.ToLower(err.Reason)
	return strings.Contains(reason, "limit") || strings.Contains(reason, "is down")
}

// QueueUnavailable tells RabbitMQ's 404 for a classic queue that exists but cannot serve now:
// its node is down or stopping (a cluster node restarting), its process crashed or timed out.
// The texts are rabbit_amqqueue's for an absent queue.
func QueueUnavailable(err error) bool {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
		return false
	}
	for _, absent := range []string{"is down or inaccessible", "process is stopped by supervisor", "has crashed and failed to restart", "due to timeout"} {
		if strings.Contains(amqpErr.Reason, absent) {
			return true
		}
	}
	return false
}

func isLoginRefusal(err *amqp.Error) bool {
	return strings.Contains(strings.ToLower(err.Reason), "login")
}
