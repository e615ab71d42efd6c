package job

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// quota is a ResourceQuota as the quota controller shows it, with its hard limits and their use.
func quota(name string, hard, used corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) corev1.ResourceQuota {
	return corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:   corev1.ResourceQuotaSpec{Hard: hard, Scopes: scopes},
		Status: corev1.ResourceQuotaStatus{Hard: hard, Used: used}}
}

// list is a ResourceList from name, quantity pairs.
func list(pairs ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(pairs); i += 2 {
		l[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return l
}

func TestPickParallelism(t *testing.T) {
	one := Spec{Mode: constants.ModeOne}
	drain := Spec{Mode: constants.ModeDrain}
	small := Spec{Mode: constants.ModeOne, Requests: list("cpu", "500m", "memory", "256Mi")}
	limitsOnly := Spec{Mode: constants.ModeOne, Limits: list("cpu", "1", "memory", "1Gi")}
	cases := []struct {
		name   string
		spec   Spec
		items  int
		quotas []corev1.ResourceQuota
		want   int32
		room   *QuotaRoom
	}{
		{"many items: the default", one, 120, nil, DefaultParallelism, nil},
		{"fewer items than the default", one, 1, nil, 1, nil},
		{"no items in mode one (--allow-empty): still one pod", one, 0, nil, 1, nil},
		{"items unknown: the default", one, -1, nil, DefaultParallelism, nil},
		{"an empty queue in mode drain bounds nothing", drain, 0, nil, DefaultParallelism, nil},
		{"one item in mode drain", drain, 1, nil, 1, nil},
		{"a pods quota with room for more than the default", one, 120,
			[]corev1.ResourceQuota{quota("q", list("pods", "10"), list("pods", "4"))}, DefaultParallelism,
			&QuotaRoom{"q", "pods", 6}},
		{"a pods quota with room for one", one, 120,
			[]corev1.ResourceQuota{quota("q", list("count/pods", "5"), list("count/pods", "4"))}, 1,
			&QuotaRoom{"q", "count/pods", 1}},
		{"a full quota: one pod, for the API server to refuse", one, 120,
			[]corev1.ResourceQuota{quota("full", list("pods", "1"), list("pods", "3"))}, 1,
			&QuotaRoom{"full", "pods", 0}},
		{"cpu requests bound it", small, 120,
			[]corev1.ResourceQuota{quota("compute", list("requests.cpu", "2", "requests.memory", "8Gi"), list("requests.cpu", "1500m", "requests.memory", "1Gi"))}, 1,
			&QuotaRoom{"compute", "requests.cpu", 1}},
		{"the bare names are requests", small, 120,
			[]corev1.ResourceQuota{quota("compute", list("memory", "1Gi"), list("memory", "256Mi"))}, DefaultParallelism,
			&QuotaRoom{"compute", "memory", 3}},
		{"a request left out counts as its limit", limitsOnly, 120,
			[]corev1.ResourceQuota{quota("compute", list("requests.memory", "3Gi", "limits.cpu", "10"), nil)}, DefaultParallelism,
			&QuotaRoom{"compute", "requests.memory", 3}},
		{"requests the pods do not make bound nothing", one, 120,
			[]corev1.ResourceQuota{quota("compute", list("requests.cpu", "1"), list("requests.cpu", "900m"))}, DefaultParallelism, nil},
		{"the tightest of several quotas", small, 120,
			[]corev1.ResourceQuota{
				quota("pods", list("pods", "20"), list("pods", "2")),
				quota("cpu", list("requests.cpu", "4"), list("requests.cpu", "2")),
			}, DefaultParallelism, &QuotaRoom{"cpu", "requests.cpu", 4}},
		{"a quota not yet counted holds to its spec", one, 120,
			[]corev1.ResourceQuota{{ObjectMeta: metav1.ObjectMeta{Name: "new"}, Spec: corev1.ResourceQuotaSpec{Hard: list("pods", "1")}}}, 1,
			&QuotaRoom{"new", "pods", 1}},
		{"a Terminating quota does not count our pods", one, 120,
			[]corev1.ResourceQuota{quota("t", list("pods", "1"), nil, corev1.ResourceQuotaScopeTerminating)}, DefaultParallelism, nil},
		{"a NotTerminating quota does", one, 120,
			[]corev1.ResourceQuota{quota("nt", list("pods", "1"), nil, corev1.ResourceQuotaScopeNotTerminating)}, 1,
			&QuotaRoom{"nt", "pods", 1}},
		{"a BestEffort quota counts pods without resources", one, 120,
			[]corev1.ResourceQuota{quota("be", list("pods", "1"), nil, corev1.ResourceQuotaScopeBestEffort)}, 1,
			&QuotaRoom{"be", "pods", 1}},
		{"but not pods with requests", small, 120,
			[]corev1.ResourceQuota{quota("be", list("pods", "1"), nil, corev1.ResourceQuotaScopeBestEffort)}, DefaultParallelism, nil},
		{"a NotBestEffort quota counts pods with requests", small, 120,
			[]corev1.ResourceQuota{quota("nbe", list("pods", "1"), nil, corev1.ResourceQuotaScopeNotBestEffort)}, 1,
			&QuotaRoom{"nbe", "pods", 1}},
		{"a priority class scope is not judged", one, 120,
			[]corev1.ResourceQuota{{ObjectMeta: metav1.ObjectMeta{Name: "prio"}, Spec: corev1.ResourceQuotaSpec{Hard: list("pods", "1"),
				ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
					{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}}}},
			DefaultParallelism, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := PickParallelism(tc.spec, tc.items, tc.quotas)
			if got.Parallelism != tc.want || got.Default != DefaultParallelism || got.Items != tc.items || !reflect.DeepEqual(got.Room, tc.room) {
				t.Fatalf("got %+v (room %+v), want parallelism %d, room %+v", got, got.Room, tc.want, tc.room)
			}
			if err := (Spec{Name: "j", Queue: "q", Image: "i", Mode: constants.ModeDrain, Parallelism: got.Parallelism,
				BrokerSecret: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}).Validate(); err != nil {
				t.Fatalf("the pick makes no valid Job: %v", err)
			}
		})
	}
}
