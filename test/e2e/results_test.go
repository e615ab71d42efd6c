//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Every attempt's record reaches the laptop: done items with what the command wrote to
// $WORKQUEUE_RESULT_FILE, failed attempts with their exit code; taken once, they are gone.
func TestResultsOfEveryAttempt(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	c.fillItems("res", []string{"apple", "poison", "pear"})
	out, err := c.runWorkqueue("res", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--",
		"sh", "-c", `read item; echo "a log line"; echo "size of $item: ${#item}" > "$WORKQUEUE_RESULT_FILE"; [ "$item" != poison ]`)
	if code := exitCode(err); code != 3 {
		t.Fatalf("run exited %d, want 3 (poison dead-lettered):\n%s", code, out)
	}

	stdout, stderr, err := c.run(context.Background(), "", "workqueue", "results", "res", "-o", "json")
	if err != nil {
		t.Fatalf("results: %v\n%s", err, stderr)
	}
	type record struct {
		MessageID, Item, Result, Output, OutputFrom, Pod string
		Attempt                                          int
		ExitCode                                         *int
	}
	var records []record
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		records = append(records, r)
	}
	var seen []string
	for _, r := range records {
		seen = append(seen, r.Item+"/"+r.Result)
		if r.Pod == "" || r.MessageID == "" || r.OutputFrom != "file" || r.Output != "size of "+r.Item+": "+strconv.Itoa(len(r.Item))+"\n" {
			t.Errorf("record %+v", r)
		}
		if r.Result == "failed" && (r.ExitCode == nil || *r.ExitCode != 1) {
			t.Errorf("a failed attempt without its exit code: %+v", r)
		}
	}
	sort.Strings(seen)
	if want := "apple/done,pear/done,poison/failed,poison/failed,poison/failed"; strings.Join(seen, ",") != want {
		t.Fatalf("records %s, want %s", strings.Join(seen, ","), want)
	}
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "results", "res"); err != nil || !strings.Contains(stderr, "no result records waiting in res.results") {
		t.Fatalf("records were not taken: %v %s", err, stderr)
	}
}
