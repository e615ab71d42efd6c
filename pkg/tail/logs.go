package tail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
)

// LogOptions say which part of a container's log to read.
type LogOptions struct {
	Container  string
	Follow     bool
	Since      time.Duration // only lines newer than this; 0 for all
	Tail       int64         // only the last lines of each log; below 0 for all
	Timestamps bool
}

func (o LogOptions) podLogOptions() *corev1.PodLogOptions {
	opts := &corev1.PodLogOptions{Container: o.Container, Follow: o.Follow, Timestamps: o.Timestamps}
	if o.Since > 0 {
		seconds := int64((o.Since + time.Second - 1) / time.Second)
		opts.SinceSeconds = &seconds
	}
	if o.Tail >= 0 {
		opts.TailLines = &o.Tail
	}
	return opts
}

// pollInterval is how often JobLogs looks for new pods while following.
const pollInterval = 2 * time.Second

// StreamLog reads one container's log and hands each line to onLine, whatever its length,
// until the log ends (with Follow: until the container ends) or ctx does.
func StreamLog(ctx context.Context, client kubernetes.Interface, namespace, pod string, opts LogOptions, onLine func(string)) error {
	stream, err := client.CoreV1().Pods(namespace).GetLogs(pod, opts.podLogOptions()).Stream(ctx)
	if err != nil {
		return fmt.Errorf("cannot stream the log: %w", err)
	}
	defer stream.Close()
	if err := CopyLines(stream, onLine); err != nil {
		return fmt.Errorf("the log stream ended: %w", err)
	}
	return nil
}

// CopyLines hands each line of r to onLine without its newline, whatever its length, and
// returns why r ended unless it simply did.
func CopyLines(r io.Reader, onLine func(string)) error {
	reader := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := reader.ReadString('\n')
		if line != "" {
			onLine(strings.TrimSuffix(line, "\n"))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// LogLine is one line of a pod's log.
type LogLine struct {
	Pod  string
	Line string
	// Err, when set, says why the pod's log could not be read to its end; Line is empty.
	Err error
}

// JobLogs reads the logs of a Job's pods, oldest pod first, handing every line to onLine.
// Without Follow it reads what each pod has logged so far, one pod after the other. With
// Follow it reads them all at once, picks up pods as their container starts, and returns once
// the Job has finished and every log has ended, or when ctx ends.
func JobLogs(ctx context.Context, client kubernetes.Interface, namespace, jobName string, opts LogOptions, onLine func(LogLine)) error {
	if _, err := client.BatchV1().Jobs(namespace).Get(ctx, jobName, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("there is no Job %s in namespace %s", jobName, namespace)
		}
		return fmt.Errorf("read Job %s: %w", jobName, err)
	}
	var mu sync.Mutex
	emit := func(l LogLine) {
		mu.Lock()
		defer mu.Unlock()
		onLine(l)
	}
	if !opts.Follow {
		pods, err := startedPods(ctx, client, namespace, jobName)
		if err != nil {
			return err
		}
		for _, pod := range pods {
			if err := StreamLog(ctx, client, namespace, pod, opts, func(line string) { emit(LogLine{Pod: pod, Line: line}) }); err != nil {
				emit(LogLine{Pod: pod, Err: err})
			}
		}
		return ctx.Err()
	}

	var streams sync.WaitGroup
	streaming := map[string]bool{}
	for {
		pods, err := startedPods(ctx, client, namespace, jobName)
		if err != nil && ctx.Err() == nil {
			return err
		}
		for _, pod := range pods {
			if streaming[pod] {
				continue
			}
			streaming[pod] = true
			streams.Add(1)
			go func() {
				defer streams.Done()
				err := StreamLog(ctx, client, namespace, pod, opts, func(line string) { emit(LogLine{Pod: pod, Line: line}) })
				if err != nil && ctx.Err() == nil {
					emit(LogLine{Pod: pod, Err: err})
				}
			}()
		}
		finished, err := jobFinished(ctx, client, namespace, jobName)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if finished {
			// Pods that started just before the Job finished are in the next listing.
			if pods, err := startedPods(ctx, client, namespace, jobName); err == nil && allIn(pods, streaming) {
				streams.Wait()
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			streams.Wait()
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// startedPods lists the Job's pods whose worker container has started, oldest first.
func startedPods(ctx context.Context, client kubernetes.Interface, namespace, jobName string) ([]string, error) {
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: job.Selector(jobName)})
	if err != nil {
		return nil, fmt.Errorf("list the pods of Job %s: %w", jobName, err)
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool {
		if !pods[i].CreationTimestamp.Equal(&pods[j].CreationTimestamp) {
			return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
		}
		return pods[i].Name < pods[j].Name
	})
	var names []string
	for _, p := range pods {
		if containerStarted(&p) {
			names = append(names, p.Name)
		}
	}
	return names, nil
}

func containerStarted(p *corev1.Pod) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running != nil || s.State.Terminated != nil {
			return true
		}
	}
	return false
}

func jobFinished(ctx context.Context, client kubernetes.Interface, namespace, name string) (bool, error) {
	j, err := client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, errors.New("the Job was deleted while its logs were followed")
	}
	if err != nil {
		return false, err
	}
	return job.Finished(j), nil
}

func allIn(names []string, set map[string]bool) bool {
	for _, n := range names {
		if !set[n] {
			return false
		}
	}
	return true
}
