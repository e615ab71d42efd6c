package podstatus

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProblem(t *testing.T) {
	waiting := func(reason, message string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}
	}
	cases := map[string]struct {
		status      corev1.PodStatus
		wantProblem string
		wantFatal   bool
	}{
		"starting": {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating", "")}}, "", false},
		"unschedulable": {corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Message: "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."}}},
			"pod p cannot be scheduled: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. (a volume is not provisioned: see `kubectl describe pvc`)", false},
		"image pull back-off": {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff", `Back-off pulling image "x:dev"`)}},
			`pod p: container worker: ImagePullBackOff: Back-off pulling image "x:dev"`, false},
		"missing secret": {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("CreateContainerConfigError", `secret "s3" not found`)}},
			`pod p: container worker: CreateContainerConfigError: secret "s3" not found`, false},
		"bad image name": {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("InvalidImageName", "")}},
			"pod p: container worker: InvalidImageName", true},
		"init container": {corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "install-agent", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull"}}}},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("PodInitializing", "")}},
			"pod p: container install-agent: ErrImageNeverPull", true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			problem, fatal := Problem(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: c.status})
			if problem != c.wantProblem || fatal != c.wantFatal {
				t.Errorf("got %q, %v; want %q, %v", problem, fatal, c.wantProblem, c.wantFatal)
			}
		})
	}
}
