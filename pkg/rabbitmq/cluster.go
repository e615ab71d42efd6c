package rabbitmq

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
)

// A broker of several nodes is one RabbitMQ cluster: every node has a stable DNS name through a
// headless Service, all share one Erlang cookie, and a new node finds the cluster through
// classic_config peer discovery, which needs no access to the Kubernetes API (the k8s plugin
// before RabbitMQ 4.1 reads Endpoints, which would need RBAC). A single node is built the same
// way, so that adding nodes later changes no pod of the running one.
const (
	// CookieKey is the Secret's key for the Erlang cookie, which the nodes of a cluster must share.
	CookieKey    = "erlang-cookie"
	cookieVolume = "erlang-cookie"
	cookieMount  = "/run/workqueue-cookie"
	configVolume = "cluster-config"
	// configFile is read by RabbitMQ 3.10 and later beside rabbitmq.conf, without hiding the
	// image's own files in that directory.
	configFile = "/etc/rabbitmq/conf.d/50-workqueue-cluster.conf"
	configKey  = "cluster.conf"
	epmdPort   = 4369
	// distributionPort is RabbitMQ's inter-node port: the AMQP port plus 20000.
	distributionPort = AMQPPort + 20000
	// joinRetries × joinRetryInterval is how long a new node waits for the first node before it
	// gives up and starts a cluster of its own; the install then reports the split.
	joinRetries       = 120
	joinRetryInterval = "1000"
	// startupProbeFailures × startupProbePeriod seconds is how long a node may take to open
	// its AMQP port before it is restarted.
	startupProbePeriod   = 10
	startupProbeFailures = 30
)

// NodesService is the headless Service that gives each node its DNS name.
func NodesService(name string) string { return name + "-nodes" }

// ConfigMapName holds the cluster's peer discovery settings.
func ConfigMapName(name string) string { return name + "-cluster" }

// BudgetName is the PodDisruptionBudget that lets one node go at a time.
func BudgetName(name string) string { return name }

// NodeName is the RabbitMQ node name of the StatefulSet's pod with the given ordinal. It leaves
// out the cluster's DNS domain, which differs between clusters: the pods' DNS search path adds it.
func NodeName(s Spec, ordinal int) string {
	return fmt.Sprintf("rabbit@%s-%d.%s.%s", s.Name, ordinal, NodesService(s.Name), s.Namespace)
}

// nodesService publishes the nodes' addresses before they are ready: a node becomes ready only
// once it has found its cluster, through these very names.
func nodesService(s Spec) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(NodesService(s.Name), s.Namespace).
		WithLabels(Labels(s.Name)).
		WithSpec(corev1ac.ServiceSpec().
			WithClusterIP(corev1.ClusterIPNone).
			WithPublishNotReadyAddresses(true).
			WithSelector(selector(s.Name)).
			WithPorts(
				corev1ac.ServicePort().WithName("epmd").WithPort(epmdPort).WithTargetPort(intstr.FromInt32(epmdPort)),
				corev1ac.ServicePort().WithName("cluster").WithPort(distributionPort).WithTargetPort(intstr.FromInt32(distributionPort))))
}

// clusterConfig names only the first node as the peer to join. Every other node joins it, so
// nodes started together never form clusters of their own, and the settings do not change with
// the number of nodes: scaling up starts new pods and restarts none.
func clusterConfig(s Spec) *corev1ac.ConfigMapApplyConfiguration {
	conf := fmt.Sprintf(`# Written by kubectl workqueue broker install: every node joins the first one.
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = %s
cluster_formation.discovery_retry_limit = %d
cluster_formation.discovery_retry_interval = %s
`, NodeName(s, 0), joinRetries, joinRetryInterval)
	return corev1ac.ConfigMap(ConfigMapName(s.Name), s.Namespace).
		WithLabels(Labels(s.Name)).
		WithData(map[string]string{configKey: conf})
}

// disruptionBudget lets a drain take one node at a time, which a cluster of three survives.
func disruptionBudget(s Spec) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(BudgetName(s.Name), s.Namespace).
		WithLabels(Labels(s.Name)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt32(1)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector(s.Name))))
}

// clusterEnv names the node after its pod's stable DNS name. Kubernetes expands $(VAR) from the
// variables before it, so the pod's name and namespace come first.
func clusterEnv(s Spec) []*corev1ac.EnvVarApplyConfiguration {
	fromField := func(name, path string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).WithValueFrom(corev1ac.EnvVarSource().
			// apiVersion as the API server would default it: install compares the stored
			// container with the wanted one to tell whether applying restarts the broker.
			WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath(path)))
	}
	return []*corev1ac.EnvVarApplyConfiguration{
		fromField("POD_NAME", "metadata.name"),
		fromField("POD_NAMESPACE", "metadata.namespace"),
		corev1ac.EnvVar().WithName("RABBITMQ_USE_LONGNAME").WithValue("true"),
		corev1ac.EnvVar().WithName("RABBITMQ_NODENAME").WithValue("rabbit@$(POD_NAME)." + NodesService(s.Name) + ".$(POD_NAMESPACE)"),
	}
}

// cookieInit copies the cookie from the Secret to where Erlang reads it. Erlang refuses a cookie
// file that others may read or that another user owns, which a mounted Secret file is.
func cookieInit(s Spec, security *corev1ac.SecurityContextApplyConfiguration) *corev1ac.ContainerApplyConfiguration {
	cookie := dataPath + "/.erlang.cookie"
	init := corev1ac.Container().
		WithName("erlang-cookie").
		WithImage(s.Image).
		// Without the key (a single node's Secret made by hand), Erlang makes a cookie of its own.
		WithCommand("sh", "-c", fmt.Sprintf("if [ -f %[2]s/%[3]s ]; then rm -f %[1]s && cp %[2]s/%[3]s %[1]s && chmod 400 %[1]s; fi", cookie, cookieMount, CookieKey)).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName(dataVolume).WithMountPath(dataPath),
			corev1ac.VolumeMount().WithName(cookieVolume).WithMountPath(cookieMount).WithReadOnly(true)).
		WithSecurityContext(security)
	if s.ImagePullPolicy != "" {
		init.WithImagePullPolicy(s.ImagePullPolicy)
	}
	return init
}

// clusterVolumes are the cookie and the peer discovery settings.
func clusterVolumes(s Spec) []*corev1ac.VolumeApplyConfiguration {
	return []*corev1ac.VolumeApplyConfiguration{
		corev1ac.Volume().WithName(cookieVolume).WithSecret(corev1ac.SecretVolumeSource().
			WithSecretName(s.Secret).
			WithItems(corev1ac.KeyToPath().WithKey(CookieKey).WithPath(CookieKey)).
			WithDefaultMode(0o400).
			WithOptional(true)),
		corev1ac.Volume().WithName(configVolume).WithConfigMap(corev1ac.ConfigMapVolumeSource().
			WithName(ConfigMapName(s.Name))),
	}
}

// configMount puts the peer discovery settings into RabbitMQ's conf.d.
func configMount() *corev1ac.VolumeMountApplyConfiguration {
	return corev1ac.VolumeMount().WithName(configVolume).WithMountPath(configFile).WithSubPath(configKey).WithReadOnly(true)
}

// spreadNodes prefers a Kubernetes node of its own for each broker node, so that losing one
// machine takes one broker node; on a one-node cluster they still all run.
func spreadNodes(s Spec) *corev1ac.AffinityApplyConfiguration {
	return corev1ac.Affinity().WithPodAntiAffinity(corev1ac.PodAntiAffinity().
		WithPreferredDuringSchedulingIgnoredDuringExecution(corev1ac.WeightedPodAffinityTerm().
			WithWeight(100).
			WithPodAffinityTerm(corev1ac.PodAffinityTerm().
				WithTopologyKey(corev1.LabelHostname).
				WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(selector(s.Name))))))
}
