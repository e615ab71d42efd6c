package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
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
	cmd.Flags().StringVar(&f.Service, "service", rabbitmq.DefaultService, "The broker's Service in the namespace, reached through a port-forward")
	cmd.Flags().StringVar(&f.Port, "port", "", `The Service port to forward: a number or a name (default: the port named "amqp", else 5672)`)
	cmd.Flags().DurationVar(&f.Timeout, "broker-timeout", 0, fmt.Sprintf("How long to keep trying to reach the broker (default %s with a broker URL; %s through the Service, whose broker may still be starting)", rabbitmq.DirectTimeout, rabbitmq.ForwardTimeout))
	previous := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if previous != nil {
			if err := previous(cmd, args); err != nil {
				return err
			}
		}
		return badInput(f.completeURL())
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

// target says where the broker is, for pkg/rabbitmq.
func (f *brokerFlags) target(namespace string) rabbitmq.Target {
	return rabbitmq.Target{URL: f.URL, Namespace: namespace, Service: f.Service, Port: f.Port, Timeout: f.Timeout}
}

// connect reaches the broker; progress hears about retries (io.Discard for none).
func (f *brokerFlags) connect(ctx context.Context, getter ClientGetter, namespace string, progress io.Writer) (*rabbitmq.Broker, error) {
	config, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	client, err := getter.KubernetesClientSet()
	if err != nil {
		return nil, err
	}
	b, err := rabbitmq.Connect(ctx, client, config, f.target(namespace), progress)
	var timeout *queue.TimeoutError
	if errors.As(err, &timeout) {
		err = fmt.Errorf("%w; --broker-timeout waits longer", err)
	}
	if err != nil {
		return nil, withExitCode(ExitUnreachable, err)
	}
	return b, nil
}
