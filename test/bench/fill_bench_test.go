// Package bench measures kubectl-workqueue against the seed's own tools on the local RabbitMQ,
// in the same run, and reports ratios. Run with `make bench` (go test -bench . -benchtime 1x).
package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// buildPlugin builds the binary under test, as users get it.
func buildPlugin(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "kubectl-workqueue")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../../cmd/kubectl-workqueue")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

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

// freshQueue declares the same durable quorum queue fill would, so every tool publishes to the
// same kind of queue, and deletes it afterwards.
func freshQueue(b *testing.B, url, tag string) string {
	name := fmt.Sprintf("bench-%s-%d", tag, time.Now().UnixNano())
	conn, err := queue.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := queue.Declare(conn, queue.Spec{Name: name, Type: queue.Quorum, MaxAttempts: 3}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer conn.Close()
		ch, _ := conn.Channel()
		ch.QueueDelete(name, false, false, false)
		ch.QueueDelete(queue.DeadLetterName(name), false, false, false)
	})
	return name
}

func depth(b *testing.B, url, name string) int {
	conn, err := queue.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Confirms mean stored; amqp-publish has none, so give the broker a moment to count.
	var n int
	for range 50 {
		if n, err = queue.Depth(conn, name); err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if m, _ := queue.Depth(conn, name); m == n {
			break
		}
	}
	return n
}

type run struct {
	elapsed time.Duration
	maxRSS  int64 // bytes
}

func timed(b *testing.B, cmd *exec.Cmd) run {
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Args[0], err, out)
	}
	r := run{elapsed: time.Since(start)}
	if usage, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = usage.Maxrss * 1024
	}
	return r
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// BenchmarkFill compares `kubectl workqueue fill --broker-url` (persistent, mandatory, confirmed)
// with `amqp-publish -l` (persistent, unconfirmed) and the seed's loop of one amqp-publish per
// item, and measures fill's peak RSS on a million items.
func BenchmarkFill(b *testing.B) {
	url := testbroker.URL(b)
	plugin := buildPlugin(b)
	const n, loopN, bigN = 200_000, 500, 1_000_000
	file := writeItems(b, n)

	fillOnce := func() time.Duration {
		q := freshQueue(b, url, "fill")
		fill := timed(b, exec.Command(plugin, "fill", q, "--broker-url", url, "--from-file", file, "--quiet"))
		if got := depth(b, url, q); got != n {
			b.Fatalf("fill stored %d of %d items", got, n)
		}
		return fill.elapsed
	}
	publishLinesOnce := func() time.Duration {
		q := freshQueue(b, url, "amqp-publish-l")
		in, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		publish := exec.Command("amqp-publish", "--url", url, "-r", q, "-p", "-l")
		publish.Stdin = in
		lines := timed(b, publish)
		if got := depth(b, url, q); got != n {
			b.Logf("amqp-publish -l stored %d of %d items (no confirms: it cannot know)", got, n)
		}
		return lines.elapsed
	}

	for b.Loop() {
		// Mirrored rounds (fill, amqp-publish, amqp-publish, fill), so that neither tool always
		// meets the broker first or a load that changes during the run weighs on one only.
		var fillTime, linesTime time.Duration
		fillTime += fillOnce()
		linesTime += publishLinesOnce()
		linesTime += publishLinesOnce()
		fillTime += fillOnce()

		q := freshQueue(b, url, "loop")
		start := time.Now()
		for i := range loopN {
			cmd := exec.Command("amqp-publish", "--url", url, "-r", q, "-p", "-b", "item-"+strconv.Itoa(i))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("amqp-publish: %v %s", err, out)
			}
		}
		loop := run{elapsed: time.Since(start)}

		big := writeItems(b, bigN)
		q = freshQueue(b, url, "rss")
		bigFill := timed(b, exec.Command(plugin, "fill", q, "--broker-url", url, "--from-file", big, "--quiet"))

		fillRate, linesRate, loopRate := rate(2*n, fillTime), rate(2*n, linesTime), rate(loopN, loop.elapsed)
		b.ReportMetric(fillRate, "fill-items/s")
		b.ReportMetric(fillRate/linesRate, "x-amqp-publish-l")
		b.ReportMetric(fillRate/loopRate, "x-publish-loop")
		b.ReportMetric(float64(bigFill.maxRSS)/(1<<20), "MiB-peak-RSS-1M")
		fmt.Printf("\nfill 2 x %d items:           %8.0f items/s (confirmed)\n", n, fillRate)
		fmt.Printf("amqp-publish -l 2 x %d items: %8.0f items/s (no confirms)   fill = %.2fx (target >= 0.8x)\n", n, linesRate, fillRate/linesRate)
		fmt.Printf("amqp-publish loop, %d items:  %8.0f items/s               fill = %.0fx (target >= 100x)\n", loopN, loopRate, fillRate/loopRate)
		fmt.Printf("fill %d items: %.1fs, peak RSS %.1f MiB (target < 64 MB)\n", bigN, bigFill.elapsed.Seconds(), float64(bigFill.maxRSS)/(1<<20))
	}
}
