package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

// NewCmdBroker builds `kubectl workqueue broker`, which deploys and removes the RabbitMQ the
// other commands use.
func NewCmdBroker(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Install or uninstall the RabbitMQ broker",
		// With a Run, cobra checks the arguments: a mistyped subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdBrokerInstall(streams, getter), NewCmdBrokerUninstall(streams, getter))
	return cmd
}

// BrokerInstallOptions holds what `kubectl workqueue broker install` needs.
type BrokerInstallOptions struct {
	Name            string
	Service         string
	Image           string
	Replicas        int32
	ImagePullPolicy string
	StorageSize     string
	StorageClass    string
	Ephemeral       bool
	NetworkPolicy   bool
	Requests        string
	Limits          string
	Wait            bool
	Timeout         time.Duration
	FieldManager    string
	ForceConflicts  bool

	PrintFlags *genericclioptions.PrintFlags
	printer    printers.ResourcePrinter
	dryRun     workqueue.DryRun
	spec       rabbitmq.Spec
	getter     ClientGetter
	genericiooptions.IOStreams
}

// Defaults of the broker's container: enough for queues of a few million short items.
const (
	defaultBrokerRequests = "cpu=250m,memory=512Mi"
	defaultBrokerLimits   = "memory=1Gi"
)

// NewCmdBrokerInstall builds `kubectl workqueue broker install`.
func NewCmdBrokerInstall(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &BrokerInstallOptions{
		IOStreams:   streams,
		getter:      getter,
		Name:        rabbitmq.DefaultName,
		Service:     rabbitmq.DefaultService,
		Image:       rabbitmq.DefaultImage,
		StorageSize: rabbitmq.DefaultStorageSize.String(),
		Requests:    defaultBrokerRequests,
		Limits:      defaultBrokerLimits,
		Wait:        true,
		Timeout:     5 * time.Minute,
		PrintFlags:  genericclioptions.NewPrintFlags("applied").WithTypeSetter(scheme.Scheme),
	}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Deploy RabbitMQ in the namespace, with a generated password",
		Long: longDesc(`
			Deploy RabbitMQ as Kubernetes' work-queue example does (Service rabbitmq-service,
			StatefulSet rabbitmq), with what the example leaves out: a data volume, a readiness
			probe, resource limits RabbitMQ knows of, and a generated password in Secret
			` + rabbitmq.CredentialsSecret + ` instead of guest:guest. fill, run, status and
			delete find it without flags.

			Running it again updates the broker and keeps its credentials; a running broker
			without a volume is not restarted, since its queues would go.`),
		Example: examples(`
			# The broker for this namespace's queues, its data on a 1Gi volume
			kubectl workqueue broker install

			# Three nodes with replicated queues, which survive losing any one of them
			kubectl workqueue broker install --replicas 3

			# A throwaway broker whose data lives as long as its pod (no volume needed)
			kubectl workqueue broker install --ephemeral

			# See what would be created
			kubectl workqueue broker install --dry-run=client -o yaml`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", o.Name, "The StatefulSet's name; its pods are NAME-0, NAME-1...")
	f.Int32Var(&o.Replicas, "replicas", 1, "RabbitMQ nodes, an odd number: 3 survive losing any one (each needs a volume); running install again with more adds nodes")
	f.StringVar(&o.Service, "service", o.Service, "The Service's name, which the other commands reach with --service")
	f.StringVar(&o.Image, "image", o.Image, "The RabbitMQ image (3.9 or later)")
	f.StringVar(&o.ImagePullPolicy, "image-pull-policy", "", "Always, IfNotPresent or Never (default: the cluster's)")
	f.StringVar(&o.StorageSize, "storage-size", o.StorageSize, "The size of the data volume")
	f.StringVar(&o.StorageClass, "storage-class", "", "The data volume's StorageClass (default: the cluster's default class)")
	f.BoolVar(&o.Ephemeral, "ephemeral", false, "Keep the data in an emptyDir: queues are lost when the pod is")
	f.BoolVar(&o.NetworkPolicy, "network-policy", false, "Also create NetworkPolicy NAME-amqp, which admits AMQP from the pods of run's Jobs (for a namespace that denies ingress by default)")
	f.StringVar(&o.Requests, "requests", o.Requests, "Resource requests of the broker")
	f.StringVar(&o.Limits, "limits", o.Limits, "Resource limits of the broker; RabbitMQ is told 80% of the memory limit is its to use")
	f.BoolVar(&o.Wait, "wait", o.Wait, "Wait until the broker accepts the credentials")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the broker")
	cmdutil.AddDryRunFlag(cmd)
	cmdutil.AddFieldManagerFlagVar(cmd, &o.FieldManager, constants.FieldManager)
	f.BoolVar(&o.ForceConflicts, "force-conflicts", false, "Take over fields of the broker's objects that another field manager set, e.g. a kubectl edit (kubectl apply --server-side --force-conflicts)")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete turns the flags into a rabbitmq.Spec.
func (o *BrokerInstallOptions) Complete(cmd *cobra.Command) error {
	namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return err
	}
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	cmdutil.PrintFlagsWithDryRunStrategy(o.PrintFlags, dryRunMessage(o.dryRun))
	if o.printer, err = o.PrintFlags.ToPrinter(); err != nil {
		return err
	}
	if o.Ephemeral && cmd.Flags().Changed("storage-size") {
		return errors.New("--ephemeral keeps no volume: leave out --storage-size")
	}
	var size resource.Quantity
	if !o.Ephemeral {
		if size, err = resource.ParseQuantity(o.StorageSize); err != nil || size.Sign() <= 0 {
			return fmt.Errorf("--storage-size %q is not a size such as 1Gi (for no volume, pass --ephemeral)", o.StorageSize)
		}
	}
	requests, limits, err := parseRequestsAndLimits(o.Requests, o.Limits)
	if err != nil {
		return err
	}
	o.spec = rabbitmq.Spec{
		Namespace:       namespace,
		Name:            o.Name,
		Service:         o.Service,
		Image:           o.Image,
		Replicas:        o.Replicas,
		ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		StorageSize:     size,
		StorageClass:    o.StorageClass,
		Requests:        requests,
		Limits:          limits,
		NetworkPolicy:   o.NetworkPolicy,
		FieldManager:    o.FieldManager,
		ForceConflicts:  o.ForceConflicts,
	}.WithDefaults()
	return nil
}

// Validate checks everything that can be checked before touching the cluster.
func (o *BrokerInstallOptions) Validate() error {
	if err := validatePullPolicy(o.ImagePullPolicy); err != nil {
		return err
	}
	return o.spec.Validate()
}

// Run installs the broker and waits until it accepts the generated credentials.
func (o *BrokerInstallOptions) Run(ctx context.Context) error {
	objects, err := rabbitmq.Build(o.spec)
	if err != nil {
		return err
	}
	if o.dryRun == workqueue.DryRunClient {
		return o.clientDryRun(objects)
	}
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	if o.dryRun == workqueue.DryRunServer {
		return o.serverDryRun(ctx, client, objects)
	}

	result, err := rabbitmq.Install(ctx, client, o.spec)
	err = withConflictHint(err)
	var notOurs *rabbitmq.NotOursError
	if errors.As(err, &notOurs) {
		return fmt.Errorf("%w: fill and run use a broker deployed by hand as it is (pass them --service); to install another one here, pass --name and --service", err)
	}
	if err != nil {
		return err
	}
	if result.SecretCreated {
		fmt.Fprintf(o.Out, "secret/%s created (user %s, generated password)\n", o.spec.Secret, rabbitmq.DefaultUsername)
	} else {
		fmt.Fprintf(o.Out, "secret/%s exists: the broker uses its credentials\n", o.spec.Secret)
	}
	for _, applied := range appliedNames(o.spec) {
		fmt.Fprintf(o.Out, "%s applied\n", applied)
	}
	if !o.Wait {
		fmt.Fprintf(o.ErrOut, "follow it with: kubectl rollout status statefulset/%s -n %s\n", o.spec.Name, o.spec.Namespace)
		return nil
	}
	return o.waitUntilServing(ctx, client)
}

// waitUntilServing waits for the pod to be ready, then logs in through a port-forward with the
// Secret's credentials: ready is only a listening port, the login proves the broker serves.
func (o *BrokerInstallOptions) waitUntilServing(ctx context.Context, client kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if o.spec.Replicas == 1 {
		fmt.Fprintf(o.ErrOut, "waiting for pod %s-0 to be ready...\n", o.spec.Name)
	} else {
		fmt.Fprintf(o.ErrOut, "waiting for pods %s-0 to %s-%d to be ready...\n", o.spec.Name, o.spec.Name, o.spec.Replicas-1)
	}
	if err := rabbitmq.WaitReady(ctx, client, o.spec, func(problem string) { fmt.Fprintln(o.ErrOut, problem) }); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (--timeout %s)", err, o.Timeout)
		}
		return err
	}

	flags := brokerFlags{Service: o.spec.Service}
	b, err := flags.connect(ctx, o.getter, o.spec.Namespace, o.ErrOut)
	if err != nil {
		return fmt.Errorf("the broker is running but did not accept the credentials of Secret %s: %w", o.spec.Secret, err)
	}
	defer b.Close()
	if o.spec.Replicas > 1 {
		config, err := o.getter.ToRESTConfig()
		if err != nil {
			return err
		}
		nodes, err := b.WaitForCluster(ctx, client, config, o.spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "cluster of %d nodes: %s\n", len(nodes), nodeNames(nodes))
		o.growQueues(ctx, b, client, config, nodes)
	}
	version, _ := b.Conn.Properties["version"].(string)
	fmt.Fprintf(o.Out, "broker ready: RabbitMQ %s, %s; fill and run use it with the credentials in Secret %s\n", version, b.Via, o.spec.Secret)
	return nil
}

// BrokerUninstallOptions holds what `kubectl workqueue broker uninstall` needs.
type BrokerUninstallOptions struct {
	Name       string
	Service    string
	DeleteData bool

	dryRun rabbitmq.DryRun
	spec   rabbitmq.Spec
	getter ClientGetter
	genericiooptions.IOStreams
}

// NewCmdBrokerUninstall builds `kubectl workqueue broker uninstall`.
func NewCmdBrokerUninstall(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &BrokerUninstallOptions{IOStreams: streams, getter: getter, Name: rabbitmq.DefaultName, Service: rabbitmq.DefaultService}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the broker that broker install deployed",
		Long: longDesc(`
			Remove the broker that broker install deployed. Its data volume, and the Secret whose
			user it holds, go only with --delete-data: a later install finds both.`),
		Example: examples(`
			# Remove the broker, keeping its data volume for a later install
			kubectl workqueue broker uninstall

			# Remove the broker and every queue it held
			kubectl workqueue broker uninstall --delete-data`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd) }, func() error { return nil }, func() error { return o.Run(cmd.Context()) })
		},
	}
	cmd.Flags().StringVar(&o.Name, "name", o.Name, "The StatefulSet's name, as given to install")
	cmd.Flags().StringVar(&o.Service, "service", o.Service, "The Service's name, as given to install")
	cmd.Flags().BoolVar(&o.DeleteData, "delete-data", false, "Also delete the data volume's claim, and with it every queue")
	cmdutil.AddDryRunFlag(cmd)
	return cmd
}

// Complete reads the namespace.
func (o *BrokerUninstallOptions) Complete(cmd *cobra.Command) error {
	strategy, err := dryRunStrategy(cmd)
	if err != nil {
		return err
	}
	o.dryRun = map[workqueue.DryRun]rabbitmq.DryRun{workqueue.DryRunClient: rabbitmq.DryRunClient, workqueue.DryRunServer: rabbitmq.DryRunServer}[strategy]
	namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
	o.spec = rabbitmq.Spec{Namespace: namespace, Name: o.Name, Service: o.Service}.WithDefaults()
	return err
}

// Run deletes what install made and says what it kept.
func (o *BrokerUninstallOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	result, err := rabbitmq.Uninstall(ctx, client, o.spec, rabbitmq.UninstallOptions{DeleteData: o.DeleteData, DryRun: o.dryRun})
	suffix := map[rabbitmq.DryRun]string{rabbitmq.DryRunClient: " (dry run)", rabbitmq.DryRunServer: " (server dry run)"}[o.dryRun]
	for _, name := range result.Deleted {
		fmt.Fprintf(o.Out, "%s deleted%s\n", name, suffix)
	}
	for _, kept := range result.Kept {
		fmt.Fprintf(o.ErrOut, "kept %s\n", kept)
	}
	if err != nil {
		return err
	}
	if len(result.Deleted) == 0 {
		return fmt.Errorf("no broker installed by kubectl workqueue in namespace %s (StatefulSet %s, Service %s)", o.spec.Namespace, o.Name, o.Service)
	}
	return nil
}
