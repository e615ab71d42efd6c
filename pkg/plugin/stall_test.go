package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// A Job seen stalled on two looks in a row, with no pod finishing between them, is reported;
// a pod finishing or a look that fails starts the count again.
func TestStallWatchNeedsTwoLooksInARow(t *testing.T) {
	stuck := workqueue.QueueState{Ready: 0, DeadLetters: 1}
	tests := []struct {
		name string
		// between runs at each look, before it answers; it returns the look's error
		between   func(w *stallWatch, look int) error
		wantLooks int
	}{
		{"stalled twice", func(*stallWatch, int) error { return nil }, 2},
		{"a pod finishes after the first look", func(w *stallWatch, look int) error {
			if look == 1 {
				w.onProgress(tail.Progress{Completions: ptr.To[int32](3), Succeeded: 2, Active: 2})
			}
			return nil
		}, 3},
		{"the second look fails", func(_ *stallWatch, look int) error {
			if look == 2 {
				return errors.New("connection refused")
			}
			return nil
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			looks := 0
			var w *stallWatch
			w = newStallWatch(workqueue.QueueState{DeadLetters: 0}, func(context.Context) (workqueue.QueueState, int, error) {
				looks++
				return stuck, -1, tt.between(w, looks)
			})
			w.first, w.most = 5*time.Millisecond, 20*time.Millisecond
			w.onProgress(tail.Progress{Completions: ptr.To[int32](3), Succeeded: 2, Active: 1})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			reason := w.run(ctx)
			if !strings.Contains(reason, "the other 1 item was dead-lettered") {
				t.Fatalf("run() = %q", reason)
			}
			if looks != tt.wantLooks {
				t.Fatalf("reported after %d looks, want %d", looks, tt.wantLooks)
			}
		})
	}
}

func TestStallWatchLeavesAMovingJobAlone(t *testing.T) {
	looks := 0
	w := newStallWatch(workqueue.QueueState{}, func(context.Context) (workqueue.QueueState, int, error) {
		looks++
		return workqueue.QueueState{Ready: 0}, 1, nil // an item in flight
	})
	w.first, w.most = time.Millisecond, 4*time.Millisecond
	w.onProgress(tail.Progress{Completions: ptr.To[int32](3), Succeeded: 2, Active: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if reason := w.run(ctx); reason != "" {
		t.Fatalf("run() = %q for a Job whose last item is in flight", reason)
	}
	if looks < 2 {
		t.Fatalf("%d looks in 200 ms", looks)
	}
	// A Job of drain pods has no completions: its queue is never read.
	looks = 0
	w = newStallWatch(workqueue.QueueState{}, func(context.Context) (workqueue.QueueState, int, error) {
		looks++
		return workqueue.QueueState{}, 0, nil
	})
	w.first, w.most = time.Millisecond, 4*time.Millisecond
	w.onProgress(tail.Progress{Active: 1})
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if reason := w.run(ctx); reason != "" || looks != 0 {
		t.Fatalf("run() = %q after %d looks, for a Job without completions", reason, looks)
	}
}

func TestAStalledJobExitsAsAFailedJob(t *testing.T) {
	r := workqueue.Report{Job: "j", Queue: "q"}
	r.MarkStalled("no item left")
	if code := reportExitCode(r); code != ExitJobFailed {
		t.Fatalf("exit %d, want %d", code, ExitJobFailed)
	}
	r.DeadLettered = 1
	if code := reportExitCode(r); code != ExitItemsFailed {
		t.Fatalf("with a dead letter: exit %d, want %d", code, ExitItemsFailed)
	}
}
