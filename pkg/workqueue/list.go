package workqueue

import (
	"sort"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

// QueueList is `list -o json|yaml`: every work queue the plugin manages, with its Job.
type QueueList struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"` // QueueList
	Items      []ListEntry `json:"items"`
}

// ListEntry is one work queue. A count is null when it is not known: in flight without the
// broker's management API, all of them when the broker cannot be reached.
type ListEntry struct {
	Namespace   string     `json:"namespace"`
	Queue       string     `json:"queue"`
	Type        string     `json:"type,omitempty"` // quorum or classic, when the management API says
	Ready       *int       `json:"ready"`
	InFlight    *int       `json:"inFlight"`
	DeadLetters *int       `json:"deadLetters"`
	Results     *int       `json:"results"`
	Consumers   *int       `json:"consumers"`
	Job         *JobStatus `json:"job"`
	// BrokerError says why the counts are missing.
	BrokerError string `json:"brokerError,omitempty"`
}

// ListEntries gathers a namespace's work queues: those of its Jobs made by run, and, when the
// management API gave the broker's queues (nil otherwise), those that fill declared, which carry
// its consumer timeout. QUEUE.failed and QUEUE.results count within their work queue's entry.
func ListEntries(namespace string, jobs []batchv1.Job, queues []rabbitmq.QueueInfo) []ListEntry {
	byName := map[string]rabbitmq.QueueInfo{}
	for _, q := range queues {
		byName[q.Name] = q
	}
	entries := map[string]*ListEntry{}
	entry := func(name string) *ListEntry {
		if e, ok := entries[name]; ok {
			return e
		}
		e := &ListEntry{Namespace: namespace, Queue: name}
		entries[name] = e
		return e
	}
	for i := range jobs {
		j := &jobs[i]
		name := j.Annotations[constants.AnnotationQueue]
		if name == "" || j.Labels[constants.LabelManagedBy] != constants.ManagedBy {
			continue
		}
		e := entry(name)
		// Several Jobs of one queue (--name): the newest tells.
		if e.Job == nil || j.CreationTimestamp.After(e.Job.created) {
			e.Job = JobStatusOf(j)
			e.Job.created = j.CreationTimestamp.Time
		}
	}
	for _, q := range queues {
		if _, filled := q.Arguments["x-consumer-timeout"]; filled && !companion(q.Name, byName) {
			entry(q.Name)
		}
	}
	var list []ListEntry
	for name, e := range entries {
		if queues != nil {
			if q, ok := byName[name]; ok {
				e.Type = q.Type
				e.Ready, e.InFlight, e.Consumers = ptr.To(q.Ready), ptr.To(q.InFlight), ptr.To(q.Consumers)
			}
			if q, ok := byName[name+constants.DeadLetterSuffix]; ok {
				e.DeadLetters = ptr.To(q.Ready + q.InFlight)
			}
			if q, ok := byName[name+constants.ResultsSuffix]; ok {
				e.Results = ptr.To(q.Ready + q.InFlight)
			}
		}
		list = append(list, *e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Queue < list[j].Queue })
	return list
}

// companion tells QUEUE.failed and QUEUE.results from work queues, when QUEUE exists.
func companion(name string, queues map[string]rabbitmq.QueueInfo) bool {
	for _, suffix := range []string{constants.DeadLetterSuffix, constants.ResultsSuffix} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, exists := queues[base]; exists {
				return true
			}
		}
	}
	return false
}

// CountOverAMQP sets what AMQP counts of each entry, exactly where the management API lags:
// ready items, dead letters, results. In flight and consumers are the management API's alone.
func CountOverAMQP(conn *amqp.Connection, entries []ListEntry) error {
	for i := range entries {
		e := &entries[i]
		counts, err := CountQueue(conn, e.Queue)
		if err != nil {
			return err
		}
		if counts.Exists {
			e.Ready = ptr.To(counts.Ready)
		}
		e.DeadLetters, e.Results = counts.DeadLetters, counts.Results
	}
	return nil
}
