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
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// A build of the plugin, as one way of installing it makes it.
type build struct {
	name string
	cgo  bool
	args []string
	// documented: the README or krew installs it so, and it must meet the memory target.
	documented bool
}

// builds are the README's two install paths, and `go install` with cgo left on, which a C
// compiler makes the default: linking Go's plugin package (kustomize's, through cli-runtime) makes
// that build an externally linked binary that peaks near 80 MiB, hence the README's CGO_ENABLED=0.
var builds = []build{
	{name: "krew", args: []string{"-trimpath", "-ldflags", "-s -w"}, documented: true}, // .goreleaser.yaml
	{name: "go-install", documented: true},                                             // README: CGO_ENABLED=0 go install
	{name: "go-install-cgo", cgo: true},
}

// maxPeakRSS is fill's memory target on a million items: under 64 MB.
const maxPeakRSS = 64_000_000

// buildPlugin builds the binary under test, as users get it.
func buildPlugin(b *testing.B, how build) string {
	bin := filepath.Join(b.TempDir(), "kubectl-workqueue-"+how.name)
	args := append(append([]string{"build"}, how.args...), "-o", bin, "../../cmd/kubectl-workqueue")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if how.cgo {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", how.name, err, out)
	}
	return bin
}

// haveCCompiler says whether cgo can build here: go env CC names a program on the PATH.
func haveCCompiler() bool {
	out, err := exec.Command("go", "env", "CC").Output()
	if err != nil {
		return false
	}
	fields := strings.Fields(string(out))
	if len(fields) == 0 {
		return false
	}
	_, err = exec.LookPath(fields[0])
	return err == nil
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
	b.Cleanup(func() { deleteQueue(url, name) })
	return name
}

// deleteQueue deletes a queue freshQueue declared, and its dead-letter queue.
func deleteQueue(url, name string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	ch.QueueDelete(name, false, false, false)
	ch.QueueDelete(queue.DeadLetterName(name), false, false, false)
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
// item, and measures fill's peak RSS on a million items with each build in builds; a documented
// build at or over 64 MB fails the benchmark.
func BenchmarkFill(b *testing.B) {
	url := testbroker.URL(b)
	binaries := map[string]string{}
	for _, how := range builds {
		if how.cgo && !haveCCompiler() {
			b.Logf("no C compiler: the %s build is not measured", how.name)
			continue
		}
		binaries[how.name] = buildPlugin(b, how)
	}
	plugin := binaries["krew"]
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
		peaks := map[string]run{}
		for _, how := range builds {
			bin, ok := binaries[how.name]
			if !ok {
				continue
			}
			q = freshQueue(b, url, "rss-"+how.name)
			peaks[how.name] = timed(b, exec.Command(bin, "fill", q, "--broker-url", url, "--from-file", big, "--quiet"))
			if got := depth(b, url, q); got != bigN {
				b.Fatalf("%s build: fill stored %d of %d items", how.name, got, bigN)
			}
			deleteQueue(url, q) // a million items less for the broker to hold during the next fill
		}

		fillRate, linesRate, loopRate := rate(2*n, fillTime), rate(2*n, linesTime), rate(loopN, loop.elapsed)
		b.ReportMetric(fillRate, "fill-items/s")
		b.ReportMetric(fillRate/linesRate, "x-amqp-publish-l")
		b.ReportMetric(fillRate/loopRate, "x-publish-loop")
		fmt.Printf("\nfill 2 x %d items:           %8.0f items/s (confirmed)\n", n, fillRate)
		fmt.Printf("amqp-publish -l 2 x %d items: %8.0f items/s (no confirms)   fill = %.2fx (target >= 0.8x)\n", n, linesRate, fillRate/linesRate)
		fmt.Printf("amqp-publish loop, %d items:  %8.0f items/s               fill = %.0fx (target >= 100x)\n", loopN, loopRate, fillRate/loopRate)
		for _, how := range builds {
			peak, ok := peaks[how.name]
			if !ok {
				continue
			}
			mib := float64(peak.maxRSS) / (1 << 20)
			b.ReportMetric(mib, "MiB-peak-RSS-1M-"+how.name)
			target := "target < 64 MB"
			if !how.documented {
				target = "not a documented install: no target"
			}
			fmt.Printf("fill %d items, %s build: %.1fs, peak RSS %.1f MiB (%s)\n", bigN, how.name, peak.elapsed.Seconds(), mib, target)
			if how.documented && peak.maxRSS >= maxPeakRSS {
				b.Errorf("fill of %d items, %s build: peak RSS %.1f MiB, over the 64 MB (%.1f MiB) target", bigN, how.name, mib, float64(maxPeakRSS)/(1<<20))
			}
		}
	}
}
