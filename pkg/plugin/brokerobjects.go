package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

// appliedNames are the objects install applies, in its order, as kubectl names them.
func appliedNames(s rabbitmq.Spec) []string {
	names := []string{
		"service/" + s.Service,
		"service/" + rabbitmq.NodesService(s.Name),
		"configmap/" + rabbitmq.ConfigMapName(s.Name),
		"poddisruptionbudget.policy/" + rabbitmq.BudgetName(s.Name),
	}
	if s.NetworkPolicy {
		names = append(names, "networkpolicy.networking.k8s.io/"+rabbitmq.NetworkPolicyName(s.Name))
	}
	return append(names, "statefulset.apps/"+s.Name)
}

// clientDryRun prints what install would apply, without a cluster.
func (o *BrokerInstallOptions) clientDryRun(objects rabbitmq.Objects) error {
	fmt.Fprintf(o.ErrOut, "not shown: Secret %s, created with a generated password and Erlang cookie when it does not exist\n", rabbitmq.CredentialsSecret)
	typedObjects := []runtime.Object{
		typed(objects.Service, &corev1.Service{}, corev1.SchemeGroupVersion.WithKind("Service")),
		typed(objects.NodesService, &corev1.Service{}, corev1.SchemeGroupVersion.WithKind("Service")),
		typed(objects.ClusterConfig, &corev1.ConfigMap{}, corev1.SchemeGroupVersion.WithKind("ConfigMap")),
		typed(objects.Budget, &policyv1.PodDisruptionBudget{}, policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")),
	}
	if objects.NetworkPolicy != nil {
		typedObjects = append(typedObjects, typed(objects.NetworkPolicy, &networkingv1.NetworkPolicy{}, networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy")))
	}
	typedObjects = append(typedObjects, typed(objects.StatefulSet, &appsv1.StatefulSet{}, appsv1.SchemeGroupVersion.WithKind("StatefulSet")))
	for _, object := range typedObjects {
		if err := o.printer.PrintObj(object, o.Out); err != nil {
			return err
		}
	}
	return nil
}

// serverDryRun has the API server check every object install would apply, and prints its answers.
func (o *BrokerInstallOptions) serverDryRun(ctx context.Context, client kubernetes.Interface, objects rabbitmq.Objects) error {
	options := metav1.ApplyOptions{FieldManager: o.spec.FieldManager, Force: o.spec.ForceConflicts, DryRun: []string{metav1.DryRunAll}}
	namespace := o.spec.Namespace
	type dryApply struct {
		what  string
		apply func() (runtime.Object, error)
	}
	applies := []dryApply{
		{"the Service", func() (runtime.Object, error) {
			return client.CoreV1().Services(namespace).Apply(ctx, objects.Service, options)
		}},
		{"the nodes' Service", func() (runtime.Object, error) {
			return client.CoreV1().Services(namespace).Apply(ctx, objects.NodesService, options)
		}},
		{"the ConfigMap", func() (runtime.Object, error) {
			return client.CoreV1().ConfigMaps(namespace).Apply(ctx, objects.ClusterConfig, options)
		}},
		{"the PodDisruptionBudget", func() (runtime.Object, error) {
			return client.PolicyV1().PodDisruptionBudgets(namespace).Apply(ctx, objects.Budget, options)
		}},
	}
	if objects.NetworkPolicy != nil {
		applies = append(applies, dryApply{"the NetworkPolicy", func() (runtime.Object, error) {
			return client.NetworkingV1().NetworkPolicies(namespace).Apply(ctx, objects.NetworkPolicy, options)
		}})
	}
	applies = append(applies, dryApply{"the StatefulSet", func() (runtime.Object, error) {
		return client.AppsV1().StatefulSets(namespace).Apply(ctx, objects.StatefulSet, options)
	}})
	var answers []runtime.Object
	for _, a := range applies {
		answer, err := a.apply()
		if err != nil {
			return fmt.Errorf("the API server rejected %s: %w", a.what, err)
		}
		answers = append(answers, answer)
	}
	for _, answer := range answers {
		if err := o.printer.PrintObj(answer, o.Out); err != nil {
			return err
		}
	}
	return nil
}

// nodeNames reads "rabbit@a, rabbit@b".
func nodeNames(nodes []rabbitmq.Node) string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// growQueues gives the quorum queues declared before nodes joined a member on each of them. It
// only warns when it cannot: the broker serves either way, with fewer replicas of those queues.
func (o *BrokerInstallOptions) growQueues(ctx context.Context, b *rabbitmq.Broker, client kubernetes.Interface, config *rest.Config, nodes []rabbitmq.Node) {
	for _, node := range nodes {
		err := b.GrowQueues(ctx, client, config, node.Name)
		switch {
		case errors.Is(err, rabbitmq.ErrNotFound):
			fmt.Fprintf(o.ErrOut, "warning: this RabbitMQ cannot grow existing quorum queues through its API (3.13 and later can): queues declared before the cluster grew keep their members until `rabbitmq-queues grow %s all` runs in a broker pod\n", node.Name)
			return
		case err != nil:
			fmt.Fprintf(o.ErrOut, "warning: could not give existing quorum queues a member on %s: %v\n", node.Name, err)
		}
	}
}
