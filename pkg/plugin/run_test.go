package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

func TestRunDryRunClientPrintsTheJobWithoutSecrets(t *testing.T) {
	getter := newFakeGetter()
	out, _, err := runCommand(t, getter, "", "run", "job1", "--image", "busybox:1.36", "--completions", "3",
		"--dry-run=client", "-o", "yaml", "--broker-url", "amqp://user:TopSecret@mq.example:5672/",
		"--env", "MODE=fast", "--requests", "cpu=100m,memory=64Mi", "--", "sh", "-c", "cat; echo $1", "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Job", "completions: 3", "parallelism: 2", "secretKeyRef", "name: job1-broker-url",
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

func TestRunDrainPassesTheIdleWaitToTheAgent(t *testing.T) {
	out, _, err := runCommand(t, newFakeGetter(), "", "run", "q", "--mode", "drain", "--idle", "1500ms", "--image", "img", "--dry-run=client", "-o", "yaml",
		"--broker-url", "amqp://u:p@h/", "--", "true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "- --idle=1.5s") {
		t.Fatalf("the agent's command lacks --idle=1.5s:\n%s", out)
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

func TestRunWithTheAgentInTheImageHasNoInitContainer(t *testing.T) {
	out, _, err := runCommand(t, newFakeGetter(), "", "run", "job1", "--image", "worker-with-agent:1", "--completions", "8", "--dry-run=client", "-o", "yaml",
		"--broker-url", "amqp://u:p@h/", "--agent-path", "/usr/local/bin/workqueue-agent", "--", "sh", "-c", "cat")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "initContainers") || strings.Contains(out, "emptyDir") || strings.Contains(out, "workqueue-agent:") ||
		!strings.Contains(out, "- /usr/local/bin/workqueue-agent") || !strings.Contains(out, "--mode=one") {
		t.Fatalf("%s", out)
	}
}

func TestRunRejectsBadInputBeforeTouchingTheCluster(t *testing.T) {
	cases := []rejection{
		{[]string{"run", "job1"}, "image is empty"},
		{[]string{"run", "Job_1", "--image", "i"}, "not a valid Kubernetes name"},
		{[]string{"run", "job1", "--image", "i", "--name", "UPPER"}, "--name"},
		{[]string{"run", "job1", "--image", "i", "--mode", "drain", "--completions", "3"}, "--completions has no meaning with --mode drain"},
		{[]string{"run", "job1", "--image", "i", "--mode", "sideways"}, "mode"},
		{[]string{"run", "job1", "--image", "i", "--env", "NOEQUALS"}, "NAME=VALUE"},
		{[]string{"run", "job1", "--image", "i", "--env", "=x"}, `--env "=x" is not NAME=VALUE`},
		{[]string{"run", "job1", "--image", "i", "--env", "BROKER_URL=x"}, "BROKER_URL"},
		{[]string{"run", "job1", "--image", "i", "--requests", "cpu=lots"}, "not a quantity"},
		{[]string{"run", "job1", "--image", "i", "--image-pull-policy", "Sometimes"}, "--image-pull-policy"},
		{[]string{"run", "job1", "--image", "i", "--dry-run=maybe"}, "--dry-run"},
		{[]string{"run", "job1", "--image", "i", "--parallelism", "0"}, "parallelism"},
		{[]string{"run", "job1", "extra", "--image", "i"}, "a command to run goes after --"},
		{[]string{"run", "job1", "--image", "i", "--item-timeout", "5s"}, "timeout"},
		{[]string{"run", "job1", "--image", "i", "--agent-path", "/agent", "--agent-image", "a:1", "--", "true"}, "--agent-path and --agent-image both say"},
		{[]string{"run", "job1", "--image", "i", "--agent-path", "agent", "--", "true"}, `agent path "agent" is not absolute`},
		{[]string{"run", "job1", "--image", "i", "--agent-path", "/agent"}, "an agent path needs a command after --"},
		{[]string{"run", "job1", "--image", "i", "--idle", "1s", "--", "true"}, "an idle wait of 1s applies to drain pods"},
		{[]string{"run", "job1", "--image", "i", "--mode", "drain", "--idle", "1s"}, "an idle wait of 1s needs the agent"},
		{[]string{"run", "job1", "--image", "i", "--mode", "drain", "--idle", "-1s", "--", "true"}, "idle wait is -1s"},
	}
	expectRejections(t, cases)
}

// The pods' Secret never takes the name of the broker's credentials, or of anyone's Secret.
func TestRunKeepsOffSecretsItDidNotMake(t *testing.T) {
	url := brokerURL(t)
	name := testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", name, "--item", "x", "--broker-url", url, "-q"); err != nil {
		t.Fatal(err)
	}
	credentials := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: rabbitmq.CredentialsSecret, Namespace: "test-ns"},
		Data: map[string][]byte{"username": []byte("u"), "password": []byte("p")}}
	getter := newFakeGetter(credentials)
	if _, _, err := runCommand(t, getter, "", "run", name, "--name", "workqueue", "--image", "i", "--detach", "--broker-url", url, "--", "cat"); err != nil {
		t.Fatal(err)
	}
	kept, err := getter.client.CoreV1().Secrets("test-ns").Get(context.Background(), rabbitmq.CredentialsSecret, metav1.GetOptions{})
	if err != nil || len(kept.OwnerReferences) != 0 || string(kept.Data["password"]) != "p" {
		t.Fatalf("the credentials Secret was touched: %+v, %v", kept, err)
	}

	someones := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other-broker-url", Namespace: "test-ns"}}
	getter = newFakeGetter(someones)
	_, _, err = runCommand(t, getter, "", "run", name, "--name", "other", "--image", "i", "--detach", "--broker-url", url, "--", "cat")
	if err == nil || !strings.Contains(err.Error(), "Secret other-broker-url already exists") {
		t.Fatalf("got %v", err)
	}
	if _, err := getter.client.BatchV1().Jobs("test-ns").Get(context.Background(), "other", metav1.GetOptions{}); err == nil {
		t.Error("a Job was created although its Secret was refused")
	}
	if _, _, err := runCommand(t, getter, "", "delete", name, "--name", "other", "--keep-queue"); err == nil {
		t.Error("delete found something to delete")
	}
	if _, err := getter.client.CoreV1().Secrets("test-ns").Get(context.Background(), "other-broker-url", metav1.GetOptions{}); err != nil {
		t.Error("delete removed a Secret run did not make")
	}
}

func TestDefaultAgentImageMatchesReleasesOnly(t *testing.T) {
	for version, want := range map[string]string{
		"v0.3.1":                             AgentImageRepository + ":v0.3.1",
		"dev":                                AgentImageRepository + ":latest",
		"v0.0.0-20261127101500-4d3cad1f0e2a": AgentImageRepository + ":latest",
		"v0.3.1+dirty":                       AgentImageRepository + ":latest",
		"v1.0.0-rc.1":                        AgentImageRepository + ":latest",
	} {
		if got := DefaultAgentImage(version); got != want {
			t.Errorf("%s: %s, want %s", version, got, want)
		}
	}
}

func TestStatusWatchCountsOnlyTheJobsOwnDeadLetters(t *testing.T) {
	url := brokerURL(t)
	name := testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", name, "--item", "x", "--broker-url", url, "-q"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCommand(t, newFakeGetter(), "", "run", name, "--name", "deadletters", "--image", "i", "--dry-run=server", "-o", "yaml", "--broker-url", url, "--", "cat")
	if err != nil || !strings.Contains(out, constants.AnnotationDeadLettersBefore+`: "0"`) {
		t.Fatalf("the Job does not record the dead letters before it: %v\n%s", err, out)
	}
}

func TestRunOutputFormatsAreCheckedBeforeAnything(t *testing.T) {
	expectRejections(t, []rejection{
		{[]string{"run", "job1", "--image", "i", "-o", "name", "--", "cat"}, "a followed run prints its report as -o json or -o yaml"},
		{[]string{"status", "job1", "-o", "wide"}, "status prints json or yaml"},
		{[]string{"status", "job1", "--logs"}, "add --watch"},
	})
}

func TestStatusAsADocument(t *testing.T) {
	url, q := brokerURL(t), testQueue(t)
	if _, _, err := runCommand(t, newFakeGetter(), "", "fill", q, "--broker-url", url, "--item", "a", "--item", "b", "-q"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCommand(t, newFakeGetter(), "", "status", q, "--broker-url", url, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc workqueue.QueueStatus
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	if doc.Kind != "QueueStatus" || doc.Broker == nil || !doc.Broker.Exists || doc.Broker.Ready != 2 || doc.Broker.DeadLetters == nil || *doc.Broker.DeadLetters != 0 || doc.Job != nil {
		t.Fatalf("%+v", doc)
	}
	out, _, err = runCommand(t, newFakeGetter(), "", "status", "no-such-queue-here", "--broker-url", url, "-o", "yaml")
	if err != nil || !strings.Contains(out, "exists: false") || !strings.Contains(out, "job: null") {
		t.Fatalf("a queue that does not exist: %v\n%s", err, out)
	}
	_, _, err = runCommand(t, newFakeGetter(), "", "status", q, "--broker-url", "amqp://u:p@127.0.0.1:1/", "--broker-timeout", "1s", "-o", "json")
	if ExitCode(err, false) != ExitUnreachable {
		t.Fatalf("an unreachable broker: exit %d (%v)", ExitCode(err, false), err)
	}
}
