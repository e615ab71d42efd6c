package portforward

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	kubectlutil "k8s.io/kubectl/pkg/util"
	"k8s.io/kubectl/pkg/util/podutils"
)

// DefaultPortName and DefaultPort are what an empty port request looks for, in that order.
const (
	DefaultPortName       = "amqp"
	DefaultPort     int32 = 5672
)

// Target is a resolved endpoint: the pod and the container port to forward to.
type Target struct {
	Namespace, Pod string
	Port           int32
}

func (t Target) String() string {
	return fmt.Sprintf("pod %s/%s port %d", t.Namespace, t.Pod, t.Port)
}

// ResolveService finds a Running, Ready, not-terminating pod behind the Service's selector and maps the
// service port to the container port. port is "" (meaning: the port named "amqp", else 5672, else the
// only port), a number, or a port name. Handles named/numbered/omitted targetPort and headless services.
func ResolveService(ctx context.Context, client kubernetes.Interface, namespace, service, port string) (Target, error) {
	svc, err := getService(ctx, client, namespace, service)
	if err != nil {
		return Target{}, err
	}
	if len(svc.Spec.Selector) == 0 {
		return Target{}, classified(ErrNoSelector, nil,
			"service %q in namespace %q has no pod selector, so there is no pod to port-forward to (if it points at a broker outside the cluster, connect to that broker directly with --broker-url)",
			service, namespace)
	}
	servicePort, err := chooseServicePort(svc, port)
	if err != nil {
		return Target{}, err
	}

	selector := labels.SelectorFromSet(svc.Spec.Selector)
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return Target{}, fmt.Errorf("listing the pods of service %q in namespace %q: %w", service, namespace, err)
	}
	candidates := readyPods(pods.Items)
	if len(candidates) == 0 {
		return Target{}, noReadyPodError(svc, selector.String(), pods.Items)
	}

	var portErr error
	for _, pod := range candidates {
		containerPort, err := kubectlutil.LookupContainerPortNumberByServicePort(*svc, *pod, servicePort.Port)
		if err != nil {
			// Only a named targetPort fails here: this pod lacks the name, another pod may have it.
			portErr = classified(ErrNoSuchPort, nil,
				"service %q sends port %d to the container port named %q, but pod %q has no container port with that name",
				service, servicePort.Port, servicePort.TargetPort.String(), pod.Name)
			continue
		}
		return Target{Namespace: namespace, Pod: pod.Name, Port: containerPort}, nil
	}
	return Target{}, portErr
}

func getService(ctx context.Context, client kubernetes.Interface, namespace, service string) (*corev1.Service, error) {
	svc, err := client.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, classified(ErrServiceNotFound, nil,
			"service %q not found in namespace %q: deploy a RabbitMQ broker behind a Service of that name (the README shows how), pass --service NAME (and -n NAMESPACE) to use another one, or --broker-url to connect directly",
			service, namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("reading service %q in namespace %q: %w", service, namespace, err)
	}
	return svc, nil
}

// ClusterAddress is the host:port at which pods reach the Service's chosen port (port as in
// ResolveService), by its cluster DNS name.
func ClusterAddress(ctx context.Context, client kubernetes.Interface, namespace, service, port string) (string, error) {
	svc, err := getService(ctx, client, namespace, service)
	if err != nil {
		return "", err
	}
	servicePort, err := chooseServicePort(svc, port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(service+"."+namespace+".svc", strconv.Itoa(int(servicePort.Port))), nil
}

// chooseServicePort picks the service port a request names: "" for the default, a number, or a name.
func chooseServicePort(svc *corev1.Service, port string) (corev1.ServicePort, error) {
	ports := svc.Spec.Ports
	if len(ports) == 0 {
		return corev1.ServicePort{}, classified(ErrNoSuchPort, nil, "service %q in namespace %q declares no ports", svc.Name, svc.Namespace)
	}
	if port == "" {
		for _, p := range ports {
			if p.Name == DefaultPortName {
				return p, nil
			}
		}
		for _, p := range ports {
			if p.Port == DefaultPort {
				return p, nil
			}
		}
		if len(ports) == 1 {
			return ports[0], nil
		}
		return corev1.ServicePort{}, classified(ErrNoSuchPort, nil,
			"service %q in namespace %q has no port named %q and no port %d; name the one to use, it has: %s",
			svc.Name, svc.Namespace, DefaultPortName, DefaultPort, describePorts(ports))
	}
	if number, err := strconv.ParseInt(port, 10, 32); err == nil {
		for _, p := range ports {
			if int64(p.Port) == number {
				return p, nil
			}
		}
		return corev1.ServicePort{}, classified(ErrNoSuchPort, nil,
			"service %q in namespace %q has no port %d; it has: %s", svc.Name, svc.Namespace, number, describePorts(ports))
	}
	for _, p := range ports {
		if p.Name == port {
			return p, nil
		}
	}
	return corev1.ServicePort{}, classified(ErrNoSuchPort, nil,
		"service %q in namespace %q has no port named %q; it has: %s", svc.Name, svc.Namespace, port, describePorts(ports))
}

func describePorts(ports []corev1.ServicePort) string {
	described := make([]string, 0, len(ports))
	for _, p := range ports {
		if p.Name == "" {
			described = append(described, strconv.Itoa(int(p.Port)))
			continue
		}
		described = append(described, fmt.Sprintf("%d (%q)", p.Port, p.Name))
	}
	return strings.Join(described, ", ")
}

// readyPods returns the pods that can take a forward, best first (longest ready, fewest restarts).
func readyPods(pods []corev1.Pod) []*corev1.Pod {
	var ready []*corev1.Pod
	for i := range pods {
		pod := &pods[i]
		if pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil && podutils.IsPodReady(pod) {
			ready = append(ready, pod)
		}
	}
	// Sorting by name first makes the choice among otherwise equal pods deterministic.
	sort.Slice(ready, func(i, j int) bool { return ready[i].Name < ready[j].Name })
	sort.Stable(podutils.ByLogging(ready))
	return ready
}

func noReadyPodError(svc *corev1.Service, selector string, pods []corev1.Pod) error {
	howToLook := fmt.Sprintf("kubectl get pods -n %s -l %s", svc.Namespace, selector)
	if len(pods) == 0 {
		return classified(ErrNoReadyPod, nil,
			"no pod matches the selector of service %q in namespace %q (%s): is the broker deployed? (%s)",
			svc.Name, svc.Namespace, selector, howToLook)
	}
	counts := map[string]int{}
	for i := range pods {
		counts[podState(&pods[i])]++
	}
	states := make([]string, 0, len(counts))
	for state, n := range counts {
		states = append(states, fmt.Sprintf("%d %s", n, state))
	}
	sort.Strings(states)
	noun := "pods match"
	if len(pods) == 1 {
		noun = "pod matches"
	}
	return classified(ErrNoReadyPod, nil,
		"no ready pod behind service %q in namespace %q: %d %s its selector (%s): %s; wait until the broker is ready (%s)",
		svc.Name, svc.Namespace, len(pods), noun, selector, strings.Join(states, ", "), howToLook)
}

func podState(pod *corev1.Pod) string {
	switch {
	case pod.DeletionTimestamp != nil:
		return "terminating"
	case pod.Status.Phase == corev1.PodRunning && !podutils.IsPodReady(pod):
		return "Running but not ready"
	case pod.Status.Phase == "":
		return string(corev1.PodUnknown)
	default:
		return string(pod.Status.Phase)
	}
}
