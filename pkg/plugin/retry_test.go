package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

func TestRetryMovesDeadLettersBack(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "x", "-q"); err != nil {
		t.Fatal(err)
	}
	drain(t, q)
	testbroker.Publish(t, queue.DeadLetterName(q), testbroker.Message{ID: "1-a", Body: []byte("a")},
		testbroker.Message{ID: "2-b", Body: []byte("b")}, testbroker.Message{ID: "3-c", Body: []byte("c")})

	out, _, err := runCommand(t, newFakeGetter(), "", "retry", q, "--broker-url", url, "--dry-run")
	if err != nil || !strings.Contains(out, "would move 3 items") {
		t.Fatalf("--dry-run: %v %q", err, out)
	}
	if n := testbroker.Ready(t, queue.DeadLetterName(q)); n != 3 {
		t.Fatalf("a dry run moved items: %d left", n)
	}
	out, _, err = runCommand(t, newFakeGetter(), "", "retry", q, "--broker-url", url, "--limit", "1")
	if err != nil || !strings.Contains(out, "moved 1 item from") {
		t.Fatalf("--limit 1: %v %q", err, out)
	}
	out, stderr, err := runCommand(t, newFakeGetter(), "", "retry", q, "--broker-url", url)
	if err != nil || !strings.Contains(out, "moved 2 items from") || !strings.Contains(stderr, "kubectl workqueue run "+q+" --replace") {
		t.Fatalf("the rest: %v %q %q", err, out, stderr)
	}
	var ids []string
	for _, d := range drain(t, q) {
		ids = append(ids, d.MessageId)
	}
	if strings.Join(ids, ",") != "1-a,2-b,3-c" {
		t.Fatalf("back in the queue: %q", ids)
	}
	_, _, err = runCommand(t, newFakeGetter(), "", "retry", "no-such-queue-anywhere", "--broker-url", url)
	if err == nil || !strings.Contains(err.Error(), "fill creates") {
		t.Fatalf("retry of a queue that does not exist: %v", err)
	}
}

func TestPurgeAndDeleteNeedYesWithoutATerminal(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "a", "--item", "b", "-q"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"purge", q}, {"delete", q}} {
		_, _, err := runCommand(t, newFakeGetter(), "", append(args, "--broker-url", url)...)
		if ExitCode(err, false) != ExitBadInput || !strings.Contains(err.Error(), "pass --yes") {
			t.Fatalf("%q without --yes: %v", args, err)
		}
	}
	if n := testbroker.Ready(t, q); n != 2 {
		t.Fatalf("refused commands changed the queue: %d items", n)
	}
	out, _, err := runCommand(t, newFakeGetter(), "", "purge", q, "--broker-url", url, "--yes")
	if err != nil || !strings.Contains(out, "purged (2 items)") {
		t.Fatalf("purge --yes: %v %q", err, out)
	}
	out, _, err = runCommand(t, newFakeGetter(), "", "purge", q, "--failed", "--broker-url", url)
	if err != nil || !strings.Contains(out, "nothing to purge") {
		t.Fatalf("purge of an empty queue asks nothing: %v %q", err, out)
	}
	// Empty now: delete removes the queues without asking.
	out, _, err = runCommand(t, newFakeGetter(), "", "delete", q, "--broker-url", url)
	if err != nil || !strings.Contains(out, "queue "+q+" deleted") {
		t.Fatalf("delete of empty queues: %v %q", err, out)
	}
}

func TestConfirmerAsksOnATerminal(t *testing.T) {
	for answer, agreed := range map[string]bool{"y\n": true, "YES\n": true, "n\n": false, "\n": false, "": false} {
		var errOut bytes.Buffer
		c := confirmer{terminal: func() bool { return true },
			IOStreams: genericiooptions.IOStreams{In: strings.NewReader(answer), ErrOut: &errOut}}
		err := c.confirm("remove 2 items")
		if (err == nil) != agreed || errOut.String() != "remove 2 items? [y/N] " {
			t.Errorf("answer %q: %v, prompt %q", answer, err, errOut.String())
		}
	}
}

func TestResultsLinesAndJSON(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "results", q, "--broker-url", url); err == nil || !strings.Contains(err.Error(), "has no results queue") {
		t.Fatalf("results without QUEUE.results: %v", err)
	}
	conn := testbroker.Dial(t)
	if _, err := queue.DeclareResults(conn, q); err != nil {
		t.Fatal(err)
	}
	three := 3
	done := outcome.Record{Queue: q, MessageID: "1-a", Item: "apple", Attempt: 1, Result: outcome.ResultDone, DurationMS: 1200, Pod: "job1-x"}
	done.SetOutput([]byte("working\nAPPLE\n"), outcome.OutputFromStdout, false)
	failed := outcome.Record{Queue: q, MessageID: "2-b", Item: "bad", Attempt: 2, Result: outcome.ResultFailed, ExitCode: &three, Pod: "job1-y"}
	failed.SetOutput([]byte{0xff, 0xfe}, outcome.OutputFromFile, false)
	for _, r := range []outcome.Record{done, failed} {
		body, _ := json.Marshal(r)
		testbroker.Publish(t, queue.ResultsName(q), testbroker.Message{ID: r.MessageID, Body: body})
	}
	out, _, err := runCommand(t, newFakeGetter(), "", "results", q, "--broker-url", url, "--limit", "1")
	if err != nil || out != "job1-x  done  \"apple\"  attempt 1  (1.2s): APPLE\n" {
		t.Fatalf("one line per record: %v %q", err, out)
	}
	out, _, err = runCommand(t, newFakeGetter(), "", "results", q, "--broker-url", url, "-o", "json")
	var got outcome.Record
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.MessageID != "2-b" || got.OutputBase64 != "//4=" || strings.Count(out, "\n") != 1 {
		t.Fatalf("-o json: %v %q", err, out)
	}
	_, stderr, err := runCommand(t, newFakeGetter(), "", "results", q, "--broker-url", url)
	if err != nil || !strings.Contains(stderr, "no result records waiting") {
		t.Fatalf("once taken, records are gone: %v %q", err, stderr)
	}
}

// Every command that changes something takes kubectl's --dry-run, and changes nothing with it.
func TestDryRunChangesNothing(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)

	// fill: the input is read and checked; a client dry run does not even connect.
	out, _, err := runCommand(t, newFakeGetter(), "a\nb\n", "fill", q, "--dry-run", "--broker-url", "amqp://u:p@127.0.0.1:1/")
	if err != nil || !strings.Contains(out, "published 2 items to queue "+q+" (dry run") {
		t.Fatalf("fill --dry-run: %v %q", err, out)
	}
	if _, _, err := runCommand(t, newFakeGetter(), "{oops\n", "fill", q, "--json-lines", "--dry-run"); ExitCode(err, false) != ExitBadInput {
		t.Fatalf("fill --dry-run of bad input: %v", err)
	}
	out, _, err = runCommand(t, newFakeGetter(), "a\n", "fill", q, "--dry-run=server", "--broker-url", url)
	if err != nil || !strings.Contains(out, "a quorum queue fill would create") {
		t.Fatalf("fill --dry-run=server: %v %q", err, out)
	}
	if _, err := queue.Depth(testbroker.Dial(t), q); err == nil {
		t.Fatal("a dry run created the queue")
	}

	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "a", "--item", "b", "-q"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"purge", q, "--dry-run"}, "queue " + q + " purged (2 items) (dry run)"},
		{[]string{"delete", q, "--dry-run=server"}, "queue " + q + " deleted (2 messages) (dry run)"},
		{[]string{"retry", q, "--dry-run"}, "would move 0 items"},
	} {
		out, _, err := runCommand(t, newFakeGetter(), "", append(tc.args, "--broker-url", url)...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%q: %v %q", tc.args, err, out)
		}
	}
	if n := testbroker.Ready(t, q); n != 2 {
		t.Fatalf("dry runs changed the queue: %d items", n)
	}

	// run: with --completions, a client dry run needs no cluster and no broker.
	getter := newFakeGetter()
	out, _, err = runCommand(t, getter, "", "run", q, "--image", "img", "--completions", "3", "--dry-run=client", "-o", "yaml", "--broker-url", "amqp://u:p@127.0.0.1:1/", "--", "cat")
	if err != nil || !strings.Contains(out, "completions: 3") || len(getter.client.Actions()) != 0 {
		t.Fatalf("run --dry-run=client: %v, %d calls to the cluster\n%s", err, len(getter.client.Actions()), out)
	}
}
