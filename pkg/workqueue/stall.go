package workqueue

import "fmt"

// A Job of one item per pod whose image consumes the queue itself (no agent) waits for its
// completions however few items are left: its consumer, like the example's `amqp-consume -c 1`,
// blocks on an empty queue instead of exiting. It then never finishes when
//   - items were dead-lettered unprocessed: such a consumer can receive the next item before it
//     exits and give it back, and on a quorum queue every give-back counts toward the delivery
//     limit;
//   - or the completions were more than the items (`--completions` set too high, or another
//     consumer took some).
//
// StallCheck holds what tells that apart from items that simply take long; one look at it may
// be out of date (the management API's counts lag by up to 5 s), so a caller must see a Job
// stalled on two looks with no pod finishing between them.
type StallCheck struct {
	Completions, Succeeded, Active int32
	// Before is the queue when the Job was made, Now the queue at the check (AMQP's exact counts).
	Before, Now QueueState
	// InFlight is the items consumers hold unacknowledged, from the management API; -1 when it
	// cannot be asked (the example's broker has no management plugin).
	InFlight int
}

// Stalled says whether the Job can no longer complete, and why, in a sentence for the user.
func Stalled(c StallCheck) (string, bool) {
	if c.Active == 0 || c.Succeeded >= c.Completions || c.Now.Ready != 0 || c.InFlight > 0 {
		return "", false
	}
	// Dead letters count only when what the dead-letter queue held before the Job is known.
	deadLettered := 0
	if c.Now.DeadLetters > 0 && c.Before.DeadLetters >= 0 {
		deadLettered = c.Now.DeadLetters - c.Before.DeadLetters
	}
	running := fmt.Sprintf("%d running %s", c.Active, plural(int(c.Active), "pod"))
	switch {
	case int(c.Succeeded)+deadLettered >= int(c.Completions):
		// Each succeeded pod took one item and each dead letter is an item none took: with the
		// queue empty, none is left.
		return fmt.Sprintf("%d of %d completions succeeded and the other %d %s dead-lettered (an image that consumes the queue itself can give an item back unprocessed, and each give-back counts toward the delivery limit), so no item is left for its %s",
			c.Succeeded, c.Completions, deadLettered, plural(deadLettered, "item was", "items were"), running), true
	case c.InFlight == 0:
		missing := int(c.Completions - c.Succeeded)
		return fmt.Sprintf("%d of %d completions succeeded, %d %s dead-lettered, and the queue is empty with no item in flight, so the other %d %s cannot come for its %s",
			c.Succeeded, c.Completions, deadLettered, plural(deadLettered, "item was", "items were"), missing, plural(missing, "completion"), running), true
	}
	return "", false
}
