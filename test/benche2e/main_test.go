//go:build benche2e

// Package benche2e measures kubectl-workqueue on a real cluster against the Kubernetes example's
// own way, each comparison in one run, and prints ratios: the example's Job against `run --mode
// one` and `run --mode drain`, run's follow latency, memory and API requests, and fill through its
// port-forward against `amqp-publish -l` through `kubectl port-forward`. `make bench-e2e`
// (hack/bench-e2e.sh) starts or reuses the local cluster and runs it; see BENCHMARKS.md.
//
// The cluster is the one named by WORKQUEUE_E2E_KUBECONFIG, as for the e2e suite. Every
// benchmark shares one namespace with one broker (the seed's Service and StatefulSet, RabbitMQ
// 4.0.5, without the seed's 250m CPU limit), deleted at the end.
package benche2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	rabbitmqImage   = "localhost/workqueue/rabbitmq:4.0.5"
	seedWorkerImage = "localhost/workqueue/seed-worker:1"
	busyboxImage    = "localhost/workqueue/busybox:1"
	// busybox with the agent copied in (hack/localcluster's load-agent), for run --agent-path.
	busyboxAgentImage = "localhost/workqueue/busybox-agent:e2e"
	busyboxAgentPath  = "/usr/local/bin/workqueue-agent"
)

var (
	kubeconfig string
	kubectl    string
	agentImage string
	plugin     string // the built kubectl-workqueue, run directly (no kubectl in between)
	skipReason string

	nsOnce    sync.Once
	namespace string
	nsErr     error
	client    kubernetes.Interface
)

func TestMain(m *testing.M) {
	kubeconfig = os.Getenv("WORKQUEUE_E2E_KUBECONFIG")
	kubectl = envOr("WORKQUEUE_E2E_KUBECTL", "kubectl")
	agentImage = envOr("WORKQUEUE_E2E_AGENT_IMAGE", "localhost/workqueue/agent:e2e")
	if kubeconfig == "" {
		skipReason = "no cluster: set WORKQUEUE_E2E_KUBECONFIG, or run `make bench-e2e` as root on Linux"
	}
	var dir string
	if skipReason == "" {
		var err error
		if dir, err = os.MkdirTemp("", "wq-bench-e2e-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		plugin = filepath.Join(dir, "kubectl-workqueue")
		build := exec.Command("go", "build", "-trimpath", "-o", plugin, "../../cmd/kubectl-workqueue")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build kubectl-workqueue: %v\n%s", err, out)
			os.Exit(1)
		}
		config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		config.QPS, config.Burst = 50, 100
		client = kubernetes.NewForConfigOrDie(config)
	}
	code := m.Run()
	if namespace != "" && os.Getenv("BENCH_KEEP_NAMESPACE") == "" {
		fmt.Fprintf(os.Stderr, "deleting namespace %s\n", namespace)
		client.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil && n > 0 {
			return n
		}
		fmt.Fprintf(os.Stderr, "%s=%q is not a positive number; using %d\n", name, v, def)
	}
	return def
}

// setup returns the benchmarks' namespace, creating it with its broker on first use.
func setup(b *testing.B) string {
	b.Helper()
	if skipReason != "" {
		b.Skip(skipReason)
	}
	nsOnce.Do(func() { namespace, nsErr = createNamespace() })
	if nsErr != nil {
		b.Fatal(nsErr)
	}
	return namespace
}

func createNamespace() (string, error) {
	ctx := context.Background()
	name := fmt.Sprintf("bench-e2e-%05d", rand.Intn(100000))
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	namespace = name
	fmt.Fprintf(os.Stderr, "namespace %s: deploying the seed's broker (RabbitMQ 4.0.5, no CPU limit)\n", name)
	svc, err := os.ReadFile("../e2e/testdata/rabbitmq-service.yaml")
	if err != nil {
		return name, err
	}
	sts, err := os.ReadFile("../e2e/testdata/rabbitmq-statefulset.yaml")
	if err != nil {
		return name, err
	}
	// The seed's 250m CPU limit would make the broker the bottleneck of every figure (and slows
	// its start to 30-50 s); without it, the tools are compared, not the limit.
	manifest := strings.ReplaceAll(string(sts), "localhost/workqueue/rabbitmq:3.10.8", rabbitmqImage)
	manifest = strings.Replace(manifest, "            cpu: 250m\n", "", 1)
	for _, m := range []string{string(svc), manifest} {
		if out, err := kubectlRun(name, m, "apply", "-f", "-"); err != nil {
			return name, fmt.Errorf("apply: %v\n%s", err, out)
		}
	}
	// The seed's broker has no readiness probe: wait until a fill gets through.
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		cmd := exec.Command(plugin, "fill", "bench-probe", "--item", "x", "-q", "--broker-timeout", "20s",
			"--kubeconfig", kubeconfig, "-n", name)
		return cmd.Run() == nil, nil
	})
	if err != nil {
		return name, fmt.Errorf("the broker did not accept a fill within 4 minutes")
	}
	purge := exec.Command(plugin, "delete", "bench-probe", "--yes", "--kubeconfig", kubeconfig, "-n", name)
	purge.Run()
	return name, nil
}

// kubectlRun runs kubectl in the namespace, stdin given, and returns its combined output.
func kubectlRun(ns, stdin string, args ...string) (string, error) {
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pluginCmd is `kubectl workqueue ARGS` in the namespace, the binary run directly.
func pluginCmd(ctx context.Context, ns string, args ...string) *exec.Cmd {
	// Before any `--`: what follows it is the pods' command.
	flags := []string{"--kubeconfig", kubeconfig, "-n", ns}
	for i, a := range args {
		if a == "--" {
			full := append(append(append([]string{}, args[:i]...), flags...), args[i:]...)
			return exec.CommandContext(ctx, plugin, full...)
		}
	}
	return exec.CommandContext(ctx, plugin, append(args, flags...)...)
}

// writeItems writes n items, one per line, and returns the file.
func writeItems(b *testing.B, n int) string {
	path := filepath.Join(b.TempDir(), fmt.Sprintf("items-%d.txt", n))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "item-%08d https://example.com/objects/%d.json\n", i, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

// fill publishes n items to queue with the plugin.
func fill(b *testing.B, ns, queue string, n int, flags ...string) {
	b.Helper()
	args := append([]string{"fill", queue, "--from-file", writeItems(b, n), "-q"}, flags...)
	out, err := pluginCmd(context.Background(), ns, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("fill %s: %v\n%s", queue, err, out)
	}
}

// line is one line of a process's output and when it arrived.
type line struct {
	at   time.Time
	text string
}

// lineRecorder timestamps each line written to it as it arrives.
type lineRecorder struct {
	mu      sync.Mutex
	lines   []line
	partial bytes.Buffer
}

func (r *lineRecorder) Write(p []byte) (int, error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partial.Write(p)
	for {
		data := r.partial.Bytes()
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		r.lines = append(r.lines, line{at: now, text: string(data[:i])})
		r.partial.Next(i + 1)
	}
	return len(p), nil
}

func (r *lineRecorder) all() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.lines...)
}

// result of a timed process.
type result struct {
	elapsed time.Duration
	maxRSS  int64 // bytes
}

// timed runs cmd to its end; stdout and stderr go where cmd says.
func timed(b *testing.B, cmd *exec.Cmd, output func() string) result {
	b.Helper()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(output(), 4000))
	}
	r := result{elapsed: time.Since(start)}
	if usage, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = usage.Maxrss * 1024
	}
	return r
}

// maxRSS is a finished process's peak resident memory (VmHWM), in bytes.
func maxRSS(cmd *exec.Cmd) int64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if usage, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return usage.Maxrss * 1024
	}
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func sortDurations(d []time.Duration) []time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

var _ io.Writer = (*lineRecorder)(nil)
