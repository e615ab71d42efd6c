package workqueue

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

// APIVersion versions the documents that `run -o` and `status -o` print; docs/output.md
// describes their fields. Fields may be added; none is renamed or dropped within a version.
const APIVersion = "workqueue.kubectl.io/v1alpha1"

// RunReport is how a run ended, as one document.
type RunReport struct {
	APIVersion     string    `json:"apiVersion"`
	Kind           string    `json:"kind"` // RunReport
	Namespace      string    `json:"namespace"`
	Job            string    `json:"job"`
	Queue          string    `json:"queue"`
	Status         string    `json:"status"` // Complete, Failed, or Stalled (see Report.Stalled)
	FailureReason  string    `json:"failureReason,omitempty"`
	FailureMessage string    `json:"failureMessage,omitempty"`
	StartTime      time.Time `json:"startTime"`
	CompletionTime time.Time `json:"completionTime"`
	Parallelism    int32     `json:"parallelism"`
	Completions    *int32    `json:"completions"` // null in drain mode
	Pods           PodCounts `json:"pods"`
	// Items is null when the broker could not be read afterwards.
	Items       *ItemCounts  `json:"items"`
	FailedItems []FailedItem `json:"failedItems"`
	// Succeeded is true when every item was processed; Problems say why not.
	Succeeded bool     `json:"succeeded"`
	Problems  []string `json:"problems"`
}

// PodCounts counts a Job's pods.
type PodCounts struct {
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`
}

// ItemCounts counts a run's items.
type ItemCounts struct {
	// ReportedByAgent is false when the pods ran their image's own entrypoint, which reports
	// nothing: Processed and FailedAttempts are then 0.
	ReportedByAgent bool `json:"reportedByAgent"`
	Processed       int  `json:"processed"`
	FailedAttempts  int  `json:"failedAttempts"`
	// DeadLettered counts the items this run moved to QUEUE.failed.
	DeadLettered int `json:"deadLettered"`
	// Left counts the items still ready in the queue.
	Left int `json:"left"`
}

// FailedItem is an item whose last reported attempt failed.
type FailedItem struct {
	MessageID string `json:"messageId"`
	Item      string `json:"item"` // a short printable preview
	Attempt   int    `json:"attempt"`
	ExitCode  *int   `json:"exitCode,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Document turns the report into its document.
func (r Report) Document(namespace string) RunReport {
	s := r.Summary
	doc := RunReport{
		APIVersion: APIVersion, Kind: "RunReport", Namespace: namespace, Job: r.Job, Queue: r.Queue,
		Status: "Complete", StartTime: s.Started.UTC(), CompletionTime: s.Finished.UTC(),
		Parallelism: s.Parallelism, Completions: s.Completions,
		Pods:        PodCounts{Succeeded: s.Succeeded, Failed: s.FailedPods},
		FailedItems: []FailedItem{}, Succeeded: r.OK(), Problems: r.Problems,
	}
	if s.Failed {
		doc.Status, doc.FailureReason, doc.FailureMessage = "Failed", s.FailureReason, s.FailureMessage
	}
	if r.Stalled != "" {
		doc.Status = "Stalled"
	}
	if r.QueueError == nil {
		doc.Items = &ItemCounts{ReportedByAgent: r.AgentReported, Processed: s.ItemsDone, FailedAttempts: s.ItemsFailed,
			DeadLettered: r.DeadLettered, Left: r.Left}
	}
	if doc.Problems == nil {
		doc.Problems = []string{}
	}
	last := map[string]*outcome.Outcome{}
	var order []string
	for _, result := range s.Results {
		o := result.Outcome
		if o == nil || o.MessageID == "" {
			continue
		}
		if _, seen := last[o.MessageID]; !seen {
			order = append(order, o.MessageID)
		}
		if prev := last[o.MessageID]; prev == nil || o.Attempt >= prev.Attempt {
			last[o.MessageID] = o
		}
	}
	for _, id := range order {
		if o := last[id]; o.Result == outcome.ResultFailed {
			doc.FailedItems = append(doc.FailedItems, FailedItem{MessageID: id, Item: o.Item, Attempt: o.Attempt, ExitCode: o.ExitCode, Error: o.Error})
		}
	}
	return doc
}

// QueueStatus is a queue and its Job at one moment, as one document.
type QueueStatus struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"` // QueueStatus
	Namespace  string `json:"namespace"`
	Queue      string `json:"queue"`
	// Broker is null when the broker could not be reached; BrokerError says why.
	Broker      *QueueCounts `json:"broker"`
	BrokerError string       `json:"brokerError,omitempty"`
	// Job is null when the queue has no Job.
	Job *JobStatus `json:"job"`
}

// QueueCounts is what the broker says of a queue.
type QueueCounts struct {
	Exists bool `json:"exists"`
	Ready  int  `json:"ready"`
	// DeadLetters is what QUEUE.failed holds; null when there is no such queue.
	DeadLetters *int `json:"deadLetters"`
	// Results is how many result records wait in QUEUE.results; null when there is no such queue.
	Results *int `json:"results"`
	// InFlight and Consumers come from the management API; null without it.
	InFlight  *int `json:"inFlight"`
	Consumers *int `json:"consumers"`
	// Nodes are the broker's RabbitMQ nodes and Members the ones holding the queue (a quorum
	// queue's leader and followers), from the management API; null without it.
	Nodes   []rabbitmq.Node   `json:"nodes"`
	Members *rabbitmq.Members `json:"members"`
}

// JobStatus is what Kubernetes says of a queue's Job.
type JobStatus struct {
	Name        string     `json:"name"`
	Status      string     `json:"status"` // Running, Complete, Failed or Suspended
	Message     string     `json:"message,omitempty"`
	Active      int32      `json:"active"`
	Succeeded   int32      `json:"succeeded"`
	Failed      int32      `json:"failed"`
	Completions *int32     `json:"completions"` // null in drain mode
	Parallelism int32      `json:"parallelism"`
	StartTime   *time.Time `json:"startTime,omitempty"`

	created time.Time // which of several Jobs of a queue is the newest
}

// JobStatusOf reads a Job's status into its document.
func JobStatusOf(j *batchv1.Job) *JobStatus {
	status := &JobStatus{Name: j.Name, Status: "Running", Active: j.Status.Active, Succeeded: j.Status.Succeeded,
		Failed: j.Status.Failed, Completions: j.Spec.Completions, Parallelism: 1}
	if j.Spec.Parallelism != nil {
		status.Parallelism = *j.Spec.Parallelism
	}
	if j.Status.StartTime != nil {
		start := j.Status.StartTime.UTC()
		status.StartTime = &start
	}
	for _, c := range j.Status.Conditions {
		if c.Status != "True" {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			status.Status = "Complete"
		case batchv1.JobFailed:
			status.Status, status.Message = "Failed", c.Reason+": "+c.Message
		case batchv1.JobSuspended:
			status.Status = "Suspended"
		}
	}
	return status
}
