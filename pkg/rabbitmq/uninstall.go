package rabbitmq

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// DryRun says whether Uninstall deletes.
type DryRun string

const (
	DryRunClient DryRun = "client" // look only
	DryRunServer DryRun = "server" // have the API server check each deletion without making it
)

// UninstallOptions tune Uninstall.
type UninstallOptions struct {
	// DeleteData also deletes the data volume's claim, and with it every queue.
	DeleteData bool
	// DryRun, when set, deletes nothing; Deleted then lists what would go.
	DryRun DryRun
}

// UninstallResult lists what Uninstall deleted and what it left alone.
type UninstallResult struct {
	Deleted []string // "statefulset.apps/rabbitmq", ...
	Kept    []string // why each object of the broker's names was left
}

// Uninstall deletes the StatefulSet, Service and credentials Secret that Install made. The data
// volume's claim goes only when deleteData is set; otherwise the Secret stays with it, since
// RabbitMQ takes its first user from the Secret only on an empty volume, and a later install
// must find the credentials that the kept data holds. Objects of those names that the plugin
// did not create are kept and listed.
func Uninstall(ctx context.Context, client kubernetes.Interface, s Spec, opts UninstallOptions) (UninstallResult, error) {
	deleteData := opts.DeleteData
	var result UninstallResult
	core, apps := client.CoreV1(), client.AppsV1()
	claims := core.PersistentVolumeClaims(s.Namespace)
	dataClaims, err := claimsOf(ctx, claims, s.Name)
	if err != nil {
		return result, err
	}
	keepData := len(dataClaims) > 0 && !deleteData

	// The StatefulSet goes first: its pod must not restart without the Service or Secret.
	if err := deleteIfOurs[*appsv1.StatefulSet](ctx, opts.DryRun, apps.StatefulSets(s.Namespace), "statefulset.apps", s.Name, s.Name, &result); err != nil {
		return result, err
	}
	if err := deleteIfOurs[*corev1.Service](ctx, opts.DryRun, core.Services(s.Namespace), "service", s.Service, s.Name, &result); err != nil {
		return result, err
	}
	if err := deleteIfOurs[*networkingv1.NetworkPolicy](ctx, opts.DryRun, client.NetworkingV1().NetworkPolicies(s.Namespace), "networkpolicy.networking.k8s.io", NetworkPolicyName(s.Name), s.Name, &result); err != nil {
		return result, err
	}
	if err := deleteIfOurs[*corev1.Service](ctx, opts.DryRun, core.Services(s.Namespace), "service", NodesService(s.Name), s.Name, &result); err != nil {
		return result, err
	}
	if err := deleteIfOurs[*corev1.ConfigMap](ctx, opts.DryRun, core.ConfigMaps(s.Namespace), "configmap", ConfigMapName(s.Name), s.Name, &result); err != nil {
		return result, err
	}
	if err := deleteIfOurs[*policyv1.PodDisruptionBudget](ctx, opts.DryRun, client.PolicyV1().PodDisruptionBudgets(s.Namespace), "poddisruptionbudget.policy", BudgetName(s.Name), s.Name, &result); err != nil {
		return result, err
	}
	if keepData {
		for _, claim := range dataClaims {
			result.Kept = append(result.Kept, fmt.Sprintf("persistentvolumeclaim/%s: the broker's queues (pass --delete-data to delete them)", claim))
		}
		result.Kept = append(result.Kept, fmt.Sprintf("secret/%s: the credentials of the kept queues, for the next install", s.Secret))
		return result, nil
	}
	if err := deleteIfOurs[*corev1.Secret](ctx, opts.DryRun, core.Secrets(s.Namespace), "secret", s.Secret, s.Name, &result); err != nil {
		return result, err
	}
	for _, claim := range dataClaims {
		if err := deleteIfOurs[*corev1.PersistentVolumeClaim](ctx, opts.DryRun, claims, "persistentvolumeclaim", claim, s.Name, &result); err != nil {
			return result, err
		}
	}
	return result, nil
}

// claimsOf lists the data volume claims of the broker's nodes, in the order of their pods.
func claimsOf(ctx context.Context, claims namespacedLister, name string) ([]string, error) {
	list, err := claims.List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector(name)).String()})
	if err != nil {
		return nil, fmt.Errorf("look for the broker's data volume claims, whose credentials must stay with them: %w", err)
	}
	var names []string
	for i := range list.Items {
		if claim := &list.Items[i]; ofBroker(claim, name) && strings.HasPrefix(claim.Name, dataVolume+"-"+name+"-") {
			names = append(names, claim.Name)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(len(a)-len(b), strings.Compare(a, b)) })
	return names, nil
}

// namespacedLister is the part of client-go's claims client that claimsOf uses.
type namespacedLister interface {
	List(ctx context.Context, options metav1.ListOptions) (*corev1.PersistentVolumeClaimList, error)
}

// namespacedClient is the part of a typed client-go client that Uninstall uses.
type namespacedClient[T metav1.Object] interface {
	Get(ctx context.Context, name string, options metav1.GetOptions) (T, error)
	Delete(ctx context.Context, name string, options metav1.DeleteOptions) error
}

func deleteIfOurs[T metav1.Object](ctx context.Context, dryRun DryRun, client namespacedClient[T], resource, name, broker string, result *UninstallResult) error {
	object, err := client.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("look for %s/%s: %w", resource, name, err)
	case !ours(object):
		result.Kept = append(result.Kept, fmt.Sprintf("%s/%s: not created by kubectl workqueue", resource, name))
		return nil
	case !ofBroker(object, broker):
		result.Kept = append(result.Kept, fmt.Sprintf("%s/%s: it belongs to the broker %s", resource, name, object.GetLabels()[labelInstance]))
		return nil
	}
	switch dryRun {
	case DryRunClient:
	case DryRunServer:
		if err := client.Delete(ctx, name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("the API server would not delete %s/%s: %w", resource, name, err)
		}
	default:
		if err := client.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s/%s: %w", resource, name, err)
		}
	}
	result.Deleted = append(result.Deleted, resource+"/"+name)
	return nil
}
