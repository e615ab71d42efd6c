package rabbitmq

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the current output of Build")

func goldenSpecs() map[string]Spec {
	return map[string]Spec{
		"default": Spec{
			Namespace:   "batch",
			StorageSize: DefaultStorageSize,
			Requests:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			Limits:      corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		}.WithDefaults(),
		"ephemeral": Spec{
			Namespace:       "ci",
			Name:            "queue-broker",
			Service:         "queues",
			Image:           "localhost/rabbitmq:3.10.8",
			ImagePullPolicy: corev1.PullNever,
			NetworkPolicy:   true,
		}.WithDefaults(),
		"storage-class": Spec{
			Namespace:    "batch",
			StorageSize:  resource.MustParse("20Gi"),
			StorageClass: "fast-ssd",
		}.WithDefaults(),
		"three-nodes": Spec{
			Namespace:   "batch",
			Replicas:    3,
			StorageSize: resource.MustParse("5Gi"),
		}.WithDefaults(),
	}
}

func TestBuildGolden(t *testing.T) {
	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			objects, err := Build(spec)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			var got bytes.Buffer
			all := []any{objects.Service, objects.NodesService, objects.ClusterConfig, objects.Budget, objects.StatefulSet}
			if objects.NetworkPolicy != nil {
				all = append(all, objects.NetworkPolicy)
			}
			for _, object := range all {
				data, err := yaml.Marshal(object)
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString("---\n")
				got.Write(data)
			}
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./pkg/rabbitmq -update` to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("Build(%s) differs from %s (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s", name, path, got.Bytes(), want)
			}
		})
	}
}

func TestBuildTellsRabbitMQItsMemory(t *testing.T) {
	spec := Spec{Namespace: "x", Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}.WithDefaults()
	objects, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	var args string
	for _, e := range objects.StatefulSet.Spec.Template.Spec.Containers[0].Env {
		if *e.Name == "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS" {
			args = *e.Value
		}
	}
	// 80% of 2 GiB.
	if args != "-rabbit total_memory_available_override_value 1717986918" {
		t.Errorf("erl args %q", args)
	}
}

func TestValidateSaysEverythingWrongAtOnce(t *testing.T) {
	spec := Spec{
		Name:        "Bad_Name",
		Service:     "1service",
		Secret:      "ok",
		Image:       " ",
		StorageSize: resource.MustParse("-1Gi"),
		Requests:    corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		Limits:      corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	err := spec.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`StatefulSet name "Bad_Name"`, `Service name "1service"`, "image is empty", "storage size is negative", "memory request 2Gi is above its limit 1Gi"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("not one line: %q", err)
	}
	long := Spec{Name: strings.Repeat("a", 62), Service: "s", Secret: "s", Image: "i"}
	if err := long.Validate(); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Errorf("a name whose pod name is no DNS label: %v", err)
	}
}

func defaultStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "standard", Annotations: map[string]string{defaultClassAnnotation: "true"}}}
}

func TestInstallCreatesCredentialsOnceAndKeepsThem(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(defaultStorageClass())
	spec := Spec{Namespace: "ns", StorageSize: DefaultStorageSize}.WithDefaults()

	result, err := Install(ctx, client, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !result.SecretCreated {
		t.Error("first install: Secret not reported created")
	}
	secret, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	password := string(secret.Data[PasswordKey])
	if string(secret.Data[UsernameKey]) != DefaultUsername || len(password) != 32 || strings.Trim(password, passwordAlphabet) != "" {
		t.Errorf("credentials %q / %q", secret.Data[UsernameKey], password)
	}
	if !ours(secret) {
		t.Errorf("Secret labels %v", secret.Labels)
	}
	for _, get := range []func() error{
		func() error {
			_, err := client.CoreV1().Services("ns").Get(ctx, DefaultService, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := client.AppsV1().StatefulSets("ns").Get(ctx, DefaultName, metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Error(err)
		}
	}

	result, err = Install(ctx, client, spec)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if result.SecretCreated || string(again.Data[PasswordKey]) != password {
		t.Error("a second install changed the credentials")
	}
}

func TestInstallRefusesAVolumeNothingWouldProvision(t *testing.T) {
	ctx := context.Background()
	withVolume := Spec{Namespace: "ns", StorageSize: DefaultStorageSize}.WithDefaults()
	inClass := withVolume
	inClass.StorageClass = "fast"
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: DataClaimName(withVolume.Name, 0), Namespace: "ns"}}
	nonDefault := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}}
	cases := []struct {
		name    string
		spec    Spec
		objects []runtime.Object
		want    string // empty: installed
	}{
		{"no class at all", withVolume, nil, "no default StorageClass"},
		{"only a class that is not the default", withVolume, []runtime.Object{nonDefault}, "no default StorageClass"},
		{"a default class", withVolume, []runtime.Object{defaultStorageClass()}, ""},
		{"the named class", inClass, []runtime.Object{nonDefault}, ""},
		{"a named class that does not exist", inClass, []runtime.Object{defaultStorageClass()}, "StorageClass fast does not exist"},
		{"the claim of an earlier install", withVolume, []runtime.Object{claim}, ""},
		{"no volume", Spec{Namespace: "ns"}.WithDefaults(), nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := fake.NewClientset(c.objects...)
			_, err := Install(ctx, client, c.spec)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--ephemeral") {
				t.Fatalf("got %v, want %q and a way out", err, c.want)
			}
			if _, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{}); err == nil {
				t.Error("a refused install left a Secret")
			}
		})
	}
}

func TestGeneratedPasswordsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, err := generatePassword()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || len(p) != 32 {
			t.Fatalf("password %q repeated or of the wrong length", p)
		}
		seen[p] = true
	}
}

func TestInstallUsesAUsersSecretButNeedsBothKeys(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns"}.WithDefaults()
	own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: CredentialsSecret, Namespace: "ns"},
		Data: map[string][]byte{UsernameKey: []byte("me"), PasswordKey: []byte("mine")}}
	client := fake.NewClientset(own)
	result, err := Install(ctx, client, spec)
	if err != nil || result.SecretCreated {
		t.Fatalf("result %+v, %v", result, err)
	}

	incomplete := own.DeepCopy()
	delete(incomplete.Data, PasswordKey)
	client = fake.NewClientset(incomplete)
	_, err = Install(ctx, client, spec)
	if err == nil || !strings.Contains(err.Error(), "lacks the keys username and password") {
		t.Fatalf("incomplete Secret: %v", err)
	}
	if _, err := client.CoreV1().Services("ns").Get(ctx, DefaultService, metav1.GetOptions{}); err == nil {
		t.Error("a Service was created although the install failed")
	}
}

func TestInstallLeavesABrokerDeployedByHandAlone(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns"}.WithDefaults()
	seedService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: DefaultService, Namespace: "ns", Labels: map[string]string{"component": "rabbitmq"}}}
	client := fake.NewClientset(seedService)
	_, err := Install(ctx, client, spec)
	var notOurs *NotOursError
	if !errors.As(err, &notOurs) || notOurs.Kind != "Service" {
		t.Fatalf("got %v", err)
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{}); err == nil {
		t.Error("a Secret was created although nothing was installed")
	}

	seedSet := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: "ns"}}
	client = fake.NewClientset(seedSet)
	if _, err := Install(ctx, client, spec); !errors.As(err, &notOurs) || notOurs.Kind != "StatefulSet" {
		t.Fatalf("got %v", err)
	}
}

func TestInstallUndoesWhatItCreatedWhenTheStatefulSetFails(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	client.PrependReactor("patch", "statefulsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("admission webhook denied it")
	})
	_, err := Install(ctx, client, Spec{Namespace: "ns"}.WithDefaults())
	if err == nil || !strings.Contains(err.Error(), "admission webhook denied it") {
		t.Fatalf("got %v", err)
	}
	if _, err := client.CoreV1().Services("ns").Get(ctx, DefaultService, metav1.GetOptions{}); err == nil {
		t.Error("the Service stayed")
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{}); err == nil {
		t.Error("the generated Secret stayed")
	}
}

func TestUninstallDeletesOnlyWhatInstallMade(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns", StorageSize: DefaultStorageSize}.WithDefaults()
	ourClaim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: DataClaimName(spec.Name, 0), Namespace: "ns", Labels: Labels(spec.Name)}}
	client := fake.NewClientset(ourClaim)
	if _, err := Install(ctx, client, spec); err != nil {
		t.Fatal(err)
	}

	// A dry run names what would go and deletes nothing.
	result, err := Uninstall(ctx, client, spec, UninstallOptions{DeleteData: true, DryRun: DryRunClient})
	if err != nil || strings.Join(result.Deleted, " ") != "statefulset.apps/rabbitmq service/rabbitmq-service service/rabbitmq-nodes configmap/rabbitmq-cluster poddisruptionbudget.policy/rabbitmq secret/workqueue-broker persistentvolumeclaim/data-rabbitmq-0" {
		t.Fatalf("dry run: %+v %v", result, err)
	}
	if _, err := client.AppsV1().StatefulSets("ns").Get(ctx, spec.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("a dry run deleted the StatefulSet: %v", err)
	}

	result, err = Uninstall(ctx, client, spec, UninstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(result.Deleted, " ") != "statefulset.apps/rabbitmq service/rabbitmq-service service/rabbitmq-nodes configmap/rabbitmq-cluster poddisruptionbudget.policy/rabbitmq" {
		t.Errorf("deleted %v", result.Deleted)
	}
	// The data stays, and the credentials it holds with it.
	if kept := strings.Join(result.Kept, "\n"); !strings.Contains(kept, "persistentvolumeclaim/data-rabbitmq-0") ||
		!strings.Contains(kept, "--delete-data") || !strings.Contains(kept, "secret/workqueue-broker") {
		t.Errorf("kept %v", result.Kept)
	}

	result, err = Uninstall(ctx, client, spec, UninstallOptions{DeleteData: true})
	if err != nil || strings.Join(result.Deleted, " ") != "secret/workqueue-broker persistentvolumeclaim/data-rabbitmq-0" {
		t.Errorf("with --delete-data: %+v, %v", result, err)
	}

	// Without a volume, everything goes at once.
	client = fake.NewClientset()
	ephemeral := Spec{Namespace: "ns"}.WithDefaults()
	if _, err := Install(ctx, client, ephemeral); err != nil {
		t.Fatal(err)
	}
	result, err = Uninstall(ctx, client, ephemeral, UninstallOptions{})
	want := "statefulset.apps/rabbitmq service/rabbitmq-service service/rabbitmq-nodes configmap/rabbitmq-cluster poddisruptionbudget.policy/rabbitmq secret/workqueue-broker"
	if err != nil || strings.Join(result.Deleted, " ") != want || len(result.Kept) != 0 {
		t.Errorf("ephemeral: %+v, %v", result, err)
	}

	userSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: CredentialsSecret, Namespace: "ns"}}
	client = fake.NewClientset(userSecret)
	result, err = Uninstall(ctx, client, spec, UninstallOptions{DeleteData: true})
	if err != nil || len(result.Deleted) != 0 || len(result.Kept) != 1 || !strings.Contains(result.Kept[0], "not created by kubectl workqueue") {
		t.Errorf("a user's Secret: %+v, %v", result, err)
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{}); err != nil {
		t.Error("the user's Secret was deleted")
	}
}

func TestCheckStatusNamesWhyThePodDoesNotRun(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns"}.WithDefaults()
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: "ns", Generation: 1},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1}}
	unobserved := set.DeepCopy()
	unobserved.Generation = 2
	pod := func(status corev1.PodStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: spec.Name + "-0", Namespace: "ns"}, Status: status}
	}
	cases := map[string]struct {
		objects []runtime.Object
		want    Status
	}{
		"no pod yet": {[]runtime.Object{set}, Status{}},
		// The pod's problem may be of the spec before: wait for the controller.
		"change not seen yet": {[]runtime.Object{unobserved, pod(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName"}}}}})}, Status{}},
		"unschedulable": {[]runtime.Object{set, pod(corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "pod has unbound immediate PersistentVolumeClaims"}}})},
			Status{Problem: "pod rabbitmq-0 cannot be scheduled: pod has unbound immediate PersistentVolumeClaims (a volume is not provisioned: see `kubectl describe pvc`); --storage-class picks another class, --ephemeral needs none"}},
		"bad image": {[]runtime.Object{set, pod(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "InvalidImageName", Message: "couldn't parse image name"}}}}})},
			Status{Problem: "pod rabbitmq-0: container rabbitmq: InvalidImageName: couldn't parse image name", Fatal: true}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := CheckStatus(ctx, fake.NewClientset(c.objects...), spec, time.Time{})
			if err != nil || got != c.want {
				t.Errorf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}

	ready := set.DeepCopy()
	ready.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, ReadyReplicas: 1, UpdatedReplicas: 1, CurrentRevision: "r1", UpdateRevision: "r1"}
	if got, err := CheckStatus(ctx, fake.NewClientset(ready), spec, time.Time{}); err != nil || !got.Ready {
		t.Errorf("ready StatefulSet: %+v, %v", got, err)
	}
	rolling := ready.DeepCopy()
	rolling.Status.UpdateRevision = "r2"
	if got, _ := CheckStatus(ctx, fake.NewClientset(rolling), spec, time.Time{}); got.Ready {
		t.Error("a StatefulSet rolling to a new revision counted as ready")
	}
}

func markReady(t *testing.T, client *fake.Clientset, s Spec) {
	t.Helper()
	ctx := context.Background()
	set, err := client.AppsV1().StatefulSets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set.Status.ReadyReplicas = 1
	if _, err := client.AppsV1().StatefulSets(s.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A running broker without a volume loses every queue when its pod restarts: install refuses
// the changes that would restart it, and allows them for a broker that never got ready.
func TestInstallRefusesToRestartARunningEphemeralBroker(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	spec := Spec{Namespace: "ns", Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}.WithDefaults()
	if _, err := Install(ctx, client, spec); err != nil {
		t.Fatal(err)
	}
	bigger := spec
	bigger.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}
	if _, err := Install(ctx, client, bigger); err != nil {
		t.Fatalf("a broker that never got ready could not be changed: %v", err)
	}
	markReady(t, client, spec)
	if _, err := Install(ctx, client, bigger); err != nil {
		t.Fatalf("the same flags again: %v", err)
	}
	for name, change := range map[string]func(*Spec){
		"image":  func(s *Spec) { s.Image = "rabbitmq:4.1" },
		"limits": func(s *Spec) { s.Limits = nil },
		"volume": func(s *Spec) { s.StorageSize = DefaultStorageSize },
	} {
		changed := bigger
		change(&changed)
		_, err := Install(ctx, client, changed)
		if err == nil || !strings.Contains(err.Error(), "lose every queue") {
			t.Errorf("%s: got %v", name, err)
		}
	}

	// A broker installed by a plugin from before the startup probe would restart to get it.
	set, err := client.AppsV1().StatefulSets(spec.Namespace).Get(ctx, spec.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set.Spec.Template.Spec.Containers[0].StartupProbe = nil
	if _, err := client.AppsV1().StatefulSets(spec.Namespace).Update(ctx, set, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(ctx, client, bigger); err == nil || !strings.Contains(err.Error(), "lose every queue") {
		t.Errorf("a broker without the startup probe: got %v", err)
	}
}

// Two brokers in one namespace need their own Services; neither takes the other's over, and
// uninstalling one leaves the other whole.
func TestASecondBrokerLeavesTheFirstAlone(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	first := Spec{Namespace: "ns"}.WithDefaults()
	if _, err := Install(ctx, client, first); err != nil {
		t.Fatal(err)
	}
	second := Spec{Namespace: "ns", Name: "mq2"}.WithDefaults()
	if _, err := Install(ctx, client, second); err == nil || !strings.Contains(err.Error(), "belongs to the broker rabbitmq") {
		t.Fatalf("the second broker took the first one's Service: %v", err)
	}
	second.Service = "mq2-service"
	if _, err := Install(ctx, client, second); err != nil {
		t.Fatal(err)
	}
	result, err := Uninstall(ctx, client, second, UninstallOptions{DeleteData: true})
	if err != nil || strings.Join(result.Deleted, " ") != "statefulset.apps/mq2 service/mq2-service service/mq2-nodes configmap/mq2-cluster poddisruptionbudget.policy/mq2" {
		t.Fatalf("%+v, %v", result, err)
	}
	for _, get := range []func() error{
		func() error {
			_, err := client.CoreV1().Services("ns").Get(ctx, DefaultService, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Errorf("the first broker lost a part: %v", err)
		}
	}
}

func TestUninstallKeepsEverythingWhenItCannotTellWhetherDataStays(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	spec := Spec{Namespace: "ns"}.WithDefaults()
	if _, err := Install(ctx, client, spec); err != nil {
		t.Fatal(err)
	}
	client.PrependReactor("list", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	if _, err := Uninstall(ctx, client, spec, UninstallOptions{}); err == nil {
		t.Fatal("no error")
	}
	if _, err := client.CoreV1().Secrets("ns").Get(ctx, CredentialsSecret, metav1.GetOptions{}); err != nil {
		t.Error("the credentials went although the data volume might stay")
	}
}

// A StatefulSet never replaces a pod that is not ready: install does, once the pod runs an
// earlier spec, so that fixing a bad image is enough.
func TestCheckStatusReplacesAPodStuckOnAnEarlierSpec(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns"}.WithDefaults()
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: "ns", Generation: 2},
		Status:     appsv1.StatefulSetStatus{ObservedGeneration: 2, CurrentRevision: "r1", UpdateRevision: "r2"},
	}
	pod := func(revision string, ready corev1.ConditionStatus) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: spec.Name + "-0", Namespace: "ns", Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: revision}},
			Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}},
		}
	}
	for name, c := range map[string]struct {
		pod      *corev1.Pod
		replaced bool
	}{
		"stuck on r1":    {pod("r1", corev1.ConditionFalse), true},
		"ready on r1":    {pod("r1", corev1.ConditionTrue), false},
		"starting on r2": {pod("r2", corev1.ConditionFalse), false},
	} {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset(set, c.pod)
			status, err := CheckStatus(ctx, client, spec, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			_, getErr := client.CoreV1().Pods("ns").Get(ctx, spec.Name+"-0", metav1.GetOptions{})
			if replaced := getErr != nil; replaced != c.replaced {
				t.Errorf("replaced %v, want %v (status %+v)", replaced, c.replaced, status)
			}
			if c.replaced && !strings.Contains(status.Problem, "replacing pod rabbitmq-0") {
				t.Errorf("status %+v", status)
			}
		})
	}
}

// A pod that the API server refuses never exists; the StatefulSet's FailedCreate events say why.
// A refusal from before this install (fixed since, say by relabelling the namespace) is no reason.
func TestCheckStatusReportsARefusedPod(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Namespace: "ns"}.WithDefaults()
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: "ns", UID: "set-1", Generation: 1},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1}}
	installed := time.Now()
	refusal := func(name string, uid types.UID, at time.Time) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "ns"},
			InvolvedObject: corev1.ObjectReference{Kind: "StatefulSet", Name: spec.Name, Namespace: "ns", UID: uid},
			Reason:         "FailedCreate",
			Message:        `create Pod rabbitmq-0 in StatefulSet rabbitmq failed error: pods "rabbitmq-0" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0`,
			LastTimestamp:  metav1.NewTime(at),
		}
	}
	cases := map[string]struct {
		event *corev1.Event
		want  Status
	}{
		"refused now": {refusal("now", "set-1", installed.Add(time.Second)), Status{Fatal: true,
			Problem: `statefulset rabbitmq cannot create its pods: pods "rabbitmq-0" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0`}},
		"refused before this install": {refusal("before", "set-1", installed.Add(-time.Minute)), Status{}},
		"another StatefulSet's":       {refusal("other", "set-0", installed.Add(time.Second)), Status{}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := CheckStatus(ctx, fake.NewClientset(set, c.event), spec, installed)
			if err != nil || got != c.want {
				t.Errorf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}
