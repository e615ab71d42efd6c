package job

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// Defaults applied by Build to zero fields of a Spec.
const (
	// DefaultParallelism is also the most pods run starts when not asked (PickParallelism): two
	// as in Kubernetes' example. Nothing tells run what a pod costs, and a shared namespace
	// without a quota has nothing else to stop a large default; run says what it picked and how
	// to ask for more, so a higher number is one flag away.
	DefaultParallelism      int32 = 2
	DefaultMaxAttempts      int32 = 3
	DefaultTTLAfterFinished int32 = 24 * 60 * 60
	// minBackoffLimit keeps a tiny Job from failing on a couple of unlucky pods (a broker
	// restart, an image pull hiccup) that the queue's own retries would have absorbed.
	minBackoffLimit int32 = 6
	// maxResultSize bounds a result record's output: records wait in the broker's memory.
	maxResultSize = 16 << 20
	// maxQueueNameBytes is AMQP's limit on a queue name (a shortstr).
	maxQueueNameBytes = 255
)

// Spec is everything `run` knows about the Job it is about to create, as plain values.
type Spec struct {
	Name      string // the Job's name; defaults to Queue
	Namespace string // empty leaves the namespace out of the Job (the client's namespace applies)
	Queue     string
	Image     string
	// Command is the user's command given after `--`. Empty runs the image's own entrypoint with
	// BROKER_URL and QUEUE set; non-empty injects the agent, which runs it once per item.
	Command []string
	Mode    constants.Mode // "" means constants.ModeOne
	// Parallelism is how many pods run at once; 0 means DefaultParallelism.
	Parallelism int32
	// Completions is required in constants.ModeOne (the caller counts the queue's ready messages; 0 makes a
	// Job that completes at once) and must be nil in constants.ModeDrain.
	Completions *int32
	// MaxAttempts is the queue's delivery attempts per item; 0 means DefaultMaxAttempts. It sizes
	// backoffLimit so that every item can fail its pod that many times before the Job gives up.
	MaxAttempts int32
	ItemTimeout time.Duration // passed to the agent as --timeout; 0 means none
	// BrokerOutage is how long the agent waits for a lost broker to come back before its pod
	// exits 8 (which the Job ignores); 0 means the agent's default.
	BrokerOutage time.Duration
	// Idle is how long a drain pod waits on an empty queue before it exits (the agent's
	// --idle); 0 means the agent's default. Shorter ends a run sooner; longer keeps the pods for
	// a producer that is still publishing.
	Idle time.Duration
	// ResultSize, when above 0, has the agent publish a result record per settled attempt to
	// QUEUE.results, holding up to this many bytes of the command's result (needs Command).
	ResultSize       int
	ActiveDeadline   time.Duration // activeDeadlineSeconds of the Job, rounded up; 0 means none
	TTLAfterFinished *int32        // nil means DefaultTTLAfterFinished
	// Env is added after BROKER_URL and QUEUE, which it must not set.
	Env              []corev1.EnvVar
	Requests, Limits corev1.ResourceList
	ServiceAccount   string
	// RunAsUser runs the worker as this uid (and as non-root); nil keeps the image's user.
	RunAsUser *int64
	// RunAsNonRoot makes the kubelet refuse to start a worker whose image runs as root, as the
	// "restricted" Pod Security Standard demands; RunAsUser implies it.
	RunAsNonRoot    bool
	ImagePullPolicy corev1.PullPolicy // "" leaves the cluster's default
	AgentImage      string            // the image holding /workqueue-agent; required with Command
	// AgentInImage is where the worker's own image holds the agent (copied from the agent image
	// when it was built); "" to have an init container copy it from AgentImage into each pod.
	// Without the init container a pod starts one container fewer, as the example's pods do.
	AgentInImage string
	// BrokerSecret is where BROKER_URL comes from; the URL itself never appears in the Job.
	BrokerSecret corev1.SecretKeySelector
	Labels       map[string]string // extra labels for the Job and its pods
	// DeadLettersBefore is how many items the dead-letter queue held when the Job was made; nil
	// when unknown.
	DeadLettersBefore *int
}

// InvalidSpecError lists every problem Validate found, one line each, so a user fixes them all
// in one go. Callers can detect it with errors.As to report a usage error.
type InvalidSpecError struct {
	Problems []string
}

func (e *InvalidSpecError) Error() string {
	return strings.Join(e.Problems, "\n")
}

// withDefaults returns a copy of s with its zero fields filled in. Validation runs on the
// defaulted copy so that, for example, a queue name unfit for a Job name is caught.
func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = s.Queue
	}
	if s.Mode == "" {
		s.Mode = constants.ModeOne
	}
	if s.Parallelism == 0 {
		s.Parallelism = DefaultParallelism
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.TTLAfterFinished == nil {
		ttl := DefaultTTLAfterFinished
		s.TTLAfterFinished = &ttl
	}
	return s
}

// Validate reports whether Build can make a Job from s, after defaults. Each problem is one line
// that says what is wrong and what to do.
func (s Spec) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	d := s.withDefaults()

	switch {
	case d.Queue == "":
		add("queue name is empty: name the queue to process")
	case len(d.Queue) > maxQueueNameBytes:
		add("queue name is %d bytes long: AMQP allows at most %d", len(d.Queue), maxQueueNameBytes)
	}
	if d.Name != "" {
		if errs := content.IsDNS1123Label(d.Name); len(errs) > 0 {
			from := "job name"
			if s.Name == "" {
				from = "job name (taken from the queue name)"
			}
			add("%s %q is not a valid Kubernetes name (%s): set --name to at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
				from, d.Name, strings.Join(errs, "; "))
		}
	}
	if d.Namespace != "" {
		if errs := content.IsDNS1123Label(d.Namespace); len(errs) > 0 {
			add("namespace %q is not a valid namespace name: %s", d.Namespace, strings.Join(errs, "; "))
		}
	}
	if strings.TrimSpace(d.Image) == "" {
		add("image is empty: set --image to the image that processes the items")
	}

	switch d.Mode {
	case constants.ModeOne:
		switch {
		case d.Completions == nil:
			add("completions are not set in mode one: count the queue's ready messages or set --completions")
		case *d.Completions < 0:
			add("completions is %d: set --completions to 0 or more", *d.Completions)
		}
	case constants.ModeDrain:
		if d.Completions != nil {
			add("completions are set in mode drain, where pods stop when the queue is empty: drop --completions or use --mode one")
		}
	default:
		add("mode %q is not known: use --mode one (one item per pod) or --mode drain (each pod empties the queue)", d.Mode)
	}
	if d.Parallelism < 1 {
		add("parallelism is %d: set --parallelism to 1 or more", d.Parallelism)
	}
	if d.MaxAttempts < 1 {
		add("delivery attempts per item is %d: use 1 or more", d.MaxAttempts)
	}
	if d.ItemTimeout < 0 {
		add("item timeout is %s: use a positive duration, or 0 for none", d.ItemTimeout)
	}
	if d.BrokerOutage < 0 {
		add("broker outage is %s: use a positive duration, or leave it out for the agent's 5m", d.BrokerOutage)
	}
	if d.Idle < 0 {
		add("idle wait is %s: use a positive duration, or leave it out for the agent's 5s", d.Idle)
	}
	if d.Idle > 0 && d.Mode != constants.ModeDrain {
		add("an idle wait of %s applies to drain pods, which wait for more items; in mode %s each pod takes one item: drop --idle or use --mode drain", d.Idle, d.Mode)
	}
	if d.ActiveDeadline < 0 {
		add("job deadline is %s: use a positive duration, or 0 for none", d.ActiveDeadline)
	}
	if *d.TTLAfterFinished < 0 {
		add("time to keep the finished Job is %ds: use 0 or more seconds", *d.TTLAfterFinished)
	}

	problems = append(problems, validateEnv(d.Env)...)
	problems = append(problems, validateResources(d.Requests, d.Limits)...)
	problems = append(problems, validateLabels(d.Labels)...)

	if d.RunAsUser != nil && *d.RunAsUser < 1 {
		add("run-as-user is %d: give a non-root uid (1 or more) with --run-as-user", *d.RunAsUser)
	}
	if d.ServiceAccount != "" {
		if errs := content.IsDNS1123Subdomain(d.ServiceAccount); len(errs) > 0 {
			add("service account %q is not a valid name (%s): check --service-account", d.ServiceAccount, strings.Join(errs, "; "))
		}
	}
	switch d.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		add("image pull policy %q is not known: use --image-pull-policy Always, IfNotPresent or Never", d.ImagePullPolicy)
	}
	if d.ResultSize < 0 || d.ResultSize > maxResultSize {
		add("result size is %d bytes: use 1 to %d, or 0 for no result records", d.ResultSize, maxResultSize)
	}
	if d.ResultSize > 0 && len(d.Queue)+len(constants.ResultsSuffix) > maxQueueNameBytes {
		add("queue name is too long for its results queue %s%s (AMQP allows %d bytes): turn results off or use a shorter name", d.Queue, constants.ResultsSuffix, maxQueueNameBytes)
	}
	if len(d.Command) == 0 && d.ResultSize > 0 {
		add("result records come from the agent, which runs only with a command after --: give the command, or turn results off")
	}
	if len(d.Command) == 0 && d.BrokerOutage > 0 {
		add("a broker outage bound of %s needs the agent, which runs only with a command after --: give the command, or drop --broker-outage", d.BrokerOutage)
	}
	if len(d.Command) == 0 && d.Idle > 0 {
		add("an idle wait of %s needs the agent, which runs only with a command after --: give the command, or drop --idle", d.Idle)
	}
	if len(d.Command) == 0 && d.ItemTimeout > 0 {
		add("an item timeout of %s needs the agent, which runs only with a command after --: give the command, or drop the item timeout", d.ItemTimeout)
	}
	if d.AgentInImage != "" && !path.IsAbs(d.AgentInImage) {
		add("agent path %q is not absolute: give where the image holds the agent, such as /usr/local/bin/workqueue-agent", d.AgentInImage)
	}
	if d.AgentInImage != "" && len(d.Command) == 0 {
		add("an agent path needs a command after --, which the agent runs for each item: give the command, or drop --agent-path")
	}
	if len(d.Command) > 0 && d.AgentInImage == "" && strings.TrimSpace(d.AgentImage) == "" {
		add("agent image is empty but a command is given: set --agent-image to an image holding /workqueue-agent, or drop the command to run the image's entrypoint")
	}

	switch {
	case d.BrokerSecret.Name == "":
		add("broker secret name is empty: the pods read BROKER_URL from a Secret; name it")
	default:
		if errs := content.IsDNS1123Subdomain(d.BrokerSecret.Name); len(errs) > 0 {
			add("broker secret name %q is not a valid Secret name: %s", d.BrokerSecret.Name, strings.Join(errs, "; "))
		}
	}
	switch {
	case d.BrokerSecret.Key == "":
		add("broker secret key is empty: name the key of the Secret that holds BROKER_URL")
	default:
		if errs := validation.IsConfigMapKey(d.BrokerSecret.Key); len(errs) > 0 {
			add("broker secret key %q is not a valid Secret key: %s", d.BrokerSecret.Key, strings.Join(errs, "; "))
		}
	}

	if len(problems) > 0 {
		return &InvalidSpecError{Problems: problems}
	}
	return nil
}

func validateEnv(env []corev1.EnvVar) []string {
	var problems []string
	seen := map[string]bool{}
	for _, e := range env {
		switch {
		case e.Name == constants.EnvBrokerURL || e.Name == constants.EnvQueue:
			problems = append(problems, fmt.Sprintf("--env %s is set by kubectl-workqueue itself: drop it (the broker URL comes from the broker Secret, the queue from the queue argument)", e.Name))
		case len(validation.IsEnvVarName(e.Name)) > 0:
			problems = append(problems, fmt.Sprintf("--env name %q is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit", e.Name))
		case seen[e.Name]:
			problems = append(problems, fmt.Sprintf("--env %s is given twice: keep one", e.Name))
		case e.Value != "" && e.ValueFrom != nil:
			problems = append(problems, fmt.Sprintf("--env %s has both a value and a source: keep one", e.Name))
		case e.ValueFrom != nil && e.ValueFrom.FileKeyRef != nil:
			problems = append(problems, fmt.Sprintf("--env %s reads a file key, which kubectl-workqueue does not support: use a Secret or ConfigMap key", e.Name))
		}
		seen[e.Name] = true
	}
	return problems
}

func validateResources(requests, limits corev1.ResourceList) []string {
	var problems []string
	for _, name := range sortedResourceNames(requests, limits) {
		for _, list := range []struct {
			flag string
			rl   corev1.ResourceList
		}{{"--requests", requests}, {"--limits", limits}} {
			if q, ok := list.rl[name]; ok && q.Sign() < 0 {
				problems = append(problems, fmt.Sprintf("%s %s=%s is negative: use 0 or more", list.flag, name, q.String()))
			}
		}
		request, hasRequest := requests[name]
		limit, hasLimit := limits[name]
		if hasRequest && hasLimit && request.Cmp(limit) > 0 {
			problems = append(problems, fmt.Sprintf("--requests %s=%s is more than --limits %s=%s: raise the limit or lower the request",
				name, request.String(), name, limit.String()))
		}
	}
	return problems
}

func validateLabels(extra map[string]string) []string {
	var problems []string
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := extra[k]
		if slices.Contains(reservedLabelKeys, k) {
			problems = append(problems, fmt.Sprintf("label %s is set by kubectl-workqueue itself: drop it", k))
			continue
		}
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("label key %q is not valid: %s", k, strings.Join(errs, "; ")))
		}
		if errs := content.IsLabelValue(v); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("label %s=%q has an invalid value: %s", k, v, strings.Join(errs, "; ")))
		}
	}
	return problems
}

func sortedResourceNames(lists ...corev1.ResourceList) []corev1.ResourceName {
	var names []corev1.ResourceName
	for _, l := range lists {
		for name := range l {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}
