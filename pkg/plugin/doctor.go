package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/doctor"
)

// DoctorOptions holds what `kubectl workqueue doctor` needs.
type DoctorOptions struct {
	AgentImage      string
	ImagePullPolicy string
	NoProbe         bool

	broker    brokerFlags
	namespace string
	getter    ClientGetter
	genericiooptions.IOStreams
}

// NewCmdDoctor builds `kubectl workqueue doctor`.
func NewCmdDoctor(streams genericiooptions.IOStreams, getter ClientGetter, version string) *cobra.Command {
	o := &DoctorOptions{IOStreams: streams, getter: getter, AgentImage: DefaultAgentImage(version)}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check each link to the broker and name the broken one",
		Long: longDesc(`
			Check, one link at a time, what Kubernetes' work-queue example tests by hand from a
			temporary pod: the broker's Service selects a ready pod; a port-forward to it works;
			the credentials log in; a pod of the namespace (labelled like run's pods, so the same
			NetworkPolicies apply) resolves the broker's name and reaches it; and you have every
			RBAC permission the commands use. Each broken link is named with its fix, and the
			exit code is not 0.`),
		Example: examples(`
			kubectl workqueue doctor -n batch-jobs

			# A broker outside the cluster
			kubectl workqueue doctor --broker-url-file ./broker-url`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(o.Complete, func() error { return validatePullPolicy(o.ImagePullPolicy) }, func() error { return o.Run(cmd.Context()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.AgentImage, "agent-image", o.AgentImage, "The image the in-cluster probe runs, as run's pods do")
	f.StringVar(&o.ImagePullPolicy, "image-pull-policy", "", "Of the probe's image: Always, IfNotPresent or Never (default: the cluster's)")
	f.BoolVar(&o.NoProbe, "no-probe", false, "Skip the in-cluster probe, which runs a short Job in the namespace")
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the namespace.
func (o *DoctorOptions) Complete() error {
	namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
	o.namespace = namespace
	return err
}

// Run prints every check and fails when one did.
func (o *DoctorOptions) Run(ctx context.Context) error {
	config, err := o.getter.ToRESTConfig()
	if err != nil {
		return err
	}
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	req := doctor.Request{Namespace: o.namespace, Service: o.broker.Service, Port: o.broker.Port, URL: o.broker.URL,
		AgentImage: o.AgentImage, ImagePullPolicy: o.ImagePullPolicy}
	if o.NoProbe {
		req.AgentImage = ""
	}
	brokerBroken, failed := false, 0
	for _, c := range doctor.Run(ctx, client, config, req) {
		state := "ok  "
		switch {
		case c.Skipped:
			state = "skip"
		case !c.OK:
			state = "FAIL"
			failed++
			brokerBroken = brokerBroken || c.Broker
		}
		detail := c.Detail
		if c.Skipped && detail == "" {
			detail = "needs the links above"
		}
		fmt.Fprintf(o.Out, "[%s] %-12s %s\n", state, c.Name, detail)
		if !c.OK && !c.Skipped && c.Fix != "" {
			fmt.Fprintf(o.Out, "       %-12s fix: %s\n", "", c.Fix)
		}
	}
	if failed == 0 {
		return nil
	}
	err = fmt.Errorf("%d %s failed", failed, plural(failed, "check"))
	if brokerBroken {
		return withExitCode(ExitUnreachable, err)
	}
	return err
}
