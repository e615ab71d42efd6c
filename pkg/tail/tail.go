// Package tail follows a work-queue Job to its end: it watches the Job and its pods, reports each
// pod as it finishes (with the item it processed, read from the agent's termination message) and
// returns a summary. It takes a kubernetes.Interface and knows nothing of the command line.
package tail

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/podstatus"
)

// PodResult is one finished pod.
type PodResult struct {
	Pod       string
	Succeeded bool
	ExitCode  int32
	Reason    string           // the kubelet's reason when the container did not exit by itself (OOMKilled, ...)
	Outcome   *outcome.Outcome // nil when the pod ran no agent (an image's own entrypoint)
	Message   string           // the termination message when it is not an outcome (e.g. a log tail)
	Duration  time.Duration
}

// Progress counts pods and items so far.
type Progress struct {
	Succeeded, Failed, Active int32
	Completions               *int32
	ItemsDone, ItemsFailed    int
}

// Summary is what happened, once the Job has finished.
type Summary struct {
	Complete       bool // the Job succeeded
	Failed         bool
	FailureReason  string
	FailureMessage string
	Parallelism    int32
	Completions    *int32
	Succeeded      int32 // pods
	FailedPods     int32
	ItemsDone      int
	ItemsFailed    int // failed attempts, each retried or dead-lettered by the broker
	Results        []PodResult
	Started        time.Time
	Finished       time.Time
}

// Options receive events as they happen; any may be nil.
type Options struct {
	OnPod      func(PodResult)
	OnProgress func(Progress)
	// OnPodStarted is called once per pod whose worker container has started (to stream its log).
	OnPodStarted func(pod string)
	// OnPodProblem is called when a pod cannot start (an image that cannot be pulled, a missing
	// Secret, no node for it), once per pod and problem. Fatal problems end Follow with an
	// error, since the Job would wait for them forever.
	OnPodProblem func(problem string, fatal bool)
}

// Follow watches the Job until it is Complete or Failed, or ctx ends.
func Follow(ctx context.Context, client kubernetes.Interface, namespace, name string, opts Options) (Summary, error) {
	f := &follower{opts: opts, seen: map[types.UID]bool{}, running: map[types.UID]bool{}, problems: map[types.UID]string{}, refusals: map[string]bool{}, done: make(chan struct{}), started: time.Now()}

	jobs := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	pods := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = job.Selector(name) }))
	podInformer := pods.Core().V1().Pods().Informer()
	if err := podInformer.SetTransform(slimPod); err != nil {
		return Summary{}, fmt.Errorf("following the pods of Job %s: %w", name, err)
	}
	jobInformer := jobs.Batch().V1().Jobs().Informer()
	f.podStore = podInformer.GetStore()

	podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.pod(obj) },
		UpdateFunc: func(_, obj any) { f.pod(obj) },
	})
	jobInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.job(obj) },
		UpdateFunc: func(_, obj any) { f.job(obj) },
		DeleteFunc: func(any) { f.finish(fmt.Errorf("job %s/%s was deleted while being watched", namespace, name)) },
	})
	// Pods the API server refuses (Pod Security, a quota, a LimitRange) never show up as pods:
	// only the Job controller's FailedCreate events tell.
	refusals := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = podstatus.FailedCreateSelector("Job", name) }))
	stop := make(chan struct{})
	// Stopping waits for the handlers, so no callback runs after Follow returns.
	shutdown := func() {
		close(stop)
		pods.Shutdown()
		jobs.Shutdown()
		refusals.Shutdown()
	}
	pods.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced) {
		shutdown()
		return Summary{}, ctx.Err()
	}
	jobs.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), jobInformer.HasSynced) {
		shutdown()
		return Summary{}, ctx.Err()
	}
	// The events are read once the Job's UID is known. Whoever may not read events does without,
	// rather than getting a retrying watch's errors.
	if _, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: podstatus.FailedCreateSelector("Job", name), Limit: 1}); err == nil {
		refusals.Core().V1().Events().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { f.event(obj) },
			UpdateFunc: func(_, obj any) { f.event(obj) },
		})
		refusals.Start(stop)
	}

	select {
	case <-ctx.Done():
		shutdown()
		return f.snapshot(), ctx.Err()
	case <-f.done:
	}
	// The Job's status can be seen before its last pods' updates: wait a little for those.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s := f.snapshot()
		if int32(len(s.Results)) >= s.Succeeded+s.FailedPods {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	shutdown()
	for _, obj := range f.podStore.List() {
		f.pod(obj)
	}
	return f.snapshot(), f.err
}

// slimPod keeps of a pod what following it reads: a Job of a pod per item leaves thousands of
// finished pods, and their specs and managed fields would otherwise stay in the cache for the
// whole run (BenchmarkFollowMemory).
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
		},
		Status: corev1.PodStatus{
			Phase: p.Status.Phase, Reason: p.Status.Reason, Message: p.Status.Message, Conditions: p.Status.Conditions,
			InitContainerStatuses: p.Status.InitContainerStatuses, ContainerStatuses: p.Status.ContainerStatuses,
		},
	}, nil
}

type follower struct {
	opts     Options
	podStore cache.Store

	mu       sync.Mutex
	seen     map[types.UID]bool
	running  map[types.UID]bool
	problems map[types.UID]string // the last problem reported per pod
	refusals map[string]bool      // FailedCreate messages reported
	jobUID   types.UID
	summary  Summary
	active   int32
	started  time.Time
	finished bool
	err      error
	done     chan struct{}
}

func (f *follower) snapshot() Summary {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.summary
	s.Results = append([]PodResult(nil), f.summary.Results...)
	s.Started = f.started
	if s.Finished.IsZero() {
		s.Finished = time.Now()
	}
	return s
}

func (f *follower) finish(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finished {
		return
	}
	f.finished, f.err = true, err
	f.summary.Finished = time.Now()
	close(f.done)
}

func (f *follower) job(obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	f.mu.Lock()
	s := &f.summary
	s.Parallelism = ptrValue(j.Spec.Parallelism)
	s.Completions = j.Spec.Completions
	s.Succeeded, s.FailedPods = j.Status.Succeeded, j.Status.Failed
	f.active = j.Status.Active
	f.jobUID = j.UID
	var finished bool
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			s.Complete, finished = true, true
		case batchv1.JobFailed:
			s.Failed, finished = true, true
			s.FailureReason, s.FailureMessage = c.Reason, c.Message
		}
	}
	progress := f.progressLocked()
	f.mu.Unlock()
	if f.opts.OnProgress != nil {
		f.opts.OnProgress(progress)
	}
	if finished {
		f.finish(nil)
	}
}

func (f *follower) progressLocked() Progress {
	return Progress{
		Succeeded: f.summary.Succeeded, Failed: f.summary.FailedPods, Active: f.active,
		Completions: f.summary.Completions, ItemsDone: f.summary.ItemsDone, ItemsFailed: f.summary.ItemsFailed,
	}
}

func (f *follower) pod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	f.podStarted(p)
	if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		f.podProblem(p)
		return
	}
	f.mu.Lock()
	if f.seen[p.UID] {
		f.mu.Unlock()
		return
	}
	f.seen[p.UID] = true
	result := resultOf(p)
	f.summary.Results = append(f.summary.Results, result)
	if o := result.Outcome; o != nil {
		switch {
		case o.Processed > 0 || o.Failed > 0: // drain mode counts for the pod's whole life
			f.summary.ItemsDone += o.Processed
			f.summary.ItemsFailed += o.Failed
		case o.Result == outcome.ResultDone:
			f.summary.ItemsDone++
		case o.Result == outcome.ResultFailed:
			f.summary.ItemsFailed++
		}
	}
	progress := f.progressLocked()
	f.mu.Unlock()
	if f.opts.OnPod != nil {
		f.opts.OnPod(result)
	}
	if f.opts.OnProgress != nil {
		f.opts.OnProgress(progress)
	}
}

func (f *follower) podProblem(p *corev1.Pod) {
	if p.DeletionTimestamp != nil {
		return // going away, perhaps with an earlier Job of the same name
	}
	problem, fatal := podstatus.Problem(p)
	if problem == "" {
		return
	}
	f.mu.Lock()
	reported := f.problems[p.UID] == problem
	f.problems[p.UID] = problem
	f.mu.Unlock()
	if !reported && f.opts.OnPodProblem != nil {
		f.opts.OnPodProblem(problem, fatal)
	}
	if fatal {
		f.finish(&PodsCannotStartError{Problem: problem})
	}
}

// event reports a FailedCreate of the Job's. With no pod of the Job running it ends Follow: a
// Pod Security level or a LimitRange refuses every pod alike, and a quota that admits none leaves
// the Job waiting with nothing to show for it. With pods running, a quota only slows the Job.
func (f *follower) event(obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return
	}
	f.mu.Lock()
	problem := podstatus.Refused(ev, f.jobUID)
	reported := problem == "" || f.refusals[problem]
	if problem != "" {
		f.refusals[problem] = true
	}
	fatal := f.active == 0
	f.mu.Unlock()
	if reported {
		return
	}
	if f.opts.OnPodProblem != nil {
		f.opts.OnPodProblem(problem, fatal)
	}
	if fatal {
		f.finish(&PodsCannotStartError{Problem: problem})
	}
}

// PodsCannotStartError ends Follow when a pod of the Job can never start.
type PodsCannotStartError struct{ Problem string }

func (e *PodsCannotStartError) Error() string { return e.Problem }

func (f *follower) podStarted(p *corev1.Pod) {
	if f.opts.OnPodStarted == nil {
		return
	}
	running := false
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == constants.ContainerName && (cs.State.Running != nil || cs.State.Terminated != nil) {
			running = true
		}
	}
	f.mu.Lock()
	first := running && !f.running[p.UID]
	if first {
		f.running[p.UID] = true
	}
	f.mu.Unlock()
	if first {
		f.opts.OnPodStarted(p.Name)
	}
}

func resultOf(p *corev1.Pod) PodResult {
	r := PodResult{Pod: p.Name, Succeeded: p.Status.Phase == corev1.PodSucceeded, Reason: p.Status.Reason}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != constants.ContainerName || cs.State.Terminated == nil {
			continue
		}
		t := cs.State.Terminated
		r.ExitCode, r.Duration = t.ExitCode, t.FinishedAt.Sub(t.StartedAt.Time)
		if t.Reason != "" && t.Reason != "Completed" && t.Reason != "Error" {
			r.Reason = t.Reason
		}
		if o, err := outcome.Decode(t.Message); err == nil {
			r.Outcome = &o
		} else {
			r.Message = strings.TrimSpace(t.Message)
		}
	}
	return r
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
