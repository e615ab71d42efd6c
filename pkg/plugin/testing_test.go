package plugin

import (
	"bytes"
	"context"
	"fmt"
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

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
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

func brokerURL(t *testing.T) string { return testbroker.URL(t) }

// testQueue names a fresh queue; it and its companions are deleted after the test.
func testQueue(t *testing.T) string { return testbroker.QueueName(t, "plugin") }

// drain takes every message of a queue, in order.
func drain(t *testing.T, name string) []amqp.Delivery { return testbroker.Drain(t, name) }

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
		if code := ExitCode(err, false); err != nil && code != ExitBadInput {
			t.Errorf("%v: exit code %d, want %d (bad input)", tc.args, code, ExitBadInput)
		}
		if n := len(getter.client.Actions()); n != 0 {
			t.Errorf("%v: bad input reached the cluster (%d calls)", tc.args, n)
		}
	}
}
