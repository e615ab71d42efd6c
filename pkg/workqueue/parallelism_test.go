package workqueue

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

func podsQuota(hard, used string) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "pods", Namespace: "ns"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse(hard)}},
		Status: corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse(hard)},
			Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse(used)}}}
}

func TestLaunchPicksTheParallelism(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		client   func() *fake.Clientset
		req      func() LaunchRequest
		want     int32
		items    int
		unread   string
		roomPods int64 // -1: no room reported
	}{
		{"the default, with items to spare", func() *fake.Clientset { return fake.NewClientset() },
			func() LaunchRequest { return launchRequest(120) }, 2, 120, "", -1},
		{"no more pods than items", func() *fake.Clientset { return fake.NewClientset() },
			func() LaunchRequest { return launchRequest(1) }, 1, 1, "", -1},
		{"--completions counts, not the queue", func() *fake.Clientset { return fake.NewClientset() },
			func() LaunchRequest { req := launchRequest(120); req.Completions = 1; return req }, 1, 1, "", -1},
		{"the namespace's pods quota", func() *fake.Clientset { return fake.NewClientset(podsQuota("4", "3")) },
			func() LaunchRequest { return launchRequest(120) }, 1, 120, "", 1},
		{"a drain Job on an empty queue keeps the default", func() *fake.Clientset { return fake.NewClientset(podsQuota("10", "4")) },
			func() LaunchRequest {
				req := launchRequest(0)
				req.Spec.Mode, req.Completions = constants.ModeDrain, -1
				return req
			}, 2, 0, "", 6},
		{"quotas one may not read leave the default", func() *fake.Clientset {
			client := fake.NewClientset(podsQuota("4", "3"))
			client.PrependReactor("list", "resourcequotas", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "resourcequotas"}, "", errors.New("RBAC says no"))
			})
			return client
		}, func() LaunchRequest { return launchRequest(120) }, 2, 120, "quotas not read: you may not list resourcequotas", -1},
		{"quotas that fail to come leave the default", func() *fake.Clientset {
			client := fake.NewClientset()
			client.PrependReactor("list", "resourcequotas", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, errors.New("the server is busy")
			})
			return client
		}, func() LaunchRequest { return launchRequest(120) }, 2, 120, "quotas not read: the server is busy", -1},
		{"a client dry run reads no quota", func() *fake.Clientset { return fake.NewClientset(podsQuota("4", "3")) },
			func() LaunchRequest { req := launchRequest(120); req.DryRun = DryRunClient; return req },
			2, 120, "quotas not read with --dry-run=client", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			launched, err := Launch(ctx, tc.client(), tc.req())
			if err != nil {
				t.Fatal(err)
			}
			p := launched.Picked
			if p == nil || p.Parallelism != tc.want || launched.Spec.Parallelism != tc.want || p.Items != tc.items || p.QuotasUnread != tc.unread {
				t.Fatalf("picked %+v, spec parallelism %d", p, launched.Spec.Parallelism)
			}
			if (tc.roomPods < 0) != (p.Room == nil) || (p.Room != nil && p.Room.Pods != tc.roomPods) {
				t.Fatalf("room %+v, want %d pods", p.Room, tc.roomPods)
			}
			if launched.Apply != nil && *launched.Apply.Spec.Parallelism != tc.want {
				t.Fatalf("the Job's parallelism is %d", *launched.Apply.Spec.Parallelism)
			}
		})
	}

	t.Run("a parallelism given is kept, and no quota read for it", func(t *testing.T) {
		client := fake.NewClientset(podsQuota("4", "3"))
		req := launchRequest(120)
		req.Spec.Parallelism = 7
		launched, err := Launch(ctx, client, req)
		if err != nil || launched.Picked != nil || launched.Spec.Parallelism != 7 {
			t.Fatalf("%v %+v", err, launched)
		}
		for _, action := range client.Actions() {
			if action.GetResource().Resource == "resourcequotas" {
				t.Fatal("read the quotas for a parallelism given")
			}
		}
	})
}
