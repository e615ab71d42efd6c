//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// A namespace that enforces the "restricted" Pod Security Standard, as many production clusters
// and OpenShift do: the broker and the agent meet it by themselves, a worker image whose user is
// root is refused at once with the flag that fixes it, and --run-as-user runs it.
func TestRestrictedNamespace(t *testing.T) {
	c := newCluster(t)
	if out, err := c.kubectl("label", "namespace", c.namespace, "pod-security.kubernetes.io/enforce=restricted"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out := c.workqueue("", "broker", "install", "--image", rabbitmqImage, "--image-pull-policy", "Never", "--ephemeral")
	if !strings.Contains(out, "broker ready: RabbitMQ 4.0.5") {
		t.Fatalf("install printed:\n%s", out)
	}
	c.fillItems("strict", []string{"one", "two", "three"})

	// busybox's user is root.
	worker := []string{"strict", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage}
	out, err := c.runWorkqueue(append(worker, "--", "cat")...)
	if err == nil {
		t.Fatal("run succeeded with an image whose user is root in a restricted namespace")
	}
	for _, want := range []string{"enforces the restricted Pod Security Standard", "image will run as root", "--run-as-user UID"} {
		if !strings.Contains(out, want) {
			t.Errorf("run's output lacks %q", want)
		}
	}
	if strings.Contains(out, "warnings.go") {
		t.Error("an API server warning was printed as a raw klog line")
	}
	c.workqueue("", "delete", "strict", "--keep-queue")

	out, err = c.runWorkqueue(append(worker, "--run-as-user", "65534", "--", "cat")...)
	if err != nil || !strings.Contains(out, "all items of queue strict processed") {
		t.Fatalf("run --run-as-user in a restricted namespace: %v", err)
	}
}

// Pods the API server refuses to create never exist, so nothing but the controller's FailedCreate
// events says why: broker install and run end at once with the API server's reason.
func TestRefusedPodsEndInstallAndRun(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := c.kubectl("create", "quota", "no-pods", "--hard=pods=0"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, stderr, err := c.run(ctx, "", "workqueue", "broker", "install", "--image", rabbitmqImage, "--image-pull-policy", "Never", "--ephemeral")
	if err == nil || !strings.Contains(stderr, "statefulset rabbitmq cannot create its pods") || !strings.Contains(stderr, "exceeded quota: no-pods") {
		t.Fatalf("broker install under a quota of no pods: %v\n%s", err, stderr)
	}
	if ctx.Err() != nil {
		t.Fatal("broker install waited for its timeout")
	}

	// Room for the broker alone: the Job's pods are refused. The namespace also warns about what
	// "restricted" would refuse (busybox runs as root): the API server's warning is printed as
	// kubectl prints it, once.
	// Uninstalled before the quota goes, so that the refused StatefulSet never gets to create a
	// pod that would still be terminating (and counted by the next quota) when the broker below
	// starts.
	c.workqueue("", "broker", "uninstall")
	c.kubectl("delete", "quota", "no-pods")
	c.deployBroker()
	if out, err := c.kubectl("label", "namespace", c.namespace, "pod-security.kubernetes.io/warn=restricted"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := c.kubectl("create", "quota", "broker-only", "--hard=pods=1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c.fillItems("refused", []string{"a"})
	out, err := c.runWorkqueue("refused", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--", "cat")
	if err == nil || !strings.Contains(out, "job refused cannot create its pods") || !strings.Contains(out, "exceeded quota: broker-only") {
		t.Fatalf("run whose pods are refused: %v", err)
	}
	if n := strings.Count(out, "Warning: would violate PodSecurity"); n != 1 || strings.Contains(out, "warnings.go") {
		t.Errorf("the API server's warning was printed %d times, or as a klog line", n)
	}
}

// Without --parallelism, run sizes the Job itself: no more pods than items, and no more than the
// namespace's quota leaves room for, saying which bound it took. A Job of many items in mode
// one gets the hint that drain mode pays the pod start-up once per pod.
func TestRunPicksItsParallelismWithinTheQuota(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	if out, err := c.kubectl("create", "quota", "two-pods", "--hard=pods=2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The quota controller counts the broker's pod a moment after the quota is made; until then
	// the quota has no used figures, and the room would be read as 2.
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		q, err := c.client.CoreV1().ResourceQuotas(c.namespace).Get(ctx, "two-pods", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		used := q.Status.Used[corev1.ResourcePods]
		return used.Value() == 1, nil
	})
	if err != nil {
		t.Fatalf("the quota never counted the broker's pod: %v", err)
	}

	items := make([]string, 120)
	for i := range items {
		items[i] = fmt.Sprintf("p-%03d", i)
	}
	c.fillItems("sized", items)
	_, stderr, err := c.run(context.Background(), "", "workqueue", "run", "sized", "--image", busyboxImage, "--agent-image", agentImage, "--dry-run=server", "--", "cat")
	for _, want := range []string{
		"parallelism 1 (default 2; 120 items ready; quota two-pods allows 1 more pod): set --parallelism to choose",
		"hint: --mode one starts a pod for each of the 120 items",
	} {
		if err != nil || !strings.Contains(stderr, want) {
			t.Errorf("run --dry-run=server over 120 items, want %q: %v\n%s", want, err, stderr)
		}
	}
	c.workqueue("", "purge", "sized", "--yes")

	c.fillItems("sized", []string{"a", "b", "c"})
	out, err := c.runWorkqueue("sized", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--", "cat")
	if err != nil || !strings.Contains(out, "parallelism 1 (default 2; 3 items ready; quota two-pods allows 1 more pod)") ||
		!strings.Contains(out, "all items of queue sized processed") || strings.Contains(out, "hint:") {
		t.Fatalf("run within a quota of one more pod: %v\n%s", err, out)
	}
	if p := c.job("sized").Spec.Parallelism; p == nil || *p != 1 {
		t.Errorf("the Job's parallelism is %v, want 1", p)
	}
}
