package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// ListOptions holds what `kubectl workqueue list` needs.
type ListOptions struct {
	AllNamespaces bool
	Output        string

	broker    brokerFlags
	namespace string
	getter    ClientGetter
	genericiooptions.IOStreams
}

// NewCmdList builds `kubectl workqueue list`.
func NewCmdList(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &ListOptions{IOStreams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the work queues, their counts and their Jobs",
		Long: longDesc(`
			List every work queue the plugin manages in the namespace (-A: in every namespace you
			can see): the queues of the Jobs that run made, and the queues that fill declared.
			For each, the items ready and in flight (taken, not yet acknowledged), the dead letters
			in QUEUE.failed, the records waiting in QUEUE.results, the consumers, and its Job.

			In flight and the queues without a Job come from RabbitMQ's management API, which
			broker install enables; without it (Kubernetes' example) only the queues of Jobs are
			listed and in flight shows as "?". The management API's counts lag by up to 5 seconds.`),
		Example: examples(`
			kubectl workqueue list
			kubectl workqueue list -A -o json`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(o.Complete, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List the work queues of every namespace you can see")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json or yaml: one document (a QueueList); default: a table")
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the namespace.
func (o *ListOptions) Complete() error {
	namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
	o.namespace = namespace
	return err
}

// Validate checks the flags.
func (o *ListOptions) Validate() error {
	if o.Output != "" && o.Output != "json" && o.Output != "yaml" {
		return fmt.Errorf("-o %s: list prints json or yaml, or a table without -o", o.Output)
	}
	if o.AllNamespaces && o.broker.URL != "" {
		return errors.New("-A lists the broker of each namespace: it does not go with --broker-url")
	}
	return nil
}

// Run lists, namespace by namespace.
func (o *ListOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	config, err := o.getter.ToRESTConfig()
	if err != nil {
		return err
	}
	namespaces, jobs, err := o.scope(ctx, client)
	if err != nil {
		return err
	}
	list := workqueue.QueueList{APIVersion: workqueue.APIVersion, Kind: "QueueList", Items: []workqueue.ListEntry{}}
	for _, namespace := range namespaces {
		list.Items = append(list.Items, o.namespaceEntries(ctx, client, config, namespace, jobs[namespace])...)
	}
	if o.Output != "" {
		return printDocument(o.Out, o.Output, list)
	}
	if len(list.Items) == 0 {
		fmt.Fprintf(o.ErrOut, "no work queues found in %s\n", o.where())
		return nil
	}
	return printQueueTable(o.Out, list.Items, o.AllNamespaces)
}

func (o *ListOptions) where() string {
	if o.AllNamespaces {
		return "any namespace"
	}
	return "namespace " + o.namespace
}

// scope is the namespaces to look at, with their Jobs made by run: the one namespace, or with
// -A every namespace that has such a Job or a broker Service.
func (o *ListOptions) scope(ctx context.Context, client kubernetes.Interface) ([]string, map[string][]batchv1.Job, error) {
	namespace := o.namespace
	if o.AllNamespaces {
		namespace = metav1.NamespaceAll
	}
	jobList, err := client.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{LabelSelector: constants.LabelManagedBy + "=" + constants.ManagedBy})
	if err != nil {
		return nil, nil, fmt.Errorf("list the Jobs made by run: %w", err)
	}
	jobs := map[string][]batchv1.Job{}
	for _, j := range jobList.Items {
		jobs[j.Namespace] = append(jobs[j.Namespace], j)
	}
	if !o.AllNamespaces {
		return []string{o.namespace}, jobs, nil
	}
	seen := map[string]bool{}
	for ns := range jobs {
		seen[ns] = true
	}
	services, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", o.broker.Service).String()})
	if err != nil {
		return nil, nil, fmt.Errorf("list the broker Services: %w", err)
	}
	for _, s := range services.Items {
		seen[s.Namespace] = true
	}
	var namespaces []string
	for ns := range seen {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	return namespaces, jobs, nil
}

// namespaceEntries asks one namespace's broker for its queues; a broker that cannot be reached
// leaves the counts of its Jobs' queues unknown, with the reason.
func (o *ListOptions) namespaceEntries(ctx context.Context, client kubernetes.Interface, config *rest.Config, namespace string, jobs []batchv1.Job) []workqueue.ListEntry {
	target := o.broker.target(namespace)
	if o.AllNamespaces && target.Timeout == 0 {
		target.Timeout = rabbitmq.DirectTimeout // many namespaces: no minute and a half for each
	}
	b, err := rabbitmq.Connect(ctx, client, config, target, io.Discard)
	if err != nil {
		entries := workqueue.ListEntries(namespace, jobs, nil)
		for i := range entries {
			entries[i].BrokerError = err.Error()
		}
		return entries
	}
	defer b.Close()
	queues, err := b.Queues(ctx, client, config)
	if err != nil {
		queues = nil // no management API: the Jobs' queues, in flight unknown
	}
	entries := workqueue.ListEntries(namespace, jobs, queues)
	// AMQP's counts are exact where the management API's lag by seconds.
	if err := workqueue.CountOverAMQP(b.Conn, entries); err != nil {
		for i := range entries {
			entries[i].BrokerError = err.Error()
		}
	}
	return entries
}

func printQueueTable(out io.Writer, entries []workqueue.ListEntry, withNamespace bool) error {
	w := printers.GetNewTabWriter(out)
	if withNamespace {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "QUEUE\tREADY\tIN FLIGHT\tDEAD LETTERS\tRESULTS\tCONSUMERS\tJOB")
	for _, e := range entries {
		if withNamespace {
			fmt.Fprintf(w, "%s\t", e.Namespace)
		}
		job := "-"
		if e.Job != nil {
			job = e.Job.Name + " (" + e.Job.Status + ")"
		}
		if e.BrokerError != "" {
			job += "; broker: " + truncate(e.BrokerError, 80)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Queue, count(e.Ready), count(e.InFlight), count(e.DeadLetters), count(e.Results), count(e.Consumers), job)
	}
	return w.Flush()
}

func count(n *int) string {
	if n == nil {
		return "?"
	}
	return fmt.Sprint(*n)
}
