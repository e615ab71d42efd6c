package workqueue

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// DescribeJob sums up a Job's state in one line: its condition, pods, completions and age.
func DescribeJob(j *batchv1.Job, now time.Time) string {
	s := JobStatusOf(j)
	state := s.Status
	if s.Message != "" {
		state += " (" + s.Message + ")"
	}
	completions := "none (drain)"
	if s.Completions != nil {
		completions = fmt.Sprint(*s.Completions)
	}
	age := ""
	if s.StartTime != nil {
		age = fmt.Sprintf(", started %s ago", now.Sub(*s.StartTime).Round(time.Second))
	}
	return fmt.Sprintf("%s; pods %d active, %d succeeded, %d failed; completions %s, parallelism %d%s",
		state, s.Active, s.Succeeded, s.Failed, completions, s.Parallelism, age)
}

// DeadLettersBefore is what QUEUE.failed held when run made the Job; for a Job made otherwise,
// every dead letter counts as this Job's.
func DeadLettersBefore(j *batchv1.Job) int {
	n, err := strconv.Atoi(j.Annotations[constants.AnnotationDeadLettersBefore])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
