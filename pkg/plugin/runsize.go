package plugin

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
)

// modeHintItemsPerPod is how many items each pod running at once must work through in mode one
// before run suggests mode drain. Mode one pays a pod's start-up (scheduling, the image, the
// agent's copy and connection: 1-5 s on a typical cluster, an estimate, not a measurement) once
// per item, drain once per pod; at 50 items per pod that is minutes of start-up, which matters
// whenever the items themselves take seconds.
const modeHintItemsPerPod = 50

// describePick is the line run prints when it chose the parallelism: what, from what, and the
// flag that chooses instead.
func describePick(p job.ParallelismPick, mode constants.Mode, completionsGiven bool) string {
	why := []string{fmt.Sprintf("default %d", p.Default)}
	switch {
	case p.Items < 0:
	case mode == constants.ModeOne && completionsGiven:
		why = append(why, fmt.Sprintf("%d %s", p.Items, plural(p.Items, "completion")))
	case mode == constants.ModeDrain && p.Items == 0:
		why = append(why, "no items ready yet")
	default:
		why = append(why, fmt.Sprintf("%d %s ready", p.Items, plural(p.Items, "item")))
	}
	if r := p.Room; r != nil {
		room := fmt.Sprintf("quota %s allows %d more %s", r.Quota, r.Pods, plural(int(r.Pods), "pod"))
		if r.Resource != corev1.ResourcePods && r.Resource != "count/pods" {
			room += " by " + string(r.Resource)
		}
		why = append(why, room)
	}
	if p.QuotasUnread != "" {
		why = append(why, p.QuotasUnread)
	}
	return fmt.Sprintf("parallelism %d (%s): set --parallelism to choose", p.Parallelism, strings.Join(why, "; "))
}

// modeHint is a line for a Job of mode one whose pods would each start many times over, or "".
// run cannot know how long an item takes, so the hint states the rule rather than a verdict.
func modeHint(s job.Spec) string {
	if s.Mode != constants.ModeOne || s.Completions == nil || s.Parallelism < 1 ||
		int64(*s.Completions) <= modeHintItemsPerPod*int64(s.Parallelism) {
		return ""
	}
	return fmt.Sprintf("hint: --mode one starts a pod for each of the %d items; when an item takes less time than a pod takes to start (seconds), --mode drain is faster: see \"Choosing a mode\" in the README", *s.Completions)
}
