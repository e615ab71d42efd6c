package agent

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// recordCommand stores each item's stdin and environment in dir, in files named after the
// message id and attempt, and exits with the status in the item's FAIL= line, if any.
func recordCommand(dir string) []string {
	script := `
set -e
base="$0/$WORKQUEUE_MESSAGE_ID.$WORKQUEUE_ATTEMPT"
cat > "$base.body"
printf '%s\n%s\n%s\n' "$WORKQUEUE_QUEUE" "$WORKQUEUE_MESSAGE_ID" "$WORKQUEUE_ATTEMPT" > "$base.env"
env > "$base.fullenv"
echo "processing $WORKQUEUE_MESSAGE_ID"
status=$(sed -n 's/^FAIL=//p' "$base.body")
exit "${status:-0}"
`
	return []string{"sh", "-c", script, dir}
}

func readTerminationLog(t *testing.T, path string) outcome.Outcome {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the termination log: %v", err)
	}
	if len(data) > outcome.MaxTerminationMessageBytes {
		t.Errorf("termination message is %d bytes, more than the kubelet keeps", len(data))
	}
	o, err := outcome.Decode(string(data))
	if err != nil {
		t.Fatalf("decode the termination log %q: %v", data, err)
	}
	return o
}

func TestOneModeRunsTheCommandAndAcksOnSuccess(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 2})
	testbroker.Publish(t, queue, message{ID: "m-1", Body: []byte("apple\nsecond line\n")}, message{ID: "m-2", Body: []byte("banana")})
	dir := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")
	t.Setenv("BROKER_URL", "amqp://guest:leaked@example.invalid/")

	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeOne, Command: recordCommand(dir), TerminationLog: termLog})

	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitOK, run.log)
	}
	body, err := os.ReadFile(filepath.Join(dir, "m-1.1.body"))
	if err != nil {
		t.Fatalf("the command did not see the first item: %v", err)
	}
	if string(body) != "apple\nsecond line\n" {
		t.Errorf("stdin = %q", body)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "m-1.1.env"))
	if want := queue + "\nm-1\n1\n"; string(env) != want {
		t.Errorf("WORKQUEUE_* = %q, want %q", env, want)
	}
	fullEnv, _ := os.ReadFile(filepath.Join(dir, "m-1.1.fullenv"))
	if strings.Contains(string(fullEnv), "BROKER_URL") || strings.Contains(string(fullEnv), "leaked") {
		t.Errorf("the command's environment holds BROKER_URL:\n%s", fullEnv)
	}
	if _, err := os.Stat(filepath.Join(dir, "m-2.1.body")); err == nil {
		t.Errorf("one mode took a second item")
	}
	if !strings.Contains(run.output.String(), "processing m-1") {
		t.Errorf("the command's stdout did not reach the agent's: %q", run.output)
	}
	if !strings.Contains(run.log.String(), `item m-1 "apple" attempt 1: done in `) {
		t.Errorf("no per-item log line:\n%s", run.log)
	}
	// The first item was acked; the second is still there.
	eventuallyReady(t, queue, 1)

	o := readTerminationLog(t, termLog)
	if o.Result != outcome.ResultDone || o.MessageID != "m-1" || o.Attempt != 1 || o.Item != "apple" ||
		o.ExitCode == nil || *o.ExitCode != 0 || o.Error != "" || o.Processed != 0 {
		t.Errorf("termination message = %+v", o)
	}
	if !reflect.DeepEqual(o, result.Outcome) {
		t.Errorf("termination message %+v differs from the result %+v", o, result.Outcome)
	}
}

func TestOneModeFailureRequeuesUntilTheDeliveryLimitDeadLetters(t *testing.T) {
	const deliveryLimit = 2 // limit N means N+1 deliveries
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: deliveryLimit})
	testbroker.Publish(t, queue, message{ID: "poison", Body: []byte("FAIL=7\n")})
	dir := t.TempDir()

	for attempt := 1; attempt <= deliveryLimit+1; attempt++ {
		termLog := filepath.Join(t.TempDir(), "termination-log")
		result, run := runAgent(t, Config{Queue: queue, Command: recordCommand(dir), TerminationLog: termLog})
		if result.ExitCode != outcome.ExitItemFailed {
			t.Fatalf("attempt %d: exit code %d, want %d; log:\n%s", attempt, result.ExitCode, outcome.ExitItemFailed, run.log)
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("poison.%d.body", attempt))); err != nil {
			t.Fatalf("attempt %d: the command did not see WORKQUEUE_ATTEMPT=%d: %v", attempt, attempt, err)
		}
		wantLog := fmt.Sprintf("item poison \"FAIL=7\" attempt %d: failed (exit 7)", attempt)
		if !strings.Contains(run.log.String(), wantLog) || !strings.Contains(run.log.String(), "requeued") {
			t.Errorf("attempt %d: log lacks %q:\n%s", attempt, wantLog, run.log)
		}
		o := readTerminationLog(t, termLog)
		if o.Result != outcome.ResultFailed || o.Attempt != attempt || o.MessageID != "poison" ||
			o.ExitCode == nil || *o.ExitCode != 7 || !strings.Contains(o.Error, "status 7") {
			t.Errorf("attempt %d: termination message = %+v", attempt, o)
		}
	}

	result, run := runAgent(t, Config{Queue: queue, Command: recordCommand(dir)})
	if result.ExitCode != outcome.ExitOK || result.Outcome.Result != outcome.ResultEmpty {
		t.Fatalf("after the last attempt: exit %d outcome %+v, want an empty queue; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	eventuallyReady(t, queue+".failed", 1)
}

func TestDrainModeProcessesEveryItemThenExitsWhenIdle(t *testing.T) {
	const items = 25
	queue := testQueue(t, queueSpec{})
	var messages []message
	for i := range items {
		messages = append(messages, message{ID: fmt.Sprintf("item-%02d", i), Body: fmt.Appendf(nil, "item %d", i)})
	}
	testbroker.Publish(t, queue, messages...)
	dir := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")

	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Idle: time.Second, Command: recordCommand(dir), TerminationLog: termLog})

	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit code %d; log:\n%s", result.ExitCode, run.log)
	}
	for _, m := range messages {
		body, err := os.ReadFile(filepath.Join(dir, m.ID+".1.body"))
		if err != nil || !bytes.Equal(body, m.Body) {
			t.Errorf("%s: body %q, error %v", m.ID, body, err)
		}
	}
	o := readTerminationLog(t, termLog)
	if o.Result != outcome.ResultDone || o.Processed != items || o.Failed != 0 || o.MessageID == "" {
		t.Errorf("termination message = %+v", o)
	}
	if !strings.Contains(run.log.String(), "25 items done") {
		t.Errorf("no summary line:\n%s", run.log)
	}
	eventuallyReady(t, queue, 0)
}

func TestDrainModeKeepsDrainingAfterAFailureAndFailsAtTheEnd(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 1})
	testbroker.Publish(t, queue,
		message{ID: "good-1", Body: []byte("fine")},
		message{ID: "bad", Body: []byte("FAIL=2")},
		message{ID: "good-2", Body: []byte("fine too")},
	)
	dir := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")

	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Command: recordCommand(dir), TerminationLog: termLog})

	if result.ExitCode != outcome.ExitItemFailed {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitItemFailed, run.log)
	}
	for _, name := range []string{"good-1.1.body", "good-2.1.body", "bad.1.body", "bad.2.body"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	o := readTerminationLog(t, termLog)
	if o.Result != outcome.ResultFailed || o.Processed != 2 || o.Failed != 2 {
		t.Errorf("termination message = %+v, want failed with 2 processed and 2 failed attempts", o)
	}
	if !strings.Contains(run.log.String(), "2 items done, 2 attempts of 1 item failed") {
		t.Errorf("the summary line does not tell attempts from items:\n%s", run.log)
	}
	eventuallyReady(t, queue, 0)
	eventuallyReady(t, queue+".failed", 1)
}

func TestEmptyQueueExitsZeroPromptly(t *testing.T) {
	for _, mode := range []constants.Mode{constants.ModeOne, constants.ModeDrain} {
		t.Run(string(mode), func(t *testing.T) {
			queue := testQueue(t, queueSpec{quorum: true})
			termLog := filepath.Join(t.TempDir(), "termination-log")
			start := time.Now()
			result, run := runAgent(t, Config{Queue: queue, Mode: mode, Idle: time.Second, Command: []string{"true"}, TerminationLog: termLog})
			elapsed := time.Since(start)
			if result.ExitCode != outcome.ExitOK || result.Outcome.Result != outcome.ResultEmpty {
				t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
			}
			// Not a speed test: it only proves that an empty queue does not keep a pod waiting.
			if elapsed > 20*time.Second {
				t.Errorf("took %s on an empty queue", elapsed)
			}
			if o := readTerminationLog(t, termLog); o.Result != outcome.ResultEmpty {
				t.Errorf("termination message = %+v", o)
			}
		})
	}
}

func TestBodyReachesTheCommandByteForByte(t *testing.T) {
	large := make([]byte, 3*smallBody+17) // larger than a pipe's first page: the copying path
	for i := range large {
		large[i] = byte(i * 7)
	}
	bodies := map[string][]byte{
		"hostile": []byte("$(touch /tmp/pwned) `id`; rm -rf / | cat & echo 'single' \"double\" \\back\nnew line\r\n\x00nul\x00 ${HOME} * ?\n\n"),
		"empty":   {},
		"large":   large,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			queue := testQueue(t, queueSpec{})
			testbroker.Publish(t, queue, message{ID: name, Body: body})
			out := filepath.Join(t.TempDir(), "stdin")
			result, run := runAgent(t, Config{Queue: queue, Command: []string{"sh", "-c", `cat > "$0"`, out}})
			if result.ExitCode != outcome.ExitOK {
				t.Fatalf("exit %d; log:\n%s", result.ExitCode, run.log)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, body) {
				t.Errorf("stdin differs: got %d bytes %q, want %d bytes %q", len(got), truncate(got), len(body), truncate(body))
			}
		})
	}
}

func truncate(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

func TestArgumentsArePassedWithoutAShell(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "x", Body: []byte("x")})
	out := filepath.Join(t.TempDir(), "args")
	// The argument would run a command if a shell were involved.
	result, run := runAgent(t, Config{Queue: queue, Command: []string{"sh", "-c", `printf '%s' "$1" > "$0"`, out, "$(echo injected); `id`"}})
	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit %d; log:\n%s", result.ExitCode, run.log)
	}
	if got, _ := os.ReadFile(out); string(got) != "$(echo injected); `id`" {
		t.Errorf("argument arrived as %q", got)
	}
}

func TestSignalMidItemIsForwardedAndTheItemRequeued(t *testing.T) {
	for _, mode := range []constants.Mode{constants.ModeOne, constants.ModeDrain} {
		t.Run(string(mode), func(t *testing.T) {
			queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 5})
			testbroker.Publish(t, queue, message{ID: "slow", Body: []byte("slow item")})
			dir := t.TempDir()
			started, stopped := filepath.Join(dir, "started"), filepath.Join(dir, "stopped")
			termLog := filepath.Join(dir, "termination-log")
			// The command notes that it got SIGTERM, then exits as a well-behaved worker does.
			script := `trap 'touch "$1"; exit 143' TERM; touch "$0"; while :; do sleep 0.1; done`
			run := startAgent(t, Config{Queue: queue, Mode: mode, Command: []string{"sh", "-c", script, started, stopped}, TerminationLog: termLog})

			waitForFile(t, started)
			run.signals <- syscall.SIGTERM
			result := run.wait(t)

			if result.ExitCode != outcome.ExitInterrupted {
				t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitInterrupted, run.log)
			}
			if _, err := os.Stat(stopped); err != nil {
				t.Errorf("the command never received SIGTERM")
			}
			o := readTerminationLog(t, termLog)
			if o.Result != outcome.ResultInterrupted || o.MessageID != "slow" || o.ExitCode == nil || *o.ExitCode != 143 {
				t.Errorf("termination message = %+v", o)
			}
			if !strings.Contains(run.log.String(), "interrupted by SIGTERM") {
				t.Errorf("log:\n%s", run.log)
			}
			eventuallyReady(t, queue, 1)
		})
	}
}

func TestCommandIgnoringTheSignalIsKilledAfterTheGracePeriod(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "stubborn", Body: []byte("x")})
	started := filepath.Join(t.TempDir(), "started")
	run := startAgent(t, Config{Queue: queue, Grace: time.Second,
		Command: []string{"sh", "-c", `trap '' TERM INT; touch "$0"; sleep 600`, started}})

	waitForFile(t, started)
	begin := time.Now()
	run.signals <- syscall.SIGINT
	result := run.wait(t)

	if result.ExitCode != outcome.ExitInterrupted {
		t.Fatalf("exit code %d; log:\n%s", result.ExitCode, run.log)
	}
	if waited := time.Since(begin); waited > time.Minute {
		t.Errorf("took %s to stop", waited)
	}
	if !strings.Contains(run.log.String(), "did not stop within 1s") {
		t.Errorf("log:\n%s", run.log)
	}
	eventuallyReady(t, queue, 1)
}

func TestSignalWhileWaitingStopsTheAgent(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	run := startAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Idle: time.Hour, Command: []string{"true"}})
	time.Sleep(500 * time.Millisecond)
	run.signals <- syscall.SIGTERM
	if result := run.wait(t); result.ExitCode != outcome.ExitInterrupted || result.Outcome.Result != outcome.ResultInterrupted {
		t.Fatalf("exit %d outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
}

func TestTimeoutKillsTheCommandGroupAndRequeues(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 5})
	testbroker.Publish(t, queue, message{ID: "hangs", Body: []byte("x")})
	childPID := filepath.Join(t.TempDir(), "child")
	termLog := filepath.Join(t.TempDir(), "termination-log")
	// A background child in the same group must die too, or it would outlive the item.
	script := `sleep 600 & echo $! > "$0"; wait`
	result, run := runAgent(t, Config{Queue: queue, Timeout: time.Second, Command: []string{"sh", "-c", script, childPID}, TerminationLog: termLog})

	if result.ExitCode != outcome.ExitItemFailed {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitItemFailed, run.log)
	}
	o := readTerminationLog(t, termLog)
	if o.Result != outcome.ResultFailed || !strings.Contains(o.Error, "timed out after 1s") {
		t.Errorf("termination message = %+v", o)
	}
	if !strings.Contains(run.log.String(), "timed out after 1s (killed), requeued") {
		t.Errorf("log:\n%s", run.log)
	}
	eventuallyReady(t, queue, 1)
	if data, err := os.ReadFile(childPID); err == nil {
		var pid int
		fmt.Sscan(string(data), &pid)
		deadline := time.Now().Add(10 * time.Second)
		for pid > 0 && syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			if time.Now().After(deadline) {
				t.Errorf("the command's child %d survived the timeout", pid)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func TestMissingQueueIsAMisconfiguration(t *testing.T) {
	testbroker.URL(t)
	termLog := filepath.Join(t.TempDir(), "termination-log")
	result, run := runAgent(t, Config{Queue: "agent-test-no-such-queue", Command: []string{"true"}, TerminationLog: termLog})
	if result.ExitCode != outcome.ExitMisconfigured {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitMisconfigured, run.log)
	}
	o := readTerminationLog(t, termLog)
	if o.Result != outcome.ResultError || !strings.Contains(o.Error, `queue "agent-test-no-such-queue" does not exist`) {
		t.Errorf("termination message = %+v", o)
	}
	// The agent must not have created the queue: a passive declare on the same broker says so.
	ch := testbroker.Channel(t)
	_, err := ch.QueueDeclarePassive("agent-test-no-such-queue", true, false, false, false, nil)
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
		t.Errorf("the agent declared the queue (passive declare: %v)", err)
		_, _ = testbroker.Channel(t).QueueDelete("agent-test-no-such-queue", false, false, false)
	}
}

func TestBadCredentialsAreAMisconfigurationAndThePasswordIsNeverShown(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	u, err := url.Parse(testbroker.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	const password = "s3cret-Pa55"
	u.User = url.UserPassword("guest", password)
	termLog := filepath.Join(t.TempDir(), "termination-log")

	result, run := runAgent(t, Config{BrokerURL: u.String(), Queue: queue, Command: []string{"true"}, TerminationLog: termLog})

	if result.ExitCode != outcome.ExitMisconfigured {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitMisconfigured, run.log)
	}
	data, _ := os.ReadFile(termLog)
	for what, text := range map[string]string{"log": run.log.String(), "termination message": string(data)} {
		if strings.Contains(text, password) {
			t.Errorf("the password appears in the %s: %s", what, text)
		}
	}
	if !strings.Contains(run.log.String(), "refused the login") || !strings.Contains(run.log.String(), "guest:xxxxx@") {
		t.Errorf("log does not explain the refusal:\n%s", run.log)
	}
}

func TestUnreachableBrokerGivesUpAfterTheRetryBudget(t *testing.T) {
	// A port nobody listens on: bind one, then close it.
	listener, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	const password = "hunter2-secret"
	termLog := filepath.Join(t.TempDir(), "termination-log")

	start := time.Now()
	result, run := runAgent(t, Config{
		BrokerURL:      "amqp://worker:" + password + "@" + addr + "/",
		Queue:          "q",
		Command:        []string{"true"},
		ConnectBudget:  2 * time.Second,
		TerminationLog: termLog,
	})

	if result.ExitCode != outcome.ExitBrokerUnreachable {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitBrokerUnreachable, run.log)
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Errorf("gave up after %s, before the 2s budget", elapsed)
	}
	data, _ := os.ReadFile(termLog)
	if strings.Contains(run.log.String()+string(data), password) {
		t.Errorf("the password leaked:\n%s\n%s", run.log, data)
	}
	o := readTerminationLog(t, termLog)
	if o.Result != outcome.ResultError || !strings.Contains(o.Error, "cannot reach the broker at amqp://worker:xxxxx@"+addr) {
		t.Errorf("termination message = %+v", o)
	}
}

func TestInvalidConfigurationIsReportedBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no broker URL", Config{Queue: "q", Command: []string{"true"}}, "BROKER_URL is not set"},
		{"no queue", Config{BrokerURL: "amqp://u:p@h/", Command: []string{"true"}}, "no queue given"},
		{"no command", Config{BrokerURL: "amqp://u:p@h/", Queue: "q"}, "no command given"},
		{"unknown mode", Config{BrokerURL: "amqp://u:p@h/", Queue: "q", Mode: "all", Command: []string{"true"}}, `unknown mode "all"`},
		{"not an AMQP URL", Config{BrokerURL: "http://u:pw-in-url@h/", Queue: "q", Command: []string{"true"}}, "BROKER_URL is not a valid AMQP URL"},
		{"unparseable URL", Config{BrokerURL: "amqp://u:pw-in-url/with@slash@h:bad/", Queue: "q", Command: []string{"true"}}, "BROKER_URL is not a valid AMQP URL"},
		{"command not found", Config{BrokerURL: "amqp://u:p@h/", Queue: "q", Command: []string{"no-such-command-here"}}, `cannot run the command "no-such-command-here"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.TerminationLog = filepath.Join(t.TempDir(), "termination-log")
			log := &syncBuffer{}
			tt.cfg.Log = log
			result := Run(tt.cfg)
			if result.ExitCode != outcome.ExitMisconfigured || result.Outcome.Result != outcome.ResultError {
				t.Fatalf("exit %d outcome %+v, want misconfigured", result.ExitCode, result.Outcome)
			}
			if !strings.Contains(result.Outcome.Error, tt.want) || !strings.Contains(log.String(), tt.want) {
				t.Errorf("error %q / log %q lacks %q", result.Outcome.Error, log, tt.want)
			}
			if strings.Count(strings.TrimSpace(log.String()), "\n") != 0 {
				t.Errorf("want a one-line message, got:\n%s", log)
			}
			if strings.Contains(log.String()+result.Outcome.Error, "pw-in-url") {
				t.Errorf("the password leaked: %s", log)
			}
			if o := readTerminationLog(t, tt.cfg.TerminationLog); o.Error != result.Outcome.Error {
				t.Errorf("termination message = %+v", o)
			}
		})
	}
}

func TestReconnectsAfterLosingTheConnectionMidItem(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue,
		message{ID: "before", Body: []byte("1")},
		message{ID: "cut", Body: []byte("2")},
		message{ID: "after", Body: []byte("3")},
	)
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	// On its first delivery, the "cut" item waits until the test has cut the connection, then
	// succeeds: its ack cannot reach the broker, which must deliver it again.
	script := `
echo x >> "$0/$WORKQUEUE_MESSAGE_ID"
if [ "$WORKQUEUE_MESSAGE_ID" = cut ] && [ ! -e "$0/cut-done" ]; then
	touch "$0/cutting"
	while [ ! -e "$0/cut-done" ]; do sleep 0.05; done
fi`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", script, dir}})

	waitForFile(t, filepath.Join(dir, "cutting"))
	proxy.cut()
	time.Sleep(500 * time.Millisecond) // let the agent notice before the command finishes
	if err := os.WriteFile(filepath.Join(dir, "cut-done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit code %d; log:\n%s", result.ExitCode, run.log)
	}
	for id, want := range map[string]int{"before": 1, "cut": 2, "after": 1} {
		data, _ := os.ReadFile(filepath.Join(dir, id))
		if got := strings.Count(string(data), "x"); got != want {
			t.Errorf("item %s ran %d times, want %d (at-least-once: the cut item runs again)", id, got, want)
		}
	}
	if !strings.Contains(run.log.String(), "the broker will deliver the item again") {
		t.Errorf("log does not mention the lost ack:\n%s", run.log)
	}
	eventuallyReady(t, queue, 0)
}

func TestItemsPublishedWithAmqpPublishAreConsumed(t *testing.T) {
	brokerURL := testbroker.URL(t)
	if _, err := exec.LookPath("amqp-publish"); err != nil {
		t.Skip("amqp-publish (amqp-tools) is not installed")
	}
	queue := testQueue(t, queueSpec{})
	body := "cherry 'pie' \"and\" $(cream)"
	// amqp-tools read an empty vhost from a URL ending in "/", where Go clients read "/".
	toolURL, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	if toolURL.Path == "/" {
		toolURL.Path = ""
	}
	publishCmd := exec.Command("amqp-publish", "--url", toolURL.String(), "-r", queue, "-p", "-b", body)
	if out, err := publishCmd.CombinedOutput(); err != nil {
		t.Fatalf("amqp-publish: %v: %s", err, out)
	}
	eventuallyReady(t, queue, 1)
	out := filepath.Join(t.TempDir(), "stdin")
	termLog := filepath.Join(t.TempDir(), "termination-log")

	result, run := runAgent(t, Config{Queue: queue, Command: []string{"sh", "-c", `cat > "$0"`, out}, TerminationLog: termLog})

	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit code %d; log:\n%s", result.ExitCode, run.log)
	}
	if got, _ := os.ReadFile(out); string(got) != body {
		t.Errorf("stdin = %q, want %q", got, body)
	}
	// amqp-publish sets no message id: the agent names the item by a hash of its body.
	o := readTerminationLog(t, termLog)
	if !strings.HasPrefix(o.MessageID, "sha256:") || o.Item != body {
		t.Errorf("termination message = %+v", o)
	}
	eventuallyReady(t, queue, 0)
}

func TestDefaultTerminationLogIsNotCreatedOutsideAPod(t *testing.T) {
	if _, err := os.Stat(DefaultTerminationLog); err == nil {
		t.Skip("running where the kubelet's termination log exists")
	}
	if err := WriteTerminationLog(DefaultTerminationLog, outcome.Outcome{Result: outcome.ResultEmpty}); err == nil {
		os.Remove(DefaultTerminationLog)
		t.Fatalf("created %s", DefaultTerminationLog)
	}
}

func TestProcessesACommandLeavesBehindAreReaped(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 1})
	testbroker.Publish(t, queue,
		message{ID: "a", Body: []byte("spawn")},
		message{ID: "b", Body: []byte("wait")},
		message{ID: "c", Body: []byte("check")},
	)
	pidFile := filepath.Join(t.TempDir(), "orphan")
	// "spawn" leaves a short-lived background process behind. While "wait" runs, it has ended
	// and must belong to the agent (a zombie whose parent is the agent: adopted, as by a PID 1);
	// by the time "check" runs, the agent must have reaped it.
	script := `
case "$(cat)" in
spawn) sleep 0.5 >/dev/null 2>&1 & echo $! > "$0" ;;
wait) sleep 1; pid=$(cat "$0"); set -- $(sed 's/.*) //' "/proc/$pid/stat"); [ "$1 $2" = "Z $PPID" ] || { echo "orphan state $1, parent $2, agent $PPID"; exit 1; } ;;
check) pid=$(cat "$0"); if [ -e "/proc/$pid" ]; then echo "orphan $pid: $(cat /proc/$pid/stat)"; exit 1; fi ;;
esac`
	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", script, pidFile}})
	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit %d; output %s; log:\n%s", result.ExitCode, run.output, run.log)
	}
}

func TestDrainModeStopsWhenAClassicQueueHandsBackAFailedItem(t *testing.T) {
	// A classic queue has no delivery limit: draining on would run the item forever.
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "bad", Body: []byte("FAIL=1")}, message{ID: "good", Body: []byte("fine")})
	dir := t.TempDir()

	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Command: recordCommand(dir)})

	if result.ExitCode != outcome.ExitItemFailed || result.Outcome.Failed != 1 {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.2.body")); err == nil {
		t.Errorf("the failed item ran again")
	}
	if !strings.Contains(run.log.String(), "no delivery limit") {
		t.Errorf("log:\n%s", run.log)
	}
	eventuallyReady(t, queue, 2-result.Outcome.Processed)
}

// A command that finishes its item after SIGTERM has done the work: the item is acked, not
// retried. One mode then exits 0 (its one item is done); drain mode stops as interrupted.
func TestCommandThatFinishesAfterTheSignalIsAcked(t *testing.T) {
	for _, mode := range []constants.Mode{constants.ModeOne, constants.ModeDrain} {
		t.Run(string(mode), func(t *testing.T) {
			queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 5})
			testbroker.Publish(t, queue, message{ID: "finishing", Body: []byte("x")}, message{ID: "untouched", Body: []byte("y")})
			dir := t.TempDir()
			started := filepath.Join(dir, "started")
			script := `trap 'stop=1' TERM; touch "$0"; while [ -z "$stop" ]; do sleep 0.05; done; exit 0`
			run := startAgent(t, Config{Queue: queue, Mode: mode, Command: []string{"sh", "-c", script, started}})

			waitForFile(t, started)
			run.signals <- syscall.SIGTERM
			result := run.wait(t)

			want := outcome.ExitOK
			if mode == constants.ModeDrain {
				want = outcome.ExitInterrupted
			}
			if result.ExitCode != want || result.Outcome.MessageID != "finishing" {
				t.Fatalf("exit code %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
			}
			if mode == constants.ModeDrain && result.Outcome.Processed != 1 {
				t.Errorf("processed %d, want 1", result.Outcome.Processed)
			}
			// The finished item is gone; the one never started is still there.
			eventuallyReady(t, queue, 1)
		})
	}
}

// In one mode, the ack lost with the connection must not count as a completion: the agent
// reconnects and takes an item again, here the same one, which the broker delivers again.
func TestOneModeLostAckIsNotASuccess(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "cut", Body: []byte("x")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	script := `echo x >> "$0/runs"; touch "$0/cutting"; while [ ! -e "$0/cut-done" ]; do sleep 0.05; done`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeOne, Command: []string{"sh", "-c", script, dir}})

	waitForFile(t, filepath.Join(dir, "cutting"))
	proxy.cut()
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "cut-done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK || result.Outcome.Result != outcome.ResultDone || result.Outcome.MessageID != "cut" {
		t.Fatalf("exit code %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "runs")); strings.Count(string(data), "x") != 2 {
		t.Errorf("the item ran %d times, want 2", strings.Count(string(data), "x"))
	}
	if !strings.Contains(run.log.String(), "the broker will deliver the item again") {
		t.Errorf("log does not mention the lost ack:\n%s", run.log)
	}
	eventuallyReady(t, queue, 0)
}

// A command that is not a program fails the same way in every pod: misconfigured, the item kept.
func TestACommandThatIsNotAProgramIsAMisconfiguration(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "a", Body: []byte("x")})
	notAProgram := filepath.Join(t.TempDir(), "process-item")
	if err := os.WriteFile(notAProgram, []byte{0x7f, 'E', 'L', 'F', 0, 0, 0, 0}, 0o755); err != nil {
		t.Fatal(err)
	}
	result, run := runAgent(t, Config{Queue: queue, Command: []string{notAProgram}})
	if result.ExitCode != outcome.ExitMisconfigured || !strings.Contains(result.Outcome.Error, "exec format error") {
		t.Fatalf("exit code %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	eventuallyReady(t, queue, 1)
}

// A broker that closes the channel every time the same item runs (as RabbitMQ does past its
// consumer_timeout) would have a drain redo that item forever: the second lost ack stops it.
// The connection stays up, which tells it from an outage.
func TestDrainStopsWhenTheSameItemLosesItsAckTwice(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "long", Body: []byte("x")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	// Each run announces itself, then waits for the test to cut the connection under it.
	script := `n=$(ls "$0" | grep -c '^run'); touch "$0/run$n"; while [ ! -e "$0/cut$n" ]; do sleep 0.05; done`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", script, dir}})

	for n := range 2 {
		waitForFile(t, filepath.Join(dir, fmt.Sprintf("run%d", n)))
		proxy.closeChannel(t)
		time.Sleep(500 * time.Millisecond)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cut%d", n)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	result := run.wait(t)
	if result.ExitCode != outcome.ExitBrokerUnreachable || !strings.Contains(result.Outcome.Error, "consumer_timeout") {
		t.Fatalf("exit code %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	eventuallyReady(t, queue, 1)
}
