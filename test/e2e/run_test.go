//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runWorkqueue runs `kubectl workqueue run ...` and returns its output and exit error.
func (c *cluster) runWorkqueue(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	stdout, stderr, err := c.run(ctx, "", append([]string{"workqueue", "run"}, args...)...)
	c.t.Logf("kubectl workqueue run %s\n%s%s", strings.Join(args, " "), stdout, stderr)
	return stdout + stderr, err
}

func (c *cluster) job(name string) *batchv1.Job {
	c.t.Helper()
	j, err := c.client.BatchV1().Jobs(c.namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return j
}

func jobComplete(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func (c *cluster) fillItems(queue string, items []string) {
	c.t.Helper()
	c.workqueue(strings.Join(items, "\x00")+"\x00", "fill", queue, "--null", "-q")
}

// The seed's scenario exactly: the 8 fruits, parallelism 2, the seed worker image with its own
// amqp-consume CMD and no command.
func TestRunSeedScenario(t *testing.T) { forEachBroker(t, testRunSeedScenario) }

func testRunSeedScenario(t *testing.T, brokerImage string) {
	c := newCluster(t)
	c.deployBrokerImage(brokerImage)
	c.fillItems("job1", fruits)

	out, err := c.runWorkqueue("job1", "--image", seedWorkerImage, "--image-pull-policy", "Never", "--parallelism", "2", "--env", "WORKER_SLEEP=1")
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if !strings.Contains(out, "Job job1: Complete") || !strings.Contains(out, "8 succeeded, 0 failed") || !strings.Contains(out, "0 left in job1") {
		t.Fatalf("unexpected summary")
	}
	j := c.job("job1")
	if !jobComplete(j) || *j.Spec.Completions != 8 || *j.Spec.Parallelism != 2 {
		t.Fatalf("job %+v", j.Status)
	}
	if ready := c.queueReady("job1", 0); ready != 0 {
		t.Fatalf("%d items left", ready)
	}
	// The pods really ran the seed's worker on the fruits.
	logs, err := c.kubectl("logs", "-l", "workqueue.kubectl.io/job=job1", "--tail=-1", "--max-log-requests=20")
	if err != nil {
		t.Fatal(err)
	}
	for _, fruit := range fruits {
		if !strings.Contains(logs, "Processing "+fruit) {
			t.Errorf("no pod processed %s:\n%s", fruit, logs)
		}
	}
}

// Any image and a command: the agent is injected, and each item reaches the command byte for byte.
func TestRunAgentInjectedItemsArriveByteForByte(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	items := []string{
		`plain`,
		`$(touch /tmp/pwned) ; rm -rf / && echo "quoted" 'single' \back\slash`,
		"multi\nline\nitem with trailing newline\n",
		"tabs\tand ünïcode ✓",
	}
	c.fillItems("bytes", items)

	out, err := c.runWorkqueue("bytes", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
		"--logs", "--", "sha256sum")
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	for _, item := range items {
		sum := sha256.Sum256([]byte(item))
		if !strings.Contains(out, hex.EncodeToString(sum[:])) {
			t.Errorf("no pod saw %q byte for byte", item)
		}
	}
	if !strings.Contains(out, "4 processed") || !strings.Contains(out, "all items of queue bytes processed") {
		t.Fatal("summary does not say all 4 items were processed")
	}
}

// An image built with the agent in it (run --agent-path): pods with one container and no
// volume, as the example's, and each item still reaches the command and is acked by the agent.
func TestRunWithTheAgentInTheImage(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	items := []string{"red", "green", "blue"}
	c.fillItems("baked", items)

	out, err := c.runWorkqueue("baked", "--image", busyboxAgentImage, "--image-pull-policy", "Never", "--agent-path", busyboxAgentPath,
		"--logs", "--", "sh", "-c", `read item; echo "painted $item"`)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	for _, item := range items {
		if !strings.Contains(out, "painted "+item) {
			t.Errorf("no pod painted %q", item)
		}
	}
	if !strings.Contains(out, "3 processed") || !strings.Contains(out, "all items of queue baked processed") {
		t.Fatal("summary does not say all 3 items were processed")
	}
	pods, err := c.kubectl("get", "pods", "-l", "job-name=baked", "-o", `jsonpath={range .items[*]}{.metadata.name} init=[{.spec.initContainers[*].name}] volumes=[{.spec.volumes[*].name}]{"\n"}{end}`)
	if err != nil {
		t.Fatalf("%v\n%s", err, pods)
	}
	if strings.Count(pods, "init=[] volumes=[") != len(items) || strings.Contains(pods, "workqueue-agent") {
		t.Errorf("want %d pods without an init container or the agent's volume:\n%s", len(items), pods)
	}
}

func TestRunDrainMode500ItemsThreePods(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	items := make([]string, 500)
	for i := range items {
		items[i] = fmt.Sprintf("item-%03d", i)
	}
	c.fillItems("drain", items)
	out, err := c.runWorkqueue("drain", "--mode", "drain", "--parallelism", "3", "--idle", "2s", "--logs", "--image", busyboxImage,
		"--image-pull-policy", "Never", "--agent-image", agentImage, "--", "sh", "-c", "cat >/dev/null")
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if !strings.Contains(out, "500 processed") || !strings.Contains(out, "0 left in drain") {
		t.Fatal("summary does not say 500 items were processed")
	}
	// The pods waited the --idle given, not the agent's default 5s (a pod that started after the
	// others had taken every item says instead that there was nothing to do).
	if !strings.Contains(out, "queue drain stayed empty for 2s") || strings.Contains(out, "stayed empty for 5s") {
		t.Errorf("the pods' logs do not say they waited 2s on the empty queue")
	}
	if j := c.job("drain"); j.Spec.Completions != nil || !jobComplete(j) {
		t.Fatalf("drain Job: completions %v, status %+v", j.Spec.Completions, j.Status)
	}
}

// A failing item is tried up to the limit, then found in QUEUE.failed; the Job still finishes and
// run exits non-zero, naming the item.
func TestRunFailingItemIsDeadLetteredAndNamed(t *testing.T) {
	forEachBroker(t, testRunFailingItemIsDeadLetteredAndNamed)
}

func testRunFailingItemIsDeadLetteredAndNamed(t *testing.T, brokerImage string) {
	c := newCluster(t)
	c.deployBrokerImage(brokerImage)
	c.fillItems("fails", []string{"good-1", "poison", "good-2"})
	out, err := c.runWorkqueue("fails", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
		"--", "sh", "-c", `read item; echo "attempt $WORKQUEUE_ATTEMPT of $item"; [ "$item" != poison ]`)
	if code := exitCode(err); code != 3 {
		t.Fatalf("run exited %d (%v), want 3: an item failed every attempt", code, err)
	}
	for _, want := range []string{"fails.failed", `"poison"`, "1 item failed every attempt"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`FAILED \(exit 1\)\s+"poison"`).FindAllString(out, -1)); n != 3 {
		t.Errorf("poison was tried %d times, want 3 (--max-attempts default)", n)
	}
	if ready := c.queueReady("fails.failed", 1); ready != 1 {
		t.Fatalf("fails.failed holds %d items, want 1", ready)
	}
	if ready := c.queueReady("fails", 0); ready != 0 {
		t.Fatalf("fails holds %d items, want 0", ready)
	}
	if j := c.job("fails"); !jobComplete(j) {
		t.Fatalf("the Job must still finish: %+v", j.Status)
	}
	// Fixed, the dead letter goes back and a second run processes just it, on its first attempt
	// again.
	if out := c.workqueue("", "retry", "fails"); !strings.Contains(out, "moved 1 item from fails.failed back to fails") {
		t.Fatalf("retry printed:\n%s", out)
	}
	out, err = c.runWorkqueue("fails", "--replace", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
		"--", "sh", "-c", `read item; echo "fixed: $item"`)
	if err != nil || !regexp.MustCompile(`done\s+"poison"\s+attempt 1 `).MatchString(out) || !strings.Contains(out, "1 processed") {
		t.Fatalf("the retried item was not processed once, as a new item: %v", err)
	}
	if ready := c.queueReady("fails.failed", 0); ready != 0 {
		t.Fatalf("fails.failed still holds %d items", ready)
	}
	// Purging asks; without a terminal it needs --yes.
	c.fillItems("fails", []string{"stale-1", "stale-2"})
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "purge", "fails"); exitCode(err) != 2 || !strings.Contains(stderr, "pass --yes") {
		t.Fatalf("purge without --yes: %v %s", err, stderr)
	}
	if out := c.workqueue("", "purge", "fails", "--yes"); !strings.Contains(out, "queue fails purged (2 items)") {
		t.Fatalf("purge --yes printed:\n%s", out)
	}

	// What fill declared, as the broker holds it: dead letters at least once, into a quorum
	// queue, and a consumer timeout far above the broker's 30 minutes.
	queues := c.brokerExec("rabbitmqctl", "-q", "list_queues", "--no-table-headers", "name", "type", "arguments")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^fails\s+quorum\s+.*x-dead-letter-strategy","at-least-once".*$`),
		regexp.MustCompile(`(?m)^fails\s+quorum\s+.*x-consumer-timeout",86400000.*$`),
		regexp.MustCompile(`(?m)^fails\.failed\s+quorum\s`),
	} {
		if !want.MatchString(queues) {
			t.Errorf("the broker's queues do not match %s:\n%s", want, queues)
		}
	}
}

// More completions than items (items purged, or counted wrong): surplus pods find the queue
// empty and exit 0, so the Job completes instead of hanging. Run with -o json: stdout is the
// report alone, one JSON document, and the per-pod lines go to stderr.
func TestRunMoreCompletionsThanItemsStillCompletes(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	c.fillItems("few", []string{"a", "b", "c"})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	stdout, stderr, err := c.run(ctx, "", "workqueue", "run", "few", "--completions", "6", "--parallelism", "3", "--image", busyboxImage,
		"--image-pull-policy", "Never", "--agent-image", agentImage, "-o", "json", "--", "cat")
	if err != nil {
		t.Fatalf("run failed: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "no item left in the queue") || !strings.Contains(stderr, "job.batch/few created") {
		t.Fatalf("stderr lacks the per-pod lines:\n%s", stderr)
	}
	var report struct {
		Kind      string `json:"kind"`
		Status    string `json:"status"`
		Succeeded bool   `json:"succeeded"`
		Pods      struct{ Succeeded int }
		Items     struct {
			Processed, DeadLettered, Left int
		}
		Problems []string `json:"problems"`
	}
	decoder := json.NewDecoder(strings.NewReader(stdout))
	if err := decoder.Decode(&report); err != nil || decoder.More() {
		t.Fatalf("stdout is not one JSON document (%v):\n%s", err, stdout)
	}
	if report.Kind != "RunReport" || report.Status != "Complete" || !report.Succeeded || report.Pods.Succeeded != 6 ||
		report.Items.Processed != 3 || report.Items.Left != 0 || len(report.Problems) != 0 {
		t.Fatalf("report %+v\n%s", report, stdout)
	}
}

// A worker pod deleted mid-item: the agent gives the item back, the Job ignores that pod, and the
// item is done by another; nothing is lost.
func TestRunWorkerPodDeletedMidItem(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	c.fillItems("slow", []string{"one", "two", "three"})

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run := c.command(ctx, "workqueue", "run", "slow", "--parallelism", "1", "--image", busyboxImage,
		"--image-pull-policy", "Never", "--agent-image", agentImage, "--", "sh", "-c", "cat; sleep 6")
	var output strings.Builder
	run.Stdout, run.Stderr = &output, &output
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	victim := c.waitForRunningWorker(ctx, "slow")
	time.Sleep(2 * time.Second) // mid-item
	if err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := run.Wait()
	t.Logf("%s", output.String())
	if err != nil {
		t.Fatalf("run failed after a pod was deleted: %v", err)
	}
	if !strings.Contains(output.String(), "interrupted") || !strings.Contains(output.String(), "0 left in slow") {
		t.Fatal("the interrupted item was not reported and redone")
	}
	if ready := c.queueReady("slow", 0); ready != 0 {
		t.Fatalf("%d items left", ready)
	}
}

func (c *cluster) waitForRunningWorker(ctx context.Context, jobName string) string {
	c.t.Helper()
	for ctx.Err() == nil {
		pods, err := c.client.CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: "workqueue.kubectl.io/job=" + jobName})
		if err == nil {
			for _, p := range pods.Items {
				for _, cs := range p.Status.ContainerStatuses {
					if cs.Name == "worker" && cs.State.Running != nil {
						return p.Name
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatal("no worker pod started")
	return ""
}

// A pod that can never start ends run with a non-zero exit that names why, instead of a wait
// with no end; the Job is left for the user to fix or delete.
func TestRunStopsWhenPodsCannotStart(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	c.fillItems("stuck", []string{"a"})
	out, err := c.runWorkqueue("stuck", "--image", "localhost/workqueue/no-such-image:1", "--image-pull-policy", "Never",
		"--agent-image", agentImage, "--", "cat")
	if code := exitCode(err); code != 4 {
		t.Fatalf("run exited %d (%v) with an image that is not there, want 4 (the Job failed, not its items)", code, err)
	}
	if !strings.Contains(out, "ErrImageNeverPull") || !strings.Contains(out, "kubectl workqueue delete stuck --keep-queue") {
		t.Fatalf("run did not say why its pods cannot start:\n%s", out)
	}
	c.job("stuck") // left as it is
}
