package tail

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	apitypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

func finishedPod(name string, succeeded bool, exitCode int32, message string) *corev1.Pod {
	selector, _ := labels.ConvertSelectorToLabelsMap(job.Selector("job1"))
	phase := corev1.PodSucceeded
	if !succeeded {
		phase = corev1.PodFailed
	}
	start := metav1.NewTime(time.Unix(1000, 0))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: selector, UID: apitypes.UID("uid-" + name)},
		Status: corev1.PodStatus{
			Phase: phase,
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: constants.ContainerName,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: exitCode, Message: message, StartedAt: start, FinishedAt: metav1.NewTime(start.Add(1500 * time.Millisecond)),
				}},
			}},
		},
	}
}

func TestFollowReportsEachPodAndTheEnd(t *testing.T) {
	completions := int32(3)
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "job1", Namespace: "ns"},
		Spec:       batchv1.JobSpec{Completions: &completions, Parallelism: &completions},
	}
	client := fake.NewClientset(j)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	var pods []PodResult
	done := make(chan Summary)
	go func() {
		s, err := Follow(ctx, client, "ns", "job1", Options{OnPod: func(r PodResult) { mu.Lock(); pods = append(pods, r); mu.Unlock() }})
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()

	exit3 := 3
	results := []*corev1.Pod{
		finishedPod("job1-a", true, 0, string(outcome.Outcome{Result: outcome.ResultDone, Item: "apple", Attempt: 1}.Encode())),
		finishedPod("job1-b", false, 3, string(outcome.Outcome{Result: outcome.ResultFailed, Item: "banana", Attempt: 1, ExitCode: &exit3}.Encode())),
		finishedPod("job1-c", true, 0, string(outcome.Outcome{Result: outcome.ResultDone, Item: "banana", Attempt: 2}.Encode())),
		finishedPod("job1-d", true, 0, string(outcome.Outcome{Result: outcome.ResultEmpty}.Encode())),
		finishedPod("job1-seed", true, 0, "not json: an image without the agent"),
	}
	time.Sleep(200 * time.Millisecond)
	for _, p := range results {
		if _, err := client.CoreV1().Pods("ns").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	j.Status = batchv1.JobStatus{Succeeded: 4, Failed: 1, Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	if _, err := client.BatchV1().Jobs("ns").UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	var s Summary
	select {
	case s = <-done:
	case <-ctx.Done():
		t.Fatal("Follow did not return after the Job completed")
	}
	if !s.Complete || s.Failed || s.Succeeded != 4 || s.FailedPods != 1 {
		t.Fatalf("summary %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(s.Results) != 5 || len(pods) != 5 {
		t.Fatalf("%d results, %d callbacks; want 5", len(s.Results), len(pods))
	}
	if s.ItemsDone != 2 || s.ItemsFailed != 1 {
		t.Fatalf("items done %d failed %d", s.ItemsDone, s.ItemsFailed)
	}
	for _, r := range s.Results {
		if r.Pod == "job1-seed" && r.Outcome != nil {
			t.Fatal("a pod without the agent has no outcome")
		}
		if r.Pod == "job1-b" && (r.Succeeded || r.ExitCode != 3 || r.Outcome.Item != "banana") {
			t.Fatalf("failed pod %+v", r)
		}
		if r.Duration != 1500*time.Millisecond {
			t.Fatalf("duration %s", r.Duration)
		}
	}
}

func TestFollowReportsAFailedJob(t *testing.T) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job1", Namespace: "ns"}}
	j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "PodFailurePolicy", Message: "exit 5"}}
	client := fake.NewClientset(j)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Follow(ctx, client, "ns", "job1", Options{})
	if err != nil || !s.Failed || s.FailureReason != "PodFailurePolicy" {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestFollowStopsWithTheContext(t *testing.T) {
	client := fake.NewClientset(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job1", Namespace: "ns"}})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := Follow(ctx, client, "ns", "job1", Options{}); err == nil {
		t.Fatal("want the context's error")
	}
}

func waitingPod(name, container, reason string) *corev1.Pod {
	selector, _ := labels.ConvertSelectorToLabelsMap(job.Selector("job1"))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: selector, UID: apitypes.UID("uid-" + name)},
		Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		}}},
	}
}

// A pod that can never start ends the follow instead of leaving it waiting forever; one that
// may still start is reported once and waited for.
func TestFollowReportsPodsThatCannotStart(t *testing.T) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job1", Namespace: "ns"}}
	backingOff := waitingPod("job1-a", job.InitContainerName, "ImagePullBackOff")
	client := fake.NewClientset(j, backingOff)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	done, reported := followInBackground(ctx, client)
	time.Sleep(300 * time.Millisecond)
	// The same problem again is not reported twice.
	backingOff.Status.Message = "still"
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, backingOff, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("Follow ended on a pod that may still start: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := client.CoreV1().Pods("ns").Create(ctx, waitingPod("job1-b", job.InitContainerName, "ErrImageNeverPull"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var cannotStart *PodsCannotStartError
	if !errors.As(err, &cannotStart) || !strings.Contains(cannotStart.Problem, "job1-b") || !strings.Contains(cannotStart.Problem, "ErrImageNeverPull") {
		t.Fatalf("got %v", err)
	}
	if problems := reported(); len(problems) != 2 || !strings.Contains(problems[0], "job1-a: container install-agent: ImagePullBackOff") {
		t.Errorf("problems reported: %q", problems)
	}
}

// followInBackground runs Follow on job1 and returns its end and the problems it reported so far.
func followInBackground(ctx context.Context, client *fake.Clientset) (<-chan error, func() []string) {
	var mu sync.Mutex
	var problems []string
	done := make(chan error)
	go func() {
		_, err := Follow(ctx, client, "ns", "job1", Options{OnPodProblem: func(problem string, fatal bool) {
			mu.Lock()
			problems = append(problems, problem)
			mu.Unlock()
		}})
		done <- err
	}()
	return done, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

func failedCreate(name string, job apitypes.UID, message string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: "job1", Namespace: "ns", UID: job},
		Reason:         "FailedCreate",
		Message:        message,
	}
}

// Pods the API server refuses never exist: the Job controller's FailedCreate events are all
// that tell. An earlier Job of the same name (another UID) is no reason to stop.
func TestFollowEndsWhenThePodsAreRefused(t *testing.T) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job1", Namespace: "ns", UID: "job-now"}}
	client := fake.NewClientset(j, failedCreate("old", "job-before", `Error creating: pods "job1-x" is forbidden: an earlier Job's`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	done, reported := followInBackground(ctx, client)
	select {
	case err := <-done:
		t.Fatalf("Follow ended on an earlier Job's event: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	refused := `Error creating: pods "job1-abcde" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`
	if _, err := client.CoreV1().Events("ns").Create(ctx, failedCreate("now", "job-now", refused), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var cannotStart *PodsCannotStartError
	want := `job job1 cannot create its pods: pods "job1-abcde" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`
	if !errors.As(err, &cannotStart) || cannotStart.Problem != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if problems := reported(); len(problems) != 1 || problems[0] != want {
		t.Errorf("problems reported: %q", problems)
	}
}
