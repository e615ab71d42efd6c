//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// logs follows a running Job's pods as they come and go, prefixes every line with its pod, ends
// by itself when the Job is done, and takes --tail and --timestamps as kubectl logs does.
func TestLogsFollowTailTimestamps(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	c.fillItems("chatty", []string{"one", "two", "three"})
	c.workqueue("", "run", "chatty", "--detach", "--parallelism", "1", "--image", busyboxImage, "--image-pull-policy", "Never",
		"--agent-image", agentImage, "--", "sh", "-c", `read item; echo "processing $item"; sleep 2; echo "done $item"`)

	// Started right away, before most pods exist: -f must pick them up as they start, and stop
	// once the Job has finished.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stdout, stderr, err := c.run(ctx, "", "workqueue", "logs", "chatty", "-f")
	if err != nil {
		t.Fatalf("logs -f: %v\n%s%s", err, stdout, stderr)
	}
	pods := map[string]bool{}
	for _, item := range []string{"one", "two", "three"} {
		m := regexp.MustCompile(`(?m)^\[(chatty-[a-z0-9]+)\] processing ` + item + `$`).FindStringSubmatch(stdout)
		if m == nil || !strings.Contains(stdout, "["+m[1]+"] done "+item) {
			t.Fatalf("logs -f lacks the lines of item %s, prefixed by its pod:\n%s", item, stdout)
		}
		pods[m[1]] = true
	}
	if len(pods) != 3 {
		t.Fatalf("the three items came from %d pods, want 3 (parallelism 1, one item each):\n%s", len(pods), stdout)
	}
	if !jobComplete(c.job("chatty")) {
		t.Fatal("logs -f ended before the Job finished")
	}

	// Each pod's last two lines: the command's "done" and the agent's own line, in either order.
	out := c.workqueue("", "logs", "chatty", "--tail", "2")
	if strings.Contains(out, "processing") || strings.Count(out, "] done ") != 3 || strings.Count(out, "workqueue-agent: item") != 3 {
		t.Fatalf("--tail 2 printed:\n%s", out)
	}
	out = c.workqueue("", "logs", "chatty", "--timestamps", "--since", "1h")
	if !regexp.MustCompile(`(?m)^\[chatty-[a-z0-9]+\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z processing one$`).MatchString(out) {
		t.Fatalf("--timestamps printed:\n%s", out)
	}
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "logs", "nosuch"); exitCode(err) != 1 || !strings.Contains(stderr, "there is no Job nosuch") {
		t.Fatalf("logs of a queue without a Job: %v %s", err, stderr)
	}
}
