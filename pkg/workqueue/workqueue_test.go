package workqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

func TestAssess(t *testing.T) {
	done := tail.Summary{Complete: true}
	failedItem := tail.Summary{Complete: true, Results: []tail.PodResult{
		{Outcome: &outcome.Outcome{Result: outcome.ResultFailed, Item: "bad", MessageID: "1"}},
		{Outcome: &outcome.Outcome{Result: outcome.ResultFailed, Item: "bad", MessageID: "1"}},
		{Outcome: &outcome.Outcome{Result: outcome.ResultDone, Item: "good", MessageID: "2"}},
	}}
	tests := []struct {
		name          string
		summary       tail.Summary
		before, after QueueState
		afterErr      error
		wantProblems  []string
		deadLettered  int
		agent         bool
	}{
		{"all done", done, QueueState{8, 0}, QueueState{0, 0}, nil, nil, 0, false},
		{"dead letters of earlier runs do not count", done, QueueState{8, 5}, QueueState{0, 5}, nil, nil, 0, false},
		{"no dead-letter queue (classic)", done, QueueState{8, -1}, QueueState{0, -1}, nil, nil, 0, false},
		{"one item dead-lettered, named once", failedItem, QueueState{2, 0}, QueueState{0, 1}, nil,
			[]string{`1 item failed every attempt and moved to queue q.failed ("bad")`}, 1, true},
		{"items left", done, QueueState{8, 0}, QueueState{2, 0}, nil,
			[]string{"2 items are still in queue q (run again to process them)"}, 0, false},
		{"one item left", done, QueueState{8, 0}, QueueState{1, 0}, nil,
			[]string{"1 item is still in queue q"}, 0, false},
		{"Job failed", tail.Summary{Failed: true, FailureMessage: "BackoffLimitExceeded"}, QueueState{8, 0}, QueueState{0, 0}, nil,
			[]string{"Job j failed: BackoffLimitExceeded"}, 0, false},
		{"broker unreadable afterwards", done, QueueState{8, 0}, UnknownQueueState, errors.New("refused"),
			[]string{"cannot confirm from the broker that every item was processed"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Assess("j", "q", tt.summary, tt.before, tt.after, tt.afterErr)
			if r.OK() != (len(tt.wantProblems) == 0) || len(r.Problems) != len(tt.wantProblems) {
				t.Fatalf("problems %q, want %q", r.Problems, tt.wantProblems)
			}
			for i, want := range tt.wantProblems {
				if !strings.Contains(r.Problems[i], want) {
					t.Errorf("problem %q lacks %q", r.Problems[i], want)
				}
			}
			if r.DeadLettered != tt.deadLettered || r.AgentReported != tt.agent {
				t.Errorf("dead-lettered %d, agent %v; want %d, %v", r.DeadLettered, r.AgentReported, tt.deadLettered, tt.agent)
			}
		})
	}
}

func TestCommandNamesTheJobOnlyWhenItDiffers(t *testing.T) {
	if got := Command("status", "q", "q", "--watch"); got != "kubectl workqueue status q --watch" {
		t.Error(got)
	}
	if got := Command("delete", "q", "resize"); got != "kubectl workqueue delete q --name resize" {
		t.Error(got)
	}
}

func TestDeadLettersBefore(t *testing.T) {
	for annotation, want := range map[string]int{"": 0, "3": 3, "junk": 0, "-1": 0} {
		j := &batchv1.Job{}
		if annotation != "" {
			j.Annotations = map[string]string{constants.AnnotationDeadLettersBefore: annotation}
		}
		if got := DeadLettersBefore(j); got != want {
			t.Errorf("annotation %q: %d, want %d", annotation, got, want)
		}
	}
}

func TestDescribeJob(t *testing.T) {
	start := metav1.NewTime(time.Unix(1000, 0))
	j := &batchv1.Job{
		Spec:   batchv1.JobSpec{Completions: ptr.To(int32(8)), Parallelism: ptr.To(int32(2))},
		Status: batchv1.JobStatus{Active: 1, Succeeded: 7, StartTime: &start, Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: "True"}}},
	}
	want := "Complete; pods 1 active, 7 succeeded, 0 failed; completions 8, parallelism 2, started 1m0s ago"
	if got := DescribeJob(j, start.Add(time.Minute)); got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// launchRequest is a mode-one launch of queue q into namespace ns, with a broker that holds ready items.
func launchRequest(ready int) LaunchRequest {
	return LaunchRequest{
		Spec: job.Spec{Name: "q", Namespace: "ns", Queue: "q", Image: "img", Mode: constants.ModeOne,
			BrokerSecret: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: BrokerSecretName("q")}, Key: BrokerSecretKey}},
		Completions:    -1,
		ReadQueue:      func(context.Context) (QueueState, error) { return QueueState{Ready: ready, DeadLetters: 4}, nil },
		DeclareResults: func(context.Context) error { return errors.New("results are off in these tests") },
		PodURL:         func(context.Context) (string, error) { return "amqp://u:p@rabbitmq-service.ns.svc:5672", nil },
	}
}

func finishedJob(name string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
}

func TestLaunch(t *testing.T) {
	ctx := context.Background()
	t.Run("sizes completions from the queue and the Job owns its Secret", func(t *testing.T) {
		client := fake.NewClientset()
		launched, err := Launch(ctx, client, launchRequest(8))
		if err != nil {
			t.Fatal(err)
		}
		if *launched.Spec.Completions != 8 || launched.Job == nil || launched.State.Ready != 8 || *launched.Spec.DeadLettersBefore != 4 {
			t.Fatalf("launched %+v", launched)
		}
		secret, err := client.CoreV1().Secrets("ns").Get(ctx, "q-broker-url", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].Kind != "Job" {
			t.Errorf("the Secret is not owned by the Job: %+v", secret.OwnerReferences)
		}
	})
	t.Run("an empty queue is refused unless allowed", func(t *testing.T) {
		client := fake.NewClientset()
		if _, err := Launch(ctx, client, launchRequest(0)); err == nil || !strings.Contains(err.Error(), "--allow-empty") {
			t.Fatalf("want the empty queue refused, got %v", err)
		}
		req := launchRequest(0)
		req.AllowEmpty = true
		if launched, err := Launch(ctx, client, req); err != nil || *launched.Spec.Completions != 0 {
			t.Fatalf("%v %+v", err, launched)
		}
	})
	t.Run("a running Job is never replaced", func(t *testing.T) {
		client := fake.NewClientset(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "ns"}})
		req := launchRequest(3)
		req.Replace = true
		if _, err := Launch(ctx, client, req); err == nil || !strings.Contains(err.Error(), "still running") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a finished Job needs --replace", func(t *testing.T) {
		client := fake.NewClientset(finishedJob("q"))
		if _, err := Launch(ctx, client, launchRequest(3)); err == nil || !strings.Contains(err.Error(), "--replace") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a Secret of the name that run did not make is left alone", func(t *testing.T) {
		client := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "q-broker-url", Namespace: "ns"}})
		if _, err := Launch(ctx, client, launchRequest(3)); err == nil || !strings.Contains(err.Error(), "was not made by kubectl workqueue") {
			t.Fatalf("got %v", err)
		}
		if jobs, _ := client.BatchV1().Jobs("ns").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
			t.Error("a Job was made beside someone else's Secret")
		}
	})
	t.Run("a refused Job takes its Secret with it", func(t *testing.T) {
		client := fake.NewClientset()
		client.PrependReactor("patch", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("admission webhook denied the request")
		})
		if _, err := Launch(ctx, client, launchRequest(3)); err == nil || !strings.Contains(err.Error(), "create Job q") {
			t.Fatalf("got %v", err)
		}
		if _, err := client.CoreV1().Secrets("ns").Get(ctx, "q-broker-url", metav1.GetOptions{}); err == nil {
			t.Error("the Secret outlived the refused Job")
		}
	})
	t.Run("a client dry run reads the queue only to count it and writes nothing", func(t *testing.T) {
		client := fake.NewClientset()
		req := launchRequest(5)
		req.DryRun = DryRunClient
		launched, err := Launch(ctx, client, req)
		if err != nil || launched.Job != nil || launched.Apply == nil || *launched.Spec.Completions != 5 {
			t.Fatalf("%v %+v", err, launched)
		}
		req.Completions = 2
		req.ReadQueue = func(context.Context) (QueueState, error) {
			t.Fatal("read the queue needlessly")
			return QueueState{}, nil
		}
		if _, err := Launch(ctx, client, req); err != nil {
			t.Fatal(err)
		}
		for _, action := range client.Actions() {
			if action.GetVerb() != "get" {
				t.Fatalf("a client dry run did %s %s", action.GetVerb(), action.GetResource().Resource)
			}
		}
	})
	t.Run("a namespace that enforces restricted gets a non-root worker, and the user is told", func(t *testing.T) {
		client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns",
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}})
		var notices []string
		req := launchRequest(1)
		req.Notice = func(s string) { notices = append(notices, s) }
		launched, err := Launch(ctx, client, req)
		if err != nil || !launched.Spec.RunAsNonRoot || len(notices) != 1 {
			t.Fatalf("%v nonroot=%v notices=%q", err, launched.Spec.RunAsNonRoot, notices)
		}
	})
}

func TestDeleteKeepsSecretsItDidNotMake(t *testing.T) {
	ctx := context.Background()
	ours := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "a-broker-url", Namespace: "ns",
		Labels: map[string]string{constants.LabelManagedBy: constants.ManagedBy, constants.LabelJob: "a"}}}
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b-broker-url", Namespace: "ns"}}
	client := fake.NewClientset(finishedJob("a"), ours, theirs)
	deleted, err := Delete(ctx, client, nil, "ns", "a", "a")
	if err != nil || !deleted.Job || len(deleted.Queues) != 0 {
		t.Fatalf("%v %+v", err, deleted)
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, "a-broker-url", metav1.GetOptions{}); err == nil {
		t.Error("the Job's Secret is still there")
	}
	if deleted, err := Delete(ctx, client, nil, "ns", "b", "b"); err != nil || deleted.Job {
		t.Fatalf("%v %+v", err, deleted)
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, "b-broker-url", metav1.GetOptions{}); err != nil {
		t.Error("delete removed a Secret that run did not make")
	}
}

func TestReportDocument(t *testing.T) {
	one := 1
	s := tail.Summary{Complete: true, Parallelism: 2, Completions: ptr.To(int32(4)), Succeeded: 2, FailedPods: 2, ItemsDone: 2, ItemsFailed: 2,
		Results: []tail.PodResult{
			{Outcome: &outcome.Outcome{Result: outcome.ResultFailed, Item: "bad", MessageID: "2-x", Attempt: 1, ExitCode: &one}},
			{Outcome: &outcome.Outcome{Result: outcome.ResultDone, Item: "good", MessageID: "1-x", Attempt: 1}},
			{Outcome: &outcome.Outcome{Result: outcome.ResultFailed, Item: "bad", MessageID: "2-x", Attempt: 2, ExitCode: &one}},
			{Outcome: &outcome.Outcome{Result: outcome.ResultFailed, Item: "flaky", MessageID: "3-x", Attempt: 1, ExitCode: &one}},
			{Outcome: &outcome.Outcome{Result: outcome.ResultDone, Item: "flaky", MessageID: "3-x", Attempt: 2}},
		}}
	doc := Assess("j", "q", s, QueueState{4, 0}, QueueState{0, 1}, nil).Document("ns")
	if doc.Kind != "RunReport" || doc.APIVersion != APIVersion || doc.Status != "Complete" || doc.Succeeded {
		t.Fatalf("%+v", doc)
	}
	if doc.Items == nil || doc.Items.DeadLettered != 1 || doc.Items.Processed != 2 || !doc.Items.ReportedByAgent {
		t.Fatalf("items %+v", doc.Items)
	}
	// An item is listed once, by its last attempt; one that succeeded in the end is not listed.
	if len(doc.FailedItems) != 1 || doc.FailedItems[0].Item != "bad" || doc.FailedItems[0].Attempt != 2 {
		t.Fatalf("failed items %+v", doc.FailedItems)
	}
	unread := Assess("j", "q", s, QueueState{4, 0}, UnknownQueueState, errors.New("refused")).Document("ns")
	if unread.Items != nil {
		t.Errorf("counts of a broker that could not be read: %+v", unread.Items)
	}
	clean := Assess("j", "q", tail.Summary{Complete: true}, QueueState{0, 0}, QueueState{0, 0}, nil).Document("ns")
	if !clean.Succeeded || clean.Problems == nil || clean.FailedItems == nil {
		t.Errorf("a clean run: lists must be empty, not null: %+v", clean)
	}
}

func TestListEntries(t *testing.T) {
	job := func(name, queue string, created int64, complete bool) batchv1.Job {
		j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.Unix(created, 0),
			Labels:      map[string]string{constants.LabelManagedBy: constants.ManagedBy},
			Annotations: map[string]string{constants.AnnotationQueue: queue}}}
		if complete {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		}
		return j
	}
	jobs := []batchv1.Job{job("a", "a", 1, true), job("a-again", "a", 2, false), job("b", "b", 1, true), {ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}}}
	filled := map[string]any{"x-consumer-timeout": int64(1000)}
	queues := []rabbitmq.QueueInfo{
		{Name: "a", Type: "quorum", Ready: 3, InFlight: 2, Consumers: 2, Arguments: filled},
		{Name: "a.failed", Type: "classic", Ready: 1},
		{Name: "a.results", Type: "classic", Ready: 7},
		{Name: "c", Type: "quorum", Ready: 5, Arguments: filled},
		{Name: "c.failed", Type: "classic"},
		{Name: "seed-queue", Type: "classic", Ready: 9},
		{Name: "orphan.failed", Type: "classic", Arguments: filled},
	}
	entries := ListEntries("ns", jobs, queues)
	var got []string
	for _, e := range entries {
		job := "-"
		if e.Job != nil {
			job = e.Job.Name + "/" + e.Job.Status
		}
		got = append(got, fmt.Sprintf("%s ready=%s inflight=%s failed=%s results=%s job=%s", e.Queue, show(e.Ready), show(e.InFlight), show(e.DeadLetters), show(e.Results), job))
	}
	want := []string{
		"a ready=3 inflight=2 failed=1 results=7 job=a-again/Running",
		"b ready=? inflight=? failed=? results=? job=b/Complete",
		"c ready=5 inflight=0 failed=0 results=? job=-",
		"orphan.failed ready=0 inflight=0 failed=? results=? job=-",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without the management API, only the Jobs' queues, counts unknown until counted over AMQP.
	if entries := ListEntries("ns", jobs, nil); len(entries) != 2 || entries[0].Ready != nil {
		t.Fatalf("%+v", entries)
	}
}

func show(n *int) string {
	if n == nil {
		return "?"
	}
	return fmt.Sprint(*n)
}

func TestLaunchAppliesAsTheFieldManagerAsked(t *testing.T) {
	for _, tc := range []struct {
		manager     string
		force       bool
		wantManager string
	}{{"", false, constants.FieldManager}, {"pipeline", true, "pipeline"}} {
		client := fake.NewClientset()
		req := launchRequest(1)
		req.FieldManager, req.ForceConflicts = tc.manager, tc.force
		if _, err := Launch(context.Background(), client, req); err != nil {
			t.Fatal(err)
		}
		applies := 0
		for _, action := range client.Actions() {
			if patch, ok := action.(k8stesting.PatchActionImpl); ok {
				applies++
				if patch.PatchOptions.FieldManager != tc.wantManager || (patch.PatchOptions.Force != nil && *patch.PatchOptions.Force) != tc.force {
					t.Errorf("%s %s applied as %q force %v, want %q force %v", patch.GetVerb(), patch.GetResource().Resource,
						patch.PatchOptions.FieldManager, patch.PatchOptions.Force, tc.wantManager, tc.force)
				}
			}
		}
		if applies != 3 { // the Secret, the Job, the Secret's owner
			t.Errorf("%d applies, want 3", applies)
		}
	}
}
