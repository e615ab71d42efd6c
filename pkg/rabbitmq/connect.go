package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/portforward"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// How long Connect keeps trying unless told otherwise: a broker named by URL is expected to be
// up, whereas the one behind the Service may be a pod that RabbitMQ takes half a minute to
// start under a small CPU limit.
const (
	DirectTimeout  = 15 * time.Second
	ForwardTimeout = 90 * time.Second
)

// Target says how to reach a broker: directly by URL, or through a port-forward to a pod of
// a Service, logging in with the credentials Secret of its namespace.
type Target struct {
	URL       string // set: connect to it directly
	Namespace string
	Service   string
	Port      string // a number or a port name; empty: the port named "amqp", else 5672
	// Timeout bounds how long to keep trying; DirectTimeout or ForwardTimeout when 0.
	Timeout time.Duration
}

// Broker is a live connection to the broker.
type Broker struct {
	Conn *amqp.Connection
	// Via says how the broker was reached, for messages: "service rabbitmq-service (pod rabbitmq-0)".
	Via     string
	forward *portforward.Session

	// What the management API needs: the broker's pod, or the URL, and the login.
	url                string
	pod                portforward.Target
	username, password string
}

// Close closes the connection and its port-forward.
func (b *Broker) Close() {
	if b.Conn != nil {
		b.Conn.Close()
	}
	if b.forward != nil {
		b.forward.Close()
	}
}

// Connect reaches the broker, retrying while it cannot be reached (each retry is reported on
// progress once; io.Discard for none). Through a Service, every attempt gets a fresh
// port-forward, since one failed connection ends a client-go port-forward for good.
func Connect(ctx context.Context, client kubernetes.Interface, config *rest.Config, t Target, progress io.Writer) (*Broker, error) {
	retry := queue.DefaultRetry
	retry.Attempts = math.MaxInt // the time bounds it
	retry.Within = t.Timeout
	if retry.Within <= 0 {
		retry.Within = ForwardTimeout
		if t.URL != "" {
			retry.Within = DirectTimeout
		}
	}
	told := false
	retry.OnRetry = func(err error, _ time.Duration) {
		if !told { // once: a starting broker fails the same way for a while
			fmt.Fprintf(progress, "waiting up to %s for the broker to accept connections (%v)...\n", retry.Within, err)
			told = true
		}
	}
	if t.URL != "" {
		b := &Broker{Via: queue.Redact(t.URL), url: t.URL}
		err := retry.Do(ctx, func(context.Context) error {
			var err error
			b.Conn, err = queue.Dial(t.URL)
			return err
		})
		if err != nil {
			return nil, err
		}
		return b, nil
	}

	username, password, err := Credentials(ctx, client, t.Namespace)
	if err != nil {
		return nil, err
	}
	b := &Broker{}
	err = retry.Do(ctx, func(ctx context.Context) error {
		target, err := portforward.ResolveService(ctx, client, t.Namespace, t.Service, t.Port)
		if err != nil {
			if errors.Is(err, portforward.ErrNoReadyPod) {
				return err // the broker may still be starting
			}
			return &queue.PermanentError{Err: err}
		}
		session, err := portforward.Forward(ctx, config, client, target)
		if err != nil {
			if errors.Is(err, portforward.ErrForbidden) {
				return &queue.PermanentError{Err: err}
			}
			return err
		}
		conn, err := queue.Dial(queue.BuildURL(username, password, session.Addr()))
		if err != nil {
			session.Close()
			if refusal := queue.AsRefusal(err); refusal != nil && refusal.What == queue.RefusedLogin {
				return &queue.PermanentError{Err: fmt.Errorf("%w; the credentials come from Secret %s/%s (or guest:guest without it)", err, t.Namespace, CredentialsSecret)}
			}
			return err
		}
		b.Conn, b.forward, b.pod = conn, session, target
		b.username, b.password = username, password
		b.Via = fmt.Sprintf("service %s (pod %s)", t.Service, target.Pod)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Credentials reads the broker's credentials Secret, falling back to the guest account of
// Kubernetes' work-queue example when there is none.
func Credentials(ctx context.Context, client kubernetes.Interface, namespace string) (username, password string, err error) {
	secret, err := client.CoreV1().Secrets(namespace).Get(ctx, CredentialsSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "guest", "guest", nil
	case err != nil:
		return "", "", fmt.Errorf("read the broker credentials from Secret %s/%s: %w", namespace, CredentialsSecret, err)
	}
	username, password = string(secret.Data[UsernameKey]), string(secret.Data[PasswordKey])
	if username == "" || password == "" {
		return "", "", fmt.Errorf("Secret %s/%s must have the keys username and password", namespace, CredentialsSecret)
	}
	return username, password, nil
}

// PodURL is the URL a pod in the cluster reaches the broker with: t.URL as it is, or the
// Service's cluster DNS name with the credentials of the Secret.
func PodURL(ctx context.Context, client kubernetes.Interface, t Target) (string, error) {
	if t.URL != "" {
		return t.URL, nil
	}
	address, err := portforward.ClusterAddress(ctx, client, t.Namespace, t.Service, t.Port)
	if err != nil {
		return "", err
	}
	username, password, err := Credentials(ctx, client, t.Namespace)
	if err != nil {
		return "", err
	}
	return queue.BuildURL(username, password, address), nil
}
