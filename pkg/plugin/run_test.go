package plugin

import (
	"strings"
	"testing"
)

func TestRunDryRunClientPrintsTheJobWithoutSecrets(t *testing.T) {
	getter := newFakeGetter()
	out, _, err := runCommand(t, getter, "", "run", "job1", "--image", "busybox:1.36", "--completions", "3",
		"--dry-run=client", "-o", "yaml", "--broker-url", "amqp://user:TopSecret@mq.example:5672/",
		"--env", "MODE=fast", "--requests", "cpu=100m,memory=64Mi", "--", "sh", "-c", "cat; echo $1", "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Job", "completions: 3", "parallelism: 2", "secretKeyRef", "name: job1-broker",
		"/workqueue/workqueue-agent", "--mode=one", "cat; echo $1", "podFailurePolicy", "cpu: 100m", "MODE"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if strings.Contains(out, "TopSecret") || strings.Contains(out, "amqp://") {
		t.Fatalf("dry-run output holds the broker URL:\n%s", out)
	}
	for _, action := range getter.client.Actions() {
		if action.GetVerb() != "get" {
			t.Fatalf("a client dry run must only read, but it did %s %s", action.GetVerb(), action.GetResource().Resource)
		}
	}
}

func TestRunDrainModeHasNoCompletions(t *testing.T) {
	out, _, err := runCommand(t, newFakeGetter(), "", "run", "q", "--mode", "drain", "--image", "img", "--dry-run=client", "-o", "yaml",
		"--broker-url", "amqp://u:p@h/", "--", "true")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "completions:") || !strings.Contains(out, "--mode=drain") {
		t.Fatalf("%s", out)
	}
}

func TestRunWithoutCommandKeepsTheImageEntrypoint(t *testing.T) {
	out, _, err := runCommand(t, newFakeGetter(), "", "run", "job1", "--image", "seed-worker:1", "--completions", "8", "--dry-run=client", "-o", "yaml", "--broker-url", "amqp://u:p@h/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "initContainers") || strings.Contains(out, "command:") || !strings.Contains(out, "name: QUEUE") {
		t.Fatalf("%s", out)
	}
}

func TestRunRejectsBadInputBeforeTouchingTheCluster(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "job1"}, "image is empty"},
		{[]string{"run", "Job_1", "--image", "i"}, "not a valid Kubernetes name"},
		{[]string{"run", "job1", "--image", "i", "--name", "UPPER"}, "--name"},
		{[]string{"run", "job1", "--image", "i", "--mode", "drain", "--completions", "3"}, "--completions has no meaning with --mode drain"},
		{[]string{"run", "job1", "--image", "i", "--mode", "sideways"}, "mode"},
		{[]string{"run", "job1", "--image", "i", "--env", "NOEQUALS"}, "NAME=VALUE"},
		{[]string{"run", "job1", "--image", "i", "--env", "BROKER_URL=x"}, "BROKER_URL"},
		{[]string{"run", "job1", "--image", "i", "--requests", "cpu=lots"}, "not a quantity"},
		{[]string{"run", "job1", "--image", "i", "--image-pull-policy", "Sometimes"}, "--image-pull-policy"},
		{[]string{"run", "job1", "--image", "i", "--dry-run", "maybe"}, "--dry-run"},
		{[]string{"run", "job1", "--image", "i", "--parallelism", "0"}, "parallelism"},
		{[]string{"run", "job1", "extra", "--image", "i"}, "a command to run goes after --"},
		{[]string{"run", "job1", "--image", "i", "--item-timeout", "5s"}, "timeout"},
	}
	for _, tc := range cases {
		getter := newFakeGetter()
		_, _, err := runCommand(t, getter, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one line containing %q, got %v", tc.args, tc.want, err)
		}
		if n := len(getter.client.Actions()); n != 0 {
			t.Errorf("%v: bad input reached the cluster (%d calls)", tc.args, n)
		}
	}
}
