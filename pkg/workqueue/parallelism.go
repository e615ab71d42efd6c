package workqueue

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
)

// pickParallelism sizes a Job whose parallelism the user left to run (job.PickParallelism), from
// the items it has to process and the namespace's ResourceQuotas. Quotas that cannot be read
// leave the default and say so: the quota only sizes the Job, and one that refuses pods is
// still reported when they are refused.
func pickParallelism(ctx context.Context, client kubernetes.Interface, spec job.Spec, state QueueState, dryRun DryRun) job.ParallelismPick {
	items := state.Ready
	if spec.Mode == constants.ModeOne && spec.Completions != nil {
		items = int(*spec.Completions)
	}
	if dryRun == DryRunClient {
		pick := job.PickParallelism(spec, items, nil)
		pick.QuotasUnread = "quotas not read with --dry-run=client"
		return pick
	}
	quotas, err := client.CoreV1().ResourceQuotas(spec.Namespace).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		pick := job.PickParallelism(spec, items, nil)
		pick.QuotasUnread = "quotas not read: you may not list resourcequotas"
		return pick
	case err != nil:
		pick := job.PickParallelism(spec, items, nil)
		pick.QuotasUnread = fmt.Sprintf("quotas not read: %v", err)
		return pick
	}
	return job.PickParallelism(spec, items, quotas.Items)
}
