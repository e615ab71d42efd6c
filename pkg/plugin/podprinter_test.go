package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

func TestDescribePod(t *testing.T) {
	exit2 := 2
	cases := []struct {
		result tail.PodResult
		want   string
	}{
		{tail.PodResult{Pod: "p", Succeeded: true, Duration: 1200 * time.Millisecond, Outcome: &outcome.Outcome{Result: outcome.ResultDone, Item: "apple", Attempt: 1}},
			`p  done  "apple"  attempt 1  (1.2s)`},
		{tail.PodResult{Pod: "p", Outcome: &outcome.Outcome{Result: outcome.ResultFailed, Item: "a\nb", Attempt: 2, ExitCode: &exit2}},
			`p  FAILED (exit 2)  "a\\nb"  attempt 2, requeued  (0s)`},
		{tail.PodResult{Pod: "p", Succeeded: true, Outcome: &outcome.Outcome{Result: outcome.ResultEmpty}},
			`p  no item left in the queue  (0s)`},
		{tail.PodResult{Pod: "p", Succeeded: true, Outcome: &outcome.Outcome{Result: outcome.ResultEmpty, Processed: 40, Failed: 1}},
			`p  drained: 40 items done, 1 failed attempt  (0s)`},
		{tail.PodResult{Pod: "p", Succeeded: true, Duration: 10 * time.Second}, `p  succeeded  (10s)`},
		{tail.PodResult{Pod: "p", ExitCode: 137, Reason: "OOMKilled", Message: "line 1\nTraceback: boom"},
			`p  failed: OOMKilled (exit 137)  (0s): Traceback: boom`},
	}
	for _, tc := range cases {
		if got := describePod(tc.result); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestPodPrinterKeepsTheProgressLineBelowPodLines(t *testing.T) {
	var out, errOut bytes.Buffer
	p := newPodPrinter(&out, &errOut, true)
	total := int32(8)
	p.progress(tail.Progress{Succeeded: 1, Active: 2, Completions: &total, ItemsDone: 1})
	p.pod(tail.PodResult{Pod: "p2", Succeeded: true})
	p.clear()
	if !strings.Contains(errOut.String(), "pods: 1 succeeded, 0 failed, 2 running (of 8)") || !strings.HasSuffix(errOut.String(), "\r\033[K") {
		t.Fatalf("terminal progress %q", errOut.String())
	}
	if out.String() != "p2  succeeded  (0s)\n" {
		t.Fatalf("pod lines %q", out.String())
	}

	out.Reset()
	errOut.Reset()
	plain := newPodPrinter(&out, &errOut, false)
	plain.progress(tail.Progress{Succeeded: 1})
	plain.logLine("p3", "hello")
	if errOut.Len() != 0 || out.String() != "[p3] hello\n" {
		t.Fatalf("without a terminal: stderr %q stdout %q", errOut.String(), out.String())
	}
}

// A log line of any length is printed whole; one over bufio.Scanner's limit used to end the
// pod's stream without a word.
