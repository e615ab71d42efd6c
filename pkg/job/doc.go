// Package job turns a plain Spec into the batch/v1 Job that `kubectl workqueue run` applies with
// server-side apply (field manager constants.FieldManager). Build is a pure function: it reads nothing but
// its argument and talks to no API server, so the Job can be printed for --dry-run=client and
// pinned by golden files.
//
// # Shape of the Job
//
// Metadata, on the Job and on its pod template:
//
//	labels:
//	  app.kubernetes.io/managed-by: kubectl-workqueue
//	  workqueue.kubectl.io/queue: <queue, or a readable prefix plus a hash when the name is not a valid label value>
//	  workqueue.kubectl.io/job: <job name>
//	  <Spec.Labels>
//	annotations (Job only):
//	  workqueue.kubectl.io/queue: <the full queue name, always>
//	  workqueue.kubectl.io/mode: one | drain
//
// Job spec:
//
//	completions:             Spec.Completions in mode one (the queue depth); unset in mode drain
//	parallelism:             Spec.Parallelism (default 2; run picks it with PickParallelism)
//	backoffLimit:            completions×MaxAttempts (one) or parallelism×MaxAttempts (drain), at least 6
//	podReplacementPolicy:    Failed (a terminating pod may still be finishing an item)
//	ttlSecondsAfterFinished: Spec.TTLAfterFinished (default 86400)
//	activeDeadlineSeconds:   Spec.ActiveDeadline, when set
//	podFailurePolicy:        see below
//	template.spec.restartPolicy: Never (a podFailurePolicy requires it, and a failed item must
//	                             fail the pod so the broker, not the kubelet, retries it)
//
// The podFailurePolicy, first match wins. With the agent (Spec.Command set) it matches the agent's
// exit codes from package outcome on the container "worker":
//
//	ExitMisconfigured (5)         → FailJob  (retrying cannot help)
//	ExitInterrupted (4),
//	ExitBrokerLost (8)            → Ignore   (the item was requeued, or the broker was lost
//	                                          after the pod had worked with it and did not come
//	                                          back within the agent's --broker-outage; the pod is
//	                                          replaced)
//	condition DisruptionTarget    → Ignore   (eviction, preemption, node drain)
//	ExitItemFailed (3),
//	ExitBrokerUnreachable (6),
//	ExitCannotStart (7)           → Count    (against backoffLimit)
//
// Ignored pods are replaced without limit. For ExitBrokerLost the agent bounds it: the replacement
// must reach the broker within its connect budget (30 s) or exit 6, which counts, so a broker that
// stays away still fails the Job after backoffLimit pods; a broker that keeps coming back and
// going away costs a full --broker-outage per pod, and activeDeadlineSeconds (run's --timeout)
// bounds the whole.
//
// Without the agent the image's own exit codes mean nothing to us, so only the DisruptionTarget
// rule is present.
//
// # The worker container
//
// The container is always named "worker". Its environment starts with BROKER_URL, taken from the
// Secret key in Spec.BrokerSecret through a secretKeyRef (the URL holds a password, so it never
// appears in the Job), and QUEUE, followed by Spec.Env. It carries Spec.Requests/Limits,
// Spec.ImagePullPolicy when set, and the pod runs as Spec.ServiceAccount when set.
//
// Without a command, the image's entrypoint runs unchanged: exactly the contract of the
// "Coarse Parallel Processing Using a Work Queue" example (BROKER_URL and QUEUE in the
// environment). terminationMessagePolicy is FallbackToLogsOnError so a failure still shows a reason.
//
// With a command, the agent is injected so the user's image needs nothing installed:
//
//	volumes:        emptyDir "workqueue-agent"
//	initContainers: "install-agent", image Spec.AgentImage,
//	                command [/workqueue-agent, copy-self, /workqueue/workqueue-agent],
//	                mounts the volume read-write at /workqueue
//	worker:         mounts the volume read-only at /workqueue and runs
//	                [/workqueue/workqueue-agent, --mode=<mode>, --timeout=<ItemTimeout>?, --idle=<Idle>?, ..., --, <command>...]
//	                terminationMessagePolicy File (the agent writes an outcome.Outcome there)
//	terminationGracePeriodSeconds: 30 (the agent waits up to 25 s for the command after SIGTERM)
//
// With Spec.AgentInImage the worker's image already holds the agent at that path: no volume, no
// init container, and the worker runs [<AgentInImage>, --mode=<mode>, ..., --, <command>...]. A
// pod then starts one container, as the example's do, which matters when a pod runs one item.
package job
