package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// resultsQueue declares the results queue of name as `kubectl workqueue run` does.
func resultsQueue(t *testing.T, name string) string {
	t.Helper()
	if _, err := queue.DeclareResults(testbroker.Dial(t), name); err != nil {
		t.Fatalf("declare the results queue: %v", err)
	}
	return queue.ResultsName(name)
}

// takeRecords takes every record of the results queue, by message id and attempt, and checks
// what every record message has in common.
func takeRecords(t *testing.T, results string) map[string]outcome.Record {
	t.Helper()
	records := map[string]outcome.Record{}
	for _, d := range testbroker.Drain(t, results) {
		r, err := outcome.DecodeRecord(d.Body)
		if err != nil {
			t.Fatalf("message %s in %s: %v", d.MessageId, results, err)
		}
		if d.ContentType != outcome.ContentTypeRecord || d.DeliveryMode != amqp.Persistent || d.MessageId != r.MessageID {
			t.Errorf("record message of %s: content type %q, delivery mode %d, message id %q", r.MessageID, d.ContentType, d.DeliveryMode, d.MessageId)
		}
		key := fmt.Sprintf("%s#%d", r.MessageID, r.Attempt)
		if _, dup := records[key]; dup {
			t.Errorf("two records of %s", key)
		}
		records[key] = r
	}
	return records
}

// The record of every settled attempt reaches QUEUE.results, with the command's result.
func TestResultRecordsOfDoneAndFailedAttempts(t *testing.T) {
	name := testQueue(t, queueSpec{quorum: true, deliveryLimit: 1})
	results := resultsQueue(t, name)
	testbroker.Publish(t, name,
		message{ID: "file", Body: []byte("file\nwith a second line")},
		message{ID: "fail", Body: []byte("fail")},
		message{ID: "long", Body: []byte("long")},
		message{ID: "binary", Body: []byte("binary")},
		message{ID: "slow", Body: []byte("slow")},
	)
	script := `
read -r what || true
case "$what" in
file) echo "to the log"; printf 'the answer is 42' > "$WORKQUEUE_RESULT_FILE" ;;
fail) echo "cannot do it"; exit 3 ;;
long) i=0; while [ $i -lt 10 ]; do printf '0123456789'; i=$((i+1)); done; printf 'END' ;;
binary) printf '\377\376ok' ;;
slow) echo "starting"; exec sleep 60 ;;
esac`
	before := time.Now().UTC()
	result, run := runAgent(t, Config{Queue: name, Mode: constants.ModeDrain, Idle: 500 * time.Millisecond,
		Results: results, ResultSize: 16, Timeout: 2 * time.Second, Command: []string{"sh", "-c", script}})

	if result.ExitCode != outcome.ExitItemFailed {
		t.Fatalf("exit code %d, want %d; log:\n%s", result.ExitCode, outcome.ExitItemFailed, run.log)
	}
	if !strings.Contains(run.output.String(), "to the log") || !strings.Contains(run.output.String(), "0123456789END") {
		t.Errorf("the command's stdout did not reach the agent's whole: %q", run.output)
	}
	eventuallyReady(t, name, 0)
	records := takeRecords(t, results)
	hostname, _ := os.Hostname()
	for key, r := range records {
		if r.Queue != name || r.Item != strings.Split(r.MessageID, "#")[0] || r.Pod != hostname ||
			r.FinishedAt.Before(before) || r.FinishedAt.After(time.Now().UTC()) || r.ExitCode == nil {
			t.Errorf("record %s: %+v", key, r)
		}
	}
	want := map[string]struct {
		result, output, from, errText string
		base64                        bool
		truncated                     bool
		exit                          int
	}{
		"file#1":   {result: outcome.ResultDone, output: "the answer is 42", from: outcome.OutputFromFile},
		"fail#1":   {result: outcome.ResultFailed, output: "cannot do it\n", from: outcome.OutputFromStdout, errText: "status 3", exit: 3},
		"fail#2":   {result: outcome.ResultFailed, output: "cannot do it\n", from: outcome.OutputFromStdout, errText: "status 3", exit: 3},
		"long#1":   {result: outcome.ResultDone, output: "7890123456789END", from: outcome.OutputFromStdout, truncated: true},
		"binary#1": {result: outcome.ResultDone, output: "\xff\xfeok", from: outcome.OutputFromStdout, base64: true},
		"slow#1":   {result: outcome.ResultFailed, output: "starting\n", from: outcome.OutputFromStdout, errText: "timed out after 2s", exit: 137},
		"slow#2":   {result: outcome.ResultFailed, output: "starting\n", from: outcome.OutputFromStdout, errText: "timed out after 2s", exit: 137},
	}
	if len(records) != len(want) {
		t.Errorf("%d records, want %d: %v", len(records), len(want), records)
	}
	for key, w := range want {
		r, ok := records[key]
		if !ok {
			t.Errorf("no record of %s", key)
			continue
		}
		output, err := r.OutputBytes()
		if err != nil || string(output) != w.output || r.OutputFrom != w.from || r.OutputTruncated != w.truncated || (r.OutputBase64 != "") != w.base64 {
			t.Errorf("record %s: output %q (%v) from %q truncated %v base64 %q, want %q from %q truncated %v",
				key, output, err, r.OutputFrom, r.OutputTruncated, r.OutputBase64, w.output, w.from, w.truncated)
		}
		if r.Result != w.result || *r.ExitCode != w.exit || !strings.Contains(r.Error, w.errText) || (w.errText == "") != (r.Error == "") {
			t.Errorf("record %s: result %q exit %d error %q, want %q exit %d error with %q", key, r.Result, *r.ExitCode, r.Error, w.result, w.exit, w.errText)
		}
	}
}

// Without the results queue the agent does not take an item: it exits misconfigured at once.
func TestMissingResultsQueueIsAMisconfiguration(t *testing.T) {
	name := testQueue(t, queueSpec{})
	testbroker.Publish(t, name, message{ID: "a", Body: []byte("x")})
	dir := t.TempDir()
	result, run := runAgent(t, Config{Queue: name, Results: queue.ResultsName(name), Command: []string{"sh", "-c", `touch "$0/ran"`, dir}})
	if result.ExitCode != outcome.ExitMisconfigured || !strings.Contains(result.Outcome.Error, "kubectl workqueue run` declares it") ||
		!strings.Contains(result.Outcome.Error, queue.ResultsName(name)) {
		t.Fatalf("exit code %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the command ran")
	}
	eventuallyReady(t, name, 1)
}

// A results queue deleted while the command runs does not take its record: the item is not
// acked, and the agent stops, misconfigured, naming the results queue.
func TestResultsQueueDeletedMidItemLeavesTheItemUnsettled(t *testing.T) {
	name := testQueue(t, queueSpec{quorum: true})
	results := resultsQueue(t, name)
	testbroker.Publish(t, name, message{ID: "a", Body: []byte("x")}, message{ID: "b", Body: []byte("y")})
	dir := t.TempDir()
	script := `touch "$0/running"; while [ ! -e "$0/go" ]; do sleep 0.05; done`
	run := startAgent(t, Config{Queue: name, Mode: constants.ModeDrain, Results: results, Command: []string{"sh", "-c", script, dir}})

	waitForFile(t, filepath.Join(dir, "running"))
	ch := testbroker.Channel(t)
	if _, err := ch.QueueDelete(results, false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	result := run.wait(t)

	if result.ExitCode != outcome.ExitMisconfigured || !strings.Contains(result.Outcome.Error, results) ||
		!strings.Contains(result.Outcome.Error, "kubectl workqueue run` declares it") {
		t.Fatalf("exit code %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	eventuallyReady(t, name, 2)
}

// A connection lost while the command runs loses the record with it: the item is not acked,
// comes back, and its record is published when it is done.
func TestResultRecordLostWithTheConnectionIsPublishedOnRedelivery(t *testing.T) {
	name := testQueue(t, queueSpec{quorum: true})
	results := resultsQueue(t, name)
	testbroker.Publish(t, name, message{ID: "cut", Body: []byte("x")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	script := `
if [ "$WORKQUEUE_ATTEMPT" = 1 ]; then
	touch "$0/cutting"
	while [ ! -e "$0/cut-done" ]; do sleep 0.05; done
fi
echo "attempt $WORKQUEUE_ATTEMPT"`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: name, Mode: constants.ModeDrain, Results: results, Command: []string{"sh", "-c", script, dir}})

	waitForFile(t, filepath.Join(dir, "cutting"))
	proxy.cut()
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "cut-done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit code %d; log:\n%s", result.ExitCode, run.log)
	}
	if !strings.Contains(run.log.String(), "result record did not reach the broker") {
		t.Errorf("log does not mention the lost record:\n%s", run.log)
	}
	eventuallyReady(t, name, 0)
	records := takeRecords(t, results)
	if r, ok := records["cut#2"]; len(records) != 1 || !ok || r.Result != outcome.ResultDone || r.Output != "attempt 2\n" {
		t.Errorf("records %+v, want the one of attempt 2, done", records)
	}
}

// A connection lost while the agent waits for the confirm of a record ends that wait with no
// confirm: the item is not settled, comes back, and is done on a new connection. (The client
// closes its returns channel with the connection; reading it as a return once spun forever.)
func TestConnectionLostAwaitingARecordsConfirm(t *testing.T) {
	name := testQueue(t, queueSpec{quorum: true})
	results := resultsQueue(t, name)
	testbroker.Publish(t, name, message{ID: "unconfirmed", Body: []byte("x")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	script := `
if [ "$WORKQUEUE_ATTEMPT" = 1 ]; then
	touch "$0/finishing"
	while [ ! -e "$0/replies-held" ]; do sleep 0.05; done
fi
echo "attempt $WORKQUEUE_ATTEMPT"`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: name, Mode: constants.ModeDrain, Results: results, Command: []string{"sh", "-c", script, dir}})

	waitForFile(t, filepath.Join(dir, "finishing"))
	proxy.holdReplies()
	if err := os.WriteFile(filepath.Join(dir, "replies-held"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the command ends and the agent publishes its record, unconfirmed
	proxy.cut()
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK {
		t.Fatalf("exit code %d; log:\n%s", result.ExitCode, run.log)
	}
	if !strings.Contains(run.log.String(), "result record did not reach the broker") {
		t.Errorf("log does not mention the unconfirmed record:\n%s", run.log)
	}
	eventuallyReady(t, name, 0)
	records := takeRecords(t, results)
	if r, ok := records["unconfirmed#2"]; !ok || r.Result != outcome.ResultDone || r.Output != "attempt 2\n" {
		t.Errorf("records %+v, want one of attempt 2, done", records)
	}
}
