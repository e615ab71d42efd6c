//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// doctor checks every link for real, a pod in the cluster included, and names the broken one.
func TestDoctor(t *testing.T) {
	c := newCluster(t)
	stdout, _, err := c.run(context.Background(), "", "workqueue", "doctor", "--agent-image", agentImage, "--image-pull-policy", "Never")
	if exitCode(err) != 5 || !strings.Contains(stdout, `[FAIL] service`) || !strings.Contains(stdout, "broker install") ||
		!strings.Contains(stdout, "[skip] port-forward") || !strings.Contains(stdout, "[ok  ] rbac") {
		t.Fatalf("doctor without a broker: exit %d\n%s", exitCode(err), stdout)
	}

	c.deployBroker()
	// The example's StatefulSet has no readiness probe: its pod is ready before RabbitMQ
	// listens. fill waits for the broker; doctor reports it as it finds it.
	c.fillItems("doc", []string{"x"})
	stdout, stderr, err := c.run(context.Background(), "", "workqueue", "doctor", "--agent-image", agentImage, "--image-pull-policy", "Never")
	if err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, stdout, stderr)
	}
	for _, want := range []string{"service", "port-forward", "login", "in-cluster", "rbac"} {
		if !regexp.MustCompile(`(?m)^\[ok  \] ` + want + ` `).MatchString(stdout) {
			t.Errorf("%s is not ok:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stdout, "a pod of the namespace reached rabbitmq-service."+c.namespace+".svc:5672") {
		t.Errorf("the in-cluster probe did not go through the Service's name:\n%s", stdout)
	}
	jobs, _ := c.client.BatchV1().Jobs(c.namespace).List(context.Background(), metav1.ListOptions{})
	for _, j := range jobs.Items {
		if j.DeletionTimestamp == nil {
			t.Errorf("doctor left its probe Job %s", j.Name)
		}
	}

	// A probe pod that cannot start is the broken link, named at once rather than after the timeout.
	stdout, _, err = c.run(context.Background(), "", "workqueue", "doctor", "--agent-image", "localhost/workqueue/no-such-agent:1", "--image-pull-policy", "Never")
	if exitCode(err) != 5 || !strings.Contains(stdout, "[FAIL] in-cluster") || !strings.Contains(stdout, "ErrImageNeverPull") {
		t.Fatalf("doctor with an agent image that is not there: exit %d\n%s", exitCode(err), stdout)
	}
}
