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
	state := "Running"
	for _, c := range j.Status.Conditions {
		if c.Status != "True" {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			state = "Complete"
		case batchv1.JobFailed:
			state = "Failed (" + c.Reason + ": " + c.Message + ")"
		case batchv1.JobSuspended:
			state = "Suspended"
		}
	}
	completions := "none (drain)"
	if j.Spec.Completions != nil {
		completions = fmt.Sprint(*j.Spec.Completions)
	}
	parallelism := int32(1)
	if j.Spec.Parallelism != nil {
		parallelism = *j.Spec.Parallelism
	}
	age := ""
	if j.Status.StartTime != nil {
		age = fmt.Sprintf(", started %s ago", now.Sub(j.Status.StartTime.Time).Round(time.Second))
	}
	return fmt.Sprintf("%s; pods %d active, %d succeeded, %d failed; completions %s, parallelism %d%s",
		state, j.Status.Active, j.Status.Succeeded, j.Status.Failed, completions, parallelism, age)
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
