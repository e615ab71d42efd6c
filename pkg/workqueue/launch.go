package workqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
)

// DryRun says whether a launch sends the Job.
type DryRun int

const (
	DryRunNone   DryRun = iota
	DryRunClient        // build the Job, send nothing
	DryRunServer        // have the API server check the Job without persisting it
)

// LaunchRequest is what Launch needs besides the cluster.
type LaunchRequest struct {
	// Spec is the Job to make; its Completions is set by Launch, and so is its Parallelism when
	// 0 (the user gave none): see Launched.Picked.
	Spec job.Spec
	// Completions is how many pods must succeed in mode one; below 0, the queue's ready items.
	Completions int32
	// AllowEmpty launches even when that count is 0.
	AllowEmpty bool
	// Replace deletes a finished Job of the same name first.
	Replace bool
	DryRun  DryRun
	// ReadQueue reads the queue from the broker; Launch calls it only when it needs to.
	ReadQueue func(ctx context.Context) (QueueState, error)
	// DeclareResults makes sure QUEUE.results exists; Launch calls it before it makes a Job
	// whose agents publish result records.
	DeclareResults func(ctx context.Context) error
	// PodURL returns the URL the pods reach the broker with.
	PodURL func(ctx context.Context) (string, error)
	// Notice hears of a choice Launch made for the user (running as non-root); may be nil.
	Notice func(string)
	// FieldManager applies the Secret and the Job (constants.FieldManager when empty);
	// ForceConflicts takes over fields another manager set, as kubectl apply does.
	FieldManager   string
	ForceConflicts bool
}

func (req LaunchRequest) applyOptions() metav1.ApplyOptions {
	manager := req.FieldManager
	if manager == "" {
		manager = constants.FieldManager
	}
	return metav1.ApplyOptions{FieldManager: manager, Force: req.ForceConflicts}
}

// Launched says what Launch made.
type Launched struct {
	Spec  job.Spec   // as launched, with Completions set in mode one
	State QueueState // the queue when the Job was made; UnknownQueueState when not read
	// Picked is how Launch chose the parallelism that the request left at 0; nil when it was given.
	Picked *job.ParallelismPick
	// Apply is the Job as built; with DryRunClient it is all there is.
	Apply *batchv1ac.JobApplyConfiguration
	// Job is the created Job, or the API server's answer to a server dry run.
	Job *batchv1.Job
}

// Launch makes the Job for a queue: it refuses a Job of that name that still runs (and one that
// finished, unless Replace), sizes completions from the queue (and parallelism, when not given,
// from the items and the namespace's quotas), and applies the Secret with the pods' BROKER_URL
// and the Job by server-side apply, the Job owning the Secret.
func Launch(ctx context.Context, client kubernetes.Interface, req LaunchRequest) (Launched, error) {
	spec := req.Spec
	var existing *batchv1.Job
	var err error
	// A client dry run talks to no cluster: with --completions given, none is needed at all.
	if req.DryRun != DryRunClient {
		if existing, err = existingJob(ctx, client, spec, req.Replace); err != nil {
			return Launched{}, err
		}
	}
	if spec.RunAsUser == nil && req.DryRun != DryRunClient && enforcesRestricted(ctx, client, spec.Namespace) {
		// Admission would refuse every pod that may run as root; asking for non-root instead
		// admits them, and an image whose user is root is then named by the kubelet.
		spec.RunAsNonRoot = true
		if req.Notice != nil {
			req.Notice(fmt.Sprintf("namespace %s enforces the restricted Pod Security Standard: the worker runs as non-root (an image whose user is root needs --run-as-user UID)", spec.Namespace))
		}
	}

	state := UnknownQueueState
	countQueue := spec.Mode == constants.ModeOne && req.Completions < 0
	if req.DryRun != DryRunClient || countQueue {
		if state, err = req.ReadQueue(ctx); err != nil {
			return Launched{}, err
		}
		if state.DeadLetters >= 0 {
			spec.DeadLettersBefore = &state.DeadLetters
		}
	}
	if spec.Mode == constants.ModeOne {
		completions := req.Completions
		if completions < 0 {
			completions = int32(state.Ready)
		}
		if completions == 0 && !req.AllowEmpty {
			return Launched{}, fmt.Errorf("queue %s has no ready items: fill it first with `kubectl workqueue fill %s`, or pass --allow-empty", spec.Queue, spec.Queue)
		}
		spec.Completions = &completions
	}
	var picked *job.ParallelismPick
	if spec.Parallelism == 0 {
		pick := pickParallelism(ctx, client, spec, state, req.DryRun)
		spec.Parallelism, picked = pick.Parallelism, &pick
	}
	apply, err := job.Build(spec)
	if err != nil {
		return Launched{}, OneLine(err)
	}
	launched := Launched{Spec: spec, State: state, Picked: picked, Apply: apply}
	switch req.DryRun {
	case DryRunClient:
		return launched, nil
	case DryRunServer:
		options := req.applyOptions()
		options.DryRun = []string{metav1.DryRunAll}
		if launched.Job, err = client.BatchV1().Jobs(spec.Namespace).Apply(ctx, apply, options); err != nil {
			return Launched{}, fmt.Errorf("the API server rejected the Job: %w", err)
		}
		return launched, nil
	}

	if spec.ResultSize > 0 {
		if err := req.DeclareResults(ctx); err != nil {
			return Launched{}, err
		}
	}
	if existing != nil {
		if _, err := DeleteJobAndWait(ctx, client, spec.Namespace, existing.Name); err != nil {
			return Launched{}, fmt.Errorf("replace the finished Job: %w", err)
		}
	}
	podURL, err := req.PodURL(ctx)
	if err != nil {
		return Launched{}, err
	}
	if launched.Job, err = applyWithSecret(ctx, client, spec.Namespace, spec.Name, podURL, apply, req.applyOptions()); err != nil {
		return Launched{}, err
	}
	return launched, nil
}

// existingJob returns a finished Job of the name that may be replaced, nil for none, or why a
// new one cannot be made.
func existingJob(ctx context.Context, client kubernetes.Interface, spec job.Spec, replace bool) (*batchv1.Job, error) {
	existing, err := client.BatchV1().Jobs(spec.Namespace).Get(ctx, spec.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("look for an existing Job %s: %w", spec.Name, err)
	case !job.Finished(existing):
		return nil, fmt.Errorf("Job %s is still running: follow it with `%s`, or delete it with `%s`", spec.Name, Command("status", spec.Queue, spec.Name, "--watch"), Command("delete", spec.Queue, spec.Name, "--keep-queue"))
	case !replace:
		return nil, fmt.Errorf("Job %s already exists and has finished: pass --replace to run it again", spec.Name)
	}
	return existing, nil
}

// enforcesRestricted tells whether the namespace's Pod Security admission enforces the
// "restricted" level. A caller who may not read the namespace learns nothing here; admission
// still reports what it refuses, as a FailedCreate that run reports.
func enforcesRestricted(ctx context.Context, client kubernetes.Interface, namespace string) bool {
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	return err == nil && ns.Labels["pod-security.kubernetes.io/enforce"] == "restricted"
}

// OneLine joins a Spec's problems: a command line gets one line.
func OneLine(err error) error {
	var invalid *job.InvalidSpecError
	if errors.As(err, &invalid) {
		return errors.New(strings.Join(invalid.Problems, "; "))
	}
	return err
}

// Command spells a follow-up command for the user, with --name when the Job is not named after
// its queue.
func Command(verb, queueName, jobName string, flags ...string) string {
	parts := []string{"kubectl workqueue", verb, queueName}
	if jobName != queueName {
		parts = append(parts, "--name", jobName)
	}
	return strings.Join(append(parts, flags...), " ")
}
