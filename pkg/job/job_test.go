package job

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the current output of Build")

func ptrTo[T any](v T) *T { return &v }

var brokerSecret = corev1.SecretKeySelector{
	LocalObjectReference: corev1.LocalObjectReference{Name: "job-broker-url"},
	Key:                  "url",
}

// goldenSpecs are the Jobs pinned in testdata/<name>.yaml.
func goldenSpecs() map[string]Spec {
	return map[string]Spec{
		// The seed's example: its worker image with the amqp-consume CMD, 8 fruits, 2 at a time.
		"seed": {
			Namespace:    "default",
			Queue:        "job1",
			Image:        "gcr.io/example/job-wq-1",
			Mode:         constants.ModeOne,
			Completions:  ptrTo[int32](8),
			BrokerSecret: brokerSecret,
		},
		"agent-one": {
			Name:        "resize-images",
			Namespace:   "media",
			Queue:       "images",
			Image:       "python:3.13-slim",
			Command:     []string{"python3", "/app/resize.py", "--size", "256"},
			Mode:        constants.ModeOne,
			Parallelism: 4,
			Completions: ptrTo[int32](20),
			ItemTimeout: 5 * time.Minute,
			Env: []corev1.EnvVar{
				{Name: "SIZE", Value: "256"},
				{Name: "S3_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "s3"}, Key: "token"}}},
			},
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
			Limits:            corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			ServiceAccount:    "resizer",
			ImagePullPolicy:   corev1.PullIfNotPresent,
			AgentImage:        "ghcr.io/kubectl-workqueue/workqueue-agent:v0.1.0",
			BrokerSecret:      brokerSecret,
			Labels:            map[string]string{"team": "media"},
			DeadLettersBefore: ptrTo(2),
		},
		"drain": {
			Namespace:      "batch",
			Queue:          "thumbnails",
			Image:          "busybox:1.37",
			Command:        []string{"sh", "-c", "wc -c"},
			Mode:           constants.ModeDrain,
			Parallelism:    3,
			MaxAttempts:    5,
			ActiveDeadline: 90 * time.Minute,
			// 0 asks Kubernetes to delete the Job as soon as it finishes.
			TTLAfterFinished: ptrTo[int32](0),
			AgentImage:       "ghcr.io/kubectl-workqueue/workqueue-agent:v0.1.0",
			BrokerSecret:     brokerSecret,
		},
		// The worker's image holds the agent: no init container, no volume.
		"agent-in-image": {
			Namespace:    "batch",
			Queue:        "thumbnails",
			Image:        "registry.example.com/thumbnailer-with-agent:3",
			Command:      []string{"thumbnail", "--size=256"},
			Completions:  ptrTo[int32](20),
			AgentInImage: "/usr/local/bin/workqueue-agent",
			ResultSize:   4096,
			BrokerSecret: brokerSecret,
		},
		// ':' and '/' are fine in an AMQP queue name but not in a label value.
		"queue-label-hash": {
			Name:         "orders-eu",
			Queue:        "orders:eu/high-priority",
			Image:        "registry.example.com/orders-worker:2",
			Completions:  ptrTo[int32](3),
			BrokerSecret: brokerSecret,
		},
	}
}

func TestBuildGolden(t *testing.T) {
	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			job, err := Build(spec)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			got, err := yaml.Marshal(job)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./pkg/job -update` to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Build(%s) differs from %s (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s", name, path, got, want)
			}
		})
	}
}

func validSpec() Spec {
	return Spec{
		Queue:        "job1",
		Image:        "example/worker",
		Completions:  ptrTo[int32](8),
		BrokerSecret: brokerSecret,
	}
}

func TestValidateAcceptsValidSpecs(t *testing.T) {
	if err := validSpec().Validate(); err != nil {
		t.Errorf("minimal spec: %v", err)
	}
	for name, spec := range goldenSpecs() {
		if err := spec.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	zero := validSpec()
	zero.Completions = ptrTo[int32](0)
	if err := zero.Validate(); err != nil {
		t.Errorf("completions 0 (an empty queue the user allowed): %v", err)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Spec)
		want   string // a part of the one line that describes the problem
	}{
		{"no queue", func(s *Spec) { s.Queue = ""; s.Name = "x" }, "queue name is empty"},
		{"queue too long", func(s *Spec) { s.Queue = strings.Repeat("q", 256); s.Name = "x" }, "at most 255"},
		{"queue unfit as job name", func(s *Spec) { s.Queue = "Orders.EU" }, `job name (taken from the queue name) "Orders.EU" is not a valid Kubernetes name`},
		{"bad name", func(s *Spec) { s.Name = "my_job" }, `job name "my_job" is not a valid Kubernetes name`},
		{"name too long", func(s *Spec) { s.Name = strings.Repeat("a", 64) }, "set --name to at most 63"},
		{"bad namespace", func(s *Spec) { s.Namespace = "Prod" }, `namespace "Prod"`},
		{"no image", func(s *Spec) { s.Image = "" }, "set --image"},
		{"blank image", func(s *Spec) { s.Image = "  " }, "set --image"},
		{"unknown mode", func(s *Spec) { s.Mode = "all" }, `mode "all" is not known`},
		{"relative agent path", func(s *Spec) { s.Command = []string{"true"}; s.AgentInImage = "bin/workqueue-agent" },
			`agent path "bin/workqueue-agent" is not absolute`},
		{"agent path without a command", func(s *Spec) { s.AgentInImage = "/usr/local/bin/workqueue-agent" }, "an agent path needs a command after --"},
		{"one mode without completions", func(s *Spec) { s.Completions = nil }, "set --completions"},
		{"negative completions", func(s *Spec) { s.Completions = ptrTo[int32](-1) }, "completions is -1"},
		{"drain mode with completions", func(s *Spec) { s.Mode = constants.ModeDrain }, "drop --completions or use --mode one"},
		{"negative parallelism", func(s *Spec) { s.Parallelism = -2 }, "set --parallelism to 1 or more"},
		{"negative attempts", func(s *Spec) { s.MaxAttempts = -1 }, "delivery attempts per item is -1"},
		{"negative item timeout", func(s *Spec) { s.ItemTimeout = -time.Second }, "item timeout is -1s"},
		{"root as run-as-user", func(s *Spec) { s.RunAsUser = ptrTo[int64](0) }, "give a non-root uid (1 or more) with --run-as-user"},
		{"negative deadline", func(s *Spec) { s.ActiveDeadline = -time.Minute }, "job deadline is -1m0s"},
		{"negative ttl", func(s *Spec) { s.TTLAfterFinished = ptrTo[int32](-5) }, "finished Job is -5s"},
		{"reserved BROKER_URL", func(s *Spec) { s.Env = []corev1.EnvVar{{Name: "BROKER_URL", Value: "x"}} }, "--env BROKER_URL is set by kubectl-workqueue"},
		{"reserved QUEUE", func(s *Spec) { s.Env = []corev1.EnvVar{{Name: "QUEUE", Value: "x"}} }, "--env QUEUE is set by kubectl-workqueue"},
		{"bad env name", func(s *Spec) { s.Env = []corev1.EnvVar{{Name: "1ST", Value: "x"}} }, `--env name "1ST" is not a valid`},
		{"empty env name", func(s *Spec) { s.Env = []corev1.EnvVar{{Value: "x"}} }, `--env name "" is not a valid`},
		{"duplicate env", func(s *Spec) { s.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}} }, "--env A is given twice"},
		{"env value and source", func(s *Spec) {
			s.Env = []corev1.EnvVar{{Name: "A", Value: "1", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		}, "--env A has both a value and a source"},
		{"negative request", func(s *Spec) { s.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")} }, "--requests cpu=-1 is negative"},
		{"request above limit", func(s *Spec) {
			s.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
			s.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
		}, "--requests memory=1Gi is more than --limits memory=512Mi"},
		{"reserved label", func(s *Spec) { s.Labels = map[string]string{constants.LabelQueue: "other"} }, "label workqueue.kubectl.io/queue is set by kubectl-workqueue"},
		{"bad label key", func(s *Spec) { s.Labels = map[string]string{"a b": "c"} }, `label key "a b" is not valid`},
		{"bad label value", func(s *Spec) { s.Labels = map[string]string{"team": "a/b"} }, `label team="a/b" has an invalid value`},
		{"bad service account", func(s *Spec) { s.ServiceAccount = "Runner" }, `service account "Runner"`},
		{"bad pull policy", func(s *Spec) { s.ImagePullPolicy = "Sometimes" }, `image pull policy "Sometimes" is not known`},
		{"item timeout without agent", func(s *Spec) { s.ItemTimeout = time.Minute }, "an item timeout of 1m0s needs the agent"},
		{"negative broker outage", func(s *Spec) { s.BrokerOutage = -time.Second }, "broker outage is -1s"},
		{"broker outage without agent", func(s *Spec) { s.BrokerOutage = time.Minute }, "a broker outage bound of 1m0s needs the agent"},
		{"negative idle wait", func(s *Spec) { s.Idle = -time.Second }, "idle wait is -1s"},
		{"idle wait in mode one", func(s *Spec) { s.Command, s.AgentImage, s.Idle = []string{"true"}, "agent:1", time.Second }, "an idle wait of 1s applies to drain pods"},
		{"idle wait without agent", func(s *Spec) { s.Mode, s.Completions, s.Idle = constants.ModeDrain, nil, time.Second }, "an idle wait of 1s needs the agent"},
		{"command without agent image", func(s *Spec) { s.Command = []string{"true"} }, "set --agent-image"},
		{"no secret name", func(s *Spec) { s.BrokerSecret.Name = "" }, "broker secret name is empty"},
		{"bad secret name", func(s *Spec) { s.BrokerSecret.Name = "Broker_Secret" }, `broker secret name "Broker_Secret"`},
		{"no secret key", func(s *Spec) { s.BrokerSecret.Key = "" }, "broker secret key is empty"},
		{"bad secret key", func(s *Spec) { s.BrokerSecret.Key = "url/1" }, `broker secret key "url/1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := validSpec()
			tt.modify(&spec)
			err := spec.Validate()
			var invalid *InvalidSpecError
			if !errors.As(err, &invalid) {
				t.Fatalf("Validate() = %v, want an *InvalidSpecError", err)
			}
			if len(invalid.Problems) != 1 {
				t.Fatalf("want exactly one problem, got %d:\n%v", len(invalid.Problems), err)
			}
			problem := invalid.Problems[0]
			if strings.Contains(problem, "\n") {
				t.Errorf("problem spans several lines: %q", problem)
			}
			if !strings.Contains(problem, tt.want) {
				t.Errorf("problem = %q, want it to contain %q", problem, tt.want)
			}
			if _, err := Build(spec); !errors.As(err, &invalid) {
				t.Errorf("Build() = %v, want the validation error", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	spec := Spec{Queue: "job1", Mode: "sometimes", Parallelism: -1}
	err := spec.Validate()
	var invalid *InvalidSpecError
	if !errors.As(err, &invalid) {
		t.Fatalf("Validate() = %v, want an *InvalidSpecError", err)
	}
	for _, want := range []string{"--image", "--mode", "--parallelism", "broker secret name", "broker secret key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(invalid.Problems) {
		t.Errorf("error has %d lines for %d problems", lines, len(invalid.Problems))
	}
}

// The broker URL holds a password: it must reach the pod through the Secret only.
func TestBrokerURLNeverLiteral(t *testing.T) {
	const password = "s3cr3t-pa55"
	literalURL := "amqp://worker:" + password + "@rabbitmq-service.default.svc.cluster.local:5672"

	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			job, err := Build(spec)
			if err != nil {
				t.Fatal(err)
			}
			pod := job.Spec.Template.Spec
			for _, c := range pod.InitContainers {
				for _, e := range c.Env {
					if *e.Name == constants.EnvBrokerURL {
						t.Errorf("init container %s gets BROKER_URL; it never talks to the broker", *c.Name)
					}
				}
			}
			var found int
			for _, c := range pod.Containers {
				for _, e := range c.Env {
					if *e.Name != constants.EnvBrokerURL {
						continue
					}
					found++
					if e.Value != nil {
						t.Errorf("BROKER_URL has a literal value %q", *e.Value)
					}
					if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
						t.Fatalf("BROKER_URL does not come from a secretKeyRef")
					}
					ref := e.ValueFrom.SecretKeyRef
					if *ref.Name != spec.BrokerSecret.Name || *ref.Key != spec.BrokerSecret.Key {
						t.Errorf("BROKER_URL comes from secret %s key %s, want %s key %s", *ref.Name, *ref.Key, spec.BrokerSecret.Name, spec.BrokerSecret.Key)
					}
				}
			}
			if found != 1 {
				t.Errorf("BROKER_URL is set %d times, want once", found)
			}
			out, err := yaml.Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("amqp://")) || bytes.Contains(out, []byte("amqps://")) {
				t.Errorf("the Job contains a broker URL:\n%s", out)
			}
		})
	}

	// A user who tries to pass the URL as an --env is refused, without the password being echoed.
	spec := validSpec()
	spec.Env = []corev1.EnvVar{{Name: constants.EnvBrokerURL, Value: literalURL}}
	_, err := Build(spec)
	if err == nil {
		t.Fatal("Build accepted BROKER_URL as a user env")
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("the error repeats the password: %v", err)
	}
}

func TestPodFailurePolicy(t *testing.T) {
	t.Run("agent", func(t *testing.T) {
		job := mustBuild(t, goldenSpecs()["agent-one"])
		rules := job.Spec.PodFailurePolicy.Rules
		type rule struct {
			action batchv1.PodFailurePolicyAction
			codes  []int32
			cond   corev1.PodConditionType
		}
		var got []rule
		for _, r := range rules {
			var g rule
			g.action = *r.Action
			if r.OnExitCodes != nil {
				if *r.OnExitCodes.ContainerName != constants.ContainerName {
					t.Errorf("rule %s matches container %s, want %s", g.action, *r.OnExitCodes.ContainerName, constants.ContainerName)
				}
				if *r.OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn {
					t.Errorf("rule %s uses operator %s", g.action, *r.OnExitCodes.Operator)
				}
				if !slices.IsSorted(r.OnExitCodes.Values) {
					t.Errorf("rule %s: exit codes %v are not sorted, which the API rejects", g.action, r.OnExitCodes.Values)
				}
				g.codes = r.OnExitCodes.Values
			}
			for _, p := range r.OnPodConditions {
				g.cond = *p.Type
			}
			got = append(got, g)
		}
		want := []rule{
			{action: batchv1.PodFailurePolicyActionFailJob, codes: []int32{outcome.ExitMisconfigured}},
			{action: batchv1.PodFailurePolicyActionIgnore, codes: []int32{outcome.ExitInterrupted, outcome.ExitBrokerLost}},
			{action: batchv1.PodFailurePolicyActionIgnore, cond: corev1.DisruptionTarget},
			{action: batchv1.PodFailurePolicyActionCount, codes: []int32{outcome.ExitItemFailed, outcome.ExitBrokerUnreachable, outcome.ExitCannotStart}},
		}
		if len(got) != len(want) {
			t.Fatalf("rules = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].action != want[i].action || !slices.Equal(got[i].codes, want[i].codes) || got[i].cond != want[i].cond {
				t.Errorf("rule %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
	t.Run("image entrypoint", func(t *testing.T) {
		job := mustBuild(t, goldenSpecs()["seed"])
		rules := job.Spec.PodFailurePolicy.Rules
		if len(rules) != 1 || rules[0].OnExitCodes != nil || len(rules[0].OnPodConditions) != 1 ||
			*rules[0].OnPodConditions[0].Type != corev1.DisruptionTarget || *rules[0].Action != batchv1.PodFailurePolicyActionIgnore {
			t.Errorf("want only DisruptionTarget → Ignore without the agent, got %+v", rules)
		}
	})
	for name, spec := range goldenSpecs() {
		job := mustBuild(t, spec)
		if *job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: a podFailurePolicy needs restartPolicy Never", name)
		}
		if *job.Spec.PodReplacementPolicy != batchv1.Failed {
			t.Errorf("%s: podReplacementPolicy = %s", name, *job.Spec.PodReplacementPolicy)
		}
	}
}

func TestBackoffLimit(t *testing.T) {
	tests := []struct {
		name        string
		mode        constants.Mode
		completions *int32
		parallelism int32
		attempts    int32
		want        int32
	}{
		{"one item", constants.ModeOne, ptrTo[int32](1), 2, 3, 6},
		{"empty queue", constants.ModeOne, ptrTo[int32](0), 2, 3, 6},
		{"seed", constants.ModeOne, ptrTo[int32](8), 2, 0, 24},
		{"one mode ignores parallelism", constants.ModeOne, ptrTo[int32](10), 50, 2, 20},
		{"drain", constants.ModeDrain, nil, 3, 5, 15},
		{"drain minimum", constants.ModeDrain, nil, 1, 1, 6},
		{"no overflow", constants.ModeOne, ptrTo[int32](math.MaxInt32), 2, 20, math.MaxInt32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := validSpec()
			spec.Mode, spec.Completions, spec.Parallelism, spec.MaxAttempts = tt.mode, tt.completions, tt.parallelism, tt.attempts
			if got := *mustBuild(t, spec).Spec.BackoffLimit; got != tt.want {
				t.Errorf("backoffLimit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	job := mustBuild(t, validSpec())
	if *job.Name != "job1" {
		t.Errorf("name = %s, want the queue name", *job.Name)
	}
	if job.Namespace != nil {
		t.Errorf("namespace = %q, want it left to the client", *job.Namespace)
	}
	if *job.Spec.Parallelism != DefaultParallelism {
		t.Errorf("parallelism = %d", *job.Spec.Parallelism)
	}
	if *job.Spec.TTLSecondsAfterFinished != DefaultTTLAfterFinished {
		t.Errorf("ttlSecondsAfterFinished = %d", *job.Spec.TTLSecondsAfterFinished)
	}
	if job.Spec.ActiveDeadlineSeconds != nil {
		t.Errorf("activeDeadlineSeconds = %d, want unset", *job.Spec.ActiveDeadlineSeconds)
	}
	if job.Annotations[constants.AnnotationMode] != string(constants.ModeOne) {
		t.Errorf("mode annotation = %q, want one", job.Annotations[constants.AnnotationMode])
	}
	worker := job.Spec.Template.Spec.Containers[0]
	if worker.Command != nil || worker.ImagePullPolicy != nil || worker.Resources != nil {
		t.Errorf("worker has fields nobody asked for: %+v", worker)
	}
}

func TestActiveDeadlineRoundsUp(t *testing.T) {
	spec := validSpec()
	spec.ActiveDeadline = 1500 * time.Millisecond
	if got := *mustBuild(t, spec).Spec.ActiveDeadlineSeconds; got != 2 {
		t.Errorf("activeDeadlineSeconds = %d, want 2", got)
	}
}

func TestAgentCommand(t *testing.T) {
	spec := goldenSpecs()["agent-one"]
	// Shell metacharacters stay separate argv entries: nothing is joined or quoted.
	spec.Command = []string{"printf", "%s\n", "$(rm -rf /); 'quoted' \"double\""}
	job := mustBuild(t, spec)
	worker := job.Spec.Template.Spec.Containers[0]
	want := append([]string{AgentPath, "--mode=one", "--timeout=5m0s", "--"}, spec.Command...)
	if !slices.Equal(worker.Command, want) {
		t.Errorf("worker command = %q, want %q", worker.Command, want)
	}
	if worker.Args != nil {
		t.Errorf("worker args = %q, want none (the image's CMD must not be appended)", worker.Args)
	}

	// The Job shares nothing with the Spec the caller may reuse.
	spec.Command[0] = "changed"
	spec.Requests[corev1.ResourceCPU] = resource.MustParse("9")
	if worker.Command[4] != "printf" {
		t.Errorf("changing the spec's command changed the Job")
	}
	if q := (*worker.Resources.Requests)[corev1.ResourceCPU]; q.String() != "100m" {
		t.Errorf("changing the spec's requests changed the Job: cpu %s", q.String())
	}

	spec.ItemTimeout = 0
	spec.Mode, spec.Completions = constants.ModeDrain, nil
	worker = mustBuild(t, spec).Spec.Template.Spec.Containers[0]
	if want := []string{AgentPath, "--mode=drain", "--"}; !slices.Equal(worker.Command[:3], want) {
		t.Errorf("worker command = %q, want it to start with %q", worker.Command, want)
	}

	spec.BrokerOutage = 90 * time.Second
	worker = mustBuild(t, spec).Spec.Template.Spec.Containers[0]
	if want := []string{AgentPath, "--mode=drain", "--broker-outage=1m30s", "--"}; !slices.Equal(worker.Command[:4], want) {
		t.Errorf("worker command = %q, want it to start with %q", worker.Command, want)
	}

	spec.BrokerOutage, spec.Idle = 0, 1500*time.Millisecond
	worker = mustBuild(t, spec).Spec.Template.Spec.Containers[0]
	if want := []string{AgentPath, "--mode=drain", "--idle=1.5s", "--"}; !slices.Equal(worker.Command[:4], want) {
		t.Errorf("worker command = %q, want it to start with %q", worker.Command, want)
	}

	// One attempt per item: a drain agent must not hold an item it has not started.
	spec.Idle, spec.MaxAttempts = 0, 1
	worker = mustBuild(t, spec).Spec.Template.Spec.Containers[0]
	if want := []string{AgentPath, "--mode=drain", "--max-attempts=1", "--"}; !slices.Equal(worker.Command[:4], want) {
		t.Errorf("worker command = %q, want it to start with %q", worker.Command, want)
	}
}

func TestQueueLabelValue(t *testing.T) {
	for _, q := range []string{"job1", "orders.eu", "a_b-c"} {
		if got := QueueLabelValue(q); got != q {
			t.Errorf("QueueLabelValue(%q) = %q, want it unchanged", q, got)
		}
	}
	seen := map[string]string{}
	for _, q := range []string{
		"orders:eu", "orders/eu", "orders eu", ":::", "-leading", "trailing.", "ünïcode",
		strings.Repeat("long", 20), strings.Repeat("long", 20) + "x",
	} {
		got := QueueLabelValue(q)
		if errs := content.IsLabelValue(got); len(errs) > 0 {
			t.Errorf("QueueLabelValue(%q) = %q, not a label value: %v", q, got, errs)
		}
		if got != QueueLabelValue(q) {
			t.Errorf("QueueLabelValue(%q) is not stable", q)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("queues %q and %q share the label value %q", q, other, got)
		}
		seen[got] = q
	}

	job := mustBuild(t, goldenSpecs()["queue-label-hash"])
	if got := job.Annotations[constants.AnnotationQueue]; got != "orders:eu/high-priority" {
		t.Errorf("queue annotation = %q, want the full name", got)
	}
	if got, want := job.Labels[constants.LabelQueue], QueueLabelValue("orders:eu/high-priority"); got != want {
		t.Errorf("queue label = %q, want %q", got, want)
	}
}

func TestSelectorMatchesPodsOfItsJobOnly(t *testing.T) {
	job := mustBuild(t, goldenSpecs()["agent-one"])
	selector, err := labels.Parse(Selector(*job.Name))
	if err != nil {
		t.Fatalf("Selector(%s) = %q does not parse: %v", *job.Name, Selector(*job.Name), err)
	}
	if !selector.Matches(labels.Set(job.Spec.Template.Labels)) {
		t.Errorf("selector %s does not match the pod template labels %v", selector, job.Spec.Template.Labels)
	}
	other := mustBuild(t, goldenSpecs()["drain"])
	if selector.Matches(labels.Set(other.Spec.Template.Labels)) {
		t.Errorf("selector %s matches the pods of Job %s", selector, *other.Name)
	}
}

// Applying to a fake clientset with server-side apply checks that the configuration is a Job
// the API machinery accepts, and extracting what constants.FieldManager owns must give it back unchanged.
func TestApplyRoundTrip(t *testing.T) {
	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			if spec.Namespace == "" {
				spec.Namespace = "default"
			}
			cfg := mustBuild(t, spec)
			client := fake.NewClientset()
			ctx := context.Background()

			applied, err := client.BatchV1().Jobs(spec.Namespace).Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: constants.FieldManager})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got, err := client.BatchV1().Jobs(spec.Namespace).Get(ctx, *cfg.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.UID != applied.UID {
				t.Errorf("Get returned another Job than Apply")
			}
			if got.Labels[constants.LabelJob] != *cfg.Name || got.Spec.Template.Labels[constants.LabelJob] != *cfg.Name {
				t.Errorf("job label missing: %v / %v", got.Labels, got.Spec.Template.Labels)
			}
			if got.Spec.Template.Spec.Containers[0].Name != constants.ContainerName {
				t.Errorf("container name = %s", got.Spec.Template.Spec.Containers[0].Name)
			}

			extracted, err := batchv1ac.ExtractJob(got, constants.FieldManager)
			if err != nil {
				t.Fatalf("ExtractJob: %v", err)
			}
			want, _ := yaml.Marshal(cfg)
			have, _ := yaml.Marshal(extracted)
			if !bytes.Equal(want, have) {
				t.Errorf("fields owned by %s after apply differ from the applied configuration:\n--- applied\n%s\n--- owned\n%s", constants.FieldManager, want, have)
			}

			// Applying the same configuration again is a no-op, not a conflict.
			if _, err := client.BatchV1().Jobs(spec.Namespace).Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: constants.FieldManager}); err != nil {
				t.Errorf("second Apply: %v", err)
			}
		})
	}
}

func mustBuild(t *testing.T, s Spec) *batchv1ac.JobApplyConfiguration {
	t.Helper()
	job, err := Build(s)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return job
}

// The worker runs as the image's user unless told otherwise; run-as-user and run-as-non-root
// are what a namespace enforcing "restricted" needs on top of the defaults every pod gets.
func TestRunAsUserAndNonRoot(t *testing.T) {
	cases := []struct {
		name       string
		runAsUser  *int64
		nonRoot    bool
		wantUser   *int64
		wantNoRoot *bool
	}{
		{"image's user", nil, false, nil, nil},
		{"non-root only", nil, true, nil, ptrTo(true)},
		{"a uid", ptrTo[int64](1000), false, ptrTo[int64](1000), ptrTo(true)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			s.RunAsUser, s.RunAsNonRoot = tc.runAsUser, tc.nonRoot
			pod := mustBuild(t, s).Spec.Template.Spec
			sc := pod.SecurityContext
			if sc == nil || sc.SeccompProfile == nil || *sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Fatalf("pod security context %+v lacks seccomp RuntimeDefault", sc)
			}
			if !reflect.DeepEqual(sc.RunAsUser, tc.wantUser) || !reflect.DeepEqual(sc.RunAsNonRoot, tc.wantNoRoot) {
				t.Errorf("runAsUser %v runAsNonRoot %v, want %v %v", sc.RunAsUser, sc.RunAsNonRoot, tc.wantUser, tc.wantNoRoot)
			}
			for _, c := range pod.Containers {
				if c.SecurityContext == nil || *c.SecurityContext.AllowPrivilegeEscalation || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
					t.Errorf("container %s: %+v", *c.Name, c.SecurityContext)
				}
			}
		})
	}
}

func TestResultRecordsAreTheAgentsToPublish(t *testing.T) {
	spec := Spec{Name: "j", Queue: "q", Image: "img", Command: []string{"cat"}, AgentImage: "agent", Completions: ptrTo[int32](1), ResultSize: 4096,
		BrokerSecret: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "url"}}
	j, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	command := strings.Join(j.Spec.Template.Spec.Containers[0].Command, " ")
	if !strings.Contains(command, "--results=q.results --result-size=4096 --") {
		t.Fatalf("agent command %q", command)
	}
	spec.ResultSize = 0
	if j, _ = Build(spec); strings.Contains(strings.Join(j.Spec.Template.Spec.Containers[0].Command, " "), "--results") {
		t.Fatal("results off still asks the agent for records")
	}
	for _, bad := range []func(*Spec){
		func(s *Spec) { s.ResultSize = -1 },
		func(s *Spec) { s.ResultSize = 1 << 30 },
		func(s *Spec) { s.ResultSize, s.Command, s.AgentImage = 10, nil, "" },
		func(s *Spec) { s.ResultSize, s.Queue = 10, strings.Repeat("q", 250) },
	} {
		s := spec
		bad(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
}
