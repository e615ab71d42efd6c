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
// binary (drain mode) and with `amqp-consume -p 1 -c N` (the seed's tool), both starting one
// process per item with prefetch 1, and reports both rates and their ratio (agent/amqp-consume;
// the target is at least 1.0). A third contender, hack/agentfloor, shows how close any Go agent
// can come: the same loop stripped to amqp-consume's work on one thread. WORKQUEUE_BENCH_ITEMS
// sets how many items each drains per iteration (default 1000, in two rounds); WORKQUEUE_BENCH_COMMAND sets the command, split on
// spaces (default cat, its output discarded; not true: amqp-consume dies of SIGPIPE when a command
// exits without reading its item).
//
//	WORKQUEUE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ go test -run '^$' -bench DrainRate ./pkg/agent
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
	agentBinary := filepath.Join(b.TempDir(), "workqueue-agent")
	build := exec.Command("go", "build", "-o", agentBinary, "../../cmd/workqueue-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the agent: %v\n%s", err, out)
	}
	// The floor: the same loop stripped to amqp-consume's work, in Go (hack/agentfloor).
	floorBinary := filepath.Join(b.TempDir(), "agentfloor")
	build = exec.Command("go", "build", "-o", floorBinary, "../../hack/agentfloor")
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
			drainWithAgent := func() time.Duration {
				agent := exec.Command(agentBinary, "--mode", "drain", "--idle", idle.String(), "--queue", queue,
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
			drainWithAmqpConsume := func() time.Duration {
				consume := exec.Command("amqp-consume", "--url", toolURL, "-q", queue, "-p", "1", "-c", strconv.Itoa(len(messages)))
				consume.Args = append(consume.Args, command...)
				consume.Stdout, consume.Stderr = devNull, devNull
				start := time.Now()
				err := consume.Run()
				elapsed := time.Since(start)
				if err != nil {
					b.Fatalf("amqp-consume: %v", err)
				}
				if n := testbroker.Ready(b, queue); n != 0 {
					b.Fatalf("amqp-consume left %d items", n)
				}
				return elapsed
			}
			drainWithFloor := func() time.Duration {
				floor := exec.Command(floorBinary, brokerURL, queue, strconv.Itoa(len(messages)))
				floor.Args = append(floor.Args, command...)
				floor.Stdout, floor.Stderr = devNull, devNull
				start := time.Now()
				err := floor.Run()
				elapsed := time.Since(start)
				if err != nil {
					b.Fatalf("agentfloor: %v", err)
				}
				if n := testbroker.Ready(b, queue); n != 0 {
					b.Fatalf("agentfloor left %d items", n)
				}
				return elapsed
			}
			const agent, amqpConsume, floor = 0, 1, 2
			var elapsed [3]time.Duration
			b.ResetTimer()
			for range b.N {
				// Rounds in a mirrored order, so that a load that changes during the run (the
				// machine may be shared) weighs on all three alike.
				for _, turn := range []int{agent, amqpConsume, floor, floor, amqpConsume, agent} {
					b.StopTimer()
					testbroker.Publish(b, queue, messages...)
					b.StartTimer()
					switch turn {
					case agent:
						elapsed[turn] += drainWithAgent()
					case amqpConsume:
						elapsed[turn] += drainWithAmqpConsume()
					case floor:
						elapsed[turn] += drainWithFloor()
					}
				}
			}
			b.StopTimer()
			items := 2 * len(messages) * b.N
			agentRate := float64(items) / elapsed[agent].Seconds()
			consumeRate := float64(items) / elapsed[amqpConsume].Seconds()
			floorRate := float64(items) / elapsed[floor].Seconds()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(agentRate, "agent-items/s")
			b.ReportMetric(consumeRate, "amqp-consume-items/s")
			b.ReportMetric(agentRate/consumeRate, "ratio")
			b.ReportMetric(floorRate/consumeRate, "floor-ratio")
			b.Logf("%s queue, %d items, command %q: agent %.0f items/s, amqp-consume -p 1 %.0f items/s, ratio %.2fx; Go floor (hack/agentfloor) %.0f items/s, %.2fx",
				spec.name, items, command, agentRate, consumeRate, agentRate/consumeRate, floorRate, floorRate/consumeRate)
		})
	}
}
