// Package podstatus says why a pod is not running yet, in the cluster's own words, so that a
// command waiting for it can tell the user instead of waiting in silence.
package podstatus

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// fatalReasons are container waiting reasons that no amount of waiting fixes. A missing Secret
// or ConfigMap (CreateContainerConfigError) is not among them: it may be created, and the
// kubelet reports the same reason while its cache of Secrets catches up.
var fatalReasons = []string{"InvalidImageName", "ErrImageNeverPull"}

// Problem returns why the pod's containers cannot run yet, or "" when nothing is wrong (it may
// simply be starting), and whether waiting cannot fix it.
func Problem(pod *corev1.Pod) (problem string, fatal bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			problem := fmt.Sprintf("pod %s cannot be scheduled: %s", pod.Name, strings.TrimSpace(c.Message))
			if strings.Contains(c.Message, "unbound") {
				problem += " (a volume is not provisioned: see `kubectl describe pvc`)"
			}
			return problem, false
		}
	}
	statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
			continue
		}
		problem := fmt.Sprintf("pod %s: container %s: %s", pod.Name, cs.Name, w.Reason)
		if w.Message != "" {
			problem += ": " + w.Message
		}
		return problem, slices.Contains(fatalReasons, w.Reason)
	}
	return "", false
}
