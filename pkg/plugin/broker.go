package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/portforward"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

const (
	// DefaultService is the broker Service of the seed's manifests.
	DefaultService = rabbitmq.DefaultService
	// CredentialsSecret holds the broker's username and password (keys "username" and "password")
	// in the Job's namespace, made by `broker install` or whoever deploys the broker. Without it
	// the seed's guest:guest is used.
	CredentialsSecret = rabbitmq.CredentialsSecret
)

// brokerFlags say how to reach the broker; every command that talks to it shares them.
type brokerFlags struct {
	URL     string
	Service string
	Port    string
}

func (f *brokerFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.URL, "broker-url", "", "Connect to this AMQP URL directly instead of port-forwarding to --service (CI, in-cluster use, an external broker)")
	cmd.Flags().StringVar(&f.Service, "service", DefaultService, "The broker's Service in the namespace, reached through a port-forward")
	cmd.Flags().StringVar(&f.Port, "port", "", `The Service port to forward: a number or a name (default: the port named "amqp", else 5672)`)
}

// broker is a live AMQP connection, through a port-forward when no URL was given.
type broker struct {
	Conn    *amqp.Connection
	session *portforward.Session
	// Via says how the broker was reached, for messages: "rabbitmq-service (pod rabbitmq-0)".
	Via string
}

func (b *broker) Close() {
	if b.Conn != nil {
		b.Conn.Close()
	}
	if b.session != nil {
		b.session.Close()
	}
}

// credentials reads the broker credentials Secret, falling back to the seed's guest account.
func credentials(ctx context.Context, getter ClientGetter, namespace string) (username, password string, err error) {
	client, err := getter.KubernetesClientSet()
	if err != nil {
		return "", "", err
	}
	secret, err := client.CoreV1().Secrets(namespace).Get(ctx, CredentialsSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "guest", "guest", nil
	case err != nil:
		return "", "", fmt.Errorf("read the broker credentials from Secret %s/%s: %w", namespace, CredentialsSecret, err)
	}
	username, password = string(secret.Data[rabbitmq.UsernameKey]), string(secret.Data[rabbitmq.PasswordKey])
	if username == "" || password == "" {
		return "", "", fmt.Errorf("Secret %s/%s must have the keys username and password", namespace, CredentialsSecret)
	}
	return username, password, nil
}

// connectBroker reaches the broker: directly with --broker-url, else through a fresh port-forward
// per attempt, since one failed connection ends a client-go port-forward for good.
// Each retry is reported on progress (io.Discard for none).
func (f *brokerFlags) connect(ctx context.Context, getter ClientGetter, namespace string, progress io.Writer) (*broker, error) {
	retry := queue.DefaultRetry
	told := false
	retry.OnRetry = func(err error, _ time.Duration) {
		if !told { // once: a starting broker fails the same way for a while
			fmt.Fprintf(progress, "waiting for the broker to accept connections (%v)...\n", err)
			told = true
		}
	}
	if f.URL != "" {
		var conn *amqp.Connection
		err := retry.Do(ctx, func(context.Context) error {
			var err error
			conn, err = queue.Dial(f.URL)
			return err
		})
		if err != nil {
			return nil, err
		}
		return &broker{Conn: conn, Via: queue.Redact(f.URL)}, nil
	}

	config, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	client, err := getter.KubernetesClientSet()
	if err != nil {
		return nil, err
	}
	username, password, err := credentials(ctx, getter, namespace)
	if err != nil {
		return nil, err
	}
	b := &broker{}
	err = retry.Do(ctx, func(ctx context.Context) error {
		target, err := portforward.ResolveService(ctx, client, namespace, f.Service, f.Port)
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
			return err
		}
		b.Conn, b.session = conn, session
		b.Via = fmt.Sprintf("service %s (pod %s)", f.Service, target.Pod)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}
