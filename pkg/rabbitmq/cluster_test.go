package rabbitmq

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestValidateReplicas(t *testing.T) {
	withVolume := Spec{Namespace: "ns", StorageSize: DefaultStorageSize}.WithDefaults()
	for _, tt := range []struct {
		replicas int32
		volume   bool
		want     string // empty: valid
	}{
		{1, false, ""},
		{3, true, ""},
		{5, true, ""},
		{2, true, "odd number"},
		{-1, true, "odd number"},
		{3, false, "need a data volume each"},
	} {
		spec := withVolume
		spec.Replicas = tt.replicas
		if !tt.volume {
			spec.StorageSize = resource.Quantity{}
		}
		err := spec.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%d replicas, volume %v: %v, want %q", tt.replicas, tt.volume, err, tt.want)
		}
	}
}

// Every node names the first one as the peer to join, whatever the number of nodes, so that
// scaling changes no running pod.
func TestClusterConfigDoesNotDependOnReplicas(t *testing.T) {
	one := Spec{Namespace: "ns", StorageSize: DefaultStorageSize}.WithDefaults()
	three := one
	three.Replicas = 3
	a, err := Build(one)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(three)
	if err != nil {
		t.Fatal(err)
	}
	if a.ClusterConfig.Data[configKey] != b.ClusterConfig.Data[configKey] || !strings.Contains(a.ClusterConfig.Data[configKey], "nodes.1 = rabbit@rabbitmq-0.rabbitmq-nodes.ns\n") {
		t.Errorf("cluster config differs with the replicas or names no first node:\n%s\n%s", a.ClusterConfig.Data[configKey], b.ClusterConfig.Data[configKey])
	}
	if *b.StatefulSet.Spec.Replicas != 3 || *b.StatefulSet.Spec.ServiceName != NodesService("rabbitmq") {
		t.Errorf("StatefulSet: %d replicas, service %s", *b.StatefulSet.Spec.Replicas, *b.StatefulSet.Spec.ServiceName)
	}
}

func TestInstallScalesUpAndRefusesToShrink(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns", StorageSize: DefaultStorageSize}.WithDefaults()
	client := fake.NewClientset(defaultStorageClass())
	if _, err := Install(ctx, client, spec); err != nil {
		t.Fatal(err)
	}
	three := spec
	three.Replicas = 3
	if _, err := Install(ctx, client, three); err != nil {
		t.Fatalf("scale 1 to 3: %v", err)
	}
	set, _ := client.AppsV1().StatefulSets("ns").Get(ctx, spec.Name, metav1.GetOptions{})
	if *set.Spec.Replicas != 3 {
		t.Fatalf("%d replicas after scaling to 3", *set.Spec.Replicas)
	}
	if _, err := Install(ctx, client, spec); err == nil || !strings.Contains(err.Error(), "cannot shrink to 1") {
		t.Fatalf("scale 3 to 1: %v", err)
	}
}

// A Secret of an earlier install gets the cookie the nodes share; a user's Secret without one is
// enough for a single node only.
func TestInstallGivesTheSecretAnErlangCookie(t *testing.T) {
	ctx := context.Background()
	old := func(labels map[string]string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: CredentialsSecret, Namespace: "ns", Labels: labels},
			Data:       map[string][]byte{UsernameKey: []byte("u"), PasswordKey: []byte("p")},
		}
	}
	three := Spec{Namespace: "ns", Replicas: 3, StorageSize: DefaultStorageSize}.WithDefaults()

	client := fake.NewClientset(old(Labels(DefaultName)), defaultStorageClass())
	if _, err := Install(ctx, client, three); err != nil {
		t.Fatal(err)
	}
	secret, _ := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if len(secret.Data[CookieKey]) < 20 || string(secret.Data[PasswordKey]) != "p" {
		t.Errorf("the Secret after install: %q", secret.Data)
	}

	for replicas, want := range map[int32]string{1: "", 3: "lacks the key erlang-cookie"} {
		spec := three
		spec.Replicas = replicas
		_, err := Install(ctx, fake.NewClientset([]runtime.Object{old(nil), defaultStorageClass()}...), spec)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("a user's Secret without a cookie, %d replicas: %v", replicas, err)
		}
	}
}

func TestUninstallDeletesEveryNodesClaim(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns", Replicas: 3, StorageSize: DefaultStorageSize}.WithDefaults()
	var objects []runtime.Object
	for i := range 3 {
		objects = append(objects, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: DataClaimName(spec.Name, i), Namespace: "ns", Labels: Labels(spec.Name)}})
	}
	client := fake.NewClientset(append(objects, defaultStorageClass())...)
	if _, err := Install(ctx, client, spec); err != nil {
		t.Fatal(err)
	}
	result, err := Uninstall(ctx, client, spec, UninstallOptions{})
	if err != nil || len(result.Kept) != 4 || !strings.Contains(strings.Join(result.Kept, "\n"), "data-rabbitmq-2") {
		t.Fatalf("uninstall keeping data: %+v, %v", result, err)
	}
	result, err = Uninstall(ctx, client, spec, UninstallOptions{DeleteData: true})
	if deleted := strings.Join(result.Deleted, " "); err != nil || !strings.HasSuffix(deleted, "persistentvolumeclaim/data-rabbitmq-0 persistentvolumeclaim/data-rabbitmq-1 persistentvolumeclaim/data-rabbitmq-2") {
		t.Fatalf("uninstall --delete-data: %+v, %v", result, err)
	}
}

func TestMissingNodesNamesTheOnesNotRunning(t *testing.T) {
	nodes := []Node{{Name: "rabbit@a", Running: true}, {Name: "rabbit@b", Running: false}}
	missing := missingNodes(nodes, []string{"rabbit@a", "rabbit@b", "rabbit@c"})
	if strings.Join(missing, " ") != "rabbit@b rabbit@c" {
		t.Errorf("missing %v", missing)
	}
	if got := describeNodes(nodes); got != "rabbit@a (running), rabbit@b (stopped)" {
		t.Errorf("described as %q", got)
	}
}
