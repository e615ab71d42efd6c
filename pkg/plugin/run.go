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
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes/scheme"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/utils/ptr"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
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
	# As in Kubernetes' example: an image whose entrypoint consumes one item (BROKER_URL and QUEUE are set)
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
	BrokerOutage    time.Duration
	Idle            time.Duration
	Results         bool
	ResultSize      string
	FieldManager    string
	ForceConflicts  bool
	AgentImage      string
	AgentPath       string
	Replace         bool
	Detach          bool
	Logs            bool

	PrintFlags       *genericclioptions.PrintFlags
	printer          printers.ResourcePrinter
	dryRun           workqueue.DryRun
	completions      int32
	parallelismGiven bool
	broker           brokerFlags
	brokerConn       *rabbitmq.Broker
	namespace        string
	spec             job.Spec
	getter           ClientGetter
	stderrTTY        func() bool
	genericiooptions.IOStreams
}

// NewCmdRun builds `kubectl workqueue run`.
func NewCmdRun(streams genericiooptions.IOStreams, getter ClientGetter, version string) *cobra.Command {
	o := &RunOptions{
		IOStreams:   streams,
		getter:      getter,
		Mode:        string(constants.ModeOne),
		Completions: -1,
		MaxAttempts: job.DefaultMaxAttempts,
		AgentImage:  DefaultAgentImage(version),
		Results:     true,
		ResultSize:  "4Ki",
		PrintFlags:  genericclioptions.NewPrintFlags("created").WithTypeSetter(scheme.Scheme),
		stderrTTY:   func() bool { return isTerminal(streams.ErrOut) },
	}
	cmd := &cobra.Command{
		Use:   "run QUEUE --image IMAGE [flags] [-- COMMAND [ARGS...]]",
		Short: "Run a Job that processes the queue, and follow it",
		Long: longDesc(`
			Create a batch/v1 Job whose pods take items from the queue, then follow its pods until
			the work is done.

			With a COMMAND after --, a small agent is put into the pod: it gives each item to the
			command on stdin and acks it only when the command exits 0; a failing item is retried
			and finally moved to QUEUE.failed. Without a COMMAND, the image's own entrypoint runs
			with BROKER_URL and QUEUE set, as in Kubernetes' work-queue example.

			Without --parallelism, run starts a pod per item, at most 2 at a time, and no more than
			the namespace's ResourceQuotas leave room for; it says what it picked and why.

			The exit code is 0 only when every item was processed (see the README for the others).
			With -o json or -o yaml, the final report is one document on stdout and everything
			else goes to stderr; with --dry-run or --detach, -o prints the Job instead.`),
		Example:           runExample,
		ValidArgsFunction: completeQueueThenCommand(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd, args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", "", "The image that processes the items (required)")
	f.StringVar(&o.Name, "name", "", "The Job's name (default: the queue's name)")
	f.StringVar(&o.Mode, "mode", o.Mode, "one: one item per pod, completions = the items in the queue; drain: each pod takes items until the queue stays empty (faster when an item takes less than a pod's start-up)")
	f.Int32Var(&o.Parallelism, "parallelism", 0, fmt.Sprintf("Pods running at once (default: one per item, at most %d, within the namespace's ResourceQuotas)", job.DefaultParallelism))
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
	f.DurationVar(&o.BrokerOutage, "broker-outage", 0, "How long each pod waits for a lost broker to come back before it exits 8 and the Job replaces it (default 5m; needs a COMMAND)")
	f.DurationVar(&o.Idle, "idle", 0, "With --mode drain: each pod exits once the queue has stayed empty this long (default 5s; longer for a producer still publishing; needs a COMMAND)")
	f.BoolVar(&o.Results, "results", o.Results, "With a COMMAND: publish a result record per attempt to QUEUE.results, for `kubectl workqueue results`")
	f.StringVar(&o.ResultSize, "result-size", o.ResultSize, "How much of each item's result a record holds: the file the command writes to $WORKQUEUE_RESULT_FILE, else the end of its stdout")
	f.StringVar(&o.AgentImage, "agent-image", o.AgentImage, "The image that holds the agent, copied into the pod by an init container (with a COMMAND)")
	f.StringVar(&o.AgentPath, "agent-path", "", "Where IMAGE itself holds the agent, copied from the agent image when IMAGE was built: no init container, so each pod starts sooner (with a COMMAND)")
	f.BoolVar(&o.Replace, "replace", false, "Replace a finished Job of the same name")
	f.BoolVarP(&o.Detach, "detach", "d", false, "Return once the Job is created, without following it (-o then prints the Job)")
	f.BoolVar(&o.Logs, "logs", false, "Stream the pods' logs, each line prefixed with its pod's name")
	cmdutil.AddDryRunFlag(cmd)
	cmdutil.AddFieldManagerFlagVar(cmd, &o.FieldManager, constants.FieldManager)
	f.BoolVar(&o.ForceConflicts, "force-conflicts", false, "Take over fields of the Job or its Secret that another field manager set (kubectl apply --server-side --force-conflicts)")
	o.PrintFlags.AddFlags(cmd)
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the arguments, the queue before --, the command after it, and turns the
// flags into a job.Spec.
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
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	cmdutil.PrintFlagsWithDryRunStrategy(o.PrintFlags, dryRunMessage(o.dryRun))
	if o.printer, err = o.PrintFlags.ToPrinter(); err != nil {
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
	if o.AgentPath != "" && cmd.Flags().Changed("agent-image") {
		return errors.New("--agent-path and --agent-image both say where the agent comes from: give one of them")
	}
	var runAsUser *int64
	if cmd.Flags().Changed("run-as-user") {
		runAsUser = &o.RunAsUser
	}
	// Left at 0, Launch picks it once it knows the items.
	o.parallelismGiven = cmd.Flags().Changed("parallelism")
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
		BrokerOutage:    o.BrokerOutage,
		Idle:            o.Idle,
		ActiveDeadline:  o.Timeout,
		Env:             env,
		Requests:        requests,
		Limits:          limits,
		ServiceAccount:  o.ServiceAccount,
		ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		RunAsUser:       runAsUser,
		BrokerSecret:    corev1.SecretKeySelector{Key: workqueue.BrokerSecretKey},
	}
	if o.spec.Name == "" {
		o.spec.Name = o.Queue
	}
	o.spec.BrokerSecret.Name = workqueue.BrokerSecretName(o.spec.Name)
	o.spec.AgentInImage = o.AgentPath
	if len(o.Command) > 0 {
		if o.AgentPath == "" {
			o.spec.AgentImage = o.AgentImage
		}
		if o.Results {
			size, err := resource.ParseQuantity(o.ResultSize)
			if err != nil || size.Value() < 1 {
				return fmt.Errorf("--result-size %q is not a size such as 4Ki or 65536", o.ResultSize)
			}
			o.spec.ResultSize = int(size.Value())
		}
	}
	return nil
}

// Validate checks everything that can be checked before touching the cluster or the broker.
func (o *RunOptions) Validate() error {
	if err := queue.ValidateName(o.Queue); err != nil {
		return err
	}
	if o.parallelismGiven && o.Parallelism < 1 {
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
	if format := o.reportFormat(); format != "" && format != "json" && format != "yaml" {
		return fmt.Errorf("-o %s: a followed run prints its report as -o json or -o yaml (other formats print the Job, with --dry-run or --detach)", format)
	}
	// The Job's own checks, with a stand-in count until the queue is read.
	probe := o.spec
	if probe.Mode == constants.ModeOne {
		probe.Completions = ptr.To(int32(1))
	}
	return workqueue.OneLine(probe.Validate())
}

// Run launches the Job and follows it.
func (o *RunOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	launched, err := workqueue.Launch(ctx, client, workqueue.LaunchRequest{
		Spec:        o.spec,
		Completions: o.Completions,
		AllowEmpty:  o.AllowEmpty,
		Replace:     o.Replace,
		DryRun:      o.dryRun,
		ReadQueue:   o.readQueue,
		DeclareResults: func(ctx context.Context) error {
			b, err := o.brokerConnection(ctx)
			if err != nil {
				return err
			}
			_, err = queue.DeclareResults(b.Conn, o.Queue)
			return err
		},
		PodURL: func(ctx context.Context) (string, error) {
			return rabbitmq.PodURL(ctx, client, o.broker.target(o.namespace))
		},
		Notice:         func(notice string) { fmt.Fprintln(o.ErrOut, notice) },
		FieldManager:   o.FieldManager,
		ForceConflicts: o.ForceConflicts,
	})
	// Not kept while the Job runs: following it needs no broker until the end.
	if o.brokerConn != nil {
		o.brokerConn.Close()
		o.brokerConn = nil
	}
	if err != nil {
		return withConflictHint(err)
	}
	if launched.Picked != nil {
		fmt.Fprintln(o.ErrOut, describePick(*launched.Picked, o.spec.Mode, o.Completions >= 0))
	}
	if hint := modeHint(launched.Spec); hint != "" {
		fmt.Fprintln(o.ErrOut, hint)
	}
	switch o.dryRun {
	case workqueue.DryRunClient:
		return o.printer.PrintObj(typed(launched.Apply, &batchv1.Job{}, batchv1.SchemeGroupVersion.WithKind("Job")), o.Out)
	case workqueue.DryRunServer:
		return o.printer.PrintObj(launched.Job, o.Out)
	}
	switch {
	case o.Detach && o.PrintFlags.OutputFlagSpecified():
		if err := o.printer.PrintObj(launched.Job, o.Out); err != nil {
			return err
		}
	case o.reportFormat() != "":
		fmt.Fprintf(o.ErrOut, "job.batch/%s created: %s\n", launched.Job.Name, describeLaunch(launched))
	default:
		fmt.Fprintf(o.Out, "job.batch/%s created: %s\n", launched.Job.Name, describeLaunch(launched))
	}
	if o.Detach {
		fmt.Fprintf(o.ErrOut, "follow it with: %s\n", workqueue.Command("status", o.Queue, o.spec.Name, "--watch"))
		return nil
	}
	return o.watcher().follow(ctx, client, launched.State)
}

func (o *RunOptions) readQueue(ctx context.Context) (workqueue.QueueState, error) {
	b, err := o.brokerConnection(ctx)
	if err != nil {
		return workqueue.QueueState{}, err
	}
	return workqueue.ReadQueue(b.Conn, o.Queue, b.Via)
}

// brokerConnection connects on first use and keeps the connection until Run closes it: each
// connection through the Service costs a port-forward.
func (o *RunOptions) brokerConnection(ctx context.Context) (*rabbitmq.Broker, error) {
	if o.brokerConn != nil && o.brokerConn.Conn.IsClosed() {
		// The broker pod behind the port-forward went (restarted, or a cluster node lost)
		// while the Job ran: reach the broker again, through whichever pod serves now.
		o.brokerConn.Close()
		o.brokerConn = nil
	}
	if o.brokerConn == nil {
		b, err := o.broker.connect(ctx, o.getter, o.namespace, o.ErrOut)
		if err != nil {
			return nil, err
		}
		o.brokerConn = b
	}
	return o.brokerConn, nil
}

// reportFormat is the format of the final report document: -o json or yaml on a run that is
// followed to its end; "" for the report as text. With --dry-run or --detach, -o prints the Job.
func (o *RunOptions) reportFormat() string {
	if o.dryRun != workqueue.DryRunNone || o.Detach || !o.PrintFlags.OutputFlagSpecified() {
		return ""
	}
	return *o.PrintFlags.OutputFormat
}

func (o *RunOptions) watcher() *jobWatcher {
	return &jobWatcher{
		job: o.spec.Name, queue: o.Queue, namespace: o.namespace, logs: o.Logs, output: o.reportFormat(),
		consumesItself: len(o.spec.Command) == 0 && o.spec.Mode == constants.ModeOne, broker: o.broker, getter: o.getter, tty: o.stderrTTY(), IOStreams: o.IOStreams,
	}
}

func describeLaunch(l workqueue.Launched) string {
	s := l.Spec
	if s.Mode == constants.ModeDrain {
		return fmt.Sprintf("%d pods draining queue %s (%d items ready)", s.Parallelism, s.Queue, l.State.Ready)
	}
	return fmt.Sprintf("%d completions from queue %s, %d %s at a time", *s.Completions, s.Queue, s.Parallelism, plural(int(s.Parallelism), "pod"))
}
