package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// jobWatcher follows a work-queue Job to its end and prints the truth about its items; `run`
// and `status --watch` share it.
type jobWatcher struct {
	job, queue, namespace string
	logs                  bool
	tty                   bool
	// output, when set (json or yaml), prints the final report as one document on Out, and
	// every other line on ErrOut.
	output string
	// consumesItself is a Job of one item per pod whose image consumes the queue itself: its
	// pods wait on an empty queue, so following it watches for a Job that cannot complete.
	consumesItself bool
	broker         brokerFlags
	getter         ClientGetter
	genericiooptions.IOStreams
}

// follow tails the Job, prints what happens, and returns an error when the run did not do all
// its work.
func (o *jobWatcher) follow(ctx context.Context, client kubernetes.Interface, before workqueue.QueueState) error {
	lines := o.Out
	if o.output != "" {
		lines = o.ErrOut
	}
	printer := newPodPrinter(lines, o.ErrOut, o.tty)
	var logs sync.WaitGroup
	opts := tail.Options{OnPod: printer.pod, OnProgress: printer.progress,
		OnPodProblem: func(problem string, fatal bool) { printer.warning("warning: " + problem) }}
	if o.logs {
		opts.OnPodStarted = func(pod string) {
			logs.Add(1)
			go func() {
				defer logs.Done()
				err := tail.StreamLog(ctx, client, o.namespace, pod, tail.LogOptions{Container: constants.ContainerName, Follow: true, Tail: -1}, func(line string) { printer.logLine(pod, line) })
				if err != nil && ctx.Err() == nil {
					printer.logLine(pod, "("+err.Error()+")")
				}
			}()
		}
	}
	followCtx, stopFollowing := context.WithCancelCause(ctx)
	var watching sync.WaitGroup
	defer func() {
		stopFollowing(nil)
		watching.Wait()
	}()
	if o.consumesItself {
		stall := newStallWatch(before, o.readQueueAndInFlight)
		opts.OnProgress = func(p tail.Progress) {
			printer.progress(p)
			stall.onProgress(p)
		}
		watching.Add(1)
		go func() {
			defer watching.Done()
			if reason := stall.run(followCtx); reason != "" {
				stopFollowing(&stalledError{reason: reason})
			}
		}()
	}
	summary, err := tail.Follow(followCtx, client, o.namespace, o.job, opts)
	printer.clear()
	var stalled *stalledError
	if ctx.Err() == nil && errors.As(context.Cause(followCtx), &stalled) {
		err = nil
	}
	if ctx.Err() != nil {
		fmt.Fprintf(o.ErrOut, "stopped following; Job %s keeps running. Follow it again with: %s\n", o.job, workqueue.Command("status", o.queue, o.job, "--watch"))
		return ctx.Err()
	}
	var cannotStart *tail.PodsCannotStartError
	if errors.As(err, &cannotStart) {
		return withExitCode(ExitJobFailed, fmt.Errorf("the Job's pods cannot start (%s); Job %s is left as it is: remove it with `%s` (the items stay), fix the cause and run again", cannotStart.Problem, o.job, workqueue.Command("delete", o.queue, o.job, "--keep-queue")))
	}
	if err != nil {
		return err
	}
	waitAtMost(&logs, 10*time.Second)

	after, afterErr := workqueue.UnknownQueueState, error(nil)
	if b, err := o.broker.connect(ctx, o.getter, o.namespace, io.Discard); err == nil {
		after, afterErr = workqueue.ReadQueue(b.Conn, o.queue, b.Via)
		b.Close()
	} else {
		afterErr = err
	}
	report := workqueue.Assess(o.job, o.queue, summary, before, after, afterErr)
	if stalled != nil {
		report.MarkStalled(stalled.reason)
	}
	if o.output != "" {
		if err := printDocument(o.Out, o.output, report.Document(o.namespace)); err != nil {
			return err
		}
	} else {
		printReport(o.Out, report)
	}
	if !report.OK() {
		return &ExitError{Code: reportExitCode(report), Err: errors.New(strings.Join(report.Problems, "; "))}
	}
	if o.output == "" {
		fmt.Fprintf(o.Out, "all items of queue %s processed\n", o.queue)
	}
	return nil
}

// stalledError ends following a Job that can never complete.
type stalledError struct{ reason string }

func (e *stalledError) Error() string { return e.reason }

// readQueueAndInFlight reads the queue's exact counts over AMQP and, where the broker has its
// management API, the items in flight (-1 otherwise).
func (o *jobWatcher) readQueueAndInFlight(ctx context.Context) (workqueue.QueueState, int, error) {
	b, err := o.broker.connect(ctx, o.getter, o.namespace, io.Discard)
	if err != nil {
		return workqueue.QueueState{}, -1, err
	}
	defer b.Close()
	now, err := workqueue.ReadQueue(b.Conn, o.queue, b.Via)
	if err != nil {
		return workqueue.QueueState{}, -1, err
	}
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return now, -1, nil
	}
	config, err := o.getter.ToRESTConfig()
	if err != nil {
		return now, -1, nil
	}
	queues, err := b.Queues(ctx, client, config)
	if err != nil {
		return now, -1, nil
	}
	for _, q := range queues {
		if q.Name == o.queue {
			return now, q.InFlight, nil
		}
	}
	return now, -1, nil
}

// reportExitCode tells failed items from a Job that failed otherwise: items that failed every
// attempt usually are why a Job fails, so they come first.
func reportExitCode(r workqueue.Report) int {
	switch {
	case r.DeadLettered > 0 || r.Left > 0:
		return ExitItemsFailed
	case r.Summary.Failed, r.Stalled != "":
		return ExitJobFailed
	case r.QueueError != nil:
		return ExitUnreachable
	}
	return ExitFailed
}

func printReport(w io.Writer, r workqueue.Report) {
	s := r.Summary
	status := "Complete"
	switch {
	case s.Failed:
		status = "Failed (" + s.FailureReason + ")"
	case r.Stalled != "":
		status = "still running, but it cannot complete,"
	}
	fmt.Fprintf(w, "\nJob %s: %s after %s\n", r.Job, status, s.Finished.Sub(s.Started).Round(time.Second))
	completions := "none (drain)"
	if s.Completions != nil {
		completions = fmt.Sprint(*s.Completions)
	}
	fmt.Fprintf(w, "  Parallelism:  %d\n  Completions:  %s\n  Pods:         %d succeeded, %d failed\n", s.Parallelism, completions, s.Succeeded, s.FailedPods)
	if r.QueueError != nil {
		fmt.Fprintf(w, "  Queue:        cannot be read: %v\n", r.QueueError)
		return
	}
	processed := "not reported by the pods (their image consumes the queue itself)"
	if r.AgentReported {
		processed = fmt.Sprintf("%d processed, %d failed attempts", s.ItemsDone, s.ItemsFailed)
	}
	fmt.Fprintf(w, "  Items:        %s; %d dead-lettered to %s, %d left in %s\n",
		processed, r.DeadLettered, queue.DeadLetterName(r.Queue), r.Left, r.Queue)
}

func waitAtMost(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
