package plugin

import (
	"bytes"
	"context"
	"errors"
	"io"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

func queueExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := queue.Dial(brokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = queue.Depth(conn, name)
	if err != nil && !errors.Is(err, queue.ErrNoQueue) {
		t.Fatal(err)
	}
	return err == nil
}

func bodies(t *testing.T, name string) []string {
	t.Helper()
	var got []string
	for _, msg := range drain(t, name) {
		got = append(got, string(msg.Body))
	}
	return got
}

func TestFillFromFilesItemsAndStdin(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "items.txt")
	os.WriteFile(file, []byte("apple\r\nbanana\n\ncherry"), 0o600)

	out, _, err := runCommand(t, newFakeGetter(), "from-stdin\n", "fill", q, "--broker-url", url, "--from-file", file, "--from-file", "-", "--item", "literal one", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if want := "published 5 items to queue " + q + " (all confirmed; 1 empty record skipped)\n"; out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
	got := strings.Join(bodies(t, q), "|")
	if got != "literal one|apple|banana|cherry|from-stdin" {
		t.Fatalf("queue holds %s", got)
	}
}

func TestFillPipedStdinByDefaultAndNULs(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "a\nb\x00c\x00", "fill", q, "--broker-url", url, "--null", "-q"); err != nil {
		t.Fatal(err)
	}
	if got := bodies(t, q); len(got) != 2 || got[0] != "a\nb" || got[1] != "c" {
		t.Fatalf("got %q", got)
	}
}

func TestFillSkipResumesWithStableIDs(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "1\n2\n3\n4\n", "fill", q, "--broker-url", url, "-q"); err != nil {
		t.Fatal(err)
	}
	first := drain(t, q)
	if _, _, err := runCommand(t, newFakeGetter(), "1\n2\n3\n4\n", "fill", q, "--broker-url", url, "--skip", "2", "-q"); err != nil {
		t.Fatal(err)
	}
	resumed := drain(t, q)
	if len(resumed) != 2 || string(resumed[0].Body) != "3" || resumed[0].MessageId != first[2].MessageId || resumed[1].MessageId != first[3].MessageId {
		t.Fatalf("resumed %d messages; ids %q vs %q", len(resumed), resumed[0].MessageId, first[2].MessageId)
	}
}

func TestFillJSONLinesContentType(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "{\"a\": 1}\n[2]\n", "fill", q, "--broker-url", url, "--json-lines", "-q"); err != nil {
		t.Fatal(err)
	}
	msgs := drain(t, q)
	if len(msgs) != 2 || msgs[0].ContentType != "application/json" {
		t.Fatalf("got %d messages", len(msgs))
	}
}

func TestFillBadInputPublishesNothing(t *testing.T) {
	url := brokerURL(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.jsonl")
	os.WriteFile(broken, []byte("{\"ok\":1}\n{\"ok\":2}\n{broken\n"), 0o600)
	big := filepath.Join(dir, "big.txt")
	os.WriteFile(big, []byte("small\n"+strings.Repeat("x", 2000)+"\n"), 0o600)
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("\n\n"), 0o600)
	printed0 := filepath.Join(dir, "find-print0.txt")
	os.WriteFile(printed0, []byte("./a.txt\x00./b.txt\x00"), 0o600)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"broken json line", []string{"--json-lines", "--from-file", broken}, "broken.jsonl:3: not valid JSON"},
		{"item too large", []string{"--from-file", big, "--max-item-size", "1Ki"}, "big.txt:2: item too large"},
		{"unreadable file", []string{"--from-file", filepath.Join(dir, "missing.txt")}, "cannot read --from-file"},
		{"empty input", []string{"--from-file", empty}, "the input is empty (pass --allow-empty"},
		{"NUL bytes without --null", []string{"--from-file", printed0}, "find-print0.txt:1: the input contains NUL bytes"},
		{"bad max item size", []string{"--item", "a", "--max-item-size", "lots"}, "--max-item-size"},
		{"two formats", []string{"--item", "a", "--null", "--json-lines"}, "do not go together"},
		{"negative skip", []string{"--item", "a", "--skip", "-1"}, "--skip"},
		{"skip past the end", []string{"--item", "a", "--skip", "5"}, "more than the 1 items"},
		{"bad queue type", []string{"--item", "a", "--queue-type", "stream"}, "--queue-type"},
		{"consumer timeout too short", []string{"--item", "a", "--consumer-timeout", "10ms"}, "--consumer-timeout 10ms is too short"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := testQueue(t)
			_, _, err := runCommand(t, newFakeGetter(), "", append([]string{"fill", q, "--broker-url", url}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if queueExists(t, q) {
				t.Fatal("bad input left a queue behind: nothing may be done before the input is known good")
			}
		})
	}
}

func TestFillInvalidQueueNameFailsBeforeConnecting(t *testing.T) {
	_, _, err := runCommand(t, newFakeGetter(), "", "fill", "amq.reserved", "--item", "a", "--broker-url", "amqp://u:p@127.0.0.1:1/")
	if err == nil || !strings.Contains(err.Error(), "reserves") {
		t.Fatalf("got %v", err)
	}
}

func TestFillAllowEmpty(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	out, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--allow-empty")
	if err != nil || !strings.Contains(out, "published 0 items") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestFillNeverPrintsThePassword(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(u.User.Username(), "Sup3rS3cret")
	bad := u.String()
	out, errOut, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", bad, "--item", "a")
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	for _, s := range []string{out, errOut, err.Error()} {
		if strings.Contains(s, "Sup3rS3cret") {
			t.Fatalf("password printed: %q", s)
		}
	}
}

func TestFillProgressLinesWhenNotATerminal(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	_, errOut, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "created quorum queue "+q) || strings.Contains(errOut, "\r") {
		t.Fatalf("stderr %q", errOut)
	}
}

func TestProgressLine(t *testing.T) {
	line := progressLine(50, 100, true, 10e9)
	if !strings.Contains(line, "50/100") || !strings.Contains(line, "(5/s, ETA 10s)") || !strings.Contains(line, "[===============               ]") {
		t.Fatalf("%q", line)
	}
	if line := progressLine(7, 0, false, 1e9); line != "7 items confirmed (7/s)" {
		t.Fatalf("%q", line)
	}
}

func TestFillChecksItemFlagsLikeLines(t *testing.T) {
	expectRejections(t, []rejection{
		{[]string{"fill", "q", "--item", "ok", "--item", ""}, "--item number 2 is empty"},
		{[]string{"fill", "q", "--json-lines", "--item", `{"a":1}`, "--item", "{oops"}, `--item "{oops" is not valid JSON`},
	})
}

// Ctrl-C is noticed while fill waits on a stdin that gives nothing, as a FIFO or a producer in
// another process group does.
func TestFillStopsWaitingOnStdinWhenInterrupted(t *testing.T) {
	stdin, writer := io.Pipe()
	defer writer.Close()
	var out, errOut bytes.Buffer
	root := newRootCommand(genericiooptions.IOStreams{In: stdin, Out: &out, ErrOut: &errOut}, "test", newFakeGetter(), nil)
	root.SetArgs([]string{"fill", "q", "--broker-url", "amqp://u:p@127.0.0.1:1/"})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted while waiting for input") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fill kept waiting on stdin after the interrupt")
	}
}

func TestFillIntoAQueueThatHoldsItemsSaysHowMany(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "a"); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "b")
	if err != nil || !strings.Contains(errOut, "queue "+q+" already holds 1 item; adding to them") {
		t.Fatalf("%q %v", errOut, err)
	}
}

// The broker's password can stay off the command line, where shell history and ps show it.
func TestFillBrokerURLFromAFileOrTheEnvironment(t *testing.T) {
	url := brokerURL(t)
	file := filepath.Join(t.TempDir(), "broker-url")
	os.WriteFile(file, []byte(url+"\n"), 0o600)
	q := testQueue(t)
	if out, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url-file", file, "--item", "a"); err != nil || !strings.Contains(out, "published 1 item") {
		t.Fatalf("--broker-url-file: %q %v", out, err)
	}
	t.Setenv(BrokerURLEnv, url)
	if out, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--item", "b"); err != nil || !strings.Contains(out, "published 1 item") {
		t.Fatalf("%s: %q %v", BrokerURLEnv, out, err)
	}
	if got := strings.Join(bodies(t, q), "|"); got != "a|b" {
		t.Fatalf("queue holds %s", got)
	}
}

func TestBrokerURLFileMistakes(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	expectRejections(t, []rejection{
		{[]string{"fill", "q", "--item", "a", "--broker-url", "amqp://u:p@h", "--broker-url-file", empty}, "--broker-url and --broker-url-file both give"},
		{[]string{"fill", "q", "--item", "a", "--broker-url-file", empty}, "is empty: it should hold one URL"},
		{[]string{"status", "q", "--broker-url-file", filepath.Join(dir, "missing")}, "cannot read --broker-url-file"},
	})
}

// A broker URL that nothing answers is given up after --broker-timeout, saying so.
func TestFillUnreachableBrokerURLGivesUpAfterTheTimeout(t *testing.T) {
	start := time.Now()
	_, errOut, err := runCommand(t, newFakeGetter(), "", "fill", "q", "--item", "a", "--broker-url", "amqp://user:secret-pw@127.0.0.1:1/", "--broker-timeout", "2s")
	if err == nil || !strings.Contains(err.Error(), "connection refused (gave up after 2s); --broker-timeout waits longer") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(errOut, "waiting up to 2s for the broker") {
		t.Errorf("stderr %q", errOut)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("gave up after %s, not about 2s", elapsed)
	}
}
