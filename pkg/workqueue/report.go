package workqueue

import (
	"fmt"
	"strings"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

// Report is the truth about a finished run: what the Job says, what the agents reported and
// what the broker holds afterwards.
type Report struct {
	Job, Queue string
	Summary    tail.Summary
	// AgentReported tells whether any pod ran the agent, which reports its items; an image
	// that consumes the queue itself reports none.
	AgentReported bool
	// DeadLettered counts the items this Job moved to QUEUE.failed.
	DeadLettered int
	// Left counts the items still ready in the queue.
	Left int
	// QueueError says why the broker could not be read afterwards; nil when it was.
	QueueError error
	// Problems are why the run did not do all its work; none means it did.
	Problems []string
	// Stalled, when set, says why the Job can never complete although its pods still run
	// (Stalled); following it ended there.
	Stalled string
}

// MarkStalled records that the Job can never complete, and why.
func (r *Report) MarkStalled(reason string) {
	r.Stalled = reason
	r.Problems = append(r.Problems, fmt.Sprintf("Job %s cannot complete: %s; its pods wait for an item that will not come: stop them with `%s`",
		r.Job, reason, Command("delete", r.Queue, r.Job, "--keep-queue")))
}

// OK tells whether every item was processed.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Assess judges a finished run: it did its work only when the Job completed, no item was
// dead-lettered and none was left behind, as the broker itself confirms.
func Assess(jobName, queueName string, s tail.Summary, before, after QueueState, afterErr error) Report {
	r := Report{Job: jobName, Queue: queueName, Summary: s, QueueError: afterErr, Left: max(after.Ready, 0)}
	for _, result := range s.Results {
		if result.Outcome != nil {
			r.AgentReported = true
		}
	}
	if afterErr == nil && after.DeadLetters >= 0 {
		r.DeadLettered = after.DeadLetters - max(before.DeadLetters, 0)
	}
	failed := queue.DeadLetterName(queueName)
	if s.Failed {
		r.Problems = append(r.Problems, fmt.Sprintf("Job %s failed: %s", jobName, s.FailureMessage))
	}
	if r.DeadLettered > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d %s failed every attempt and moved to queue %s%s", r.DeadLettered, plural(r.DeadLettered, "item"), failed, namedFailures(s)))
	}
	if afterErr == nil && r.Left > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d %s still in queue %s (run again to process them)", r.Left, plural(r.Left, "item is", "items are"), queueName))
	}
	if afterErr != nil {
		r.Problems = append(r.Problems, "cannot confirm from the broker that every item was processed")
	}
	return r
}

// namedFailures lists the items whose last attempt failed, as the agents reported them.
func namedFailures(s tail.Summary) string {
	seen := map[string]bool{}
	var names []string
	for _, r := range s.Results {
		if o := r.Outcome; o != nil && o.Result == outcome.ResultFailed && o.Item != "" && !seen[o.MessageID] {
			seen[o.MessageID] = true
			names = append(names, fmt.Sprintf("%q", o.Item))
		}
	}
	if len(names) == 0 {
		return ""
	}
	if len(names) > 5 {
		names = append(names[:5], "...")
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// plural picks the singular or plural form; the plural defaults to word+"s".
func plural(n int, word string, pluralForm ...string) string {
	if n == 1 {
		return word
	}
	if len(pluralForm) > 0 {
		return pluralForm[0]
	}
	return word + "s"
}
