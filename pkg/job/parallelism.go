package job

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// ParallelismPick is the parallelism run chose for a user who gave none, and what it came from,
// so that run can say why.
type ParallelismPick struct {
	Parallelism int32
	// Default is the most pods run starts unasked: DefaultParallelism.
	Default int32
	// Items is how many items the Job has to process: its completions in mode one, the queue's
	// ready items in mode drain; -1 when unknown (a client dry run in mode drain reads no queue).
	Items int
	// Room is the tightest bound the namespace's ResourceQuotas put on more pods; nil when none does.
	Room *QuotaRoom
	// QuotasUnread says why the quotas were not read, as a clause for the user ("" when they were).
	QuotasUnread string
}

// QuotaRoom says how many more of the Job's pods one ResourceQuota admits, and by which of its
// resources.
type QuotaRoom struct {
	Quota    string
	Resource corev1.ResourceName
	Pods     int64
}

// countPods is the object-count name of the pods resource; a quota may limit either.
const countPods corev1.ResourceName = "count/pods"

// PickParallelism sizes the Job of s for a user who gave no parallelism: never more pods than
// items, at most DefaultParallelism, and no more than the quotas leave room for, but always at
// least one pod (a Job needs one; when a quota admits none, the API server's refusal is what
// run reports, as it does for a parallelism given). In mode drain an empty queue bounds
// nothing: drain pods wait a while for items, and may be meant to take those a fill running
// beside them publishes.
func PickParallelism(s Spec, items int, quotas []corev1.ResourceQuota) ParallelismPick {
	pick := ParallelismPick{Default: DefaultParallelism, Items: items, Room: QuotaRoomFor(s, quotas)}
	n := int64(DefaultParallelism)
	if items >= 0 && (items > 0 || s.Mode != constants.ModeDrain) {
		n = min(n, int64(items))
	}
	if pick.Room != nil {
		n = min(n, pick.Room.Pods)
	}
	pick.Parallelism = int32(max(n, 1))
	return pick
}

// QuotaRoomFor returns the tightest bound that quotas put on more pods of s, or nil. A quota
// bounds them by its pod count (pods, count/pods), and by each compute resource the pods ask
// for (requests.cpu, requests.memory, limits.cpu, ...: hard minus used, divided by one pod's
// share); a resource the pods do not ask for bounds nothing here (the API server then refuses
// the pods, or a LimitRange fills in a default we cannot see, and run reports either).
func QuotaRoomFor(s Spec, quotas []corev1.ResourceQuota) *QuotaRoom {
	var tightest *QuotaRoom
	for _, q := range quotas {
		if !quotaCountsPods(q, len(s.Requests) == 0 && len(s.Limits) == 0) {
			continue
		}
		hard := q.Status.Hard
		if len(hard) == 0 {
			// A quota the controller has not counted yet: admission holds to its spec.
			hard = q.Spec.Hard
		}
		names := make([]corev1.ResourceName, 0, len(hard))
		for name := range hard {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			share, ok := podShare(s, name)
			if !ok || share <= 0 {
				continue
			}
			limit, used := hard[name], q.Status.Used[name]
			pods := max(limit.MilliValue()-used.MilliValue(), 0) / share
			if tightest == nil || pods < tightest.Pods {
				tightest = &QuotaRoom{Quota: q.Name, Resource: name, Pods: pods}
			}
		}
	}
	return tightest
}

// podShare is what one pod of s takes of a quota's resource, in thousandths, and whether the
// pods take any of it. The init container asks for what the worker asks for, so the pod's
// effective request is the worker's; a request left out defaults to its limit, as the API
// server defaults it.
func podShare(s Spec, name corev1.ResourceName) (int64, bool) {
	var q resource.Quantity
	var ok bool
	switch {
	case name == corev1.ResourcePods || name == countPods:
		return 1000, true
	case strings.HasPrefix(string(name), "limits."):
		q, ok = s.Limits[corev1.ResourceName(strings.TrimPrefix(string(name), "limits."))]
	case strings.HasPrefix(string(name), "requests."):
		q, ok = podRequest(s, corev1.ResourceName(strings.TrimPrefix(string(name), "requests.")))
	case name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage:
		// A quota's bare cpu, memory and ephemeral-storage are its requests.
		q, ok = podRequest(s, name)
	}
	return q.MilliValue(), ok
}

func podRequest(s Spec, name corev1.ResourceName) (resource.Quantity, bool) {
	if q, ok := s.Requests[name]; ok {
		return q, true
	}
	q, ok := s.Limits[name]
	return q, ok
}

// quotaCountsPods tells whether a quota counts the Job's pods, by its scopes. Our pods never set
// activeDeadlineSeconds (the Job's deadline is the Job's), so they are NotTerminating, and
// BestEffort exactly when the Spec asks for no resources. A scope that depends on what admission
// may still add (a default priority class) or on what we never set (cross-namespace affinity) is
// not judged: the quota is then left out, because a bound missed only lets the API server refuse
// the extra pods, which run reports, while a wrong one would shrink the Job without a word.
func quotaCountsPods(q corev1.ResourceQuota, bestEffort bool) bool {
	scopes := slices.Clone(q.Spec.Scopes)
	if q.Spec.ScopeSelector != nil {
		for _, e := range q.Spec.ScopeSelector.MatchExpressions {
			if e.Operator != corev1.ScopeSelectorOpExists {
				return false
			}
			scopes = append(scopes, e.ScopeName)
		}
	}
	for _, scope := range scopes {
		switch scope {
		case corev1.ResourceQuotaScopeNotTerminating:
		case corev1.ResourceQuotaScopeBestEffort:
			if !bestEffort {
				return false
			}
		case corev1.ResourceQuotaScopeNotBestEffort:
			if bestEffort {
				return false
			}
		default:
			return false
		}
	}
	return true
}
