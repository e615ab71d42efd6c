package tail

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	apitypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// followedPods is how many finished pods BenchmarkFollowMemory follows: issue 14 asks for run's
// memory while it follows 2,000 completions.
const followedPods = 2000

// BenchmarkFollowMemory measures the heap that following a Job of followedPods finished pods
// holds once every pod has been reported, per pod, against the same pods kept whole (what an
// informer caches without slimPod). The pods are copies of one that the local cluster's API
// server returned (testdata/pod-succeeded.json, managed fields included).
func BenchmarkFollowMemory(b *testing.B) {
	pod := readPod(b, "testdata/pod-succeeded.json")
	pods := make([]*corev1.Pod, followedPods)
	for i := range pods {
		p := pod.DeepCopy()
		p.Name = fmt.Sprintf("job1-%05d", i)
		p.UID = apitypes.UID(fmt.Sprintf("uid-%05d", i))
		pods[i] = p
	}

	whole := heapInUse()
	cached := make([]*corev1.Pod, len(pods))
	for i, p := range pods {
		cached[i] = p.DeepCopy()
	}
	wholePerPod := float64(heapInUse()-whole) / followedPods
	runtime.KeepAlive(cached)

	for b.Loop() {
		completions := int32(followedPods)
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "job1", Namespace: "ns"},
			Spec:       batchv1.JobSpec{Completions: &completions},
			Status: batchv1.JobStatus{Succeeded: followedPods,
				Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}},
		}
		client := fake.NewClientset(j)
		// The fake's list hands out the pods themselves, as a decoded API response would be: new
		// objects that nothing but the informer holds.
		client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
			list := &corev1.PodList{Items: make([]corev1.Pod, len(pods))}
			for i, p := range pods {
				p.DeepCopyInto(&list.Items[i])
			}
			return true, list, nil
		})
		before := heapInUse()
		var held uint64
		reported := 0 // OnPod runs on the informer's one handler goroutine
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s, err := Follow(ctx, client, "ns", "job1", Options{OnPod: func(PodResult) {
			reported++
			if reported == followedPods {
				held = heapInUse() - before
			}
		}})
		cancel()
		if err != nil || len(s.Results) != followedPods {
			b.Fatalf("followed %d pods, want %d: %v", len(s.Results), followedPods, err)
		}
		ratio := float64(held) / followedPods / wholePerPod
		b.ReportMetric(float64(held)/followedPods, "B/pod")
		b.ReportMetric(wholePerPod, "B/pod-whole")
		b.ReportMetric(ratio, "ratio")
		// Measured 0.12 with slimPod and 0.70 without it (2026-12-01).
		if ratio > 0.5 {
			b.Errorf("following holds %.0f bytes per finished pod, %.2fx a whole pod's: the pod cache keeps more than following reads", float64(held)/followedPods, ratio)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func readPod(b *testing.B, path string) *corev1.Pod {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var p corev1.Pod
	if err := json.Unmarshal(data, &p); err != nil {
		b.Fatal(err)
	}
	return &p
}
