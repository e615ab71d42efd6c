//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// complete runs `kubectl __complete workqueue ARGS` through the real kubectl, which runs
// kubectl_complete-workqueue from PATH (binDir, with the plugin), and returns the offered values.
// kubectl takes no global flags for a plugin: the kubeconfig and namespace go after its name.
func (c *cluster) complete(args ...string) []string {
	c.t.Helper()
	full := append([]string{"__complete", "workqueue", "--kubeconfig", kubeconfig, "-n", c.namespace}, args...)
	cmd := exec.Command(kubectl, full...)
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(full, " "), err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "kubectl_complete-workqueue") {
		c.t.Fatalf("kubectl did not call kubectl_complete-workqueue:\n%s", stderr.String())
	}
	var values []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if strings.HasPrefix(line, ":") { // cobra's directive, the last line
			continue
		}
		value, _, _ := strings.Cut(line, "\t")
		values = append(values, value)
	}
	return values
}

func contains(values []string, want string) bool {
	for _, v := range values {
		if v == want {
			return true
		}
	}
	return false
}

// TestCompletionAndVerbosity: kubectl completes the plugin's commands and its QUEUE from the
// namespace's Jobs through kubectl_complete-workqueue; -v logs the API requests as kubectl does,
// capped below the level that would print the Job's Secret.
func TestCompletionAndVerbosity(t *testing.T) {
	c := newCluster(t)

	if got := c.complete("st"); !contains(got, "status") {
		t.Fatalf("kubectl __complete workqueue st offered %q, want status", got)
	}
	if got := c.complete("run", "q", "--mode", ""); !contains(got, "one") || !contains(got, "drain") {
		t.Fatalf("--mode completion offered %q", got)
	}

	c.deployBroker()
	c.fillItems("picked", []string{"a"})
	// The Job is named apart from its queue: completion offers the queue, read from the Job.
	_, stderr, err := c.run(context.Background(), "", "workqueue", "-v=9", "run", "picked", "--name", "picked-job", "--detach",
		"--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--", "cat")
	if err != nil {
		t.Fatalf("run --detach -v=9: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "-v=9 is taken as -v=7") || !strings.Contains(stderr, "round_trippers.go") ||
		!strings.Contains(stderr, "/namespaces/"+c.namespace+"/jobs") {
		t.Fatalf("run -v=9 did not log its API requests as kubectl -v=7 does:\n%s", stderr)
	}
	// The Job's Secret holds BROKER_URL; no request or response body may reach the log. The
	// AMQP operations are logged at the same level, with the password hidden.
	if strings.Contains(stderr, "YW1xcDovL") /* base64 of amqp:// */ {
		t.Fatalf("run -v=9 logged the Secret's data:\n%s", stderr)
	}
	urls := regexp.MustCompile(`amqp://[^@\s"]*@`).FindAllString(stderr, -1)
	for _, u := range urls {
		if !strings.HasSuffix(u, ":xxxxx@") {
			t.Fatalf("run -v=9 logged a broker URL with its password (%q):\n%s", u, stderr)
		}
	}
	if len(urls) == 0 || !strings.Contains(stderr, `"AMQP queue.declare passive" queue="picked"`) {
		t.Fatalf("run -v=9 did not log its AMQP operations:\n%s", stderr)
	}

	if got := c.complete("status", ""); !contains(got, "picked") || contains(got, "picked-job") {
		t.Fatalf("kubectl __complete workqueue status '' offered %q, want the queue picked", got)
	}
	if got := c.complete("logs", "pi"); !contains(got, "picked") {
		t.Fatalf("kubectl __complete workqueue logs pi offered %q, want picked", got)
	}
}
