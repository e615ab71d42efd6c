package plugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// fakeGetter is a cluster for commands under test: a fake clientset and a namespace.
type fakeGetter struct {
	client    *fake.Clientset
	namespace string
}

func newFakeGetter(objects ...runtime.Object) *fakeGetter {
	return &fakeGetter{client: fake.NewClientset(objects...), namespace: "test-ns"}
}

func (g *fakeGetter) ToRESTConfig() (*rest.Config, error) {
	return &rest.Config{Host: "https://fake"}, nil
}
func (g *fakeGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return nil, fmt.Errorf("no discovery in tests")
}
func (g *fakeGetter) ToRESTMapper() (meta.RESTMapper, error) {
	return nil, fmt.Errorf("no mapper in tests")
}
func (g *fakeGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(clientcmdapi.Config{}, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}})
}
func (g *fakeGetter) KubernetesClientSet() (kubernetes.Interface, error) { return g.client, nil }

// runCommand runs `kubectl workqueue ARGS` in-process and returns stdout, stderr and the error.
func runCommand(t *testing.T, getter ClientGetter, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	root := newRootCommand(streams, "test", getter, nil)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func brokerURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("WORKQUEUE_TEST_AMQP_URL")
	if url == "" {
		t.Skip("WORKQUEUE_TEST_AMQP_URL is not set: run `make test`, which starts a local RabbitMQ")
	}
	return url
}

// testQueue names a fresh queue and deletes it and its dead-letter queue after the test.
func testQueue(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("plugin-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	url := brokerURL(t)
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer conn.Close()
		ch, _ := conn.Channel()
		ch.QueueDelete(name, false, false, false)
		ch.QueueDelete(queue.DeadLetterName(name), false, false, false)
	})
	return name
}

// drain takes every message of a queue, in order.
func drain(t *testing.T, name string) []amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(brokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var got []amqp.Delivery
	for {
		msg, ok, err := ch.Get(name, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		got = append(got, msg)
	}
}

// rejection is bad input and what its error must say.
type rejection struct {
	args []string
	want string
}

// expectRejections runs each command line and wants a one-line error containing want, with no
// call to the cluster: bad input must be refused before anything is touched.
func expectRejections(t *testing.T, cases []rejection) {
	t.Helper()
	for _, tc := range cases {
		getter := newFakeGetter()
		_, _, err := runCommand(t, getter, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one line containing %q, got %v", tc.args, tc.want, err)
		}
		if n := len(getter.client.Actions()); n != 0 {
			t.Errorf("%v: bad input reached the cluster (%d calls)", tc.args, n)
		}
	}
}
