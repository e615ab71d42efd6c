// Package rabbitmq deploys the RabbitMQ that Kubernetes' work-queue example makes users copy by
// hand: a Service named as in the example (rabbitmq-service), a StatefulSet of one RabbitMQ node or
// a cluster of several, and a Secret with generated credentials that every command of the plugin
// reads. It takes a kubernetes.Interface and knows nothing of cobra.
package rabbitmq

import (
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

const (
	DefaultName    = "rabbitmq"
	DefaultService = "rabbitmq-service"
	// DefaultImage is an exact release: the 4.x whose behaviour the tests establish (Debian's
	// 4.0.5 build of it, as no registry image can be pulled where they run). A floating tag would
	// deploy whatever RabbitMQ is newest, whose rules for retries have changed within 4.x.
	DefaultImage = "rabbitmq:4.0.5"
	// CredentialsSecret holds the broker's username and password; the broker reads them at its
	// first start and the plugin's commands whenever they connect.
	CredentialsSecret = "workqueue-broker"
	UsernameKey       = "username"
	PasswordKey       = "password"
	DefaultUsername   = "workqueue"

	ContainerName = "rabbitmq"
	AMQPPort      = 5672
	amqpPortName  = "amqp"
	dataVolume    = "data"
	dataPath      = "/var/lib/rabbitmq"
	// rabbitmqUser is the rabbitmq user's uid and gid in the official image. The broker runs as
	// it rather than as root (the image's default, whose entrypoint then switches user), as the
	// "restricted" Pod Security Standard demands, and a claimed volume is made writable for it.
	rabbitmqUser int64 = 999
	// memoryShare of the container's memory limit is what RabbitMQ is told it has. It cannot
	// read cgroup limits reliably, and sized from the node's memory its memory alarm would fire
	// only after the container was OOM-killed. RabbitMQ's own cluster operator uses 80%.
	memoryShare = 0.8
)

// DefaultStorageSize is the data volume's size unless told otherwise.
var DefaultStorageSize = resource.MustParse("1Gi")

// Spec says which broker to deploy.
type Spec struct {
	Namespace string
	// Name is the StatefulSet's; its pods are Name-0, Name-1...
	Name string
	// Replicas is the number of RabbitMQ nodes, odd; 0 means 1.
	Replicas int32
	Service  string
	Secret   string
	Image    string
	// ImagePullPolicy may be empty: the cluster's default.
	ImagePullPolicy corev1.PullPolicy
	// StorageSize is the size of the claimed data volume; zero keeps the data in an emptyDir,
	// which lives only as long as the pod.
	StorageSize resource.Quantity
	// StorageClass may be empty: the cluster's default class.
	StorageClass string
	Requests     corev1.ResourceList
	Limits       corev1.ResourceList
	// NetworkPolicy admits AMQP to the broker from the plugin's pods, for a namespace whose
	// NetworkPolicies deny ingress by default.
	NetworkPolicy bool
	// FieldManager applies the objects (constants.FieldManager when empty); ForceConflicts takes
	// over fields another manager set, as kubectl apply --server-side --force-conflicts does.
	FieldManager   string
	ForceConflicts bool
}

// WithDefaults fills in the names and image left empty.
func (s Spec) WithDefaults() Spec {
	if s.Name == "" {
		s.Name = DefaultName
	}
	if s.Service == "" {
		s.Service = DefaultService
	}
	if s.Secret == "" {
		s.Secret = CredentialsSecret
	}
	if s.Image == "" {
		s.Image = DefaultImage
	}
	if s.FieldManager == "" {
		s.FieldManager = constants.FieldManager
	}
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	return s
}

// Validate reports everything wrong with the spec at once.
func (s Spec) Validate() error {
	var problems []string
	for _, name := range []struct{ what, value string }{{"the StatefulSet name", s.Name}, {"the Secret name", s.Secret}} {
		if errs := validation.IsDNS1123Subdomain(name.value); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("%s %q is invalid: %s", name.what, name.value, strings.Join(errs, ", ")))
		}
	}
	// The pod's name, Name-0, is also its hostname: it must be a DNS label.
	if errs := validation.IsDNS1123Label(s.Name + "-0"); len(errs) > 0 && len(s.Name) > 0 {
		problems = append(problems, fmt.Sprintf("the StatefulSet name %q is too long for its pod's hostname: %s", s.Name, strings.Join(errs, ", ")))
	}
	if errs := validation.IsDNS1035Label(s.Service); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("the Service name %q is invalid: %s", s.Service, strings.Join(errs, ", ")))
	}
	if strings.TrimSpace(s.Image) == "" {
		problems = append(problems, "the image is empty")
	}
	if s.StorageSize.Sign() < 0 {
		problems = append(problems, "the storage size is negative")
	}
	switch {
	case s.Replicas < 0 || s.Replicas%2 == 0 && s.Replicas != 0:
		problems = append(problems, fmt.Sprintf("%d replicas: a RabbitMQ cluster runs while a majority of its nodes does, so give it an odd number (1, 3, 5)", s.Replicas))
	case s.Replicas > 1 && s.StorageSize.IsZero():
		// A node that comes back without its data cannot rejoin under its old name.
		problems = append(problems, fmt.Sprintf("%d replicas need a data volume each: a cluster node restarted without its data cannot rejoin the cluster; drop --ephemeral", s.Replicas))
	}
	for name, limit := range s.Limits {
		if request, ok := s.Requests[name]; ok && request.Cmp(limit) > 0 {
			problems = append(problems, fmt.Sprintf("the %s request %s is above its limit %s", name, request.String(), limit.String()))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Objects are what Build makes, ready for server-side apply.
type Objects struct {
	Service *corev1ac.ServiceApplyConfiguration
	// NodesService, ClusterConfig and Budget are the cluster's, also made for a single node.
	NodesService  *corev1ac.ServiceApplyConfiguration
	ClusterConfig *corev1ac.ConfigMapApplyConfiguration
	Budget        *policyv1ac.PodDisruptionBudgetApplyConfiguration
	StatefulSet   *appsv1ac.StatefulSetApplyConfiguration
	// NetworkPolicy is nil unless the Spec asks for it.
	NetworkPolicy *networkingv1ac.NetworkPolicyApplyConfiguration
}

// NetworkPolicyName is the broker's NetworkPolicy.
func NetworkPolicyName(name string) string { return name + "-amqp" }

// networkPolicy admits AMQP to the broker's pods from the pods of run's Jobs, which all carry the
// plugin's managed-by label; a port-forward reaches the pod inside it and needs no rule.
func networkPolicy(s Spec) *networkingv1ac.NetworkPolicyApplyConfiguration {
	return networkingv1ac.NetworkPolicy(NetworkPolicyName(s.Name), s.Namespace).
		WithLabels(Labels(s.Name)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(selector(s.Name))).
			WithPolicyTypes(networkingv1.PolicyTypeIngress).
			WithIngress(networkingv1ac.NetworkPolicyIngressRule().
				WithFrom(networkingv1ac.NetworkPolicyPeer().
					WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{constants.LabelManagedBy: constants.ManagedBy}))).
				WithPorts(networkingv1ac.NetworkPolicyPort().
					WithProtocol(corev1.ProtocolTCP).
					WithPort(intstr.FromString(amqpPortName)))))
}

// Labels returns the labels of the broker's objects and pods.
func Labels(name string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name": "rabbitmq",
		labelInstance:            name,
		constants.LabelManagedBy: constants.ManagedBy,
	}
}

// labelInstance names the broker an object belongs to.
const labelInstance = "app.kubernetes.io/instance"

// selector picks the broker's pods; a StatefulSet's selector can never change, so it holds
// only labels that never will.
func selector(name string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "rabbitmq", labelInstance: name}
}

// DataClaimName is the PersistentVolumeClaim the StatefulSet makes for its pod of that ordinal.
func DataClaimName(name string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", dataVolume, name, ordinal)
}

// Build makes the Service and StatefulSet for s, which must have its defaults.
func Build(s Spec) (Objects, error) {
	if err := s.Validate(); err != nil {
		return Objects{}, err
	}
	labels := Labels(s.Name)
	service := corev1ac.Service(s.Service, s.Namespace).
		WithLabels(labels).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(selector(s.Name)).
			WithPorts(corev1ac.ServicePort().
				WithName(amqpPortName).
				WithPort(AMQPPort).
				WithTargetPort(intstr.FromString(amqpPortName))))

	container := corev1ac.Container().
		WithName(ContainerName).
		WithImage(s.Image).
		WithPorts(corev1ac.ContainerPort().WithName(amqpPortName).WithContainerPort(AMQPPort),
			corev1ac.ContainerPort().WithName("management").WithContainerPort(ManagementPort)).
		WithEnv(append(clusterEnv(s), env(s)...)...).
		// Ready means accepting AMQP connections; RabbitMQ opens its listener last.
		WithReadinessProbe(corev1ac.Probe().
			WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromString(amqpPortName))).
			WithInitialDelaySeconds(5).
			WithPeriodSeconds(5)).
		// A node whose boot hangs is restarted, which frees it: Debian's RabbitMQ 3.10.8 on
		// Erlang 25.1 and later can hang for good when it rejoins its cluster (rabbitmq-server
		// issue 6034, fixed in later 3.10 releases), and a second boot joins at once. The bound is
		// RabbitMQ's own wait for its peers at boot (10 × 30 s), after which it stops by itself.
		WithStartupProbe(corev1ac.Probe().
			WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromString(amqpPortName))).
			WithPeriodSeconds(startupProbePeriod).
			WithFailureThreshold(startupProbeFailures)).
		WithVolumeMounts(corev1ac.VolumeMount().WithName(dataVolume).WithMountPath(dataPath), configMount()).
		WithSecurityContext(containerSecurity())
	if s.ImagePullPolicy != "" {
		container.WithImagePullPolicy(s.ImagePullPolicy)
	}
	if len(s.Requests) > 0 || len(s.Limits) > 0 {
		resources := corev1ac.ResourceRequirements()
		if len(s.Requests) > 0 {
			resources.WithRequests(s.Requests)
		}
		if len(s.Limits) > 0 {
			resources.WithLimits(s.Limits)
		}
		container.WithResources(resources)
	}

	pod := corev1ac.PodSpec().
		WithInitContainers(cookieInit(s, containerSecurity())).
		WithContainers(container).
		WithVolumes(clusterVolumes(s)...).
		WithAffinity(spreadNodes(s)).
		WithSecurityContext(corev1ac.PodSecurityContext().
			WithRunAsUser(rabbitmqUser).
			WithRunAsGroup(rabbitmqUser).
			WithRunAsNonRoot(true).
			WithFSGroup(rabbitmqUser).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		// Time for the broker to write its queues' state before it is killed.
		WithTerminationGracePeriodSeconds(60)
	statefulSet := appsv1ac.StatefulSetSpec().
		WithReplicas(s.Replicas).
		WithServiceName(NodesService(s.Name)).
		// A node that was not the last to stop waits for its peers before it is ready: started
		// one after another, a whole cluster restarting would wait for itself.
		WithPodManagementPolicy(appsv1.ParallelPodManagement).
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector(s.Name)))
	if s.StorageSize.IsZero() {
		pod.WithVolumes(corev1ac.Volume().WithName(dataVolume).WithEmptyDir(corev1ac.EmptyDirVolumeSource()))
	} else {
		claim := corev1ac.PersistentVolumeClaimSpec().
			WithAccessModes(corev1.ReadWriteOnce).
			WithResources(corev1ac.VolumeResourceRequirements().
				WithRequests(corev1.ResourceList{corev1.ResourceStorage: s.StorageSize}))
		if s.StorageClass != "" {
			claim.WithStorageClassName(s.StorageClass)
		}
		statefulSet.WithVolumeClaimTemplates(corev1ac.PersistentVolumeClaim(dataVolume, "").
			WithLabels(labels).
			WithSpec(claim))
	}
	statefulSet.WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(pod))

	objects := Objects{
		Service:       service,
		NodesService:  nodesService(s),
		ClusterConfig: clusterConfig(s),
		Budget:        disruptionBudget(s),
		StatefulSet:   appsv1ac.StatefulSet(s.Name, s.Namespace).WithLabels(labels).WithSpec(statefulSet),
	}
	if s.NetworkPolicy {
		objects.NetworkPolicy = networkPolicy(s)
	}
	return objects, nil
}

// containerSecurity is what the "restricted" Pod Security Standard asks of every container.
func containerSecurity() *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))
}

// env gives RabbitMQ its first user from the Secret (RabbitMQ 3.9 and later read these
// variables themselves, so any image of it works), its plugins and, under a memory limit, its
// memory.
func env(s Spec) []*corev1ac.EnvVarApplyConfiguration {
	fromSecret := func(name, key string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).WithValueFrom(corev1ac.EnvVarSource().
			WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(s.Secret).WithKey(key)))
	}
	vars := []*corev1ac.EnvVarApplyConfiguration{
		fromSecret("RABBITMQ_DEFAULT_USER", UsernameKey),
		fromSecret("RABBITMQ_DEFAULT_PASS", PasswordKey),
		// The management API counts the items in flight, which AMQP cannot (list, status);
		// prometheus is what the official image enables without being told. RabbitMQ writes the
		// list to its plugins file at boot, so that file lives on the data volume: /etc/rabbitmq
		// may not be the broker user's to write.
		corev1ac.EnvVar().WithName("RABBITMQ_ENABLED_PLUGINS").WithValue("rabbitmq_management,rabbitmq_prometheus"),
		corev1ac.EnvVar().WithName("RABBITMQ_ENABLED_PLUGINS_FILE").WithValue(dataPath + "/enabled_plugins"),
	}
	if limit, ok := s.Limits[corev1.ResourceMemory]; ok {
		available := int64(float64(limit.Value()) * memoryShare)
		vars = append(vars, corev1ac.EnvVar().
			WithName("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS").
			WithValue(fmt.Sprintf("-rabbit total_memory_available_override_value %d", available)))
	}
	return vars
}
