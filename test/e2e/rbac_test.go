//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bindServiceAccount makes a ServiceAccount bound to the given Roles and returns the flag that
// runs a command as it.
func (c *cluster) bindServiceAccount(name string, roles ...string) string {
	c.t.Helper()
	if out, err := c.kubectl("create", "serviceaccount", name); err != nil {
		c.t.Fatalf("%v\n%s", err, out)
	}
	for _, role := range roles {
		if out, err := c.kubectl("create", "rolebinding", name+"-"+role, "--role="+role, "--serviceaccount="+c.namespace+":"+name); err != nil {
			c.t.Fatalf("%v\n%s", err, out)
		}
	}
	return "--as=system:serviceaccount:" + c.namespace + ":" + name
}

// The Roles of docs/rbac are exactly enough: fill, run, status and delete as a ServiceAccount
// bound to workqueue-runner, broker install and uninstall with workqueue-broker-admin on top;
// without pods/portforward, fill says in one line which permission is missing.
func TestRBACRolesOfTheDocsAreEnough(t *testing.T) {
	c := newCluster(t)
	c.applyFile("../../docs/rbac/runner.yaml")
	c.applyFile("../../docs/rbac/broker-admin.yaml")
	admin := c.bindServiceAccount("broker-admin", "workqueue-runner", "workqueue-broker-admin")
	runner := c.bindServiceAccount("runner", "workqueue-runner")

	// The local cluster's CNI does not enforce NetworkPolicies, so only the object is checked
	// here (its shape is pinned in pkg/rabbitmq/testdata/ephemeral.yaml).
	out := c.workqueue("", "broker", "install", "--image", rabbitmqImage, "--image-pull-policy", "Never", "--ephemeral", "--network-policy", admin)
	if !strings.Contains(out, "networkpolicy.networking.k8s.io/rabbitmq-amqp applied") || !strings.Contains(out, "broker ready") {
		t.Fatalf("broker install as workqueue-broker-admin:\n%s", out)
	}
	policy, err := c.client.NetworkingV1().NetworkPolicies(c.namespace).Get(context.Background(), "rabbitmq-amqp", metav1.GetOptions{})
	if err != nil || policy.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/managed-by"] != "kubectl-workqueue" {
		t.Fatalf("the broker's NetworkPolicy: %v %+v", err, policy)
	}
	c.workqueue("", "fill", "rbac", "--item", "a", "--item", "b", runner)
	out, err = c.runWorkqueue("rbac", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--logs", runner, "--", "cat")
	if err != nil || !strings.Contains(out, "all items of queue rbac processed") {
		t.Fatalf("run as workqueue-runner: %v", err)
	}
	if out := c.workqueue("", "status", "rbac", runner); !strings.Contains(out, "Complete") {
		t.Errorf("status as workqueue-runner:\n%s", out)
	}
	if out := c.workqueue("", "logs", "rbac", runner); !strings.Contains(out, "workqueue-agent: item") {
		t.Errorf("logs as workqueue-runner:\n%s", out)
	}
	if out := c.workqueue("", "retry", "rbac", "--dry-run", runner); !strings.Contains(out, "would move 0 items") {
		t.Errorf("retry as workqueue-runner:\n%s", out)
	}
	if out := c.workqueue("", "doctor", "--agent-image", agentImage, "--image-pull-policy", "Never", runner); strings.Contains(out, "FAIL") {
		t.Errorf("doctor as workqueue-runner:\n%s", out)
	}
	if out := c.workqueue("", "results", "rbac", runner); strings.Count(out, "  done  ") != 2 {
		t.Errorf("results as workqueue-runner:\n%s", out)
	}
	// Its results taken, the queue holds nothing: delete asks nothing.
	c.workqueue("", "delete", "rbac", runner)

	if out, err := c.kubectl("create", "role", "no-forward", "--verb=get,list,watch", "--resource=services,pods,secrets"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	limited := c.bindServiceAccount("limited", "no-forward")
	_, stderr, err := c.run(context.Background(), "", "workqueue", "fill", "rbac", "--item", "a", limited)
	if err == nil || !strings.Contains(stderr, "lacks the RBAC permission create pods/portforward") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("fill without pods/portforward: %v\n%s", err, stderr)
	}
	stdout, _, err := c.run(context.Background(), "", "workqueue", "doctor", "--no-probe", limited)
	if exitCode(err) != 5 || !strings.Contains(stdout, "[FAIL] port-forward") || !regexp.MustCompile(`you may not .*create pods/portforward`).MatchString(stdout) {
		t.Fatalf("doctor without pods/portforward: exit %d\n%s", exitCode(err), stdout)
	}

	out = c.workqueue("", "broker", "uninstall", admin)
	if !strings.Contains(out, "networkpolicy.networking.k8s.io/rabbitmq-amqp deleted") {
		t.Errorf("uninstall did not delete the NetworkPolicy:\n%s", out)
	}
}
