// Package podstatus says why a pod is not running yet, in the cluster's own words, so that a
// command waiting for it can tell the user instead of waiting in silence.
package podstatus

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
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
		if w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "image will run as root") {
			// The pod must run as non-root (the namespace enforces "restricted") and the image's
			// user is root: that stays so until the user is changed.
			return problem + "; give the pods a non-root user with --run-as-user UID", true
		}
		return problem, slices.Contains(fatalReasons, w.Reason)
	}
	return "", false
}

// FailedCreateSelector selects the events in which a controller (kind Job or StatefulSet) says
// that the API server refused to create one of its pods.
func FailedCreateSelector(kind, name string) string {
	return fields.Set{"involvedObject.kind": kind, "involvedObject.name": name, "reason": "FailedCreate"}.String()
}

// Refused returns the API server's reason for refusing a pod of the controller with the given
// UID, from one of its FailedCreate events (Pod Security, a quota, a LimitRange), or "" for any
// other event. Events of an earlier object of the same name carry another UID.
func Refused(ev *corev1.Event, controller types.UID) string {
	if ev.Reason != "FailedCreate" || ev.InvolvedObject.UID != controller {
		return ""
	}
	// The Job controller writes "Error creating: REASON", the StatefulSet controller "create Pod
	// NAME in StatefulSet NAME failed error: REASON": keep the API server's REASON.
	message := strings.TrimPrefix(ev.Message, "Error creating: ")
	if _, reason, found := strings.Cut(message, " failed error: "); found {
		message = reason
	}
	message = strings.TrimSpace(message)
	return fmt.Sprintf("%s %s cannot create its pods: %s", strings.ToLower(ev.InvolvedObject.Kind), ev.InvolvedObject.Name, message)
}
