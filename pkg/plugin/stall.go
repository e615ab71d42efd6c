package plugin

import (
	"context"
	"sync"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// The first look at the queue comes after this long without a pod finishing; the next ones at
// doubling intervals up to stallCheckMost, so that a Job of long items costs a look every few
// minutes rather than a poll.
const (
	stallCheckFirst = 30 * time.Second
	stallCheckMost  = 5 * time.Minute
)

// stallWatch notices a Job of the image's own consumers that can never complete
// (workqueue.StallCheck): it looks at the queue only while no pod finishes.
type stallWatch struct {
	before workqueue.QueueState
	// readQueue reads the queue's exact counts, and the items in flight (-1 when the broker's
	// management API cannot tell).
	readQueue func(ctx context.Context) (now workqueue.QueueState, inFlight int, err error)
	first     time.Duration // stallCheckFirst; shorter in tests
	most      time.Duration // stallCheckMost; shorter in tests

	mu       sync.Mutex
	progress tail.Progress
	changed  time.Time // when a pod last finished or started
}

func newStallWatch(before workqueue.QueueState, readQueue func(context.Context) (workqueue.QueueState, int, error)) *stallWatch {
	return &stallWatch{before: before, readQueue: readQueue, first: stallCheckFirst, most: stallCheckMost, changed: time.Now()}
}

func (w *stallWatch) onProgress(p tail.Progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.Succeeded != w.progress.Succeeded || p.Failed != w.progress.Failed || p.Active != w.progress.Active {
		w.changed = time.Now()
	}
	w.progress = p
}

// run returns why the Job can never complete, once it is sure; "" when ctx ends first.
func (w *stallWatch) run(ctx context.Context) string {
	interval, suspect := w.first, false
	w.mu.Lock()
	since := w.changed
	w.mu.Unlock()
	for {
		timer := time.NewTimer(time.Until(since.Add(interval)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ""
		case <-timer.C:
		}
		w.mu.Lock()
		p, changed := w.progress, w.changed
		w.mu.Unlock()
		if changed.After(since) {
			// A pod finished or started meanwhile: the Job moves; start over from then.
			since, interval, suspect = changed, w.first, false
			continue
		}
		since, interval = time.Now(), min(2*interval, w.most)
		if p.Completions == nil {
			continue
		}
		now, inFlight, err := w.readQueue(ctx)
		if err != nil {
			// The broker may be restarting; a later look may tell.
			suspect = false
			continue
		}
		reason, stalled := workqueue.Stalled(workqueue.StallCheck{
			Completions: *p.Completions, Succeeded: p.Succeeded, Active: p.Active,
			Before: w.before, Now: now, InFlight: inFlight,
		})
		if stalled && suspect {
			return reason
		}
		suspect = stalled
	}
}
