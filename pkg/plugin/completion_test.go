package plugin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// completions runs `kubectl workqueue __complete ARGS` and returns the offered values and cobra's
// last line (":4" is ShellCompDirectiveNoFileComp).
func completions(t *testing.T, getter ClientGetter, args ...string) ([]string, string) {
	t.Helper()
	out, errOut, err := runCommand(t, getter, "", append([]string{"__complete"}, args...)...)
	if err != nil {
		t.Fatalf("__complete %v: %v (stderr %q)", args, err, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	directive := lines[len(lines)-1]
	var values []string
	for _, line := range lines[:len(lines)-1] {
		value, _, _ := strings.Cut(line, "\t")
		values = append(values, value)
	}
	return values, directive
}

func pluginJob(namespace, name, queue string, managed bool) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Namespace:   namespace,
		Name:        name,
		Labels:      map[string]string{},
		Annotations: map[string]string{constants.AnnotationQueue: queue},
	}}
	if managed {
		j.Labels[constants.LabelManagedBy] = constants.ManagedBy
	}
	return j
}

func TestCompleteQueues(t *testing.T) {
	getter := newFakeGetter(
		pluginJob("test-ns", "job1", "job1", true),
		pluginJob("test-ns", "other-name", "fruits", true),
		pluginJob("test-ns", "fruits-again", "fruits", true), // a second Job on the same queue
		pluginJob("test-ns", "made-by-hand", "hand", false),
		pluginJob("elsewhere", "job2", "job2", true),
	)
	for _, command := range []string{"fill", "run", "status", "logs", "results", "retry", "purge", "delete"} {
		values, directive := completions(t, getter, command, "")
		if want := []string{"fruits", "job1"}; !reflect.DeepEqual(values, want) || directive != ":4" {
			t.Errorf("__complete %s '': got %q %s, want %q :4", command, values, directive, want)
		}
	}
	if values, _ := completions(t, getter, "status", "fr"); !reflect.DeepEqual(values, []string{"fruits"}) {
		t.Errorf("__complete status fr: got %q", values)
	}
	if values, directive := completions(t, getter, "status", "job1", ""); len(values) != 0 || directive != ":4" {
		t.Errorf("a second QUEUE: got %q %s, want nothing and no files", values, directive)
	}
	if values, directive := completions(t, getter, "run", "job1", "--image", "x", "--", ""); len(values) != 0 || directive != ":0" {
		t.Errorf("run's command after --: got %q %s, want file completion (:0)", values, directive)
	}
	for _, action := range getter.client.Actions() {
		if action.GetVerb() != "list" || action.GetResource().Resource != "jobs" {
			t.Errorf("completion did %s %s; it only lists Jobs", action.GetVerb(), action.GetResource().Resource)
		}
	}
}

func TestCompleteQueuesClusterError(t *testing.T) {
	getter := newFakeGetter()
	getter.client.PrependReactor("list", "jobs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("the cluster is down")
	})
	out, errOut, err := runCommand(t, getter, "", "__complete", "status", "")
	if err != nil || out != ":4\n" || strings.Contains(errOut, "cluster is down") {
		t.Errorf("a cluster error: got %q, stderr %q, %v; want no completions, nothing printed", out, errOut, err)
	}
}

func TestCompleteFlagValues(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "job1", "--mode", ""}, []string{"one", "drain"}},
		{[]string{"run", "job1", "--image-pull-policy", ""}, []string{"Always", "IfNotPresent", "Never"}},
		// --dry-run alone means client, so its value is only completed after =.
		{[]string{"run", "job1", "--dry-run="}, []string{"none", "client", "server"}},
		{[]string{"run", "job1", "-o", ""}, []string{"json", "yaml"}},
		{[]string{"broker", "install", "--image-pull-policy", ""}, []string{"Always", "IfNotPresent", "Never"}},
		{[]string{"broker", "install", "--dry-run="}, []string{"none", "client", "server"}},
		{[]string{"doctor", "--image-pull-policy", ""}, []string{"Always", "IfNotPresent", "Never"}},
		{[]string{"fill", "job1", "--queue-type", ""}, []string{"quorum", "classic"}},
		{[]string{"status", "job1", "-o", ""}, []string{"json", "yaml"}},
		{[]string{"results", "job1", "--output", ""}, []string{"json"}},
	}
	for _, tc := range cases {
		values, directive := completions(t, newFakeGetter(), tc.args...)
		if !reflect.DeepEqual(values, tc.want) || directive != ":4" {
			t.Errorf("__complete %q: got %q %s, want %q :4", tc.args, values, directive, tc.want)
		}
	}
}

// TestCompleteKubeconfigFlags completes --context, --cluster and --user from the kubeconfig, as
// kubectl does, through the real kubeconfig flags.
func TestCompleteKubeconfigFlags(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	config := `apiVersion: v1
kind: Config
clusters:
- {name: c-one, cluster: {server: "https://127.0.0.1:1"}}
- {name: c-two, cluster: {server: "https://127.0.0.1:2"}}
users:
- {name: u-one, user: {token: secret-token}}
contexts:
- {name: ctx-one, context: {cluster: c-one, user: u-one}}
- {name: ctx-two, context: {cluster: c-two, user: u-one}}
current-context: ctx-one
`
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{"--context": {"ctx-one", "ctx-two"}, "--cluster": {"c-one", "c-two"}, "--user": {"u-one"}}
	for flag, want := range cases {
		var out bytes.Buffer
		configFlags := genericclioptions.NewConfigFlags(true)
		root := newRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}}, "test", configFlagsGetter{configFlags}, configFlags)
		root.SetArgs([]string{"__complete", "--kubeconfig", kubeconfig, "status", flag, ""})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		got := lines[:len(lines)-1]
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) || lines[len(lines)-1] != ":4" {
			t.Errorf("__complete status %s '': got %q, want %q", flag, lines, want)
		}
	}
}

func TestEveryQueueCommandCompletesQueues(t *testing.T) {
	root := newRootCommand(genericiooptions.NewTestIOStreamsDiscard(), "test", newFakeGetter(), nil)
	for _, cmd := range root.Commands() {
		if strings.HasPrefix(strings.TrimPrefix(cmd.Use, cmd.Name()), " QUEUE") && cmd.ValidArgsFunction == nil {
			t.Errorf("%s takes a QUEUE but does not complete it", cmd.Name())
		}
	}
}

// TestVerbosityCapped: -v is klog's verbosity, at most 7, from which client-go would log the
// bodies of API responses (Secrets' data among them).
func TestVerbosityCapped(t *testing.T) {
	t.Cleanup(func() { runCommand(t, newFakeGetter(), "", "-v=0", "version") })
	for _, tc := range []struct {
		flag   string
		level  klog.Level
		capped bool
	}{
		{"-v=6", 6, false},
		{"--v=7", 7, false},
		{"-v=8", 7, true},
		{"-v=9", 7, true},
		{"--v=10", 7, true},
	} {
		out, errOut, err := runCommand(t, newFakeGetter(), "", tc.flag, "version")
		if err != nil || !strings.HasPrefix(out, "kubectl-workqueue test") {
			t.Fatalf("%s version: %q %v", tc.flag, out, err)
		}
		if !klog.V(tc.level).Enabled() || klog.V(tc.level+1).Enabled() {
			t.Errorf("%s: klog's verbosity is not %d", tc.flag, tc.level)
		}
		if warned := strings.Contains(errOut, "is taken as -v=7"); warned != tc.capped {
			t.Errorf("%s: stderr %q", tc.flag, errOut)
		}
	}
	if _, _, err := runCommand(t, newFakeGetter(), "", "-v=loud", "version"); err == nil || ExitCode(err, false) != ExitBadInput {
		t.Errorf("-v=loud: %v, want bad input", err)
	}
}
