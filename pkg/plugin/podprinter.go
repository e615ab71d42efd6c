package plugin

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

// podPrinter prints a line per finished pod on out and, on a terminal, a progress line on errOut
// that the other lines scroll above.
type podPrinter struct {
	mu       sync.Mutex
	out      io.Writer
	errOut   io.Writer
	tty      bool
	lastLine string
}

func newPodPrinter(out, errOut io.Writer, tty bool) *podPrinter {
	return &podPrinter{out: out, errOut: errOut, tty: tty}
}

func (p *podPrinter) pod(r tail.PodResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintln(p.out, describePod(r))
	p.redrawLocked()
}

func (p *podPrinter) logLine(pod, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.out, "[%s] %s\n", pod, line)
	p.redrawLocked()
}

// warning prints a line about the Job on the error stream, keeping the progress bar below it.
func (p *podPrinter) warning(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintln(p.errOut, line)
	p.redrawLocked()
}

func (p *podPrinter) progress(pr tail.Progress) {
	if !p.tty {
		return
	}
	total := "?"
	if pr.Completions != nil {
		total = fmt.Sprint(*pr.Completions)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastLine = fmt.Sprintf("pods: %d succeeded, %d failed, %d running (of %s) | items: %d done, %d failed attempts",
		pr.Succeeded, pr.Failed, pr.Active, total, pr.ItemsDone, pr.ItemsFailed)
	p.redrawLocked()
}

func (p *podPrinter) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	p.lastLine = ""
}

func (p *podPrinter) clearLocked() {
	if p.tty && p.lastLine != "" {
		fmt.Fprint(p.errOut, "\r\033[K")
	}
}

func (p *podPrinter) redrawLocked() {
	if p.tty && p.lastLine != "" {
		fmt.Fprint(p.errOut, p.lastLine)
	}
}

// describePod is one line: pod, outcome, item, duration.
func describePod(r tail.PodResult) string {
	duration := r.Duration.Round(100 * time.Millisecond).String()
	o := r.Outcome
	if o == nil { // no agent: all we know is how the image's entrypoint exited
		if r.Succeeded {
			return fmt.Sprintf("%s  succeeded  (%s)", r.Pod, duration)
		}
		last := ""
		if lines := strings.Split(r.Message, "\n"); r.Message != "" {
			last = ": " + truncate(lines[len(lines)-1], 120)
		}
		return fmt.Sprintf("%s  failed: %s  (%s)%s", r.Pod, exitDescription(r), duration, last)
	}
	item := ""
	if o.Item != "" {
		item = fmt.Sprintf("  %q", truncate(o.Item, 60))
	}
	switch o.Result {
	case outcome.ResultDone:
		if o.Processed > 1 {
			return fmt.Sprintf("%s  done: %d items, %d %s  (%s)", r.Pod, o.Processed, o.Failed, plural(o.Failed, "failed attempt"), duration)
		}
		return fmt.Sprintf("%s  done%s  attempt %d  (%s)", r.Pod, item, o.Attempt, duration)
	case outcome.ResultEmpty:
		if o.Processed > 0 || o.Failed > 0 {
			return fmt.Sprintf("%s  drained: %d items done, %d %s  (%s)", r.Pod, o.Processed, o.Failed, plural(o.Failed, "failed attempt"), duration)
		}
		return fmt.Sprintf("%s  no item left in the queue  (%s)", r.Pod, duration)
	case outcome.ResultFailed:
		code := ""
		if o.ExitCode != nil {
			code = fmt.Sprintf(" (exit %d)", *o.ExitCode)
		}
		return fmt.Sprintf("%s  FAILED%s%s  attempt %d, requeued  (%s)", r.Pod, code, item, o.Attempt, duration)
	case outcome.ResultInterrupted:
		return fmt.Sprintf("%s  interrupted%s, requeued  (%s)", r.Pod, item, duration)
	default:
		return fmt.Sprintf("%s  error: %s  (%s)", r.Pod, o.Error, duration)
	}
}

func exitDescription(r tail.PodResult) string {
	if r.Reason != "" {
		return fmt.Sprintf("%s (exit %d)", r.Reason, r.ExitCode)
	}
	return fmt.Sprintf("exit %d", r.ExitCode)
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", `\n`)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
