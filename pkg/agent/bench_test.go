package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// BenchmarkDrainRateVersusAmqpConsume drains the same items from the same broker with the agent
// binary (drain mode) and with `amqp-consume -c N` (the seed's tool), all starting one process
// per item, and reports each one's rate and its ratio to `amqp-consume -p 1` (the target of the
// agent is at least 1.0). The contenders, in mirrored rounds in one run:
//
//   - amqp-consume -p 1: one item at a time, the reference;
//   - amqp-consume with its default prefetch, which -c N sets to N: the broker sends every item
//     at once, and the tool never waits for the next one;
//   - hack/agentfloor: the agent's loop stripped to amqp-consume -p 1's work on one thread, the
//     floor for any Go agent with prefetch 1;
//   - the agent with prefetch 1 (built with -X main.maxPrefetch=1), as it was before it kept the
//     next item ready;
//   - the agent as it is: prefetch 2 while commands are short (see wantPrefetch).
//
// WORKQUEUE_BENCH_ITEMS sets how many items each drains per iteration (default 1000, in two
// rounds); WORKQUEUE_BENCH_COMMAND sets the command, split on spaces (default cat, its output
// discarded; not true: amqp-consume dies of SIGPIPE when a command exits without reading its
// item).
//
//	WORKQUEUE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672 go test -run '^$' -bench DrainRate ./pkg/agent
func BenchmarkDrainRateVersusAmqpConsume(b *testing.B) {
	brokerURL := testbroker.URL(b)
	if _, err := exec.LookPath("amqp-consume"); err != nil {
		b.Skip("amqp-consume (amqp-tools) is not installed")
	}
	items := 1000
	if n, err := strconv.Atoi(os.Getenv("WORKQUEUE_BENCH_ITEMS")); err == nil && n > 0 {
		items = n
	}
	command := []string{"cat"}
	if c := strings.Fields(os.Getenv("WORKQUEUE_BENCH_COMMAND")); len(c) > 0 {
		command = c
	}
	toolURL := testbroker.ToolURL(b)
	// The agent runs as the process it is in a pod, built as a release builds it, so that both
	// sides pay for the same things: a process start, a connection, one process per item.
	buildAgent := func(name string, ldflags ...string) string {
		binary := filepath.Join(b.TempDir(), name)
		build := exec.Command("go", "build", "-ldflags", strings.Join(ldflags, " "), "-o", binary, "../../cmd/workqueue-agent")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build the agent: %v\n%s", err, out)
		}
		return binary
	}
	agentBinary := buildAgent("workqueue-agent")
	agentP1Binary := buildAgent("workqueue-agent-p1", "-X main.maxPrefetch=1")
	// The floor: the same loop stripped to amqp-consume's work, in Go (hack/agentfloor).
	floorBinary := filepath.Join(b.TempDir(), "agentfloor")
	build := exec.Command("go", "build", "-o", floorBinary, "../../hack/agentfloor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build hack/agentfloor: %v\n%s", err, out)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()

	for _, spec := range []struct {
		name string
		queueSpec
	}{{"quorum", queueSpec{quorum: true, deliveryLimit: 5}}, {"classic", queueSpec{}}} {
		b.Run(spec.name, func(b *testing.B) {
			queue := testQueue(b, spec.queueSpec)
			messages := make([]message, items/2)
			for i := range messages {
				messages[i] = message{ID: fmt.Sprintf("bench-%d", i), Body: fmt.Appendf(nil, "item %d\n", i)}
			}
			const idle = 200 * time.Millisecond
			termLog := filepath.Join(b.TempDir(), "termination-log")
			drainWithAgent := func(binary string) time.Duration {
				agent := exec.Command(binary, "--mode", "drain", "--idle", idle.String(), "--queue", queue,
					"--termination-log", termLog, "--")
				agent.Args = append(agent.Args, command...)
				agent.Env = append(os.Environ(), "BROKER_URL="+brokerURL)
				agent.Stdout, agent.Stderr = devNull, devNull
				start := time.Now()
				err := agent.Run()
				// The agent waits for the idle period after the last item; that is not work.
				elapsed := time.Since(start) - idle
				if err != nil {
					b.Fatalf("agent: %v", err)
				}
				data, _ := os.ReadFile(termLog)
				if o, err := outcome.Decode(string(data)); err != nil || o.Processed != len(messages) {
					b.Fatalf("agent: outcome %s", data)
				}
				return elapsed
			}
			drainWith := func(name string, args ...string) time.Duration {
				cmd := exec.Command(args[0], args[1:]...)
				cmd.Args = append(cmd.Args, command...)
				cmd.Stdout, cmd.Stderr = devNull, devNull
				start := time.Now()
				err := cmd.Run()
				elapsed := time.Since(start)
				if err != nil {
					b.Fatalf("%s: %v", name, err)
				}
				if n := testbroker.Ready(b, queue); n != 0 {
					b.Fatalf("%s left %d items", name, n)
				}
				return elapsed
			}
			count := strconv.Itoa(len(messages))
			contenders := []struct {
				name, key string // key: the metric's name
				drain     func() time.Duration
			}{
				{"amqp-consume -p 1", "amqp-consume-p1", func() time.Duration {
					return drainWith("amqp-consume", "amqp-consume", "--url", toolURL, "-q", queue, "-p", "1", "-c", count)
				}},
				{"amqp-consume, default prefetch", "amqp-consume", func() time.Duration {
					return drainWith("amqp-consume", "amqp-consume", "--url", toolURL, "-q", queue, "-c", count)
				}},
				{"Go floor (hack/agentfloor)", "floor", func() time.Duration {
					return drainWith("agentfloor", floorBinary, brokerURL, queue, count)
				}},
				{"agent, prefetch 1", "agent-p1", func() time.Duration { return drainWithAgent(agentP1Binary) }},
				{"agent (prefetch 2 while short)", "agent", func() time.Duration { return drainWithAgent(agentBinary) }},
			}
			elapsed := make([]time.Duration, len(contenders))
			// Rounds in a mirrored order, so that a load that changes during the run (the machine
			// may be shared) weighs on all alike.
			var order []int
			for i := range contenders {
				order = append(order, i)
			}
			for i := range contenders {
				order = append(order, len(contenders)-1-i)
			}
			b.ResetTimer()
			for range b.N {
				for _, turn := range order {
					b.StopTimer()
					testbroker.Publish(b, queue, messages...)
					b.StartTimer()
					elapsed[turn] += contenders[turn].drain()
				}
			}
			b.StopTimer()
			items := 2 * len(messages) * b.N
			rate := func(i int) float64 { return float64(items) / elapsed[i].Seconds() }
			b.ReportMetric(0, "ns/op")
			var report strings.Builder
			fmt.Fprintf(&report, "%s queue, %d items each, command %q (ratio: to amqp-consume -p 1):", spec.name, items, command)
			for i, c := range contenders {
				b.ReportMetric(rate(i), c.key+"-items/s")
				fmt.Fprintf(&report, "\n  %-32s %6.0f items/s  %.2fx", c.name, rate(i), rate(i)/rate(0))
			}
			b.Log(report.String())
		})
	}
}
