//go:build benche2e

package benche2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// podTimes is what the benchmark's own watch saw of one pod, each at the time the event arrived.
type podTimes struct {
	job                   string
	added, running, ended time.Time
}

// podWatch records every pod of the namespace as its events arrive: a watch of its own, apart
// from run's, so that run's latency is measured from the API server's record of a pod's end.
type podWatch struct {
	mu   sync.Mutex
	pods map[string]*podTimes
	stop chan struct{}
}

func watchPods(b *testing.B, ns string) *podWatch {
	w := &podWatch{pods: map[string]*podTimes{}, stop: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	informer := factory.Core().V1().Pods().Informer()
	informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.see(obj) },
		UpdateFunc: func(_, obj any) { w.see(obj) },
	})
	factory.Start(w.stop)
	if !cache.WaitForCacheSync(w.stop, informer.HasSynced) {
		b.Fatal("the pod watch did not sync")
	}
	b.Cleanup(func() { close(w.stop); factory.Shutdown() })
	return w
}

func (w *podWatch) see(obj any) {
	now := time.Now()
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.pods[p.Name]
	if t == nil {
		t = &podTimes{job: p.Labels["batch.kubernetes.io/job-name"], added: now}
		w.pods[p.Name] = t
	}
	if t.running.IsZero() {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil || cs.State.Terminated != nil {
				t.running = now
			}
		}
	}
	if t.ended.IsZero() && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
		t.ended = now
	}
}

// of returns the pods of a Job.
func (w *podWatch) of(job string) map[string]podTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]podTimes{}
	for name, t := range w.pods {
		if t.job == job {
			out[name] = *t
		}
	}
	return out
}

// scenario is one way of processing the same items.
type scenario struct {
	name, what string
	start      func(b *testing.B, ns, queue string) (wait func() error, lines *lineRecorder, stderr *lineRecorder, cmd *exec.Cmd)
}

// row is one scenario's measurements.
type row struct {
	name, what       string
	elapsed          time.Duration
	pods             int
	podLife          time.Duration // median: pod added → its end seen by the watch
	latencies        []time.Duration
	maxRSS           int64
	requests         map[string]int
	requestsTotal    int
	requestsInFollow int
}

// BenchmarkJobs processes the same N items (ITEMS, default 1,000) of ~10 ms work with 4 workers
// (PARALLELISM) the example's way and with run's two modes, times each from start to the end,
// and measures run's follow latency, peak RSS and API requests on its mode-one run.
func BenchmarkJobs(b *testing.B) {
	ns := setup(b)
	n := envInt("ITEMS", 1000)
	parallelism := envInt("PARALLELISM", 4)
	work := envOr("WORK_SECONDS", "0.01")
	chosen := strings.Split(envOr("JOBS", "example,one,drain"), ",")
	rounds := envInt("ROUNDS", 1)
	watch := watchPods(b, ns)

	scenarios := map[string]scenario{
		"example": {"example", fmt.Sprintf("the example's Job: completions %d, parallelism %d, seed-worker (amqp-consume -c 1, worker.py)", n, parallelism),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startExampleJob(b, ns, queue, n, parallelism, work), nil, nil, nil
			}},
		"floor": {"floor", fmt.Sprintf("floor: a Job of busybox `true` pods, completions %d, parallelism %d, no broker", n, parallelism),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startFloorJob(b, ns, queue, n, parallelism), nil, nil, nil
			}},
		// The seed image as it is: its amqp-consume sets no prefetch, so it can take several items
		// and give back all but one when it exits; fill's quorum queue counts each as an attempt,
		// and an item can be dead-lettered unprocessed, leaving the Job one completion short.
		"one-seed": {"one-seed", fmt.Sprintf("run --mode one --parallelism %d, seed-worker image as it is", parallelism),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startRun(b, ns, queue, "--mode", "one", "--parallelism", fmt.Sprint(parallelism), "-v=6",
					"--image", seedWorkerImage, "--image-pull-policy", "Never", "--env", "WORKER_SLEEP="+work)
			}},
		"one": {"one", fmt.Sprintf("run --mode one --parallelism %d, agent + busybox sh -c 'sleep %s; cat'", parallelism, work),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startRun(b, ns, queue, "--mode", "one", "--parallelism", fmt.Sprint(parallelism), "-v=6",
					"--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
					"--", "sh", "-c", "sleep "+work+"; cat")
			}},
		// The agent in the worker's image: no init container, one container per pod as the example's.
		"one-baked": {"one-baked", fmt.Sprintf("run --mode one --parallelism %d --agent-path, busybox with the agent in it, sh -c 'sleep %s; cat'", parallelism, work),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startRun(b, ns, queue, "--mode", "one", "--parallelism", fmt.Sprint(parallelism), "-v=6",
					"--image", busyboxAgentImage, "--image-pull-policy", "Never", "--agent-path", busyboxAgentPath,
					"--", "sh", "-c", "sleep "+work+"; cat")
			}},
		// Drain without result records: what the records' confirmed publish costs per item.
		"drain-noresults": {"drain-noresults", fmt.Sprintf("run --mode drain --parallelism %d --results=false, agent + busybox sh -c 'sleep %s; cat'", parallelism, work),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startRun(b, ns, queue, "--mode", "drain", "--parallelism", fmt.Sprint(parallelism), "-v=6", "--results=false",
					"--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
					"--", "sh", "-c", "sleep "+work+"; cat")
			}},
		// Drain's floor on this node: the same command per item in a shell loop, in as many pods,
		// with no broker and no agent.
		"drain-floor": {"drain-floor", fmt.Sprintf("floor of drain: %d busybox pods, each running sh -c 'sleep %s; cat' for its share of the items in a shell loop, no broker", parallelism, work),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startDrainFloorJob(b, ns, queue, n, parallelism, work), nil, nil, nil
			}},
		// Drain with its two fixed costs cut: no init container, 1 s wait on the empty queue.
		"drain-fast": {"drain-fast", fmt.Sprintf("run --mode drain --parallelism %d --agent-path --idle 1s, busybox with the agent in it, sh -c 'sleep %s; cat'", parallelism, work),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startRun(b, ns, queue, "--mode", "drain", "--parallelism", fmt.Sprint(parallelism), "-v=6", "--idle", "1s",
					"--image", busyboxAgentImage, "--image-pull-policy", "Never", "--agent-path", busyboxAgentPath,
					"--", "sh", "-c", "sleep "+work+"; cat")
			}},
		"drain": {"drain", fmt.Sprintf("run --mode drain --parallelism %d, agent + busybox sh -c 'sleep %s; cat'", parallelism, work),
			func(b *testing.B, ns, queue string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
				return startRun(b, ns, queue, "--mode", "drain", "--parallelism", fmt.Sprint(parallelism), "-v=6",
					"--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
					"--", "sh", "-c", "sleep "+work+"; cat")
			}},
	}
	// Mirrored rounds: a, b, c, then c, b, a.
	var order []string
	for r := range rounds {
		names := append([]string(nil), chosen...)
		if r%2 == 1 {
			for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
				names[i], names[j] = names[j], names[i]
			}
		}
		order = append(order, names...)
	}

	var rows []row
	for i, name := range order {
		s, ok := scenarios[strings.TrimSpace(name)]
		if !ok {
			b.Fatalf("JOBS: no scenario %q (example, floor, one, one-baked, one-seed, drain, drain-noresults, drain-fast, drain-floor)", name)
		}
		queue := fmt.Sprintf("%s-%d", s.name, i)
		switch s.name {
		case "floor", "drain-floor":
		case "example":
			// A classic queue, as the example's amqp-declare-queue makes: no delivery limit, so an
			// item amqp-consume prefetched and gave back is not dead-lettered.
			fill(b, ns, queue, n, "--queue-type", "classic")
		default:
			fill(b, ns, queue, n)
		}
		fmt.Fprintf(os.Stderr, "%s  %s: %d items ...\n", time.Now().Format("15:04:05"), s.name, n)
		start := time.Now()
		waitFor, stdout, stderr, cmd := s.start(b, ns, queue)
		err := withDeadline(waitFor, cmd, time.Duration(n)*6*time.Second+5*time.Minute)
		elapsed := time.Since(start)
		if err != nil {
			out := ""
			if stdout != nil {
				for _, l := range append(stdout.all(), stderr.all()...) {
					if !requestStructured.MatchString(l.text) && !requestPlain.MatchString(l.text) {
						out += l.text + "\n"
					}
				}
			}
			b.Fatalf("%s: %v\n%s", s.name, err, tail(out, 4000))
		}
		r := row{name: s.name, what: s.what, elapsed: elapsed}
		time.Sleep(2 * time.Second) // the watch's last events
		pods := watch.of(queue)
		r.pods = len(pods)
		var lives []time.Duration
		for _, p := range pods {
			if !p.ended.IsZero() {
				lives = append(lives, p.ended.Sub(p.added))
			}
		}
		r.podLife = percentile(sortDurations(lives), 0.5)
		if stdout != nil {
			r.latencies = followLatencies(stdout.all(), pods)
			r.requests, r.requestsTotal, r.requestsInFollow = countRequests(stderr.all(), stdout.all())
			r.maxRSS = maxRSS(cmd)
		}
		fmt.Fprintf(os.Stderr, "%s  %s: %.1f s, %d pods\n", time.Now().Format("15:04:05"), s.name, elapsed.Seconds(), r.pods)
		rows = append(rows, r)
		printJobs(n, parallelism, work, []row{r}) // as it goes, in case a later one fails
		deleteJob(b, ns, queue)
	}
	fmt.Printf("\n=== all scenarios")
	printJobs(n, parallelism, work, rows)
}

// withDeadline waits, killing the run (or giving up on the Job) after d.
func withDeadline(waitFor func() error, cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- waitFor() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
		}
		return fmt.Errorf("not finished after %s", d)
	}
}

// startExampleJob creates the example's Job (its job.yaml with the local seed-worker image and
// this run's numbers) with kubectl, and returns a wait for its Complete condition.
func startExampleJob(b *testing.B, ns, queue string, n, parallelism int, work string) func() error {
	manifest := fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %[1]s
spec:
  completions: %[2]d
  parallelism: %[3]d
  template:
    metadata:
      name: %[1]s
    spec:
      containers:
      - name: c
        image: %[4]s
        imagePullPolicy: Never
        env:
        - name: BROKER_URL
          value: amqp://guest:guest@rabbitmq-service:5672
        - name: QUEUE
          value: %[1]s
        - name: WORKER_SLEEP
          value: "%[5]s"
      restartPolicy: OnFailure
`, queue, n, parallelism, seedWorkerImage, work)
	return createAndWait(b, ns, queue, manifest)
}

// startFloorJob is the same Job shape with pods that do nothing: the Job controller's and the
// node's pace, with no broker.
func startFloorJob(b *testing.B, ns, name string, n, parallelism int) func() error {
	return createAndWait(b, ns, name, busyboxJob(name, n, parallelism, "OnFailure", `["true"]`))
}

// startDrainFloorJob runs the items' command as drain would, parallelism pods each looping over
// its share of n items, without a broker or an agent: what this node's CPUs allow for it.
func startDrainFloorJob(b *testing.B, ns, name string, n, parallelism int, work string) func() error {
	each := (n + parallelism - 1) / parallelism
	// A here-document, not `echo | sh`: no process more per item than the agent's way.
	loop := fmt.Sprintf("i=0; while [ $i -lt %d ]; do sh -c 'sleep %s; cat' >/dev/null <<EOF\nitem-$i\nEOF\ni=$((i+1)); done", each, work)
	return createAndWait(b, ns, name, busyboxJob(name, parallelism, parallelism, "Never", fmt.Sprintf(`["sh", "-c", %q]`, loop)))
}

// busyboxJob is a Job of busybox pods running command (a YAML list).
func busyboxJob(name string, completions, parallelism int, restartPolicy, command string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %[1]s
spec:
  completions: %[2]d
  parallelism: %[3]d
  template:
    spec:
      containers:
      - name: c
        image: %[4]s
        imagePullPolicy: Never
        command: %[5]s
      restartPolicy: %[6]s
`, name, completions, parallelism, busyboxImage, command, restartPolicy)
}

func createAndWait(b *testing.B, ns, name, manifest string) func() error {
	if out, err := kubectlRun(ns, manifest, "create", "-f", "-"); err != nil {
		b.Fatalf("create the Job: %v\n%s", err, out)
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
		defer cancel()
		done := make(chan error, 1)
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
		informer := factory.Batch().V1().Jobs().Informer()
		check := func(obj any) {
			j, ok := obj.(*batchv1.Job)
			if !ok || j.Name != name {
				return
			}
			for _, c := range j.Status.Conditions {
				if c.Status != corev1.ConditionTrue {
					continue
				}
				switch c.Type {
				case batchv1.JobComplete:
					select {
					case done <- nil:
					default:
					}
				case batchv1.JobFailed:
					select {
					case done <- fmt.Errorf("job %s failed: %s", name, c.Message):
					default:
					}
				}
			}
		}
		informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, o any) { check(o) }})
		stop := make(chan struct{})
		defer func() { close(stop); factory.Shutdown() }()
		factory.Start(stop)
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startRun starts `kubectl workqueue run QUEUE ARGS`, its stdout and stderr timestamped line by line.
func startRun(b *testing.B, ns, queue string, args ...string) (func() error, *lineRecorder, *lineRecorder, *exec.Cmd) {
	stdout, stderr := &lineRecorder{}, &lineRecorder{}
	cmd := pluginCmd(context.Background(), ns, append([]string{"run", queue}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd.Wait, stdout, stderr, cmd
}

func deleteJob(b *testing.B, ns, name string) {
	ctx := context.Background()
	policy := metav1.DeletePropagationForeground
	client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
	// Wait for the pods to go, so that the next scenario does not share the node with their removal.
	wait.PollUntilContextTimeout(ctx, 2*time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
		return err == nil && len(pods.Items) == 0, nil
	})
	exec.Command(plugin, "delete", name, "--yes", "--kubeconfig", kubeconfig, "-n", ns).Run()
}

// followLatencies pairs each pod line run printed with the time the benchmark's own watch saw
// that pod end.
func followLatencies(lines []line, pods map[string]podTimes) []time.Duration {
	var out []time.Duration
	seen := map[string]bool{}
	for _, l := range lines {
		fields := strings.Fields(l.text)
		if len(fields) == 0 {
			continue
		}
		p, ok := pods[fields[0]]
		if !ok || p.ended.IsZero() || seen[fields[0]] {
			continue
		}
		seen[fields[0]] = true
		out = append(out, l.at.Sub(p.ended))
	}
	return sortDurations(out)
}

// client-go's request log at -v=6, in its structured and its older form.
var (
	requestStructured = regexp.MustCompile(`verb="([A-Z]+)" url="([^"]+)"`)
	requestPlain      = regexp.MustCompile(`\] (GET|POST|PUT|PATCH|DELETE) (https?://\S+) `)
)

// countRequests counts the API requests run logged at -v=6, by kind, in all and after its first
// pod line (while following).
func countRequests(stderr, stdout []line) (map[string]int, int, int) {
	var firstPod time.Time
	for _, l := range stdout {
		if strings.Contains(l.text, "attempt") || strings.Contains(l.text, " done ") || strings.Contains(l.text, "succeeded") {
			firstPod = l.at
			break
		}
	}
	kinds := map[string]int{}
	total, inFollow := 0, 0
	for _, l := range stderr {
		m := requestStructured.FindStringSubmatch(l.text)
		if m == nil {
			m = requestPlain.FindStringSubmatch(l.text)
		}
		if m == nil {
			continue
		}
		total++
		if !firstPod.IsZero() && l.at.After(firstPod) {
			inFollow++
		}
		kinds[requestKind(m[1], m[2])]++
	}
	return kinds, total, inFollow
}

// requestKind names a request by verb and resource: "GET pods", "WATCH jobs", ...
func requestKind(verb, url string) string {
	path, query, _ := strings.Cut(url, "?")
	if strings.Contains(query, "watch=true") {
		verb = "WATCH"
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	resource := ""
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			resource = strings.Join(parts[i+2:], "/")
			break
		}
	}
	if resource == "" && len(parts) > 0 {
		resource = parts[len(parts)-1]
	}
	// Names are not kinds: keep the resource and any subresource.
	segs := strings.Split(resource, "/")
	kind := segs[0]
	if len(segs) >= 3 {
		kind += "/" + segs[2]
	}
	return verb + " " + kind
}

func printJobs(n, parallelism int, work string, rows []row) {
	times := map[string]time.Duration{}
	for _, r := range rows {
		if _, ok := times[r.name]; !ok || r.elapsed < times[r.name] {
			times[r.name] = r.elapsed
		}
	}
	fmt.Printf("\n%d items of %s s work, parallelism %d (one run; the machine may be shared)\n", n, work, parallelism)
	fmt.Printf("%-16s %9s %8s %6s %10s  %s\n", "scenario", "seconds", "items/s", "pods", "pod life", "what")
	for _, r := range rows {
		fmt.Printf("%-16s %9.1f %8.1f %6d %9.2fs  %s\n", r.name, r.elapsed.Seconds(), float64(n)/r.elapsed.Seconds(), r.pods, r.podLife.Seconds(), r.what)
	}
	if f, ok := times["drain-floor"]; ok {
		for _, name := range []string{"drain", "drain-noresults", "drain-fast"} {
			if d, ok := times[name]; ok {
				fmt.Printf("%s / drain-floor: %.2fx the floor's time\n", name, d.Seconds()/f.Seconds())
			}
		}
	}
	if ex, ok := times["example"]; ok {
		if one, ok := times["one"]; ok {
			fmt.Printf("mode one / example: %.2fx the example's time (goal <= 1.1x)\n", one.Seconds()/ex.Seconds())
		}
		if one, ok := times["one-baked"]; ok {
			fmt.Printf("mode one, agent in the image / example: %.2fx the example's time (goal <= 1.1x)\n", one.Seconds()/ex.Seconds())
		}
		for _, name := range []string{"drain", "drain-noresults", "drain-fast"} {
			if d, ok := times[name]; ok {
				fmt.Printf("%s: %.1fx faster than the example (goal >= 50x)\n", name, ex.Seconds()/d.Seconds())
			}
		}
		if f, ok := times["drain-floor"]; ok {
			fmt.Printf("drain-floor (the command alone in a loop): %.1fx faster than the example, the most any drain can be here\n", ex.Seconds()/f.Seconds())
		}
		if f, ok := times["floor"]; ok {
			fmt.Printf("floor (pods that do nothing): %.2fx the example's time, %.2f pods/s\n", f.Seconds()/ex.Seconds(), float64(n)/f.Seconds())
		}
	}
	for _, r := range rows {
		if len(r.latencies) == 0 && r.requestsTotal == 0 {
			continue
		}
		fmt.Printf("\nrun (%s): follow latency over %d pods, from the watch seeing the pod end to run printing its line: p50 %s, p99 %s, max %s (goal p99 < 1s)\n",
			r.name, len(r.latencies), ms(percentile(r.latencies, 0.5)), ms(percentile(r.latencies, 0.99)), ms(percentile(r.latencies, 1)))
		fmt.Printf("run (%s): peak RSS %.1f MiB; %d API requests in all (-v=6), %d of them after the first pod line; %d pods followed over %.0f s\n",
			r.name, float64(r.maxRSS)/(1<<20), r.requestsTotal, r.requestsInFollow, r.pods, r.elapsed.Seconds())
		var kinds []string
		for k := range r.requests {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Printf("    %4d  %s\n", r.requests[k], k)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
