//go:build benche2e

package benche2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// BenchmarkFillPortForward publishes the same FILL_ITEMS (default 100,000) items into the
// in-cluster broker with `kubectl workqueue fill` (its own port-forward, persistent, confirmed)
// and with `amqp-publish -l -p` (Debian's amqp-tools, unconfirmed) through `kubectl port-forward
// svc/rabbitmq-service`, in mirrored rounds (fill, amqp-publish, amqp-publish, fill), and counts
// the items in each queue afterwards.
func BenchmarkFillPortForward(b *testing.B) {
	ns := setup(b)
	if _, err := exec.LookPath("amqp-publish"); err != nil {
		b.Skip("amqp-publish not found (apt-get install amqp-tools)")
	}
	n := envInt("FILL_ITEMS", 100_000)
	items := writeItems(b, n)
	url := portForward(b, ns)

	type round struct {
		tool    string
		elapsed time.Duration
		stored  int
		rss     int64
	}
	var rounds []round
	for i, tool := range []string{"fill", "amqp-publish", "amqp-publish", "fill"} {
		q := fmt.Sprintf("fill-bench-%d", i)
		var cmd *exec.Cmd
		if tool == "fill" {
			cmd = pluginCmd(context.Background(), ns, "fill", q, "--from-file", items, "-q")
		} else {
			// The queue fill would create, declared beforehand, so both tools write to the same kind.
			conn, err := queue.Dial(url)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := queue.Declare(conn, queue.Spec{Name: q, Type: queue.Quorum, MaxAttempts: 3}); err != nil {
				b.Fatal(err)
			}
			conn.Close()
			cmd = exec.Command("amqp-publish", "--url", url, "-r", q, "-p", "-l")
			f, err := os.Open(items)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		out := &lineRecorder{}
		cmd.Stdout, cmd.Stderr = out, out
		fmt.Fprintf(os.Stderr, "%s  %s: %d items ...\n", time.Now().Format("15:04:05"), tool, n)
		r := timed(b, cmd, func() string { return fmt.Sprint(out.all()) })
		rounds = append(rounds, round{tool: tool, elapsed: r.elapsed, stored: depth(b, url, q), rss: r.maxRSS})
		exec.Command(plugin, "delete", q, "--yes", "--kubeconfig", kubeconfig, "-n", ns).Run()
	}
	fmt.Printf("\n%d items into the in-cluster broker through a port-forward, mirrored rounds (the machine may be shared)\n", n)
	fmt.Printf("%-40s %8s %9s %10s %9s\n", "tool", "seconds", "items/s", "in queue", "peak RSS")
	rate := map[string]float64{}
	for _, r := range rounds {
		name := "kubectl workqueue fill (own port-forward)"
		if r.tool != "fill" {
			name = "amqp-publish -l -p (kubectl port-forward)"
		}
		fmt.Printf("%-40s %8.1f %9.0f %10d %7.1f MiB\n", name, r.elapsed.Seconds(), float64(n)/r.elapsed.Seconds(), r.stored, float64(r.rss)/(1<<20))
		rate[r.tool] += float64(n) / r.elapsed.Seconds() / 2
	}
	fmt.Printf("fill = %.2fx amqp-publish -l (mean rates of two rounds each)\n", rate["fill"]/rate["amqp-publish"])
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)

// portForward runs `kubectl port-forward svc/rabbitmq-service :5672` for the benchmark and
// returns the broker's URL through it.
func portForward(b *testing.B, ns string) string {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "port-forward", "svc/rabbitmq-service", ":5672")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if m := forwarding.FindStringSubmatch(s.Text()); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p := <-port:
		return "amqp://guest:guest@127.0.0.1:" + p
	case <-time.After(30 * time.Second):
		b.Fatal("kubectl port-forward did not start")
	}
	return ""
}

// depth is the queue's message count once it stops changing (amqp-publish has no confirms, and a
// quorum queue's count lags a little).
func depth(b *testing.B, url, name string) int {
	conn, err := queue.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	n := -1
	for range 60 {
		m, err := queue.Depth(conn, name)
		if err != nil {
			b.Fatal(err)
		}
		if m == n {
			break
		}
		n = m
		time.Sleep(500 * time.Millisecond)
	}
	return n
}
