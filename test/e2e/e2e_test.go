//go:build e2e

// Package e2e runs the built plugin as `kubectl workqueue ...` against a real cluster: the one
// named by WORKQUEUE_E2E_KUBECONFIG (`make test` starts a local one and sets it).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	kubeconfig string
	kubectl    string
	binDir     string
	skipReason string
	agentImage string
)

const (
	// The brokers the suite runs on: RabbitMQ 4, what users run and `broker install` deploys, for
	// everything; and 3.10, the image the example's manifests were tested with, for the seed's
	// scenario and dead-lettering.
	rabbitmq4Image  = "localhost/workqueue/rabbitmq:4.0.5"
	rabbitmq3Image  = "localhost/workqueue/rabbitmq:3.10.8"
	rabbitmqImage   = rabbitmq4Image
	seedWorkerImage = "localhost/workqueue/seed-worker:1"
	busyboxImage    = "localhost/workqueue/busybox:1"
	// busybox built with the agent copied in, as hack/localcluster builds it, for run --agent-path.
	busyboxAgentImage = "localhost/workqueue/busybox-agent:e2e"
	busyboxAgentPath  = "/usr/local/bin/workqueue-agent"
)

func TestMain(m *testing.M) {
	kubeconfig = os.Getenv("WORKQUEUE_E2E_KUBECONFIG")
	kubectl = os.Getenv("WORKQUEUE_E2E_KUBECTL")
	agentImage = os.Getenv("WORKQUEUE_E2E_AGENT_IMAGE")
	if agentImage == "" {
		agentImage = "localhost/workqueue/agent:e2e"
	}
	if kubectl == "" {
		kubectl = "kubectl"
	}
	switch {
	case kubeconfig == "":
		skipReason = "no cluster: set WORKQUEUE_E2E_KUBECONFIG, or run `make test` as root on Linux to start the local one"
	default:
		if _, err := exec.LookPath(kubectl); err != nil {
			skipReason = "kubectl not found: set WORKQUEUE_E2E_KUBECTL"
		}
	}
	if skipReason == "" {
		dir, err := os.MkdirTemp("", "wq-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binDir = dir
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-workqueue"), "../../cmd/kubectl-workqueue")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build kubectl-workqueue: %v\n%s", err, out)
			os.Exit(1)
		}
		// kubectl completes the plugin by running kubectl_complete-workqueue from PATH; the
		// plugin writes it next to itself, as a user does once.
		if out, err := exec.Command(filepath.Join(dir, "kubectl-workqueue"), "completion-shim", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "kubectl workqueue completion-shim: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// cluster is one test's namespace on the e2e cluster.
type cluster struct {
	t         *testing.T
	namespace string
	client    kubernetes.Interface
	config    *rest.Config
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	// Each test has a namespace of its own, and most of a test's time is waiting for pods: two at
	// a time (go test's -parallel, GOMAXPROCS by default) halve the suite on two cores.
	t.Parallel()
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(config)
	// A namespace name is a DNS label: lower case letters, digits and dashes.
	name := fmt.Sprintf("e2e-%s-%d", strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name())), time.Now().UnixNano()%100000)
	if len(name) > 63 {
		name = name[len(name)-63:]
		name = "e" + strings.TrimLeft(name[1:], "-")
	}
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, namespace: name, client: client, config: config}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpState()
		}
		client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return c
}

// dumpState logs what the namespace holds, for a failed test.
func (c *cluster) dumpState() {
	out, _ := c.kubectl("get", "all,events", "-o", "wide")
	c.t.Logf("namespace %s:\n%s", c.namespace, out)
	c.dumpLogs()
}

// dumpLogs logs the end of every container's log in the namespace, the previous run's too when
// a container restarted: a stuck or failed worker says why only there.
func (c *cluster) dumpLogs() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := c.client.CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Logf("listing pods for their logs: %v", err)
		return
	}
	tail := int64(80)
	for _, pod := range pods.Items {
		statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
		for _, status := range statuses {
			runs := []bool{false}
			if status.RestartCount > 0 {
				runs = []bool{true, false}
			}
			for _, previous := range runs {
				raw, err := c.client.CoreV1().Pods(c.namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
					Container: status.Name, Previous: previous, TailLines: &tail, Timestamps: true,
				}).DoRaw(ctx)
				if err != nil {
					c.t.Logf("log of %s/%s (previous %v): %v", pod.Name, status.Name, previous, err)
					continue
				}
				c.t.Logf("log of %s/%s (previous %v, last %d lines):\n%s", pod.Name, status.Name, previous, tail, raw)
			}
		}
	}
}

// kubectl runs kubectl with the test's kubeconfig and namespace; the plugin is on its PATH.
func (c *cluster) kubectl(args ...string) (string, error) {
	return c.kubectlStdin("", args...)
}

func (c *cluster) kubectlStdin(stdin string, args ...string) (string, error) {
	stdout, stderr, err := c.run(context.Background(), stdin, args...)
	return stdout + stderr, err
}

// run runs kubectl and returns stdout and stderr apart.
func (c *cluster) run(ctx context.Context, stdin string, args ...string) (string, string, error) {
	cmd := c.command(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func (c *cluster) command(ctx context.Context, args ...string) *exec.Cmd {
	// kubectl takes no flags before a plugin's name; after it, they are the plugin's.
	full := append([]string{"--kubeconfig", kubeconfig, "-n", c.namespace}, args...)
	if len(args) > 0 && args[0] == "workqueue" {
		full = append([]string{"workqueue", "--kubeconfig", kubeconfig, "-n", c.namespace}, args[1:]...)
	}
	cmd := exec.CommandContext(ctx, kubectl, full...)
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}

// workqueue runs `kubectl workqueue ARGS` and fails the test on a non-zero exit.
func (c *cluster) workqueue(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.kubectlStdin(stdin, append([]string{"workqueue"}, args...)...)
	if err != nil {
		c.t.Fatalf("kubectl workqueue %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exitCode is the exit code of a command that ran, 0 for none.
func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// deployBroker applies the seed's Service and StatefulSet, with RabbitMQ 4, and waits for the
// broker to run.
func (c *cluster) deployBroker() { c.deployBrokerImage(rabbitmqImage) }

// deployBrokerImage is deployBroker with the given RabbitMQ image.
func (c *cluster) deployBrokerImage(image string) {
	c.t.Helper()
	c.applyFile("testdata/rabbitmq-service.yaml")
	c.applyWithImage("testdata/rabbitmq-statefulset.yaml", image, nil)
	c.waitForPodReady("rabbitmq-0", 3*time.Minute)
}

// applyWithImage applies a manifest of testdata with its RabbitMQ image replaced, and other
// words too.
func (c *cluster) applyWithImage(path, image string, replace map[string]string) {
	c.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	manifest := strings.ReplaceAll(string(data), rabbitmq3Image, image)
	for old, new := range replace {
		manifest = strings.ReplaceAll(manifest, old, new)
	}
	if out, err := c.kubectlStdin(manifest, "apply", "-f", "-"); err != nil {
		c.t.Fatalf("apply %s: %v\n%s", path, err, out)
	}
}

// forEachBroker runs test once on each RabbitMQ the suite knows, as subtests named by version.
func forEachBroker(t *testing.T, test func(t *testing.T, image string)) {
	for _, image := range []string{rabbitmq4Image, rabbitmq3Image} {
		t.Run("rabbitmq-"+image[strings.LastIndex(image, ":")+1:], func(t *testing.T) { test(t, image) })
	}
}

func (c *cluster) applyFile(path string) {
	c.t.Helper()
	if out, err := c.kubectl("apply", "-f", path); err != nil {
		c.t.Fatalf("apply %s: %v\n%s", path, err, out)
	}
}

func (c *cluster) waitForPodReady(name string, timeout time.Duration) {
	c.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pod, err := c.client.CoreV1().Pods(c.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		logs, _ := c.kubectl("logs", name, "--tail", "60")
		c.t.Fatalf("pod %s not ready within %s; the end of its log:\n%s", name, timeout, logs)
	}
}

// brokerExec runs a command in the broker's pod, for RabbitMQ's own view of the queues.
func (c *cluster) brokerExec(args ...string) string {
	c.t.Helper()
	out, err := c.kubectl(append([]string{"exec", "rabbitmq-0", "--"}, args...)...)
	if err != nil {
		c.t.Fatalf("exec %v: %v\n%s", args, err, out)
	}
	return out
}

// queueReady asks RabbitMQ inside the pod for a queue's ready messages, waiting up to 30 s for
// want: a quorum queue's counters are refreshed every few seconds.
func (c *cluster) queueReady(queue string, want int) int {
	c.t.Helper()
	got := -1
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		out := c.brokerExec("rabbitmqctl", "-q", "list_queues", "--no-table-headers", "name", "messages_ready")
		got = -1
		for _, line := range strings.Split(out, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 2 && fields[0] == queue {
				fmt.Sscan(fields[1], &got)
			}
		}
		if got == want {
			break
		}
	}
	return got
}

// deployDurableBroker is the seed's broker with its data on the node instead of an emptyDir,
// so that what it stored survives the pod being deleted, as it would on a real volume.
func (c *cluster) deployDurableBroker() {
	c.t.Helper()
	c.kubectl("label", "namespace", c.namespace, "pod-security.kubernetes.io/enforce=privileged")
	c.applyFile("testdata/rabbitmq-service.yaml")
	dataDir := "/var/tmp/wq-e2e-rabbitmq-" + c.namespace
	c.t.Cleanup(func() { os.RemoveAll(dataDir) })
	c.applyWithImage("testdata/rabbitmq-statefulset-hostpath.yaml", rabbitmqImage, map[string]string{"DATA_DIR": dataDir})
	c.waitForPodReady("rabbitmq-0", 3*time.Minute)
}

// restartBroker deletes the broker pod and waits for its replacement.
func (c *cluster) restartBroker() {
	c.t.Helper()
	ctx := context.Background()
	old, err := c.client.CoreV1().Pods(c.namespace).Get(ctx, "rabbitmq-0", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, "rabbitmq-0", metav1.DeleteOptions{}); err != nil {
		c.t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(c.namespace).Get(ctx, "rabbitmq-0", metav1.GetOptions{})
		return err == nil && p.UID != old.UID, nil
	})
	if err != nil {
		c.t.Fatal("the broker pod was not replaced")
	}
	c.waitForPodReady("rabbitmq-0", 3*time.Minute)
	// The seed's broker has no readiness probe: Ready is not listening. rabbitmqctl cannot even
	// reach the node for the first seconds, so ask again until it answers.
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.kubectl("exec", "rabbitmq-0", "--", "rabbitmqctl", "-q", "--timeout", "30", "await_startup")
		return err == nil, nil
	})
	if err != nil {
		c.t.Fatal("the restarted broker did not start")
	}
}

// runPod runs a pod to completion and returns its log.
func (c *cluster) runPod(name, image string, env map[string]string, command ...string) string {
	c.t.Helper()
	var envVars []corev1.EnvVar
	for k, v := range env {
		envVars = append(envVars, corev1.EnvVar{Name: k, Value: v})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "c", Image: image, ImagePullPolicy: corev1.PullNever, Command: command, Env: envVars,
			}},
		},
	}
	ctx := context.Background()
	if _, err := c.client.CoreV1().Pods(c.namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	var phase corev1.PodPhase
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(c.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	logs, _ := c.client.CoreV1().Pods(c.namespace).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || phase != corev1.PodSucceeded {
		c.t.Fatalf("pod %s: phase %s, %v\n%s", name, phase, err, logs)
	}
	return string(logs)
}

// inClusterURL is how pods reach the seed's broker.
func (c *cluster) inClusterURL() string {
	return fmt.Sprintf("amqp://guest:guest@rabbitmq-service.%s.svc:5672", c.namespace)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
