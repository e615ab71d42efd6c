package doctor

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// The list doctor checks is the Role the docs hand out, rule for rule.
func TestRunnerPermissionsAreTheDocsRole(t *testing.T) {
	data, err := os.ReadFile("../../docs/rbac/runner.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	var fromDocs []string
	for _, rule := range role.Rules {
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				name, sub, _ := strings.Cut(resource, "/")
				for _, verb := range rule.Verbs {
					fromDocs = append(fromDocs, Permission{group, name, sub, verb}.String())
				}
			}
		}
	}
	var checked []string
	for _, p := range RunnerPermissions {
		checked = append(checked, p.String())
	}
	slices.Sort(fromDocs)
	slices.Sort(checked)
	if !slices.Equal(fromDocs, checked) {
		t.Fatalf("docs/rbac/runner.yaml grants\n  %v\ndoctor checks\n  %v", fromDocs, checked)
	}
}

func TestPermissionsNameWhatIsMissing(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attrs := review.Spec.ResourceAttributes
		review.Status.Allowed = attrs.Subresource != "portforward"
		return true, review, nil
	})
	check := permissions(context.Background(), client, "ns")
	if check.OK || !strings.Contains(check.Detail, "you may not create pods/portforward in namespace ns") || !strings.Contains(check.Fix, "runner.yaml") {
		t.Fatalf("%+v", check)
	}
}

func TestAPolicyThatShutsOutRunsPodsIsNamed(t *testing.T) {
	service := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "rabbitmq-service", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "mq"}}}
	denyAll := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: "ns"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	ours := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "rabbitmq-amqp", Namespace: "ns"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "mq"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{constants.LabelManagedBy: constants.ManagedBy}}}}}}}}
	elsewhere := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web-only", Namespace: "ns"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	req := Request{Namespace: "ns", Service: "rabbitmq-service"}

	client := fake.NewClientset(service, denyAll, elsewhere)
	if got := ingressPolicies(context.Background(), client, req); !slices.Equal(got, []string{"deny-all"}) {
		t.Fatalf("blocking policies %q, want deny-all", got)
	}
	fix := probeFix(context.Background(), client, req, "connect: dial tcp 10.96.0.5:5672: i/o timeout")
	if !strings.Contains(fix, "NetworkPolicy deny-all") || !strings.Contains(fix, "--network-policy") {
		t.Fatalf("fix %q", fix)
	}
	// The broker's own policy (broker install --network-policy) admits run's pods: not named.
	client = fake.NewClientset(service, ours)
	if got := ingressPolicies(context.Background(), client, req); len(got) != 0 {
		t.Fatalf("the broker's own policy was named: %q", got)
	}
	if fix := probeFix(context.Background(), client, req, "resolve: lookup rabbitmq-service: no such host"); !strings.Contains(fix, "DNS") {
		t.Fatalf("fix %q", fix)
	}
}

func TestWithoutAServiceLaterLinksAreSkipped(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		review.Status.Allowed = true
		return true, review, nil
	})
	checks := Run(context.Background(), client, &rest.Config{}, Request{Namespace: "ns", Service: "rabbitmq-service", AgentImage: "agent", ProbeTimeout: time.Second})
	var got []string
	for _, c := range checks {
		state := "fail"
		switch {
		case c.OK:
			state = "ok"
		case c.Skipped:
			state = "skipped"
		}
		got = append(got, c.Name+"="+state)
	}
	if want := "service=fail port-forward=skipped login=skipped in-cluster=skipped rbac=ok"; strings.Join(got, " ") != want {
		t.Fatalf("%s, want %s", strings.Join(got, " "), want)
	}
	if !strings.Contains(checks[0].Fix, "broker install") {
		t.Errorf("the missing Service's fix: %q", checks[0].Fix)
	}
}
