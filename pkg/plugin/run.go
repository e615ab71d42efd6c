package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/portforward"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// AgentImageRepository is where releases publish the agent image, tagged with the plugin's version.
const AgentImageRepository = "ghcr.io/kubectl-workqueue/workqueue-agent"

// DefaultAgentImage is the agent of the plugin's own release, or the newest released one for a
// plugin built from a checkout or a commit, whose version no image carries.
func DefaultAgentImage(pluginVersion string) string {
	release := strings.HasPrefix(pluginVersion, "v") && !strings.ContainsAny(pluginVersion, "-+")
	if !release {
		return AgentImageRepository + ":latest"
	}
	return AgentImageRepository + ":" + pluginVersion
}

var runExample = examples(`
	# The seed's pattern: an image whose entrypoint consumes one item (BROKER_URL and QUEUE are set)
	kubectl workqueue run job1 --image registry.example/job-wq-1:v1

	# Any image and a command: each item arrives on the command's stdin; exit 0 acks it
	kubectl workqueue run job1 --image python:3.12-slim -- python3 -c 'import sys; print(sys.stdin.read())'

	# Three pods that drain the queue until it stays empty
	kubectl workqueue run job1 --mode drain --parallelism 3 --image IMAGE -- ./process.sh

	# Look at the Job without creating it
	kubectl workqueue run job1 --image IMAGE --dry-run=client -o yaml -- ./process.sh`)

// RunOptions holds what `kubectl workqueue run` needs.
type RunOptions struct {
	Queue           string
	Command         []string
	Name            string
	Image           string
	Mode            string
	Parallelism     int32
	Completions     int32
	AllowEmpty      bool
	MaxAttempts     int32
	Env             []string
	Requests        string
	Limits          string
	ServiceAccount  string
	RunAsUser       int64
	ImagePullPolicy string
	Timeout         time.Duration
	ItemTimeout     time.Duration
	AgentImage      string
	Replace         bool
	Detach          bool
	Logs            bool
	DryRun          string

	PrintFlags *genericclioptions.PrintFlags
	printer    printers.ResourcePrinter
	broker     brokerFlags
	namespace  string
	spec       job.Spec
	getter     ClientGetter
	stderrTTY  func() bool
	genericiooptions.IOStreams
}

// NewCmdRun builds `kubectl workqueue run`.
func NewCmdRun(streams genericiooptions.IOStreams, getter ClientGetter, version string) *cobra.Command {
	o := &RunOptions{
		IOStreams:   streams,
		getter:      getter,
		Mode:        string(constants.ModeOne),
		Parallelism: job.DefaultParallelism,
		Completions: -1,
		MaxAttempts: job.DefaultMaxAttempts,
		AgentImage:  DefaultAgentImage(version),
		DryRun:      "none",
		PrintFlags:  genericclioptions.NewPrintFlags("created").WithTypeSetter(scheme.Scheme),
		stderrTTY:   func() bool { return isTerminal(streams.ErrOut) },
	}
	cmd := &cobra.Command{
		Use:     "run QUEUE --image IMAGE [flags] [-- COMMAND [ARGS...]]",
		Short:   "Run a Job that processes the queue's items, and follow it to the end",
		Long:    "Create a batch/v1 Job whose pods take items from the queue, then follow its pods until the work is done. With a COMMAND after --, a small agent is put into the pod: it gives each item to the command on stdin and acks it only when the command exits 0; a failing item is retried and finally moved to QUEUE.failed. Without a COMMAND, the image's own entrypoint runs with BROKER_URL and QUEUE set, as in Kubernetes' work-queue example. The exit code is 0 only when every item was processed.",
		Example: runExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", "", "The image that processes the items (required)")
	f.StringVar(&o.Name, "name", "", "The Job's name (default: the queue's name)")
	f.StringVar(&o.Mode, "mode", o.Mode, "one: one item per pod, completions = the items in the queue; drain: each pod takes items until the queue stays empty")
	f.Int32Var(&o.Parallelism, "parallelism", o.Parallelism, "Pods running at once")
	f.Int32Var(&o.Completions, "completions", o.Completions, "Pods that must succeed in mode one (default: the queue's ready items when the Job is created)")
	f.BoolVar(&o.AllowEmpty, "allow-empty", false, "Run even when the queue is empty")
	f.Int32Var(&o.MaxAttempts, "max-attempts", o.MaxAttempts, "Attempts per item the queue allows (as given to fill); sizes the Job's backoffLimit")
	f.StringArrayVar(&o.Env, "env", nil, "An environment variable for the command, NAME=VALUE (repeatable)")
	f.StringVar(&o.Requests, "requests", "", "Resource requests of the worker, e.g. cpu=100m,memory=256Mi")
	f.StringVar(&o.Limits, "limits", "", "Resource limits of the worker, e.g. cpu=1,memory=1Gi")
	f.StringVar(&o.ServiceAccount, "service-account", "", "The pods' service account")
	f.Int64Var(&o.RunAsUser, "run-as-user", 0, "Run the worker as this non-root uid (for an image whose user is root, where the namespace enforces the restricted Pod Security Standard)")
	f.StringVar(&o.ImagePullPolicy, "image-pull-policy", "", "Always, IfNotPresent or Never (default: the cluster's)")
	f.DurationVar(&o.Timeout, "timeout", 0, "Fail the Job when it runs longer than this (activeDeadlineSeconds), e.g. 2h")
	f.DurationVar(&o.ItemTimeout, "item-timeout", 0, "Stop the command and retry the item when one item takes longer than this (needs a COMMAND)")
	f.StringVar(&o.AgentImage, "agent-image", o.AgentImage, "The image that holds the agent, copied into the pod by an init container (with a COMMAND)")
	f.BoolVar(&o.Replace, "replace", false, "Replace a finished Job of the same name")
	f.BoolVarP(&o.Detach, "detach", "d", false, "Return once the Job is created, without following it")
	f.BoolVar(&o.Logs, "logs", false, "Stream the pods' logs, each line prefixed with its pod's name")
	f.StringVar(&o.DryRun, "dry-run", o.DryRun, `"client" prints the Job without sending it; "server" has the API server check it without persisting it`)
	o.PrintFlags.AddFlags(cmd)
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the arguments: the queue before --, the command after it.
func (o *RunOptions) Complete(cmd *cobra.Command, args []string) error {
	dash := cmd.ArgsLenAtDash()
	before := args
	if dash >= 0 {
		before, o.Command = args[:dash], args[dash:]
		if len(o.Command) == 0 {
			return errors.New("nothing after --: give the command that processes an item, or leave out the --")
		}
	}
	if err := exactArgs("QUEUE")(cmd, before); err != nil {
		return err
	}
	o.Queue = before[0]
	namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return err
	}
	o.namespace = namespace

	if o.DryRun != "none" && !cmd.Flags().Changed("output") {
		o.PrintFlags.Complete("%s (dry run)")
	}
	if o.DryRun == "server" {
		o.PrintFlags.Complete("%s (server dry run)")
	}
	o.printer, err = o.PrintFlags.ToPrinter()
	if err != nil {
		return err
	}

	env, err := parseEnv(o.Env)
	if err != nil {
		return err
	}
	requests, limits, err := parseRequestsAndLimits(o.Requests, o.Limits)
	if err != nil {
		return err
	}
	var runAsUser *int64
	if cmd.Flags().Changed("run-as-user") {
		runAsUser = &o.RunAsUser
	}
	o.spec = job.Spec{
		Name:            o.Name,
		Namespace:       o.namespace,
		Queue:           o.Queue,
		Image:           o.Image,
		Command:         o.Command,
		Mode:            constants.Mode(o.Mode),
		Parallelism:     o.Parallelism,
		MaxAttempts:     o.MaxAttempts,
		ItemTimeout:     o.ItemTimeout,
		ActiveDeadline:  o.Timeout,
		Env:             env,
		Requests:        requests,
		Limits:          limits,
		ServiceAccount:  o.ServiceAccount,
		ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		RunAsUser:       runAsUser,
		BrokerSecret:    corev1.SecretKeySelector{Key: brokerSecretKey},
	}
	if o.spec.Name == "" {
		o.spec.Name = o.Queue
	}
	o.spec.BrokerSecret.Name = brokerSecretName(o.spec.Name)
	if len(o.Command) > 0 {
		o.spec.AgentImage = o.AgentImage
	}
	return nil
}

// Validate checks everything that can be checked before touching the cluster or the broker.
func (o *RunOptions) Validate() error {
	if err := queue.ValidateName(o.Queue); err != nil {
		return err
	}
	switch o.DryRun {
	case "none", "client", "server":
	default:
		return fmt.Errorf(`--dry-run must be "none", "client" or "server", not %q`, o.DryRun)
	}
	if o.Parallelism < 1 {
		return errors.New("--parallelism must be at least 1")
	}
	if o.Completions < -1 {
		return errors.New("--completions must not be negative")
	}
	if o.Completions >= 0 && o.Mode == string(constants.ModeDrain) {
		return errors.New("--completions has no meaning with --mode drain: drain pods finish when the queue stays empty")
	}
	if err := validatePullPolicy(o.ImagePullPolicy); err != nil {
		return err
	}
	// The Job's own checks, with a stand-in count until the queue is read.
	probe := o.spec
	if probe.Mode == constants.ModeOne {
		probe.Completions = ptr(int32(1))
	}
	return oneLine(probe.Validate())
}

// oneLine joins a Spec's problems: the command line gets one line.
func oneLine(err error) error {
	var invalid *job.InvalidSpecError
	if errors.As(err, &invalid) {
		return errors.New(strings.Join(invalid.Problems, "; "))
	}
	return err
}

const brokerSecretKey = "url"

// brokerSecretName is the Secret that gives a Job's pods BROKER_URL; the Job owns it. Its
// suffix keeps it apart from the broker's own credentials Secret, whatever the Job is called.
func brokerSecretName(jobName string) string { return jobName + "-broker-url" }

// isJobSecret tells the Secret that run made for a Job from anything else of that name.
func isJobSecret(secret *corev1.Secret, jobName string) bool {
	return secret.Labels[constants.LabelManagedBy] == constants.ManagedBy && secret.Labels[constants.LabelJob] == jobName
}

// queueState is what the broker says of the queue when the Job starts.
type queueState struct {
	ready        int
	failedBefore int // -1 when there is no dead-letter queue
}

// Run creates the Job and follows it.
func (o *RunOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	jobs := client.BatchV1().Jobs(o.namespace)
	existing, err := jobs.Get(ctx, o.spec.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return fmt.Errorf("look for an existing Job %s: %w", o.spec.Name, err)
	case !jobFinished(existing):
		return fmt.Errorf("Job %s is still running: follow it with `%s`, or delete it with `%s`", o.spec.Name, queueCommand("status", o.Queue, o.spec.Name, "--watch"), queueCommand("delete", o.Queue, o.spec.Name, "--keep-queue"))
	case !o.Replace:
		return fmt.Errorf("Job %s already exists and has finished: pass --replace to run it again", o.spec.Name)
	}

	if o.spec.RunAsUser == nil && o.DryRun != "client" && enforcesRestricted(ctx, client, o.namespace) {
		// Admission would refuse every pod that may run as root; asking for non-root instead
		// admits them, and an image whose user is root is then named by the kubelet.
		o.spec.RunAsNonRoot = true
		fmt.Fprintf(o.ErrOut, "namespace %s enforces the restricted Pod Security Standard: the worker runs as non-root (an image whose user is root needs --run-as-user UID)\n", o.namespace)
	}

	state := queueState{ready: -1, failedBefore: -1}
	needBroker := o.DryRun != "client" || (o.spec.Mode == constants.ModeOne && o.Completions < 0)
	if needBroker {
		if state, err = o.readQueue(ctx); err != nil {
			return err
		}
		if state.failedBefore >= 0 {
			o.spec.DeadLettersBefore = &state.failedBefore
		}
	}
	if o.spec.Mode == constants.ModeOne {
		completions := o.Completions
		if completions < 0 {
			completions = int32(state.ready)
		}
		if completions == 0 && !o.AllowEmpty {
			return fmt.Errorf("queue %s has no ready items: fill it first with `kubectl workqueue fill %s`, or pass --allow-empty", o.Queue, o.Queue)
		}
		o.spec.Completions = &completions
	}
	applyConfig, err := job.Build(o.spec)
	if err != nil {
		return oneLine(err)
	}

	if o.DryRun == "client" {
		return o.printer.PrintObj(typed(applyConfig, &batchv1.Job{}, batchv1.SchemeGroupVersion.WithKind("Job")), o.Out)
	}
	if o.DryRun == "server" {
		created, err := jobs.Apply(ctx, applyConfig, metav1.ApplyOptions{FieldManager: constants.FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return fmt.Errorf("the API server rejected the Job: %w", err)
		}
		return o.printer.PrintObj(created, o.Out)
	}

	if existing != nil {
		if _, err := deleteJobAndWait(ctx, client, o.namespace, existing.Name); err != nil {
			return fmt.Errorf("replace the finished Job: %w", err)
		}
	}
	created, err := o.apply(ctx, client, applyConfig)
	if err != nil {
		return err
	}
	if o.PrintFlags.OutputFlagSpecified() {
		if err := o.printer.PrintObj(created, o.Out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(o.Out, "job.batch/%s created: %s\n", created.Name, describeJob(o.spec, state))
	}
	if o.Detach {
		fmt.Fprintf(o.ErrOut, "follow it with: %s\n", queueCommand("status", o.Queue, o.spec.Name, "--watch"))
		return nil
	}
	return o.watcher().follow(ctx, client, state)
}

func (o *RunOptions) watcher() *jobWatcher {
	return &jobWatcher{
		job: o.spec.Name, queue: o.Queue, namespace: o.namespace, logs: o.Logs,
		broker: o.broker, getter: o.getter, tty: o.stderrTTY(), IOStreams: o.IOStreams,
	}
}

func describeJob(s job.Spec, state queueState) string {
	if s.Mode == constants.ModeDrain {
		return fmt.Sprintf("%d pods draining queue %s (%d items ready)", s.Parallelism, s.Queue, state.ready)
	}
	return fmt.Sprintf("%d completions from queue %s, %d %s at a time", *s.Completions, s.Queue, s.Parallelism, plural(int(s.Parallelism), "pod"))
}

func (o *RunOptions) readQueue(ctx context.Context) (queueState, error) {
	b, err := o.broker.connect(ctx, o.getter, o.namespace, o.ErrOut)
	if err != nil {
		return queueState{}, err
	}
	defer b.Close()
	return inspectQueue(b, o.Queue)
}

func inspectQueue(b *broker, name string) (queueState, error) {
	ready, err := queue.Depth(b.Conn, name)
	if errors.Is(err, queue.ErrNoQueue) {
		return queueState{}, fmt.Errorf("queue %s does not exist on the broker (%s): fill it first with `kubectl workqueue fill %s`", name, b.Via, name)
	}
	if err != nil {
		return queueState{}, err
	}
	failed, err := queue.Depth(b.Conn, queue.DeadLetterName(name))
	if err != nil && !errors.Is(err, queue.ErrNoQueue) {
		return queueState{}, err
	}
	return queueState{ready: ready, failedBefore: failed}, nil
}

// apply creates the broker Secret and the Job; if the Job cannot be created, the Secret goes too.
func (o *RunOptions) apply(ctx context.Context, client kubernetes.Interface, applyConfig *batchv1ac.JobApplyConfiguration) (*batchv1.Job, error) {
	podURL, err := o.podBrokerURL(ctx, client)
	if err != nil {
		return nil, err
	}
	secrets := client.CoreV1().Secrets(o.namespace)
	existing, err := secrets.Get(ctx, o.spec.BrokerSecret.Name, metav1.GetOptions{})
	if err == nil && !isJobSecret(existing, o.spec.Name) {
		return nil, fmt.Errorf("Secret %s already exists and was not made by kubectl workqueue for Job %s: pass --name to give the Job another name", o.spec.BrokerSecret.Name, o.spec.Name)
	}
	secret := corev1ac.Secret(o.spec.BrokerSecret.Name, o.namespace).
		WithLabels(map[string]string{constants.LabelManagedBy: "kubectl-workqueue", constants.LabelJob: o.spec.Name}).
		WithStringData(map[string]string{brokerSecretKey: podURL})
	applyOptions := metav1.ApplyOptions{FieldManager: constants.FieldManager, Force: true}
	if _, err := secrets.Apply(ctx, secret, applyOptions); err != nil {
		return nil, fmt.Errorf("create Secret %s for the pods' BROKER_URL: %w", o.spec.BrokerSecret.Name, err)
	}
	created, err := client.BatchV1().Jobs(o.namespace).Apply(ctx, applyConfig, applyOptions)
	if err != nil {
		secrets.Delete(context.WithoutCancel(ctx), o.spec.BrokerSecret.Name, metav1.DeleteOptions{})
		return nil, fmt.Errorf("create Job %s: %w", o.spec.Name, err)
	}
	// Owned by the Job, the Secret is deleted with it (by hand, or by ttlSecondsAfterFinished).
	// Not cancelled by Ctrl-C: the Job exists now, and a Secret without its owner would outlive it.
	secret.WithOwnerReferences(metav1ac.OwnerReference().
		WithAPIVersion("batch/v1").WithKind("Job").WithName(created.Name).WithUID(created.UID).
		WithBlockOwnerDeletion(false))
	if _, err := secrets.Apply(context.WithoutCancel(ctx), secret, applyOptions); err != nil {
		return nil, fmt.Errorf("make Job %s the owner of Secret %s: %w", created.Name, o.spec.BrokerSecret.Name, err)
	}
	return created, nil
}

// podBrokerURL is how pods reach the broker: the Service's cluster DNS name, or --broker-url.
func (o *RunOptions) podBrokerURL(ctx context.Context, client kubernetes.Interface) (string, error) {
	if o.broker.URL != "" {
		return o.broker.URL, nil
	}
	address, err := portforward.ClusterAddress(ctx, client, o.namespace, o.broker.Service, o.broker.Port)
	if err != nil {
		return "", err
	}
	username, password, err := credentials(ctx, o.getter, o.namespace)
	if err != nil {
		return "", err
	}
	return queue.BuildURL(username, password, address), nil
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func parseEnv(values []string) ([]corev1.EnvVar, error) {
	var env []corev1.EnvVar
	for _, v := range values {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--env %q is not NAME=VALUE", v)
		}
		env = append(env, corev1.EnvVar{Name: name, Value: value})
	}
	return env, nil
}

// parseRequestsAndLimits reads the --requests and --limits flags.
func parseRequestsAndLimits(requests, limits string) (corev1.ResourceList, corev1.ResourceList, error) {
	requestList, err := parseResources("--requests", requests)
	if err != nil {
		return nil, nil, err
	}
	limitList, err := parseResources("--limits", limits)
	return requestList, limitList, err
}

func parseResources(flag, value string) (corev1.ResourceList, error) {
	if value == "" {
		return nil, nil
	}
	list := corev1.ResourceList{}
	for _, pair := range strings.Split(value, ",") {
		name, quantity, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("%s %q: expected NAME=QUANTITY pairs such as cpu=100m,memory=256Mi", flag, pair)
		}
		q, err := resource.ParseQuantity(quantity)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a quantity for %s (examples: 100m, 1, 256Mi)", flag, quantity, name)
		}
		list[corev1.ResourceName(name)] = q
	}
	return list, nil
}

func ptr[T any](v T) *T { return &v }

// queueCommand spells a follow-up command for the user, with --name when the Job is not named
// after its queue.
func queueCommand(verb, queueName, jobName string, flags ...string) string {
	parts := []string{"kubectl workqueue", verb, queueName}
	if jobName != queueName {
		parts = append(parts, "--name", jobName)
	}
	return strings.Join(append(parts, flags...), " ")
}

// enforcesRestricted tells whether the namespace's Pod Security admission enforces the
// "restricted" level. A caller who may not read the namespace learns nothing here; admission
// still reports what it refuses, as a FailedCreate that run reports.
func enforcesRestricted(ctx context.Context, client kubernetes.Interface, namespace string) bool {
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	return err == nil && ns.Labels["pod-security.kubernetes.io/enforce"] == "restricted"
}
