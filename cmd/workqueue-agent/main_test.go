package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

const testVersion = "v9.8.7-test"

var (
	buildOnce   sync.Once
	builtBinary string
	buildErr    error
	buildDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// agentBinary builds the agent the way a release does: static, with the version stamped in.
func agentBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "workqueue-agent-test-")
		if buildErr != nil {
			return
		}
		builtBinary = filepath.Join(buildDir, "workqueue-agent")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", builtBinary, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, output: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build the agent: %v", buildErr)
	}
	return builtBinary
}

type buildError struct {
	err    error
	output string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.output }

type processResult struct {
	exitCode       int
	stdout, stderr string
}

func runBinary(t *testing.T, env []string, args ...string) processResult {
	t.Helper()
	cmd := exec.Command(agentBinary(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("run the agent: %v", err)
	}
	return processResult{exitCode: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// baseEnv is a minimal environment: PATH only, so that nothing from the test's own environment
// (BROKER_URL, QUEUE) leaks in unless a test sets it.
func baseEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, extra...)
}

func TestVersionIsStampedAtBuildTime(t *testing.T) {
	got := runBinary(t, baseEnv(), "version")
	if got.exitCode != 0 || strings.TrimSpace(got.stdout) != testVersion {
		t.Errorf("version: exit %d, output %q", got.exitCode, got.stdout)
	}
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(agentBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatalf("the agent is dynamically linked: the init container image has no libc")
		}
	}
}

func TestCopySelfInstallsAnExecutableCopy(t *testing.T) {
	dir := t.TempDir()
	for _, dest := range []string{filepath.Join(dir, "agent"), dir} {
		got := runBinary(t, baseEnv(), "copy-self", dest)
		if got.exitCode != 0 {
			t.Fatalf("copy-self %s: exit %d: %s", dest, got.exitCode, got.stderr)
		}
	}
	for _, copied := range []string{filepath.Join(dir, "agent"), filepath.Join(dir, "workqueue-agent")} {
		info, err := os.Stat(copied)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", copied, info.Mode().Perm())
		}
		out, err := exec.Command(copied, "version").Output()
		if err != nil || strings.TrimSpace(string(out)) != testVersion {
			t.Errorf("the copy does not run: %v %q", err, out)
		}
	}
	if got := runBinary(t, baseEnv(), "copy-self"); got.exitCode != outcome.ExitMisconfigured {
		t.Errorf("copy-self without DEST: exit %d", got.exitCode)
	}
	if got := runBinary(t, baseEnv(), "copy-self", filepath.Join(dir, "missing", "agent")); got.exitCode != outcome.ExitMisconfigured || !strings.Contains(got.stderr, "cannot copy the agent") {
		t.Errorf("copy-self into a missing directory: exit %d, %s", got.exitCode, got.stderr)
	}
}

func TestMisconfigurationExitsWithItsCode(t *testing.T) {
	termLog := filepath.Join(t.TempDir(), "termination-log")
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no BROKER_URL", baseEnv("QUEUE=q"), []string{"--termination-log", termLog, "--", "true"}, "BROKER_URL is not set"},
		{"no queue", baseEnv("BROKER_URL=amqp://u:secret-pw@h/"), []string{"--termination-log", termLog, "--", "true"}, "no queue given"},
		{"no command", baseEnv("BROKER_URL=amqp://u:secret-pw@h/", "QUEUE=q"), []string{"--termination-log", termLog}, "no command given"},
		{"bad mode from the environment", baseEnv("BROKER_URL=amqp://u:secret-pw@h/", "QUEUE=q", "WORKQUEUE_MODE=every"), []string{"--termination-log", termLog, "--", "true"}, `unknown mode "every"`},
		{"unknown flag", baseEnv(), []string{"--termination-log", termLog, "--broker", "amqp://x", "--", "true"}, "flag provided but not defined: -broker"},
		{"negative timeout", baseEnv(), []string{"--termination-log", termLog, "--timeout", "-1s", "--", "true"}, "--timeout must not be negative"},
		{"negative max attempts", baseEnv(), []string{"--termination-log", termLog, "--max-attempts", "-1", "--", "true"}, "--max-attempts must not be negative"},
		{"no broker outage", baseEnv(), []string{"--termination-log", termLog, "--broker-outage", "0s", "--", "true"}, "--broker-outage must be positive"},
		{"result size 0", baseEnv(), []string{"--termination-log", termLog, "--results", "q.results", "--result-size", "0", "--", "true"}, "--result-size must be 1 to 16777216 bytes"},
		{"result size over 16 MiB", baseEnv(), []string{"--termination-log", termLog, "--result-size", "16777217", "--", "true"}, "--result-size must be 1 to 16777216 bytes"},
		{"results into the work queue", baseEnv("BROKER_URL=amqp://u:secret-pw@h/", "QUEUE=q"), []string{"--termination-log", termLog, "--results", "q", "--", "true"}, `use "q.results"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runBinary(t, tt.env, tt.args...)
			if got.exitCode != outcome.ExitMisconfigured {
				t.Errorf("exit %d, want %d; stderr:\n%s", got.exitCode, outcome.ExitMisconfigured, got.stderr)
			}
			if !strings.Contains(got.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, got.stderr)
			}
			if strings.Contains(got.stderr, "secret-pw") {
				t.Errorf("the password leaked:\n%s", got.stderr)
			}
			data, err := os.ReadFile(termLog)
			if err != nil {
				t.Fatal(err)
			}
			if o, err := outcome.Decode(string(data)); err != nil || o.Result != outcome.ResultError {
				t.Errorf("termination message %q: %v", data, err)
			}
		})
	}
}

// The remaining tests use amqp-tools as the seed does (amqp-declare-queue -d, amqp-publish),
// so they also prove that the agent works on the seed's own queues and messages.

func brokerForTools(t *testing.T) (agentURL, toolURL string) {
	t.Helper()
	return testbroker.URL(t), testbroker.ToolURL(t)
}

func seedQueue(t *testing.T, toolURL string, bodies ...string) string {
	t.Helper()
	queue := testbroker.QueueName(t, "agent-bin")
	tool(t, "amqp-declare-queue", "--url", toolURL, "-q", queue, "-d")
	for _, body := range bodies {
		tool(t, "amqp-publish", "--url", toolURL, "-r", queue, "-p", "-b", body)
	}
	return queue
}

func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
}

func TestProcessExitCodesAgainstARealBroker(t *testing.T) {
	agentURL, toolURL := brokerForTools(t)
	queue := seedQueue(t, toolURL, "apple", "banana")
	dir := t.TempDir()
	termLog := filepath.Join(dir, "termination-log")
	env := baseEnv("BROKER_URL="+agentURL, "QUEUE="+queue)

	// One item succeeds; the command's output reaches the agent's stdout.
	got := runBinary(t, env, "--termination-log", termLog, "--", "sh", "-c", `echo "worked on $(cat)"`)
	if got.exitCode != outcome.ExitOK || !strings.Contains(got.stdout, "worked on apple") {
		t.Fatalf("first item: exit %d, stdout %q, stderr %q", got.exitCode, got.stdout, got.stderr)
	}
	if !strings.Contains(got.stderr, `"apple" attempt 1: done in`) {
		t.Errorf("stderr: %s", got.stderr)
	}

	// The next item fails: exit 3, and the item stays on the queue.
	got = runBinary(t, env, "--termination-log", termLog, "--", "sh", "-c", "exit 9")
	if got.exitCode != outcome.ExitItemFailed {
		t.Fatalf("failing item: exit %d, stderr %q", got.exitCode, got.stderr)
	}
	data, _ := os.ReadFile(termLog)
	o, err := outcome.Decode(string(data))
	if err != nil || o.Result != outcome.ResultFailed || o.Item != "banana" || o.ExitCode == nil || *o.ExitCode != 9 {
		t.Errorf("termination message %q (%v)", data, err)
	}

	// Drain mode (chosen through WORKQUEUE_MODE) takes the requeued item, on its second attempt.
	got = runBinary(t, append(env, "WORKQUEUE_MODE=drain"), "--idle", "1s", "--termination-log", termLog, "--", "sh", "-c", `echo "attempt $WORKQUEUE_ATTEMPT of $(cat)"`)
	if got.exitCode != outcome.ExitOK || !strings.Contains(got.stdout, "attempt 2 of banana") {
		t.Fatalf("drain: exit %d, stdout %q, stderr %q", got.exitCode, got.stdout, got.stderr)
	}
	data, _ = os.ReadFile(termLog)
	if o, err := outcome.Decode(string(data)); err != nil || o.Result != outcome.ResultDone || o.Processed != 1 {
		t.Errorf("termination message %q (%v)", data, err)
	}

	// The queue is empty now: exit 0 in both modes.
	for _, mode := range []string{"one", "drain"} {
		got = runBinary(t, env, "--mode", mode, "--idle", "1s", "--termination-log", termLog, "--", "true")
		data, _ = os.ReadFile(termLog)
		if got.exitCode != outcome.ExitOK || !strings.Contains(string(data), `"result":"empty"`) {
			t.Errorf("%s mode on an empty queue: exit %d, %s, %s", mode, got.exitCode, data, got.stderr)
		}
	}
}

func TestSigtermMidItemExitsInterruptedAndRequeues(t *testing.T) {
	agentURL, toolURL := brokerForTools(t)
	queue := seedQueue(t, toolURL, "long item")
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	termLog := filepath.Join(dir, "termination-log")

	cmd := exec.Command(agentBinary(t), "--queue", queue, "--termination-log", termLog, "--", "sh", "-c", `touch "$0"; exec sleep 600`, started)
	cmd.Env = baseEnv("BROKER_URL=" + agentURL)
	interruptOnceStarted(t, cmd, "the command never started", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	data, _ := os.ReadFile(termLog)
	if o, err := outcome.Decode(string(data)); err != nil || o.Result != outcome.ResultInterrupted || o.Item != "long item" {
		t.Errorf("termination message %q (%v)", data, err)
	}

	// The item went back to the queue: the next agent gets it.
	got := runBinary(t, baseEnv("BROKER_URL="+agentURL, "QUEUE="+queue), "--termination-log", termLog, "--", "cat")
	if got.exitCode != outcome.ExitOK || got.stdout != "long item" {
		t.Errorf("after the interruption: exit %d, stdout %q, stderr %s", got.exitCode, got.stdout, got.stderr)
	}
}

// A drain agent keeps the next item ready while a short command runs; stopped by SIGTERM, it
// gives that item back unstarted with the interrupted one, and the next agent does both.
func TestSigtermInDrainModeGivesBackTheItemHeldUnstarted(t *testing.T) {
	agentURL, toolURL := brokerForTools(t)
	queue := seedQueue(t, toolURL, "quick", "slow", "held")
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	termLog := filepath.Join(dir, "termination-log")
	// "quick" ends at once, so that the agent moves to prefetch 2; "slow" runs until SIGTERM.
	script := `read item; case "$item" in slow) trap 'exit 143' TERM; touch "$0"; while :; do sleep 0.05; done;; esac`
	cmd := exec.Command(agentBinary(t), "--mode", "drain", "--queue", queue, "--termination-log", termLog, "--", "sh", "-c", script, started)
	cmd.Env = baseEnv("BROKER_URL=" + agentURL)
	stderr := interruptOnceStarted(t, cmd, "the command never started, or the agent does not hold the next item", func() bool {
		_, err := os.Stat(started)
		return err == nil && testbroker.Ready(t, queue) == 0 // "held" is the agent's
	})
	if !strings.Contains(stderr.String(), `"held" attempt 1: not started; given back to the queue`) {
		t.Errorf("stderr:\n%s", stderr.String())
	}

	got := runBinary(t, baseEnv("BROKER_URL="+agentURL, "QUEUE="+queue), "--mode", "drain", "--idle", "1s", "--termination-log", termLog, "--", "cat")
	if got.exitCode != outcome.ExitOK || got.stdout != "slowheld" {
		t.Errorf("after the interruption: exit %d, stdout %q, stderr %s", got.exitCode, got.stdout, got.stderr)
	}
}

// With --results, the record of each settled attempt reaches the results queue, from the binary too.
func TestResultRecordsFromTheBinary(t *testing.T) {
	agentURL, toolURL := brokerForTools(t)
	name := seedQueue(t, toolURL, "apple")
	conn, err := queue.Dial(agentURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := queue.DeclareResults(conn, name); err != nil {
		t.Fatal(err)
	}
	termLog := filepath.Join(t.TempDir(), "termination-log")
	got := runBinary(t, baseEnv("BROKER_URL="+agentURL, "QUEUE="+name), "--results", queue.ResultsName(name), "--result-size", "8",
		"--termination-log", termLog, "--", "sh", "-c", `echo "worked on $(cat)"`)
	if got.exitCode != outcome.ExitOK || !strings.Contains(got.stdout, "worked on apple") {
		t.Fatalf("exit %d, stdout %q, stderr %q", got.exitCode, got.stdout, got.stderr)
	}
	records := testbroker.Drain(t, queue.ResultsName(name))
	if len(records) != 1 {
		t.Fatalf("%d records, want 1", len(records))
	}
	r, err := outcome.DecodeRecord(records[0].Body)
	if err != nil || r.Result != outcome.ResultDone || r.Item != "apple" || r.Output != "n apple\n" || !r.OutputTruncated || r.OutputFrom != outcome.OutputFromStdout {
		t.Errorf("record %+v (%v)", r, err)
	}
}

// The usage text names every exit code of pkg/outcome, the contract the Job's podFailurePolicy uses.
func TestUsageNamesEveryExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != outcome.ExitOK {
		t.Fatalf("--help exited %d", code)
	}
	usage := stdout.String() + stderr.String()
	for _, code := range []int{outcome.ExitOK, outcome.ExitItemFailed, outcome.ExitInterrupted, outcome.ExitMisconfigured, outcome.ExitBrokerUnreachable, outcome.ExitCannotStart, outcome.ExitBrokerLost} {
		if !regexp.MustCompile(fmt.Sprintf(`\b%d [a-z]`, code)).MatchString(usage) {
			t.Errorf("the usage text does not name exit code %d:\n%s", code, usage)
		}
	}
	for _, want := range []string{"-results string", "-result-size int", "(default 4096)", "WORKQUEUE_RESULT_FILE", "1 to 16777216", "-broker-outage duration", "(default 5m0s)"} {
		if !strings.Contains(usage, want) {
			t.Errorf("the usage text lacks %q:\n%s", want, usage)
		}
	}
}

// interruptOnceStarted starts the agent cmd, waits up to a minute for started to hold (or fails
// saying never), sends it SIGTERM and checks that it exits as interrupted. It returns its stderr.
func interruptOnceStarted(t *testing.T, cmd *exec.Cmd, never string, started func() bool) *bytes.Buffer {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !started(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s; stderr:\n%s", never, stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != outcome.ExitInterrupted {
		t.Fatalf("exit %d (%v), want %d; stderr:\n%s", code, err, outcome.ExitInterrupted, stderr.String())
	}
	return &stderr
}
