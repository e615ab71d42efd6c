package workqueue

import (
	"strings"
	"testing"
)

func TestStalled(t *testing.T) {
	empty := QueueState{Ready: 0, DeadLetters: 2}
	tests := []struct {
		name  string
		check StallCheck
		want  string // "" when not stalled
	}{
		{"items dead-lettered, no management API",
			StallCheck{Completions: 10, Succeeded: 8, Active: 2, Before: QueueState{DeadLetters: 0}, Now: empty, InFlight: -1},
			"8 of 10 completions succeeded and the other 2 items were dead-lettered"},
		{"dead letters of an earlier Job do not count",
			StallCheck{Completions: 10, Succeeded: 8, Active: 2, Before: QueueState{DeadLetters: 1}, Now: empty, InFlight: -1}, ""},
		{"a Job made otherwise: the dead letters may be older",
			StallCheck{Completions: 3, Succeeded: 2, Active: 1, Before: QueueState{Ready: -1, DeadLetters: -1}, Now: QueueState{DeadLetters: 1}, InFlight: -1}, ""},
		{"no dead-letter queue before the Job",
			StallCheck{Completions: 3, Succeeded: 2, Active: 1, Before: QueueState{Ready: 3, DeadLetters: 0}, Now: QueueState{DeadLetters: 1}, InFlight: -1},
			"2 of 3 completions succeeded and the other 1 item was dead-lettered"},
		{"an item is still held: it may complete",
			StallCheck{Completions: 10, Succeeded: 8, Active: 2, Now: empty, InFlight: 1}, ""},
		{"items are still ready",
			StallCheck{Completions: 10, Succeeded: 8, Active: 2, Now: QueueState{Ready: 1, DeadLetters: 2}, InFlight: 0}, ""},
		{"more completions than items, management API says nothing is in flight",
			StallCheck{Completions: 4, Succeeded: 3, Active: 1, Now: QueueState{Ready: 0, DeadLetters: -1}, InFlight: 0},
			"3 of 4 completions succeeded, 0 items were dead-lettered, and the queue is empty with no item in flight, so the other 1 completion cannot come for its 1 running pod"},
		{"more completions than items, nothing known of in flight",
			StallCheck{Completions: 4, Succeeded: 3, Active: 1, Now: QueueState{Ready: 0, DeadLetters: -1}, InFlight: -1}, ""},
		{"no pod running: the Job controller decides",
			StallCheck{Completions: 10, Succeeded: 8, Active: 0, Now: empty, InFlight: -1}, ""},
		{"every completion done",
			StallCheck{Completions: 10, Succeeded: 10, Active: 1, Now: empty, InFlight: 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, stalled := Stalled(tt.check)
			if stalled != (tt.want != "") || !strings.Contains(reason, tt.want) {
				t.Fatalf("Stalled() = %q, %v; want %q", reason, stalled, tt.want)
			}
		})
	}
}

func TestMarkStalledTellsHowToStopThePods(t *testing.T) {
	r := Report{Job: "job1", Queue: "q"}
	r.MarkStalled("because")
	if r.OK() || r.Document("ns").Status != "Stalled" || !strings.Contains(r.Problems[0], "Job job1 cannot complete: because") ||
		!strings.Contains(r.Problems[0], "kubectl workqueue delete q --name job1 --keep-queue") {
		t.Fatalf("%+v", r)
	}
}
