package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// probeFix turns the stage the probe failed at into what to do.
func probeFix(ctx context.Context, client kubernetes.Interface, req Request, verdict string) string {
	switch {
	case strings.HasPrefix(verdict, "resolve:"):
		return "the cluster's DNS does not resolve the broker's name in pods: check the Service's name and the DNS pods (kubectl -n kube-system get pods -l k8s-app=kube-dns)"
	case strings.HasPrefix(verdict, "amqp:"):
		return "something other than RabbitMQ answers on that port: check the Service's port (--port)"
	}
	if blocking := ingressPolicies(ctx, client, req); len(blocking) > 0 {
		return fmt.Sprintf("NetworkPolicy %s selects the broker's pod and does not let run's pods (labelled %s=%s) in: add an ingress rule for them on the AMQP port, or deploy the broker with `kubectl workqueue broker install --network-policy`",
			strings.Join(blocking, ", "), constants.LabelManagedBy, constants.ManagedBy)
	}
	return "pods cannot reach the broker's port: check NetworkPolicies (also in other tools, such as a service mesh or the CNI's own policies) and that the broker listens on it"
}

// ingressPolicies names the NetworkPolicies that govern traffic into the broker's pods and admit
// nothing from pods with the plugin's label.
func ingressPolicies(ctx context.Context, client kubernetes.Interface, req Request) []string {
	policies, err := client.NetworkingV1().NetworkPolicies(req.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	brokerLabels := brokerPodLabels(ctx, client, req)
	runPod := labels.Set{constants.LabelManagedBy: constants.ManagedBy}
	var names []string
	for _, p := range policies.Items {
		if !governsIngress(p) || !selects(p.Spec.PodSelector, brokerLabels) {
			continue
		}
		if !admits(p, runPod) {
			names = append(names, p.Name)
		}
	}
	return names
}

func brokerPodLabels(ctx context.Context, client kubernetes.Interface, req Request) labels.Set {
	svc, err := client.CoreV1().Services(req.Namespace).Get(ctx, req.Service, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return labels.Set(svc.Spec.Selector)
}

func governsIngress(p networkingv1.NetworkPolicy) bool {
	return len(p.Spec.PolicyTypes) == 0 || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

func selects(selector metav1.LabelSelector, set labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(&selector)
	return err == nil && set != nil && s.Matches(set)
}

// admits tells whether some ingress rule lets pods with these labels in from the same
// namespace, on some port. An empty from list admits everyone.
func admits(p networkingv1.NetworkPolicy, pod labels.Set) bool {
	for _, rule := range p.Spec.Ingress {
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			if peer.IPBlock == nil && peer.NamespaceSelector == nil && peer.PodSelector != nil && selects(*peer.PodSelector, pod) {
				return true
			}
			if peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels) == 0 && len(peer.NamespaceSelector.MatchExpressions) == 0 &&
				(peer.PodSelector == nil || selects(*peer.PodSelector, pod)) {
				return true
			}
		}
	}
	return false
}
