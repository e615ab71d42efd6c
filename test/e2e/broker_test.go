//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// `broker install` in place of the example's hand-applied manifests: generated credentials that
// fill and run find on their own, no guest account, and an uninstall that leaves nothing behind.
func TestBrokerInstallFillRunUninstall(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	install := []string{"broker", "install", "--image", rabbitmqImage, "--image-pull-policy", "Never", "--ephemeral", "--limits", "memory=1Gi"}

	// The API server accepts what install would create, and nothing is created.
	out := c.workqueue("", append(install, "--dry-run=server", "-o", "yaml")...)
	if !strings.Contains(out, "kind: StatefulSet") || !strings.Contains(out, "kind: Service") {
		t.Fatalf("server dry run printed:\n%s", out)
	}
	if _, err := c.client.AppsV1().StatefulSets(c.namespace).Get(ctx, "rabbitmq", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run created the StatefulSet: %v", err)
	}

	// An image that is not there fails at once, naming why; installing again with the right one
	// replaces the stuck pod.
	badImage := []string{"broker", "install", "--image", "localhost/workqueue/rabbitmq:nope", "--image-pull-policy", "Never", "--ephemeral"}
	if _, stderr, err := c.run(ctx, "", append([]string{"workqueue"}, badImage...)...); err == nil || !strings.Contains(stderr, "ErrImageNeverPull") {
		t.Fatalf("install with an image that is not there: %v\n%s", err, stderr)
	}

	out = c.workqueue("", install...)
	if !strings.Contains(out, "secret/workqueue-broker exists") || !strings.Contains(out, "broker ready: RabbitMQ 4.0.5") {
		t.Fatalf("install printed:\n%s", out)
	}
	secret, err := c.client.CoreV1().Secrets(c.namespace).Get(ctx, "workqueue-broker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	password := string(secret.Data["password"])
	if len(password) < 20 || strings.Contains(out, password) {
		t.Fatalf("password of %d characters, printed: %v", len(password), strings.Contains(out, password))
	}

	// RabbitMQ made the Secret's user instead of guest, and knows its memory limit.
	users := c.brokerExec("rabbitmqctl", "-q", "list_users")
	if !strings.Contains(users, "workqueue") || strings.Contains(users, "guest") {
		t.Fatalf("users:\n%s", users)
	}
	memory := c.brokerExec("rabbitmqctl", "eval", "application:get_env(rabbit, total_memory_available_override_value).")
	if !strings.Contains(memory, "{ok,858993459}") {
		t.Fatalf("RabbitMQ was not told 80%% of its 1Gi limit: %s", memory)
	}

	// fill and run need no broker flags: they read the Secret.
	c.fillItems("installed", []string{"one", "two", "three"})
	out, err = c.runWorkqueue("installed", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--", "cat")
	if err != nil || !strings.Contains(out, "all items of queue installed processed") {
		t.Fatalf("run on the installed broker: %v", err)
	}

	// The installed broker has the management API: list and status count the items in flight.
	// A Job holds two items (parallelism 2, each command sleeping), one waits, one was only
	// filled and has no Job.
	c.fillItems("busy", []string{"a", "b", "c"})
	c.fillItems("waiting", []string{"x"})
	c.workqueue("", "run", "busy", "--detach", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
		"--", "sh", "-c", "cat; sleep 120")
	listed := regexp.MustCompile(`(?m)^busy\s+1\s+2\s+0\s+0\s+2\s+busy \(Running\)$`)
	deadline := time.Now().Add(2 * time.Minute)
	for out = c.workqueue("", "list"); !listed.MatchString(out); out = c.workqueue("", "list") {
		if time.Now().After(deadline) {
			t.Fatalf("list does not show 1 ready, 2 in flight, 2 consumers for busy:\n%s", out)
		}
		time.Sleep(3 * time.Second)
	}
	if !regexp.MustCompile(`(?m)^installed\s+0\s+0\s+0\s+3\s+0\s+installed \(Complete\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^waiting\s+1\s+0\s+0\s+\?\s+0\s+-$`).MatchString(out) || strings.Contains(out, ".failed") {
		t.Fatalf("list:\n%s", out)
	}
	if out := c.workqueue("", "list", "-A", "-o", "json"); !strings.Contains(out, `"namespace": "`+c.namespace+`"`) || !strings.Contains(out, `"queue": "waiting"`) || !strings.Contains(out, `"kind": "QueueList"`) {
		t.Fatalf("list -A -o json:\n%s", out)
	}
	if out := c.workqueue("", "status", "busy"); !strings.Contains(out, "Queue busy: 1 ready, 0 in busy.failed, 2 in flight") {
		t.Fatalf("status does not count what is in flight:\n%s", out)
	}
	c.workqueue("", "delete", "busy", "--yes")

	// The example's image waits on an empty queue instead of exiting: a Job of more completions
	// than items can never complete, and run says so (the management API tells that no item is
	// in flight) instead of following it forever.
	c.fillItems("toomany", []string{"a", "b"})
	out, err = c.runWorkqueue("toomany", "--image", seedWorkerImage, "--image-pull-policy", "Never", "--completions", "3", "--env", "WORKER_SLEEP=0")
	if code := exitCode(err); code != 4 || !strings.Contains(out, "Job toomany cannot complete: 2 of 3 completions succeeded") ||
		!strings.Contains(out, "no item in flight") || !strings.Contains(out, "delete toomany --keep-queue") {
		t.Fatalf("run of more completions than items: exit %d, want 4 and why", code)
	}
	if ready := c.queueReady("toomany", 0); ready != 0 {
		t.Fatalf("toomany holds %d items, want 0", ready)
	}
	c.workqueue("", "delete", "toomany", "--yes")

	// A change that restarts a broker without a volume would lose its queues: refused.
	changed := append(append([]string{"workqueue"}, install[:len(install)-2]...), "--limits", "memory=2Gi")
	if _, stderr, err := c.run(ctx, "", changed...); err == nil || !strings.Contains(stderr, "lose every queue") {
		t.Fatalf("a restarting change to an ephemeral broker: %v\n%s", err, stderr)
	}

	// Installing again changes nothing it should keep.
	out = c.workqueue("", install...)
	if !strings.Contains(out, "secret/workqueue-broker exists") || !strings.Contains(out, "broker ready") {
		t.Fatalf("second install printed:\n%s", out)
	}
	again, _ := c.client.CoreV1().Secrets(c.namespace).Get(ctx, "workqueue-broker", metav1.GetOptions{})
	if string(again.Data["password"]) != password {
		t.Fatal("a second install changed the password")
	}

	// A dry run names what would go and removes nothing.
	out = c.workqueue("", "broker", "uninstall", "--dry-run")
	if !strings.Contains(out, "statefulset.apps/rabbitmq deleted (dry run)") || !strings.Contains(out, "secret/workqueue-broker deleted (dry run)") {
		t.Fatalf("uninstall --dry-run printed:\n%s", out)
	}
	if _, err := c.client.CoreV1().Services(c.namespace).Get(ctx, "rabbitmq-service", metav1.GetOptions{}); err != nil {
		t.Fatalf("uninstall --dry-run removed the Service: %v", err)
	}

	out = c.workqueue("", "broker", "uninstall")
	for _, deleted := range []string{"statefulset.apps/rabbitmq deleted", "service/rabbitmq-service deleted", "secret/workqueue-broker deleted"} {
		if !strings.Contains(out, deleted) || strings.Contains(out, "(dry run)") {
			t.Errorf("uninstall did not say %q:\n%s", deleted, out)
		}
	}
	if _, err := c.client.CoreV1().Services(c.namespace).Get(ctx, "rabbitmq-service", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Service is still there: %v", err)
	}
	if _, stderr, err := c.run(ctx, "", "workqueue", "broker", "uninstall"); err == nil || !strings.Contains(stderr, "no broker installed") {
		t.Errorf("a second uninstall: %v %s", err, stderr)
	}
}

// A broker deployed by hand, as in Kubernetes' example, is never taken over; bad flags change
// nothing either.
func TestBrokerInstallRefusesWhatItDidNotMake(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.applyFile("testdata/rabbitmq-service.yaml")

	_, stderr, err := c.run(ctx, "", "workqueue", "broker", "install", "--ephemeral")
	if err == nil || !strings.Contains(stderr, "Service rabbitmq-service already exists and was not created by kubectl workqueue") {
		t.Fatalf("install over the example's Service: %v %s", err, stderr)
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("not one line:\n%s", stderr)
	}
	_, stderr, err = c.run(ctx, "", "workqueue", "broker", "install", "--storage-size", "lots")
	if err == nil || !strings.Contains(stderr, `--storage-size "lots" is not a size`) {
		t.Fatalf("bad size: %v %s", err, stderr)
	}
	// The local cluster provisions no volumes: a broker with one is refused up front instead of
	// waiting forever for its claim.
	classes, err := c.client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defaultClass := false
	for _, class := range classes.Items {
		defaultClass = defaultClass || class.Annotations["storageclass.kubernetes.io/is-default-class"] == "true"
	}
	if !defaultClass {
		c.kubectl("delete", "service", "rabbitmq-service")
		_, stderr, err = c.run(ctx, "", "workqueue", "broker", "install")
		if err == nil || !strings.Contains(stderr, "no default StorageClass") || !strings.Contains(stderr, "--ephemeral") {
			t.Fatalf("install with a volume and no StorageClass: %v %s", err, stderr)
		}
	}
	if _, err := c.client.CoreV1().Secrets(c.namespace).Get(ctx, "workqueue-broker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused install left a Secret: %v", err)
	}
	if _, err := c.client.AppsV1().StatefulSets(c.namespace).Get(ctx, "rabbitmq", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused install left a StatefulSet: %v", err)
	}
}

// The default broker keeps its queues on a volume: through a pod restart, and through an
// uninstall and a new install, which finds the credentials that the kept data holds.
func TestBrokerInstallKeepsQueuesOnItsVolume(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	class := c.localVolume("1Gi")
	install := []string{"broker", "install", "--image", rabbitmqImage, "--image-pull-policy", "Never", "--storage-class", class, "--storage-size", "1Gi"}

	if out := c.workqueue("", install...); !strings.Contains(out, "broker ready") {
		t.Fatalf("install printed:\n%s", out)
	}
	c.fillItems("kept", []string{"a", "b", "c"})
	c.restartBroker()
	if out := c.workqueue("", "status", "kept"); !strings.Contains(out, "Queue kept: 3 ready") {
		t.Fatalf("after a restart:\n%s", out)
	}

	out := c.workqueue("", "broker", "uninstall")
	if !strings.Contains(out, "kept persistentvolumeclaim/data-rabbitmq-0") || !strings.Contains(out, "kept secret/workqueue-broker") {
		t.Fatalf("uninstall printed:\n%s", out)
	}
	if _, err := c.client.AppsV1().StatefulSets(c.namespace).Get(ctx, "rabbitmq", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the StatefulSet is still there: %v", err)
	}
	if out := c.workqueue("", install...); !strings.Contains(out, "secret/workqueue-broker exists") || !strings.Contains(out, "broker ready") {
		t.Fatalf("install over the kept data printed:\n%s", out)
	}
	if out := c.workqueue("", "status", "kept"); !strings.Contains(out, "Queue kept: 3 ready") {
		t.Fatalf("after a new install:\n%s", out)
	}

	out = c.workqueue("", "broker", "uninstall", "--delete-data")
	if !strings.Contains(out, "persistentvolumeclaim/data-rabbitmq-0 deleted") || !strings.Contains(out, "secret/workqueue-broker deleted") {
		t.Fatalf("uninstall --delete-data printed:\n%s", out)
	}
}

// localVolume makes a StorageClass that provisions nothing and one PersistentVolume of it on the
// node (the local cluster has no provisioner), and returns the class's name.
func (c *cluster) localVolume(size string) string { return c.localVolumes(1, size) }

// localVolumes is localVolume with n volumes in the class, one per broker node.
func (c *cluster) localVolumes(n int, size string) string {
	c.t.Helper()
	ctx := context.Background()
	name := c.namespace
	immediate := storagev1.VolumeBindingImmediate
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &immediate}
	c.t.Cleanup(func() { c.client.StorageV1().StorageClasses().Delete(ctx, name, metav1.DeleteOptions{}) })
	if _, err := c.client.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	for i := range n {
		volumeName := fmt.Sprintf("%s-%d", name, i)
		dir := "/var/tmp/wq-e2e-volume-" + volumeName
		// The broker runs as its own user, and a hostPath volume is not chowned for it.
		if err := os.MkdirAll(dir, 0o777); err != nil {
			c.t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			c.t.Fatal(err)
		}
		volume := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: volumeName},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName:              name,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
			},
		}
		c.t.Cleanup(func() {
			c.client.CoreV1().PersistentVolumes().Delete(ctx, volumeName, metav1.DeleteOptions{})
			os.RemoveAll(dir)
		})
		if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
	}
	return name
}
