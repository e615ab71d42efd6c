package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// commandAgent is an agent ready to run script with sh for an item, without a broker.
// The command's stdout goes to the first buffer, its stderr to the second.
func commandAgent(t *testing.T, results string, size int, script string) (*agent, *syncBuffer, *syncBuffer) {
	t.Helper()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	a := newAgent(Config{
		BrokerURL: "amqp://u:secret@broker:5672/", Queue: "q", Command: []string{"sh", "-c", script},
		Results: results, ResultSize: size, Stdout: out, Stderr: errOut, Log: testLogWriter{t},
	})
	if err := a.validate(); err != nil {
		t.Fatal(err)
	}
	return a, out, errOut
}

func runFor(a *agent, body string) commandResult {
	return a.runCommand(newItem(amqp.Delivery{MessageId: "m1", Body: []byte(body)}))
}

// Without --results the command gets no result file and its output is not captured.
func TestResultsOffPassNoResultFile(t *testing.T) {
	a, out, _ := commandAgent(t, "", 0, `printf '%s' "${`+constants.EnvItemResultFile+`-unset}"`)
	run := runFor(a, "x")
	if !run.exitedZero() || out.String() != "unset" {
		t.Fatalf("run %+v, output %q: want exit 0 and no %s", run, out.String(), constants.EnvItemResultFile)
	}
	if run.outputFrom != "" || run.output != nil {
		t.Errorf("results off, yet output captured: %q from %q", run.output, run.outputFrom)
	}
}

func TestResultOutput(t *testing.T) {
	tests := []struct {
		name          string
		size          int
		script        string
		wantOutput    string
		wantFrom      string
		wantTruncated bool
		wantStdout    string
	}{
		{name: "the result file wins over stdout", size: 100, script: `echo to the log; printf 'the result' > "$WORKQUEUE_RESULT_FILE"`,
			wantOutput: "the result", wantFrom: outcome.OutputFromFile, wantStdout: "to the log\n"},
		{name: "the result file is cut at its end", size: 4, script: `printf 'abcdefgh' > "$WORKQUEUE_RESULT_FILE"`,
			wantOutput: "abcd", wantFrom: outcome.OutputFromFile, wantTruncated: true},
		{name: "a result file of exactly the size is whole", size: 4, script: `printf 'abcd' > "$WORKQUEUE_RESULT_FILE"`,
			wantOutput: "abcd", wantFrom: outcome.OutputFromFile},
		{name: "an empty result file is the result", size: 4, script: `echo out; : > "$WORKQUEUE_RESULT_FILE"`,
			wantOutput: "", wantFrom: outcome.OutputFromFile, wantStdout: "out\n"},
		{name: "else the end of stdout", size: 4, script: `printf 'abc'; printf 'defgh'`,
			wantOutput: "efgh", wantFrom: outcome.OutputFromStdout, wantTruncated: true, wantStdout: "abcdefgh"},
		{name: "short stdout is whole", size: 100, script: `echo hello`,
			wantOutput: "hello\n", wantFrom: outcome.OutputFromStdout, wantStdout: "hello\n"},
		{name: "a failing command's output is kept too", size: 100, script: `echo why; exit 3`,
			wantOutput: "why\n", wantFrom: outcome.OutputFromStdout, wantStdout: "why\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, errOut := commandAgent(t, "q.results", tt.size, `printf '%s' "$WORKQUEUE_RESULT_FILE" >&2; `+tt.script)
			run := runFor(a, "x")
			if !run.started {
				t.Fatalf("did not run: %v", run.err)
			}
			if string(run.output) != tt.wantOutput || run.outputFrom != tt.wantFrom || run.outputTruncated != tt.wantTruncated {
				t.Errorf("output %q from %q truncated %v, want %q from %q truncated %v",
					run.output, run.outputFrom, run.outputTruncated, tt.wantOutput, tt.wantFrom, tt.wantTruncated)
			}
			if out.String() != tt.wantStdout {
				t.Errorf("the log got %q, want %q", out.String(), tt.wantStdout)
			}
			file := errOut.String()
			if !strings.HasPrefix(file, os.TempDir()) {
				t.Errorf("result file %q, want one in %s", file, os.TempDir())
			}
			if _, err := os.Stat(filepath.Dir(file)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the result file's directory is left behind (%v)", err)
			}
		})
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{size: 5}
	var all strings.Builder
	for i := 0; i < 100; i++ {
		chunk := strings.Repeat(string(rune('a'+i%26)), i%7)
		all.WriteString(chunk)
		tb.Write([]byte(chunk))
		got, truncated := tb.bytes()
		want := all.String()
		if len(want) > 5 {
			want = want[len(want)-5:]
		}
		if string(got) != want || truncated != (all.Len() > 5) {
			t.Fatalf("after %d writes: %q truncated %v, want %q", i+1, got, truncated, want)
		}
		if cap(tb.buf) > 4*5+16 {
			t.Fatalf("buffer grew to %d", cap(tb.buf))
		}
	}
}

func TestRecordFields(t *testing.T) {
	a, _, _ := commandAgent(t, "q.results", 10, "true")
	it := newItem(amqp.Delivery{MessageId: "m1", Body: []byte("the item\nline 2"), Headers: amqp.Table{"x-delivery-count": int64(2)}})
	run := exited(2)
	run.output, run.outputFrom = []byte{0xff, 0xfe}, outcome.OutputFromStdout
	r := a.record(it, run, outcome.ResultFailed, "cannot reach amqp://u:secret@broker:5672/")
	if r.Queue != "q" || r.MessageID != "m1" || r.Item != "the item" || r.Attempt != 3 || r.Result != outcome.ResultFailed ||
		r.ExitCode == nil || *r.ExitCode != 2 || r.Pod != a.hostname || r.DurationMS != 1 || r.FinishedAt.Location().String() != "UTC" {
		t.Errorf("record %+v", r)
	}
	if strings.Contains(r.Error, "secret") || r.Error == "" {
		t.Errorf("error %q: want it redacted", r.Error)
	}
	if r.Output != "" || r.OutputBase64 != "//4=" || r.OutputFrom != outcome.OutputFromStdout {
		t.Errorf("non-UTF-8 output: %q / %q from %q", r.Output, r.OutputBase64, r.OutputFrom)
	}
}

func TestResultSizeAndResultsQueueAreValidated(t *testing.T) {
	for _, cfg := range []Config{
		{Results: "q.results", ResultSize: -1},
		{Results: "q.results", ResultSize: MaxResultSize + 1},
		{Results: "q"},
		{Results: "amq.results"},
	} {
		cfg.BrokerURL, cfg.Queue, cfg.Command = "amqp://u:p@broker/", "q", []string{"true"}
		var mis *misconfiguredError
		if err := newAgent(cfg).validate(); !errors.As(err, &mis) {
			t.Errorf("results %q size %d: %v, want a misconfiguration", cfg.Results, cfg.ResultSize, err)
		}
	}
}

// A read-only root file system leaves no /tmp: the result file goes beside the agent, which a
// Job's pod runs from its own writable emptyDir.
func TestResultFileWithoutATempDirectory(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	c, err := newResultCapture(16)
	if err != nil || c.file() == "" {
		t.Fatalf("no fallback directory: %v", err)
	}
	self, _ := os.Executable()
	if filepath.Dir(filepath.Dir(c.file())) != filepath.Dir(self) {
		t.Errorf("result file %s is not beside the agent %s", c.file(), self)
	}
	var run commandResult
	if err := c.collect(&run); err != nil || run.outputFrom != outcome.OutputFromStdout {
		t.Fatalf("collect: %v %+v", err, run)
	}
	if _, err := os.Stat(filepath.Dir(c.file())); !os.IsNotExist(err) {
		t.Error("the item's directory was left behind")
	}
}
