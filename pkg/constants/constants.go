// Package constants holds the names that several packages share: the labels and annotations
// the plugin puts on what it creates, the environment a worker pod gets, and the agent's modes.
// It imports nothing, so any package may use it without pulling in another's dependencies.
package constants

// FieldManager is the server-side apply field manager of everything the plugin applies.
const FieldManager = "kubectl-workqueue"

// Labels and annotations on Jobs, their pods and Secrets, and on the broker's objects.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy on everything the plugin creates.
	ManagedBy = "kubectl-workqueue"

	LabelQueue = "workqueue.kubectl.io/queue"
	LabelJob   = "workqueue.kubectl.io/job"

	// AnnotationQueue always holds the full queue name, which the queue label may only hash.
	AnnotationQueue = "workqueue.kubectl.io/queue"
	AnnotationMode  = "workqueue.kubectl.io/mode"
	// AnnotationDeadLettersBefore holds how many items QUEUE.failed held when the Job was made,
	// so that whoever follows the Job later counts only the items this Job dead-lettered.
	AnnotationDeadLettersBefore = "workqueue.kubectl.io/dead-letters-before"
)

// ContainerName is the worker container of a Job's pods: what the pod failure policy, the
// tailer and log streaming look at.
const ContainerName = "worker"

// The worker pod's environment, which the agent (or the user's own image) reads.
const (
	// EnvBrokerURL holds the broker's URL, password included; it comes from a Secret.
	EnvBrokerURL = "BROKER_URL"
	// EnvQueue names the queue to take items from.
	EnvQueue = "QUEUE"
	// EnvMode gives the agent's default --mode.
	EnvMode = "WORKQUEUE_MODE"
)

// The environment the agent gives the command for each item.
const (
	EnvItemQueue     = "WORKQUEUE_QUEUE"
	EnvItemMessageID = "WORKQUEUE_MESSAGE_ID"
	EnvItemAttempt   = "WORKQUEUE_ATTEMPT"
	// EnvItemResultFile names a file the command may write its result to; with results on, its
	// content goes into the item's record instead of the end of the command's stdout.
	EnvItemResultFile = "WORKQUEUE_RESULT_FILE"
)

// Mode says how many items one pod takes.
type Mode string

const (
	// ModeOne takes at most one item per pod, as in Kubernetes' example: the Job needs as many
	// completions as there are items.
	ModeOne Mode = "one"
	// ModeDrain takes items until the queue has stayed empty for a while; the Job has no
	// completions.
	ModeDrain Mode = "drain"
)

// DeadLetterSuffix names the dead-letter queue of a work queue: QUEUE.failed.
const DeadLetterSuffix = ".failed"

// ResultsSuffix names the queue of a work queue's result records: QUEUE.results.
const ResultsSuffix = ".results"
