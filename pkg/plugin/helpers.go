package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// examples formats an example block the way kubectl prints them.
func examples(s string) string { return templates.Examples(s) }

// longDesc formats a long description the way kubectl prints them.
func longDesc(s string) string { return templates.LongDesc(s) }

// exactArgs names the missing argument instead of cobra's "accepts 1 arg(s)".
func exactArgs(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return badInput(fmt.Errorf("%s is required: %s", name, cmd.UseLine()))
		case len(args) > 1:
			return badInput(fmt.Errorf("only one %s is accepted, got %d arguments: %q (a command to run goes after --)", name, len(args), args))
		}
		return nil
	}
}

// dryRunStrategy reads kubectl's --dry-run flag (none, client, server).
func dryRunStrategy(cmd *cobra.Command) (workqueue.DryRun, error) {
	value := cmdutil.GetFlagString(cmd, "dry-run")
	switch value {
	case "none", "false":
		return workqueue.DryRunNone, nil
	case "client", "true", cmd.Flag("dry-run").NoOptDefVal:
		return workqueue.DryRunClient, nil
	case "server":
		return workqueue.DryRunServer, nil
	}
	return workqueue.DryRunNone, fmt.Errorf(`--dry-run must be "none", "client" or "server", not %q`, value)
}

// dryRunMessage is the word kubectl's printers add after an object's name in a dry run.
func dryRunMessage(strategy workqueue.DryRun) cmdutil.DryRunStrategy {
	switch strategy {
	case workqueue.DryRunClient:
		return cmdutil.DryRunClient
	case workqueue.DryRunServer:
		return cmdutil.DryRunServer
	}
	return cmdutil.DryRunNone
}

// printDocument prints one of our documents (a report, a status) as JSON or YAML.
func printDocument(w io.Writer, format string, document any) error {
	var data []byte
	var err error
	switch format {
	case "json":
		data, err = json.MarshalIndent(document, "", "    ")
		data = append(data, '\n')
	case "yaml":
		data, err = yaml.Marshal(document)
	default:
		return badInput(fmt.Errorf("-o %s: this prints json or yaml", format))
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// withConflictHint says what to do about a server-side apply conflict: another field manager
// (a kubectl edit, a controller) owns a field that the command sets.
func withConflictHint(err error) error {
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%w; pass --force-conflicts to take those fields over", err)
	}
	return err
}

// typed turns an apply configuration into the typed object printers take.
func typed[T runtime.Object](applyConfig any, object T, kind schema.GroupVersionKind) T {
	data, _ := json.Marshal(applyConfig)
	json.Unmarshal(data, object)
	object.GetObjectKind().SetGroupVersionKind(kind)
	return object
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

func validatePullPolicy(policy string) error {
	switch corev1.PullPolicy(policy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		return nil
	}
	return fmt.Errorf("--image-pull-policy %q is not Always, IfNotPresent or Never", policy)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// isTerminal tells whether a stream is a terminal, for progress bars and prompts.
func isTerminal(stream any) bool {
	f, ok := stream.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// queueRef is what every command about one queue starts from: the queue, its Job (named after
// it unless --name says otherwise) and the namespace of both.
type queueRef struct {
	Queue     string
	Name      string
	namespace string
}

// completeQueue reads QUEUE from the arguments and the namespace from the kubeconfig.
func (r *queueRef) completeQueue(args []string, getter ClientGetter) error {
	r.Queue = args[0]
	if r.Name == "" {
		r.Name = r.Queue
	}
	namespace, _, err := getter.ToRawKubeConfigLoader().Namespace()
	r.namespace = namespace
	return err
}

func (r *queueRef) addNameFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.Name, "name", "", "The Job's name (default: the queue's name)")
}
