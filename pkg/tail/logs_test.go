package tail

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

func TestCopyLinesOfAnyLength(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	var got []string
	if err := CopyLines(strings.NewReader("first\n"+long+"\nlast without newline"), func(l string) { got = append(got, l) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "first" || got[1] != long || got[2] != "last without newline" {
		t.Fatalf("got %d lines", len(got))
	}
	if err := CopyLines(iotest.ErrReader(errors.New("stream reset")), func(string) {}); err == nil || err.Error() != "stream reset" {
		t.Errorf("a broken stream: %v", err)
	}
}

func logPod(name string, created time.Time, started bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{constants.LabelManagedBy: constants.ManagedBy, constants.LabelJob: "j"}}}
	state := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	if started {
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: constants.ContainerName, State: state}}
	return p
}

func TestJobLogsOldestPodFirstSkippingPodsNotStarted(t *testing.T) {
	now := time.Now()
	finished := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	objects := []runtime.Object{finished, logPod("b", now, true), logPod("a", now.Add(time.Second), true), logPod("pending", now, false)}
	for _, follow := range []bool{false, true} {
		client := fake.NewClientset(objects...)
		var pods []string
		err := JobLogs(context.Background(), client, "ns", "j", LogOptions{Container: constants.ContainerName, Follow: follow, Tail: -1}, func(l LogLine) {
			if l.Err != nil {
				t.Errorf("%s: %v", l.Pod, l.Err)
			}
			pods = append(pods, l.Pod)
		})
		if err != nil {
			t.Fatal(err)
		}
		// The fake clientset's log of every pod is one line, "fake logs".
		if got := strings.Join(pods, ","); (!follow && got != "b,a") || (follow && len(pods) != 2) {
			t.Errorf("follow=%v: lines from %q", follow, got)
		}
	}
	if err := JobLogs(context.Background(), fake.NewClientset(), "ns", "j", LogOptions{}, func(LogLine) {}); err == nil || !strings.Contains(err.Error(), "there is no Job j") {
		t.Errorf("a missing Job: %v", err)
	}
}
