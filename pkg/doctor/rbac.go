package doctor

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is one verb on one resource that the plugin's commands use.
type Permission struct {
	Group, Resource, Subresource, Verb string
}

func (p Permission) String() string {
	resource := p.Resource
	if p.Subresource != "" {
		resource += "/" + p.Subresource
	}
	if p.Group != "" {
		resource += "." + p.Group
	}
	return p.Verb + " " + resource
}

// RunnerPermissions is what fill, run, status, logs, results, retry, purge and delete need in
// a namespace: the rules of docs/rbac/runner.yaml, which a test keeps in step with this list.
var RunnerPermissions = []Permission{
	{"", "services", "", "get"},
	{"", "pods", "", "get"}, {"", "pods", "", "list"}, {"", "pods", "", "watch"},
	{"", "pods", "portforward", "create"},
	{"", "secrets", "", "get"}, {"", "secrets", "", "create"}, {"", "secrets", "", "patch"}, {"", "secrets", "", "delete"},
	{"batch", "jobs", "", "get"}, {"batch", "jobs", "", "list"}, {"batch", "jobs", "", "watch"},
	{"batch", "jobs", "", "create"}, {"batch", "jobs", "", "patch"}, {"batch", "jobs", "", "delete"},
	{"", "events", "", "list"}, {"", "events", "", "watch"},
	{"", "pods", "log", "get"},
	{"", "resourcequotas", "", "list"},
}

// permissions asks the API server which of RunnerPermissions the caller lacks.
func permissions(ctx context.Context, client kubernetes.Interface, namespace string) Check {
	check := Check{Name: "rbac"}
	var missing []string
	for _, p := range RunnerPermissions {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Group: p.Group,
				Resource: p.Resource, Subresource: p.Subresource, Verb: p.Verb}}}
		answer, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			check.Detail = fmt.Sprintf("cannot ask the API server what you may do: %v", err)
			check.Fix = "ask your cluster admin whether you may create selfsubjectaccessreviews (every user may, by default)"
			return check
		}
		if !answer.Status.Allowed {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		check.Detail = fmt.Sprintf("you may not %s in namespace %s", strings.Join(missing, ", "), namespace)
		check.Fix = "bind the Role of docs/rbac/runner.yaml to your user in this namespace"
		return check
	}
	check.OK = true
	check.Detail = fmt.Sprintf("you may do all that fill, run, status, logs, results, retry, purge and delete do in namespace %s", namespace)
	return check
}
