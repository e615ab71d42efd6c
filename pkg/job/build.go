package job

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/labels"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

var reservedLabelKeys = []string{constants.LabelManagedBy, constants.LabelQueue, constants.LabelJob}

// Names inside the pod template besides the worker container (constants.ContainerName).
const (
	InitContainerName = "install-agent"
	AgentVolumeName   = "workqueue-agent"
	AgentMountPath    = "/workqueue"
	// AgentPath is where the worker container finds the agent the init container copied.
	AgentPath = AgentMountPath + "/workqueue-agent"
	// agentPathInImage is where the agent image keeps its binary.
	agentPathInImage = "/workqueue-agent"
	// agentGracePeriodSeconds leaves the agent its 25 s after SIGTERM to let the command finish
	// and requeue, plus time to write its outcome and exit.
	agentGracePeriodSeconds int64 = 30
)

// Finished tells whether a Job completed or failed: it runs no more pods.
func Finished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Selector returns the label selector of the pods of the Job named name.
func Selector(name string) string {
	return labels.SelectorFromSet(labels.Set{constants.LabelManagedBy: constants.ManagedBy, constants.LabelJob: name}).String()
}

// QueueLabelValue returns the value of the queue label for a queue: the name itself when it is a
// valid label value, otherwise a readable prefix and a hash of the full name (AMQP queue names
// may hold ':' or '/', and be up to 255 bytes long, where a label value allows 63).
func QueueLabelValue(queue string) string {
	if len(content.IsLabelValue(queue)) == 0 {
		return queue
	}
	sum := sha256.Sum256([]byte(queue))
	hash := hex.EncodeToString(sum[:])[:10]

	var prefix strings.Builder
	for _, r := range queue {
		if prefix.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			prefix.WriteRune(r)
		default:
			prefix.WriteByte('-')
		}
	}
	// A label value must start with an alphanumeric character; the hash ends with one.
	readable := strings.TrimLeft(strings.TrimRight(prefix.String(), "-_."), "-_.")
	if readable == "" {
		return "q-" + hash
	}
	return readable + "-" + hash
}

// Build validates s, applies its defaults and returns the Job to apply. It talks to no server.
func Build(s Spec) (*batchv1ac.JobApplyConfiguration, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.withDefaults()
	withAgent := len(s.Command) > 0

	jobLabels := map[string]string{}
	for k, v := range s.Labels {
		jobLabels[k] = v
	}
	jobLabels[constants.LabelManagedBy] = constants.ManagedBy
	jobLabels[constants.LabelQueue] = QueueLabelValue(s.Queue)
	jobLabels[constants.LabelJob] = s.Name

	spec := batchv1ac.JobSpec().
		WithParallelism(s.Parallelism).
		WithBackoffLimit(backoffLimit(s)).
		WithPodReplacementPolicy(batchv1.Failed).
		WithTTLSecondsAfterFinished(*s.TTLAfterFinished).
		WithPodFailurePolicy(podFailurePolicy(withAgent)).
		WithTemplate(corev1ac.PodTemplateSpec().
			WithLabels(jobLabels).
			WithSpec(podSpec(s, withAgent)))
	if s.Mode == constants.ModeOne {
		spec.WithCompletions(*s.Completions)
	}
	if s.ActiveDeadline > 0 {
		spec.WithActiveDeadlineSeconds(ceilSeconds(s.ActiveDeadline))
	}

	job := &batchv1ac.JobApplyConfiguration{}
	job.WithAPIVersion("batch/v1").WithKind("Job").WithName(s.Name)
	if s.Namespace != "" {
		job.WithNamespace(s.Namespace)
	}
	annotations := map[string]string{constants.AnnotationQueue: s.Queue, constants.AnnotationMode: string(s.Mode)}
	if s.DeadLettersBefore != nil {
		annotations[constants.AnnotationDeadLettersBefore] = strconv.Itoa(*s.DeadLettersBefore)
	}
	job.WithLabels(jobLabels).WithAnnotations(annotations).WithSpec(spec)
	return job, nil
}

// backoffLimit lets every item fail its pod as often as the broker delivers it (one mode), or
// every pod slot do so (drain mode), before the Job gives up: the broker's delivery limit, not
// the Job, is what decides that an item is poison.
func backoffLimit(s Spec) int32 {
	slots := s.Parallelism
	if s.Mode == constants.ModeOne {
		slots = *s.Completions
	}
	limit := int64(slots) * int64(s.MaxAttempts)
	return int32(min(max(limit, int64(minBackoffLimit)), math.MaxInt32))
}

func podFailurePolicy(withAgent bool) *batchv1ac.PodFailurePolicyApplyConfiguration {
	onExitCodes := func(action batchv1.PodFailurePolicyAction, codes ...int32) *batchv1ac.PodFailurePolicyRuleApplyConfiguration {
		return batchv1ac.PodFailurePolicyRule().
			WithAction(action).
			WithOnExitCodes(batchv1ac.PodFailurePolicyOnExitCodesRequirement().
				WithContainerName(constants.ContainerName).
				WithOperator(batchv1.PodFailurePolicyOnExitCodesOpIn).
				WithValues(codes...)) // the API wants them sorted: callers pass them so
	}
	disruption := batchv1ac.PodFailurePolicyRule().
		WithAction(batchv1.PodFailurePolicyActionIgnore).
		WithOnPodConditions(batchv1ac.PodFailurePolicyOnPodConditionsPattern().
			WithType(corev1.DisruptionTarget).
			WithStatus(corev1.ConditionTrue))

	// An image's own entrypoint gives its exit codes no meaning we know.
	if !withAgent {
		return batchv1ac.PodFailurePolicy().WithRules(disruption)
	}
	// A pod that lost the broker after working with it is replaced without counting: a broker
	// restart is no fault of the Job's. The agent bounds it (see outcome.ExitBrokerLost): its
	// replacement must reach the broker within the connect budget, or exit 6, which counts.
	return batchv1ac.PodFailurePolicy().WithRules(
		onExitCodes(batchv1.PodFailurePolicyActionFailJob, outcome.ExitMisconfigured),
		onExitCodes(batchv1.PodFailurePolicyActionIgnore, outcome.ExitInterrupted, outcome.ExitBrokerLost),
		disruption,
		onExitCodes(batchv1.PodFailurePolicyActionCount, outcome.ExitItemFailed, outcome.ExitBrokerUnreachable, outcome.ExitCannotStart),
	)
}

func podSpec(s Spec, withAgent bool) *corev1ac.PodSpecApplyConfiguration {
	worker := corev1ac.Container().
		WithName(constants.ContainerName).
		WithImage(s.Image).
		WithEnv(workerEnv(s)...)
	if r := resources(s); r != nil {
		worker.WithResources(r)
	}
	if s.ImagePullPolicy != "" {
		worker.WithImagePullPolicy(s.ImagePullPolicy)
	}

	worker.WithSecurityContext(restrictedContainer())
	podSecurity := corev1ac.PodSecurityContext().
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if s.RunAsUser != nil {
		podSecurity.WithRunAsUser(*s.RunAsUser)
	}
	if s.RunAsUser != nil || s.RunAsNonRoot {
		podSecurity.WithRunAsNonRoot(true)
	}
	pod := corev1ac.PodSpec().WithRestartPolicy(corev1.RestartPolicyNever).WithSecurityContext(podSecurity)
	if s.ServiceAccount != "" {
		pod.WithServiceAccountName(s.ServiceAccount)
	}
	if !withAgent {
		worker.WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError)
		return pod.WithContainers(worker)
	}

	if s.AgentInImage != "" {
		worker.
			WithCommand(agentCommand(s)...).
			WithTerminationMessagePolicy(corev1.TerminationMessageReadFile)
		return pod.
			WithTerminationGracePeriodSeconds(agentGracePeriodSeconds).
			WithContainers(worker)
	}

	install := corev1ac.Container().
		WithName(InitContainerName).
		WithImage(s.AgentImage).
		WithCommand(agentPathInImage, "copy-self", AgentPath).
		WithVolumeMounts(corev1ac.VolumeMount().WithName(AgentVolumeName).WithMountPath(AgentMountPath)).
		// It only copies one file into the volume: it needs no root, no capability and no
		// writable root filesystem, whatever the namespace allows.
		WithSecurityContext(restrictedContainer().
			WithRunAsUser(AgentUID).
			WithRunAsGroup(AgentUID).
			WithRunAsNonRoot(true).
			WithReadOnlyRootFilesystem(true))
	// The same resources as the worker: a namespace whose quota demands limits on every container
	// then admits the pod, and the pod's effective request does not grow (init containers run
	// before the worker, so the scheduler takes the larger of the two, not the sum).
	if r := resources(s); r != nil {
		install.WithResources(r)
	}
	if s.ImagePullPolicy != "" {
		install.WithImagePullPolicy(s.ImagePullPolicy)
	}

	worker.
		WithCommand(agentCommand(s)...).
		WithVolumeMounts(corev1ac.VolumeMount().WithName(AgentVolumeName).WithMountPath(AgentMountPath).WithReadOnly(true)).
		WithTerminationMessagePolicy(corev1.TerminationMessageReadFile)

	return pod.
		WithTerminationGracePeriodSeconds(agentGracePeriodSeconds).
		WithVolumes(corev1ac.Volume().WithName(AgentVolumeName).WithEmptyDir(corev1ac.EmptyDirVolumeSource())).
		WithInitContainers(install).
		WithContainers(worker)
}

// AgentUID is the non-root user the agent's init container runs as (the agent image's own).
const AgentUID int64 = 65532

// restrictedContainer is what the "restricted" Pod Security Standard asks of every container and
// that takes nothing from a worker: no privilege escalation, no added capabilities. A root process
// keeps its uid (run-as-user changes that) but not the capabilities beyond it.
func restrictedContainer() *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))
}

func agentCommand(s Spec) []string {
	command := []string{cmp.Or(s.AgentInImage, AgentPath), "--mode=" + string(s.Mode)}
	if s.ItemTimeout > 0 {
		command = append(command, "--timeout="+s.ItemTimeout.String())
	}
	if s.BrokerOutage > 0 {
		command = append(command, "--broker-outage="+s.BrokerOutage.String())
	}
	if s.Idle > 0 {
		command = append(command, "--idle="+s.Idle.String())
	}
	if s.Mode == constants.ModeDrain && s.MaxAttempts == 1 {
		// So that no item is held unstarted, which could spend its only attempt.
		command = append(command, "--max-attempts=1")
	}
	if s.ResultSize > 0 {
		command = append(command, "--results="+s.Queue+constants.ResultsSuffix, "--result-size="+strconv.Itoa(s.ResultSize))
	}
	command = append(command, "--")
	return append(command, s.Command...)
}

func workerEnv(s Spec) []*corev1ac.EnvVarApplyConfiguration {
	env := []*corev1ac.EnvVarApplyConfiguration{
		corev1ac.EnvVar().WithName(constants.EnvBrokerURL).WithValueFrom(corev1ac.EnvVarSource().
			WithSecretKeyRef(corev1ac.SecretKeySelector().
				WithName(s.BrokerSecret.Name).
				WithKey(s.BrokerSecret.Key))),
		corev1ac.EnvVar().WithName(constants.EnvQueue).WithValue(s.Queue),
	}
	for _, e := range s.Env {
		env = append(env, envVar(e))
	}
	return env
}

func envVar(e corev1.EnvVar) *corev1ac.EnvVarApplyConfiguration {
	out := corev1ac.EnvVar().WithName(e.Name)
	if e.ValueFrom == nil {
		return out.WithValue(e.Value)
	}
	from := corev1ac.EnvVarSource()
	if ref := e.ValueFrom.SecretKeyRef; ref != nil {
		sel := corev1ac.SecretKeySelector().WithName(ref.Name).WithKey(ref.Key)
		if ref.Optional != nil {
			sel.WithOptional(*ref.Optional)
		}
		from.WithSecretKeyRef(sel)
	}
	if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
		sel := corev1ac.ConfigMapKeySelector().WithName(ref.Name).WithKey(ref.Key)
		if ref.Optional != nil {
			sel.WithOptional(*ref.Optional)
		}
		from.WithConfigMapKeyRef(sel)
	}
	if ref := e.ValueFrom.FieldRef; ref != nil {
		sel := corev1ac.ObjectFieldSelector().WithFieldPath(ref.FieldPath)
		if ref.APIVersion != "" {
			sel.WithAPIVersion(ref.APIVersion)
		}
		from.WithFieldRef(sel)
	}
	if ref := e.ValueFrom.ResourceFieldRef; ref != nil {
		sel := corev1ac.ResourceFieldSelector().WithResource(ref.Resource)
		if ref.ContainerName != "" {
			sel.WithContainerName(ref.ContainerName)
		}
		if !ref.Divisor.IsZero() {
			sel.WithDivisor(ref.Divisor)
		}
		from.WithResourceFieldRef(sel)
	}
	return out.WithValueFrom(from)
}

// resources copies the caller's lists so the returned Job shares no maps with the Spec.
func resources(s Spec) *corev1ac.ResourceRequirementsApplyConfiguration {
	if len(s.Requests) == 0 && len(s.Limits) == 0 {
		return nil
	}
	r := corev1ac.ResourceRequirements()
	if len(s.Requests) > 0 {
		r.WithRequests(s.Requests.DeepCopy())
	}
	if len(s.Limits) > 0 {
		r.WithLimits(s.Limits.DeepCopy())
	}
	return r
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// ConsumesItself tells a Job of one item per pod whose image consumes the queue itself (made
// without a command, so without the agent): such pods wait on an empty queue instead of exiting.
func ConsumesItself(j *batchv1.Job) bool {
	if j.Spec.Completions == nil {
		return false
	}
	for _, c := range j.Spec.Template.Spec.Containers {
		if c.Name == constants.ContainerName {
			return len(c.Command) == 0
		}
	}
	return false
}
