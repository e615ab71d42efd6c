package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
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

// How long to keep trying to reach the broker unless --broker-timeout says otherwise: a broker
// named by URL is expected to be up, whereas the one behind the Service may be a pod that
// RabbitMQ takes half a minute to start under a small CPU limit.
const (
	directTimeout  = 15 * time.Second
	forwardTimeout = 90 * time.Second
)

// BrokerURLEnv names the environment variable that gives the broker's URL, so that its password
// stays out of shell history and process listings.
const BrokerURLEnv = "WORKQUEUE_BROKER_URL"

// brokerFlags say how to reach the broker; every command that talks to it shares them.
type brokerFlags struct {
	URL     string
	URLFile string
	Service string
	Port    string
	// Timeout bounds how long to keep trying to connect; 0 means the default of the way used.
	Timeout time.Duration
	// getenv reads the environment; os.Getenv unless a test sets it.
	getenv func(string) string
}

func (f *brokerFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.URL, "broker-url", "", "Connect to this AMQP URL directly instead of port-forwarding to --service (CI, in-cluster use, an external broker); "+BrokerURLEnv+" or --broker-url-file keep its password off the command line")
	cmd.Flags().StringVar(&f.URLFile, "broker-url-file", "", "Read the AMQP URL that --broker-url would give from this file")
	cmd.Flags().StringVar(&f.Service, "service", DefaultService, "The broker's Service in the namespace, reached through a port-forward")
	cmd.Flags().StringVar(&f.Port, "port", "", `The Service port to forward: a number or a name (default: the port named "amqp", else 5672)`)
	cmd.Flags().DurationVar(&f.Timeout, "broker-timeout", 0, fmt.Sprintf("How long to keep trying to reach the broker (default %s with a broker URL; %s through the Service, whose broker may still be starting)", directTimeout, forwardTimeout))
	previous := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if previous != nil {
			if err := previous(cmd, args); err != nil {
				return err
			}
		}
		return f.completeURL()
	}
}

// completeURL settles the broker URL: --broker-url, else the file of --broker-url-file, else
// WORKQUEUE_BROKER_URL; none of them means a port-forward to --service.
func (f *brokerFlags) completeURL() error {
	if f.URL != "" && f.URLFile != "" {
		return errors.New("--broker-url and --broker-url-file both give the broker's URL: pass one")
	}
	if f.URLFile != "" {
		data, err := os.ReadFile(f.URLFile)
		if err != nil {
			return fmt.Errorf("cannot read --broker-url-file: %w", err)
		}
		if f.URL = strings.TrimSpace(string(data)); f.URL == "" {
			return fmt.Errorf("--broker-url-file %s is empty: it should hold one URL such as amqp://USER:PASSWORD@HOST:5672", f.URLFile)
		}
		return nil
	}
	if f.URL == "" {
		getenv := f.getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		f.URL = strings.TrimSpace(getenv(BrokerURLEnv))
	}
	return nil
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
	retry.Attempts = math.MaxInt // the time bounds it
	retry.Within = f.Timeout
	if retry.Within <= 0 {
		retry.Within = forwardTimeout
		if f.URL != "" {
			retry.Within = directTimeout
		}
	}
	told := false
	retry.OnRetry = func(err error, _ time.Duration) {
		if !told { // once: a starting broker fails the same way for a while
			fmt.Fprintf(progress, "waiting up to %s for the broker to accept connections (%v)...\n", retry.Within, err)
			told = true
		}
	}
	withHint := func(err error) error {
		var timeout *queue.TimeoutError
		if errors.As(err, &timeout) {
			return fmt.Errorf("%w; --broker-timeout waits longer", err)
		}
		return err
	}
	if f.URL != "" {
		var conn *amqp.Connection
		err := retry.Do(ctx, func(context.Context) error {
			var err error
			conn, err = queue.Dial(f.URL)
			return err
		})
		if err != nil {
			return nil, withHint(err)
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
		return nil, withHint(err)
	}
	return b, nil
}
