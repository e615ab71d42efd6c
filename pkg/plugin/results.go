package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// ResultsOptions holds what `kubectl workqueue results` needs.
type ResultsOptions struct {
	queueRef
	Output string
	Follow bool
	Limit  int

	broker brokerFlags
	getter ClientGetter
	genericiooptions.IOStreams
}

// NewCmdResults builds `kubectl workqueue results`.
func NewCmdResults(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &ResultsOptions{IOStreams: streams, getter: getter, Limit: -1}
	cmd := &cobra.Command{
		Use:   "results QUEUE",
		Short: "Take the result record of every attempt",
		Long: longDesc(`
			Take the records that the agents published to QUEUE.results, one per attempt they
			settled: the item, its attempt, done or failed, exit code, duration, pod, and its
			result (what the command wrote to $WORKQUEUE_RESULT_FILE, else the end of its
			stdout, up to run's --result-size).

			Records are taken: each is removed from QUEUE.results once it has been written out,
			so an interrupted read loses none and the next one starts where it stopped.`),
		Example: examples(`
			# Every result so far, one line each
			kubectl workqueue results job1

			# While the Job runs, as JSON lines, into a file
			kubectl workqueue results job1 --follow -o json > results.jsonl`),
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "The Job's name, which --follow waits for (default: the queue's name)")
	f.StringVarP(&o.Output, "output", "o", "", "json: one JSON object per line, the whole record; default: a line per record")
	f.BoolVarP(&o.Follow, "follow", "f", false, "Keep taking records until the Job has finished and none is left")
	f.IntVar(&o.Limit, "limit", o.Limit, "Take at most this many records (-1 for all)")
	cobra.CheckErr(cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"json"}, cobra.ShellCompDirectiveNoFileComp)))
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the queue and the namespace.
func (o *ResultsOptions) Complete(args []string) error {
	return o.completeQueue(args, o.getter)
}

// Validate checks the flags.
func (o *ResultsOptions) Validate() error {
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("-o %s: results prints json (one object per line), or a line per record without -o", o.Output)
	}
	if o.Limit < -1 {
		return errors.New("--limit must be -1 (all) or more")
	}
	return queue.ValidateName(o.Queue)
}

// Run takes the records and writes each out before it is acknowledged.
func (o *ResultsOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	b, err := o.broker.connect(ctx, o.getter, o.namespace, o.ErrOut)
	if err != nil {
		return err
	}
	defer b.Close()
	req := workqueue.ResultsRequest{Queue: o.Queue, Limit: o.Limit, Follow: o.Follow, Done: o.jobFinished(client)}
	taken, err := workqueue.ReadResults(ctx, b.Conn, req, o.write)
	if err != nil {
		return err
	}
	if taken == 0 && o.Output == "" {
		fmt.Fprintf(o.ErrOut, "no result records waiting in %s\n", queue.ResultsName(o.Queue))
	}
	return nil
}

// jobFinished tells --follow when the records are complete: once the Job has finished, or when
// there is no Job to wait for.
func (o *ResultsOptions) jobFinished(client kubernetes.Interface) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(o.namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return job.Finished(j), nil
	}
}

func (o *ResultsOptions) write(record outcome.Record, body []byte) error {
	if o.Output == "json" {
		var line bytes.Buffer
		if err := json.Compact(&line, body); err != nil {
			return err
		}
		line.WriteByte('\n')
		_, err := o.Out.Write(line.Bytes())
		return err
	}
	_, err := fmt.Fprintln(o.Out, describeRecord(record))
	return err
}

// describeRecord is one line: pod, result, item, attempt, duration, and the result's last line.
func describeRecord(r outcome.Record) string {
	result := r.Result
	if r.Result == outcome.ResultFailed {
		result = "FAILED"
		if r.ExitCode != nil {
			result += fmt.Sprintf(" (exit %d)", *r.ExitCode)
		}
	}
	line := fmt.Sprintf("%s  %s  %q  attempt %d  (%s)", r.Pod, result, truncate(r.Item, 60), r.Attempt,
		(time.Duration(r.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
	output := strings.TrimRight(r.Output, "\n")
	if r.OutputBase64 != "" {
		output = "(binary output; -o json has it)"
	}
	if i := strings.LastIndexByte(output, '\n'); i >= 0 {
		output = output[i+1:]
	}
	if output != "" {
		line += ": " + truncate(output, 120)
	}
	return line
}
