package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

// jobWatcher follows a work-queue Job to its end and reports the truth about its items; `run`
// and `status --watch` share it.
type jobWatcher struct {
	job, queue, namespace string
	logs                  bool
	tty                   bool
	broker                brokerFlags
	getter                ClientGetter
	genericiooptions.IOStreams
}

// follow tails the Job, prints what happens and decides the exit code.
func (o *jobWatcher) follow(ctx context.Context, client kubernetes.Interface, state queueState) error {
	printer := newPodPrinter(o.Out, o.ErrOut, o.tty)
	var logs sync.WaitGroup
	opts := tail.Options{OnPod: printer.pod, OnProgress: printer.progress,
		OnPodProblem: func(problem string, fatal bool) { printer.warning("warning: " + problem) }}
	if o.logs {
		opts.OnPodStarted = func(pod string) {
			logs.Add(1)
			go func() {
				defer logs.Done()
				streamLogs(ctx, client, o.namespace, pod, printer)
			}()
		}
	}
	summary, err := tail.Follow(ctx, client, o.namespace, o.job, opts)
	printer.clear()
	if ctx.Err() != nil {
		fmt.Fprintf(o.ErrOut, "stopped following; Job %s keeps running. Follow it again with: %s\n", o.job, queueCommand("status", o.queue, o.job, "--watch"))
		return ctx.Err()
	}
	var cannotStart *tail.PodsCannotStartError
	if errors.As(err, &cannotStart) {
		return fmt.Errorf("the Job's pods cannot start (%s); Job %s is left as it is: remove it with `%s` (the items stay), fix the cause and run again", cannotStart.Problem, o.job, queueCommand("delete", o.queue, o.job, "--keep-queue"))
	}
	if err != nil {
		return err
	}
	waitAtMost(&logs, 10*time.Second)
	return o.report(ctx, summary, state)
}

// report prints the summary and turns what happened into the exit code: zero only when the Job
// completed, no item was dead-lettered and none was left behind.
func (o *jobWatcher) report(ctx context.Context, s tail.Summary, before queueState) error {
	after := queueState{ready: -1, failedBefore: -1}
	var brokerErr error
	if b, err := o.broker.connect(ctx, o.getter, o.namespace, io.Discard); err == nil {
		after, brokerErr = inspectQueue(b, o.queue)
		b.Close()
	} else {
		brokerErr = err
	}
	deadLettered := 0
	if after.failedBefore >= 0 {
		deadLettered = after.failedBefore - max(before.failedBefore, 0)
	}

	status := "Complete"
	if s.Failed {
		status = "Failed (" + s.FailureReason + ")"
	}
	w := o.Out
	fmt.Fprintf(w, "\nJob %s: %s after %s\n", o.job, status, s.Finished.Sub(s.Started).Round(time.Second))
	completions := "none (drain)"
	if s.Completions != nil {
		completions = fmt.Sprint(*s.Completions)
	}
	fmt.Fprintf(w, "  Parallelism:  %d\n  Completions:  %s\n  Pods:         %d succeeded, %d failed\n", s.Parallelism, completions, s.Succeeded, s.FailedPods)
	if brokerErr != nil {
		fmt.Fprintf(w, "  Queue:        cannot be read: %v\n", brokerErr)
	} else {
		processed := "not reported by the pods (their image consumes the queue itself)"
		if agentReported(s) {
			processed = fmt.Sprintf("%d processed, %d failed attempts", s.ItemsDone, s.ItemsFailed)
		}
		fmt.Fprintf(w, "  Items:        %s; %d dead-lettered to %s, %d left in %s\n",
			processed, deadLettered, queue.DeadLetterName(o.queue), after.ready, o.queue)
	}

	var problems []string
	if s.Failed {
		problems = append(problems, fmt.Sprintf("Job %s failed: %s", o.job, s.FailureMessage))
	}
	if deadLettered > 0 {
		problems = append(problems, fmt.Sprintf("%d %s failed every attempt and moved to queue %s%s", deadLettered, plural(deadLettered, "item"), queue.DeadLetterName(o.queue), namedFailures(s)))
	}
	if after.ready > 0 {
		problems = append(problems, fmt.Sprintf("%d %s still in queue %s (run again to process them)", after.ready, plural(after.ready, "item is"), o.queue))
	}
	if brokerErr != nil {
		problems = append(problems, "cannot confirm from the broker that every item was processed")
	}
	if len(problems) > 0 {
		return &ExitError{Code: 1, Message: strings.Join(problems, "; ")}
	}
	fmt.Fprintf(o.Out, "all items of queue %s processed\n", o.queue)
	return nil
}

// agentReported tells whether any pod ran the agent, which reports its items.
func agentReported(s tail.Summary) bool {
	for _, r := range s.Results {
		if r.Outcome != nil {
			return true
		}
	}
	return false
}

// namedFailures lists the items whose last attempt failed, as the agents reported them.
func namedFailures(s tail.Summary) string {
	seen := map[string]bool{}
	var names []string
	for _, r := range s.Results {
		if o := r.Outcome; o != nil && o.Result == "failed" && o.Item != "" && !seen[o.MessageID] {
			seen[o.MessageID] = true
			names = append(names, fmt.Sprintf("%q", o.Item))
		}
	}
	if len(names) == 0 {
		return ""
	}
	if len(names) > 5 {
		names = append(names[:5], "...")
	}
	return " (" + strings.Join(names, ", ") + ")"
}

func waitAtMost(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func streamLogs(ctx context.Context, client kubernetes.Interface, namespace, pod string, printer *podPrinter) {
	stream, err := client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: constants.ContainerName, Follow: true}).Stream(ctx)
	if err != nil {
		printer.logLine(pod, "(cannot stream the log: "+err.Error()+")")
		return
	}
	defer stream.Close()
	if err := copyLogLines(stream, pod, printer); err != nil && ctx.Err() == nil {
		printer.logLine(pod, "(the log stream ended: "+err.Error()+")")
	}
}

// copyLogLines prints each line of a pod's log, whatever its length, and returns why the stream
// ended unless it simply did.
func copyLogLines(stream io.Reader, pod string, printer *podPrinter) error {
	reader := bufio.NewReaderSize(stream, 64*1024)
	for {
		line, err := reader.ReadString('\n')
		if line != "" {
			printer.logLine(pod, strings.TrimSuffix(line, "\n"))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
