// Package plugin holds the cobra commands of `kubectl workqueue`. The commands are thin: they
// parse flags into Options (Complete, Validate, Run), hand plain inputs to the packages that do
// the work (pkg/workqueue, pkg/rabbitmq, pkg/queue, pkg/items, pkg/tail, pkg/doctor; see
// docs/architecture.md) and print what comes back.
package plugin

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	// Every auth plugin kubectl itself supports (exec, OIDC, ...).
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

// ClientGetter is what commands need from the cluster; tests give them a fake one.
type ClientGetter interface {
	genericclioptions.RESTClientGetter
	KubernetesClientSet() (kubernetes.Interface, error)
}

type configFlagsGetter struct {
	*genericclioptions.ConfigFlags
}

func (g configFlagsGetter) KubernetesClientSet() (kubernetes.Interface, error) {
	config, err := g.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(config)
}

// NewRootCommand builds `kubectl workqueue` with every standard kubeconfig flag.
func NewRootCommand(streams genericiooptions.IOStreams, version string) *cobra.Command {
	configFlags := genericclioptions.NewConfigFlags(true)
	userAgent := fmt.Sprintf("kubectl-workqueue/%s (%s/%s)", version, runtime.GOOS, runtime.GOARCH)
	// The API server's warnings (a Pod Security level the Job's pods would violate, a deprecated
	// field) as kubectl prints them: "Warning: ..." on stderr, each once, whichever client saw it.
	warnings := rest.NewWarningWriter(streams.ErrOut, rest.WarningWriterOptions{Deduplicate: true})
	configFlags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		c.UserAgent = userAgent
		c.WarningHandler = warnings
		return c
	}
	return newRootCommand(streams, version, configFlagsGetter{configFlags}, configFlags)
}

func newRootCommand(streams genericiooptions.IOStreams, version string, getter ClientGetter, configFlags *genericclioptions.ConfigFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-workqueue",
		Short: "Fill a work queue and run a Job that processes it",
		Long: `kubectl workqueue runs Kubernetes' "coarse parallel processing using a work queue" pattern:

  kubectl workqueue fill job1 --from-file items.txt    # queue one message per item (RabbitMQ, via port-forward)
  kubectl workqueue run job1 --image IMAGE -- CMD ...   # a Job whose pods process the items, tailed to the end`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl workqueue"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Help and completions (`__complete`, which kubectl_complete-workqueue calls) go to streams.
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	if configFlags != nil {
		configFlags.AddFlags(root.PersistentFlags())
	}
	addVerbosityFlag(root.PersistentFlags(), streams.ErrOut)
	root.AddCommand(
		newVersionCommand(streams, version),
		NewCmdFill(streams, getter),
		NewCmdRun(streams, getter, version),
		NewCmdStatus(streams, getter),
		NewCmdDelete(streams, getter),
		NewCmdLogs(streams, getter),
		NewCmdRetry(streams, getter),
		NewCmdPurge(streams, getter),
		NewCmdResults(streams, getter),
		NewCmdDoctor(streams, getter, version),
		NewCmdList(streams, getter),
		NewCmdBroker(streams, getter),
		newCompletionShimCommand(streams),
	)
	registerCompletions(root, getter, configFlags != nil)
	return root
}

func newVersionCommand(streams genericiooptions.IOStreams, version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(streams.Out, "kubectl-workqueue %s %s/%s\n", version, runtime.GOOS, runtime.GOARCH)
		},
	}
}
