package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/podstatus"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

// inCluster runs `workqueue-agent probe` in a Job's pod, labelled like run's pods so that the
// same NetworkPolicies apply to it, and reads its verdict from the log.
func inCluster(ctx context.Context, client kubernetes.Interface, req Request, address string) Check {
	check := Check{Name: "in-cluster", Broker: true}
	switch {
	case req.AgentImage == "":
		check.Skipped, check.Detail = true, "no agent image to probe with"
		return check
	case address == "":
		check.Skipped = true
		return check
	}
	timeout := req.ProbeTimeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	j, err := client.BatchV1().Jobs(req.Namespace).Create(ctx, probeJob(req, address), metav1.CreateOptions{FieldManager: constants.FieldManager})
	if err != nil {
		check.Detail = fmt.Sprintf("cannot create the probe Job: %v", err)
		check.Fix = "let the user create Jobs in the namespace (docs/rbac/runner.yaml), as run needs too"
		return check
	}
	defer func() {
		policy := metav1.DeletePropagationBackground
		_ = client.BatchV1().Jobs(req.Namespace).Delete(context.WithoutCancel(ctx), j.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
	}()
	verdict, problem := awaitProbe(ctx, client, req.Namespace, j.Name)
	switch {
	case strings.HasPrefix(verdict, "ok: "):
		check.OK = true
		check.Detail = fmt.Sprintf("a pod of the namespace reached %s: %s", address, strings.TrimPrefix(verdict, "ok: "))
	case verdict != "":
		check.Detail = fmt.Sprintf("a pod of the namespace cannot use %s: %s", address, verdict)
		check.Fix = probeFix(ctx, client, req, verdict)
	default:
		check.Detail = "the probe pod did not finish: " + problem
		check.Fix = fmt.Sprintf("the probe runs the agent image %s, as run's pods do: make it pullable (or pass --agent-image)", req.AgentImage)
	}
	return check
}

func probeJob(req Request, address string) *batchv1.Job {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	podLabels := map[string]string{constants.LabelManagedBy: constants.ManagedBy}
	no, yes := false, true
	uid := int64(65532)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "workqueue-doctor-" + hex.EncodeToString(suffix), Namespace: req.Namespace, Labels: podLabels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(int32(0)),
			TTLSecondsAfterFinished: ptr.To(int32(60)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: &no,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:            "probe",
						Image:           req.AgentImage,
						ImagePullPolicy: corev1.PullPolicy(req.ImagePullPolicy),
						Command:         []string{"/workqueue-agent", "probe", address},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
}

// awaitProbe returns the probe's log line once its pod has ended, or why it did not.
func awaitProbe(ctx context.Context, client kubernetes.Interface, namespace, jobName string) (verdict, problem string) {
	selector := labels.Set{"batch.kubernetes.io/job-name": jobName}.String()
	for {
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			for i := range pods.Items {
				pod := &pods.Items[i]
				if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
					var lines []string
					err := tail.StreamLog(ctx, client, namespace, pod.Name, tail.LogOptions{Tail: -1}, func(l string) { lines = append(lines, l) })
					if err != nil || len(lines) == 0 {
						return "", fmt.Sprintf("its log cannot be read (%v)", err)
					}
					return lines[len(lines)-1], ""
				}
				if p, fatal := podstatus.Problem(pod); p != "" {
					if fatal {
						return "", p
					}
					problem = p
				}
			}
		}
		select {
		case <-ctx.Done():
			if problem == "" {
				problem = "it did not end in time"
			}
			return "", problem
		case <-time.After(time.Second):
		}
	}
}
