package plugin

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilcomp "k8s.io/kubectl/pkg/util/completion"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// Shell completion. kubectl completes a plugin's arguments by running kubectl_complete-workqueue
// (the script at the repository's top level), which calls `kubectl workqueue __complete ARGS`,
// cobra's hidden completion command. Completion reads the cluster only, never the broker, and an
// error gives no completions: it must never print anything but them.

// completionTimeout bounds the cluster calls of one completion: a shell waits for them.
const completionTimeout = 5 * time.Second

// fixedFlagValues are the values offered for a string flag of that name on any command.
var fixedFlagValues = map[string][]string{
	"mode":              {string(constants.ModeOne), string(constants.ModeDrain)},
	"image-pull-policy": {"Always", "IfNotPresent", "Never"},
	"dry-run":           {"none", "client", "server"},
	"queue-type":        {"quorum", "classic"},
	// Where a command prints fewer formats (results: json), it registers its own.
	"output": {"json", "yaml"},
}

// completeQueues completes the QUEUE argument: the queues of the namespace's Jobs that the plugin
// made.
func completeQueues(getter ClientGetter) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return queueNames(ctx, getter, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeQueueThenCommand completes run's arguments: QUEUE, then the command after --, a file.
// (cobra's completion leaves ArgsLenAtDash unreliable, and run takes no other argument.)
func completeQueueThenCommand(getter ClientGetter) cobra.CompletionFunc {
	queues := completeQueues(getter)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return queues(cmd, args, toComplete)
	}
}

// queueNames lists, sorted and once each, the queues starting with prefix that the plugin's Jobs
// in the namespace take items from; nothing when the cluster cannot tell.
func queueNames(ctx context.Context, getter ClientGetter, prefix string) []cobra.Completion {
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	namespace, _, err := getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil
	}
	client, err := getter.KubernetesClientSet()
	if err != nil {
		return nil
	}
	selector := labels.SelectorFromSet(labels.Set{constants.LabelManagedBy: constants.ManagedBy}).String()
	jobs, err := client.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var names []cobra.Completion
	for _, j := range jobs.Items {
		name := j.Annotations[constants.AnnotationQueue]
		if name == "" || seen[name] || !strings.HasPrefix(name, prefix) {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// registerCompletions gives flags their values: the kubeconfig flags as kubectl completes them
// (namespaces from the cluster; contexts, clusters and users from the kubeconfig), when root has
// them, and the fixed values of fixedFlagValues on every command.
func registerCompletions(root *cobra.Command, getter ClientGetter, withConfigFlags bool) {
	if withConfigFlags {
		factory := cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(getter))
		utilcomp.SetFactoryForCompletion(factory)
		configFlagValues := map[string]func(string) []string{
			"namespace": func(toComplete string) []string { return utilcomp.CompGetResource(factory, "namespace", toComplete) },
			"context":   utilcomp.ListContextsInConfig,
			"cluster":   utilcomp.ListClustersInConfig,
			"user":      utilcomp.ListUsersInConfig,
		}
		for name, values := range configFlagValues {
			if root.PersistentFlags().Lookup(name) == nil {
				continue
			}
			cobra.CheckErr(root.RegisterFlagCompletionFunc(name, func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return values(toComplete), cobra.ShellCompDirectiveNoFileComp
			}))
		}
	}
	var visit func(cmd *cobra.Command)
	visit = func(cmd *cobra.Command) {
		for name, values := range fixedFlagValues {
			flag := cmd.Flags().Lookup(name)
			if flag == nil || flag.Value.Type() != "string" {
				continue
			}
			if _, ok := cmd.GetFlagCompletionFunc(name); ok {
				continue
			}
			cobra.CheckErr(cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)))
		}
		for _, child := range cmd.Commands() {
			visit(child)
		}
	}
	visit(root)
}
