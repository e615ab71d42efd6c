package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/podstatus"
)

// NotOursError says an object of the name the broker needs exists and was not made by the
// plugin: it is never changed or deleted.
type NotOursError struct {
	Kind, Name string
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("%s %s already exists and was not created by kubectl workqueue", e.Kind, e.Name)
}

// ours tells whether the plugin made object; ofBroker, whether for the broker named name.
func ours(object metav1.Object) bool {
	return object.GetLabels()[constants.LabelManagedBy] == constants.ManagedBy
}

func ofBroker(object metav1.Object, name string) bool {
	return ours(object) && object.GetLabels()[labelInstance] == name
}

// InstallResult says what Install did.
type InstallResult struct {
	// SecretCreated is false when the credentials Secret existed: its username and password
	// are used as they are.
	SecretCreated bool
}

// Install creates the credentials Secret when it is missing and applies the Service and the
// StatefulSet of s (with its defaults). A Service or StatefulSet of the same name that the
// plugin did not create is left alone and reported as a NotOursError; if applying fails, what
// this call created is removed again.
func Install(ctx context.Context, client kubernetes.Interface, s Spec) (InstallResult, error) {
	objects, err := Build(s)
	if err != nil {
		return InstallResult{}, err
	}
	services := client.CoreV1().Services(s.Namespace)
	statefulSets := client.AppsV1().StatefulSets(s.Namespace)

	existingService, err := services.Get(ctx, s.Service, metav1.GetOptions{})
	serviceExisted := err == nil
	switch {
	case serviceExisted && !ours(existingService):
		return InstallResult{}, &NotOursError{Kind: "Service", Name: s.Service}
	case serviceExisted && !ofBroker(existingService, s.Name):
		return InstallResult{}, fmt.Errorf("Service %s belongs to the broker %s: give this one another --service", s.Service, existingService.Labels[labelInstance])
	case err != nil && !apierrors.IsNotFound(err):
		return InstallResult{}, fmt.Errorf("look for Service %s: %w", s.Service, err)
	}
	existingSet, err := statefulSets.Get(ctx, s.Name, metav1.GetOptions{})
	setExisted := err == nil
	switch {
	case setExisted && !ours(existingSet):
		return InstallResult{}, &NotOursError{Kind: "StatefulSet", Name: s.Name}
	case err != nil && !apierrors.IsNotFound(err):
		return InstallResult{}, fmt.Errorf("look for StatefulSet %s: %w", s.Name, err)
	}

	if setExisted && existingSet.Spec.Replicas != nil && *existingSet.Spec.Replicas > s.Replicas {
		return InstallResult{}, fmt.Errorf("the installed broker %s has %d nodes and cannot shrink to %d: a node's queue replicas must be moved off it first; keep --replicas %d, or uninstall it and install it again", s.Name, *existingSet.Spec.Replicas, s.Replicas, *existingSet.Spec.Replicas)
	}
	if setExisted && losesQueues(existingSet, objects) {
		return InstallResult{}, fmt.Errorf("the installed broker %s keeps its queues in an emptyDir (--ephemeral): this change would restart it and lose every queue; keep its flags, or uninstall it and install it again", s.Name)
	}
	if err := checkStorage(ctx, client, s); err != nil {
		return InstallResult{}, err
	}
	secretCreated, err := ensureCredentials(ctx, client, s)
	if err != nil {
		return InstallResult{}, err
	}
	undo := func() {
		background := context.WithoutCancel(ctx)
		if !serviceExisted {
			services.Delete(background, s.Service, metav1.DeleteOptions{})
		}
		if secretCreated {
			client.CoreV1().Secrets(s.Namespace).Delete(background, s.Secret, metav1.DeleteOptions{})
		}
	}
	options := metav1.ApplyOptions{FieldManager: s.FieldManager, Force: s.ForceConflicts}
	if _, err := services.Apply(ctx, objects.Service, options); err != nil {
		undo()
		return InstallResult{}, fmt.Errorf("create Service %s: %w", s.Service, err)
	}
	if err := applyCluster(ctx, client, objects, options, !setExisted); err != nil {
		undo()
		return InstallResult{}, err
	}
	if objects.NetworkPolicy != nil {
		// Before the broker: its pods must be reachable from the first moment they serve.
		if _, err := client.NetworkingV1().NetworkPolicies(s.Namespace).Apply(ctx, objects.NetworkPolicy, options); err != nil {
			undo()
			return InstallResult{}, fmt.Errorf("create NetworkPolicy %s: %w", NetworkPolicyName(s.Name), err)
		}
	}
	if _, err := statefulSets.Apply(ctx, objects.StatefulSet, options); err != nil {
		undo()
		if apierrors.IsInvalid(err) && setExisted {
			return InstallResult{}, fmt.Errorf("the installed broker cannot change this way (a StatefulSet's volumes, and how its pods are named and started, are fixed once made: keep its storage flags, or uninstall it first): %w", err)
		}
		return InstallResult{}, fmt.Errorf("create StatefulSet %s: %w", s.Name, err)
	}
	return InstallResult{SecretCreated: secretCreated}, nil
}

// losesQueues tells whether applying objects would restart a broker whose queues live in an
// emptyDir, and so lose them: it compares what the flags set in the pod's container.
func losesQueues(existing *appsv1.StatefulSet, objects Objects) bool {
	// A broker that never got ready holds no queues: replacing it is how a bad image is fixed.
	if len(existing.Spec.VolumeClaimTemplates) > 0 || existing.Status.ReadyReplicas == 0 ||
		len(existing.Spec.Template.Spec.Containers) == 0 {
		return false
	}
	var wanted appsv1.StatefulSet
	data, err := json.Marshal(objects.StatefulSet)
	if err != nil || json.Unmarshal(data, &wanted) != nil || len(wanted.Spec.Template.Spec.Containers) == 0 {
		return false
	}
	have, want := existing.Spec.Template.Spec.Containers[0], wanted.Spec.Template.Spec.Containers[0]
	if want.ImagePullPolicy == "" {
		want.ImagePullPolicy = have.ImagePullPolicy // the API server's default stands
	}
	return have.Image != want.Image || have.ImagePullPolicy != want.ImagePullPolicy ||
		!equality.Semantic.DeepEqual(have.Env, want.Env) ||
		!equality.Semantic.DeepEqual(have.Resources, want.Resources) ||
		// A broker installed before the startup probe existed restarts to get it.
		(have.StartupProbe == nil) != (want.StartupProbe == nil) ||
		len(wanted.Spec.VolumeClaimTemplates) > 0
}

// defaultClassAnnotation marks the StorageClass that claims without a class get.
const defaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// checkStorage refuses a data volume that nothing would provision, before anything is created:
// the pod would otherwise wait for its claim forever. Users who may not read StorageClasses
// (they are cluster-wide) are trusted.
func checkStorage(ctx context.Context, client kubernetes.Interface, s Spec) error {
	if s.StorageSize.IsZero() {
		return nil
	}
	if _, err := client.CoreV1().PersistentVolumeClaims(s.Namespace).Get(ctx, DataClaimName(s.Name, 0), metav1.GetOptions{}); err == nil {
		return nil // the volume of an earlier install
	}
	classes := client.StorageV1().StorageClasses()
	if s.StorageClass != "" {
		_, err := classes.Get(ctx, s.StorageClass, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("StorageClass %s does not exist: pass another --storage-class (kubectl get storageclass lists them), or --ephemeral for a broker without a volume", s.StorageClass)
		}
		return nil
	}
	list, err := classes.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	for _, class := range list.Items {
		if class.Annotations[defaultClassAnnotation] == "true" {
			return nil
		}
	}
	return errors.New("the cluster has no default StorageClass for the broker's data volume: pass --storage-class NAME, or --ephemeral for a broker without a volume")
}

// ensureCredentials creates the Secret with a generated password unless it exists; an existing
// one, whoever made it, must hold both keys.
func ensureCredentials(ctx context.Context, client kubernetes.Interface, s Spec) (created bool, err error) {
	secrets := client.CoreV1().Secrets(s.Namespace)
	existing, err := secrets.Get(ctx, s.Secret, metav1.GetOptions{})
	switch {
	case err == nil:
		if len(existing.Data[UsernameKey]) == 0 || len(existing.Data[PasswordKey]) == 0 {
			return false, fmt.Errorf("Secret %s exists but lacks the keys %s and %s: fix it, or delete it to have one generated", s.Secret, UsernameKey, PasswordKey)
		}
		return false, ensureCookie(ctx, client, s, existing)
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("look for Secret %s: %w", s.Secret, err)
	}
	password, err := generatePassword()
	if err != nil {
		return false, err
	}
	cookie, err := generatePassword()
	if err != nil {
		return false, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Secret, Namespace: s.Namespace, Labels: Labels(s.Name)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{UsernameKey: []byte(DefaultUsername), PasswordKey: []byte(password), CookieKey: []byte(cookie)},
	}
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil // made meanwhile, by another install
		}
		return false, fmt.Errorf("create Secret %s: %w", s.Secret, err)
	}
	return true, nil
}

// passwordAlphabet keeps the password usable in an AMQP URL and a shell without escaping.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// generatePassword returns 32 random letters and digits, about 190 bits.
func generatePassword() (string, error) {
	const length = 32
	password := make([]byte, 0, length)
	buf := make([]byte, 64)
	for len(password) < length {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate a password: %w", err)
		}
		for _, b := range buf {
			// Rejecting the top of the byte range keeps every character equally likely.
			if int(b) < 256-256%len(passwordAlphabet) && len(password) < length {
				password = append(password, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(password), nil
}

// Status is the broker's progress towards ready, as WaitReady sees it.
type Status struct {
	Ready bool
	// Problem, when not empty, is why the pod is not running yet, in the cluster's words.
	Problem string
	// Fatal says the problem will not go away by waiting (a bad image name, a missing Secret key).
	Fatal bool
}

// CheckStatus looks at the StatefulSet and its pod once. A pod that is not ready and still runs
// an earlier spec is deleted: a StatefulSet never replaces such a pod by itself, so an install
// that fixes a bad image would otherwise wait for the broken pod forever. A pod that the API
// server refused to create (Pod Security, a quota, a LimitRange) since the time given is fatal.
func CheckStatus(ctx context.Context, client kubernetes.Interface, s Spec, since time.Time) (Status, error) {
	set, err := client.AppsV1().StatefulSets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return Status{}, fmt.Errorf("read StatefulSet %s: %w", s.Name, err)
	}
	if statefulSetReady(set) {
		return Status{Ready: true}, nil
	}
	if set.Status.ObservedGeneration < set.Generation {
		return Status{}, nil // the controller has not seen the change yet: the pod is of before
	}
	replicas := int32(1)
	if set.Spec.Replicas != nil {
		replicas = *set.Spec.Replicas
	}
	for ordinal := range replicas {
		status, err := checkPod(ctx, client, set, fmt.Sprintf("%s-%d", s.Name, ordinal), since)
		if err != nil || status.Problem != "" {
			return status, err
		}
	}
	return Status{}, nil
}

// checkPod looks at one pod of the StatefulSet, for CheckStatus.
func checkPod(ctx context.Context, client kubernetes.Interface, set *appsv1.StatefulSet, name string, since time.Time) (Status, error) {
	pods := client.CoreV1().Pods(set.Namespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		refused := refusedSince(ctx, client, set, since)
		return Status{Problem: refused, Fatal: refused != ""}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("read pod %s: %w", name, err)
	}
	if stale(set, pod) {
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return Status{}, fmt.Errorf("replace pod %s, which runs an earlier spec and is not ready: %w", pod.Name, err)
		}
		return Status{Problem: fmt.Sprintf("replacing pod %s, which runs an earlier spec and is not ready", pod.Name)}, nil
	}
	problem, fatal := podstatus.Problem(pod)
	if problem != "" && strings.Contains(problem, "not provisioned") {
		problem += "; --storage-class picks another class, --ephemeral needs none"
	}
	return Status{Problem: problem, Fatal: fatal}, nil
}

// refusedSince returns the latest reason the API server gave for refusing the StatefulSet's pod
// since the time given, or "". Who may not read events learns nothing here.
func refusedSince(ctx context.Context, client kubernetes.Interface, set *appsv1.StatefulSet, since time.Time) string {
	events, err := client.CoreV1().Events(set.Namespace).List(ctx, metav1.ListOptions{FieldSelector: podstatus.FailedCreateSelector("StatefulSet", set.Name)})
	if err != nil {
		return ""
	}
	refused, latest := "", since
	for i := range events.Items {
		ev := &events.Items[i]
		if at := ev.LastTimestamp.Time; !at.Before(latest) {
			if problem := podstatus.Refused(ev, set.UID); problem != "" {
				refused, latest = problem, at
			}
		}
	}
	return refused
}

// stale tells a pod of an earlier revision of the StatefulSet that is not ready.
func stale(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	revision := pod.Labels[appsv1.ControllerRevisionHashLabelKey]
	if set.Status.UpdateRevision == "" || revision == "" ||
		revision == set.Status.UpdateRevision || pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return false
		}
	}
	return true
}

func statefulSetReady(set *appsv1.StatefulSet) bool {
	st, replicas := set.Status, int32(1)
	if set.Spec.Replicas != nil {
		replicas = *set.Spec.Replicas
	}
	return st.ObservedGeneration >= set.Generation && st.ReadyReplicas >= replicas && st.UpdatedReplicas >= replicas &&
		(st.UpdateRevision == "" || st.CurrentRevision == st.UpdateRevision)
}
