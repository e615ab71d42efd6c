package portforward

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

const testNamespace = "work"

var brokerLabels = map[string]string{"app.kubernetes.io/name": "task-queue", "app.kubernetes.io/component": "rabbitmq"}

func service(ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "rabbitmq-service", Namespace: testNamespace},
		Spec:       corev1.ServiceSpec{Selector: brokerLabels, Ports: ports, ClusterIP: "10.0.0.10"},
	}
}

func servicePort(name string, port int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: target}
}

type podOption func(*corev1.Pod)

func pod(name string, phase corev1.PodPhase, ready bool, opts ...podOption) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, Labels: brokerLabels},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{
				Name:  "rabbitmq",
				Ports: []corev1.ContainerPort{{Name: "amqp-port", ContainerPort: 5673}, {Name: "mgmt-port", ContainerPort: 15673}},
			}},
		},
		Status: corev1.PodStatus{
			Phase:      phase,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
		},
	}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.Finalizers = []string{"test/keep"}
}

func withLabels(l map[string]string) podOption {
	return func(p *corev1.Pod) { p.Labels = l }
}

func withoutContainerPorts(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }

func readySince(t time.Time) podOption {
	return func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t) }
}

func resolve(t *testing.T, port string, objects ...runtime.Object) (Target, error) {
	t.Helper()
	client := fake.NewClientset(objects...)
	return ResolveService(context.Background(), client, testNamespace, "rabbitmq-service", port)
}

func TestResolveServicePortMapping(t *testing.T) {
	readyPod := pod("rabbitmq-0", corev1.PodRunning, true)
	tests := []struct {
		name    string
		service *corev1.Service
		port    string
		want    int32
	}{
		{"named targetPort", service(servicePort("", 5672, intstr.FromString("amqp-port"))), "", 5673},
		{"numbered targetPort", service(servicePort("", 5672, intstr.FromInt32(5999))), "", 5999},
		{"omitted targetPort means the service port", service(servicePort("", 5672, intstr.IntOrString{})), "", 5672},
		{"empty port prefers the port named amqp", service(
			servicePort("other", 5672, intstr.FromInt32(1111)),
			servicePort("amqp", 7000, intstr.FromInt32(2222)),
		), "", 2222},
		{"empty port falls back to 5672", service(
			servicePort("management", 15672, intstr.FromInt32(1111)),
			servicePort("broker", 5672, intstr.FromInt32(2222)),
		), "", 2222},
		{"empty port takes the only port", service(servicePort("weird", 9999, intstr.FromInt32(3333))), "", 3333},
		{"port by number", service(
			servicePort("amqp", 5672, intstr.FromInt32(1111)),
			servicePort("management", 15672, intstr.FromString("mgmt-port")),
		), "15672", 15673},
		{"port by name", service(
			servicePort("amqp", 5672, intstr.FromInt32(1111)),
			servicePort("management", 15672, intstr.FromString("mgmt-port")),
		), "management", 15673},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(t, tt.port, tt.service, readyPod)
			if err != nil {
				t.Fatalf("ResolveService: %v", err)
			}
			want := Target{Namespace: testNamespace, Pod: "rabbitmq-0", Port: tt.want}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestResolveServiceHeadlessUsesServicePort(t *testing.T) {
	// A headless service has no proxy: in-cluster clients dial pod-ip:service-port, so kubectl
	// (and this package) ignore targetPort there.
	svc := service(servicePort("amqp", 5672, intstr.FromInt32(9999)))
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	got, err := resolve(t, "", svc, pod("rabbitmq-0", corev1.PodRunning, true))
	if err != nil {
		t.Fatalf("ResolveService: %v", err)
	}
	if got.Port != 5672 {
		t.Errorf("port = %d, want 5672 (the service port of a headless service)", got.Port)
	}
}

func TestResolveServiceSkipsPodsThatCannotTakeAForward(t *testing.T) {
	svc := service(servicePort("amqp", 5672, intstr.FromInt32(5672)))
	objects := []runtime.Object{
		svc,
		pod("a-pending", corev1.PodPending, false),
		pod("b-not-ready", corev1.PodRunning, false),
		pod("c-terminating", corev1.PodRunning, true, terminating),
		pod("d-succeeded", corev1.PodSucceeded, false),
		pod("e-other-app", corev1.PodRunning, true, withLabels(map[string]string{"app": "other"})),
		pod("z-ready", corev1.PodRunning, true),
	}
	got, err := resolve(t, "", objects...)
	if err != nil {
		t.Fatalf("ResolveService: %v", err)
	}
	if got.Pod != "z-ready" {
		t.Errorf("pod = %q, want the only ready, running, not-terminating pod of the service z-ready", got.Pod)
	}
}

func TestResolveServicePrefersThePodReadyLongest(t *testing.T) {
	svc := service(servicePort("amqp", 5672, intstr.FromInt32(5672)))
	now := time.Now()
	got, err := resolve(t, "", svc,
		pod("a-recent", corev1.PodRunning, true, readySince(now.Add(-time.Minute))),
		pod("b-old", corev1.PodRunning, true, readySince(now.Add(-time.Hour))),
	)
	if err != nil {
		t.Fatalf("ResolveService: %v", err)
	}
	if got.Pod != "b-old" {
		t.Errorf("pod = %q, want b-old (ready for longer)", got.Pod)
	}
}

func TestResolveServiceNamedTargetPortSkipsPodsWithoutIt(t *testing.T) {
	svc := service(servicePort("amqp", 5672, intstr.FromString("amqp-port")))
	now := time.Now()
	got, err := resolve(t, "", svc,
		pod("a-no-ports", corev1.PodRunning, true, withoutContainerPorts, readySince(now.Add(-time.Hour))),
		pod("b-ports", corev1.PodRunning, true, readySince(now.Add(-time.Minute))),
	)
	if err != nil {
		t.Fatalf("ResolveService: %v", err)
	}
	if got.Pod != "b-ports" || got.Port != 5673 {
		t.Errorf("got %+v, want pod b-ports port 5673", got)
	}
}

func TestResolveServiceErrors(t *testing.T) {
	amqpOnly := service(servicePort("amqp", 5672, intstr.FromInt32(5672)))
	noSelector := service(servicePort("amqp", 5672, intstr.FromInt32(5672)))
	noSelector.Spec.Selector = nil
	twoOtherPorts := service(
		servicePort("management", 15672, intstr.FromInt32(15672)),
		servicePort("prometheus", 15692, intstr.FromInt32(15692)),
	)
	noPorts := service()
	namedTarget := service(servicePort("amqp", 5672, intstr.FromString("amqp-port")))
	ready := pod("rabbitmq-0", corev1.PodRunning, true)

	tests := []struct {
		name     string
		port     string
		objects  []runtime.Object
		kind     error
		contains []string
	}{
		{"service not found", "", nil, ErrServiceNotFound,
			[]string{`service "rabbitmq-service" not found in namespace "work"`, "deploy a RabbitMQ broker", "--service", "--broker-url"}},
		{"service without selector", "", []runtime.Object{noSelector, ready}, ErrNoSelector,
			[]string{"has no pod selector", "--broker-url"}},
		{"no such port number", "5999", []runtime.Object{amqpOnly, ready}, ErrNoSuchPort,
			[]string{"has no port 5999", `it has: 5672 ("amqp")`}},
		{"no such port name", "stomp", []runtime.Object{amqpOnly, ready}, ErrNoSuchPort,
			[]string{`has no port named "stomp"`, `5672 ("amqp")`}},
		{"no default port among several", "", []runtime.Object{twoOtherPorts, ready}, ErrNoSuchPort,
			[]string{`no port named "amqp" and no port 5672`, `15672 ("management"), 15692 ("prometheus")`}},
		{"service without ports", "", []runtime.Object{noPorts, ready}, ErrNoSuchPort,
			[]string{"declares no ports"}},
		{"named targetPort missing on every ready pod", "", []runtime.Object{namedTarget,
			pod("rabbitmq-0", corev1.PodRunning, true, withoutContainerPorts)}, ErrNoSuchPort,
			[]string{`container port named "amqp-port"`, `pod "rabbitmq-0"`}},
		{"no pod at all", "", []runtime.Object{amqpOnly}, ErrNoReadyPod,
			[]string{"no pod matches the selector", "app.kubernetes.io/component=rabbitmq,app.kubernetes.io/name=task-queue",
				"kubectl get pods -n work -l"}},
		{"no ready pod", "", []runtime.Object{amqpOnly,
			pod("a", corev1.PodPending, false),
			pod("b", corev1.PodPending, false),
			pod("c", corev1.PodRunning, false),
			pod("d", corev1.PodRunning, true, terminating),
		}, ErrNoReadyPod,
			[]string{"no ready pod behind service", "4 pods match its selector", "2 Pending", "1 Running but not ready", "1 terminating"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(t, tt.port, tt.objects...)
			if err == nil {
				t.Fatal("ResolveService succeeded, want an error")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}
