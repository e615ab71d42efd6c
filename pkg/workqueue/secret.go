package workqueue

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// BrokerSecretKey is the key of the pods' BROKER_URL in the Job's Secret.
const BrokerSecretKey = "url"

// BrokerSecretName is the Secret that gives a Job's pods BROKER_URL; the Job owns it. Its
// suffix keeps it apart from the broker's own credentials Secret, whatever the Job is called.
func BrokerSecretName(jobName string) string { return jobName + "-broker-url" }

// isJobSecret tells the Secret that run made for a Job from anything else of that name.
func isJobSecret(secret *corev1.Secret, jobName string) bool {
	return secret.Labels[constants.LabelManagedBy] == constants.ManagedBy && secret.Labels[constants.LabelJob] == jobName
}

// applyWithSecret creates the broker Secret and the Job, then makes the Job the Secret's owner;
// if the Job cannot be created, the Secret goes too.
func applyWithSecret(ctx context.Context, client kubernetes.Interface, namespace, jobName, podURL string, job *batchv1ac.JobApplyConfiguration, applyOptions metav1.ApplyOptions) (*batchv1.Job, error) {
	secretName := BrokerSecretName(jobName)
	secrets := client.CoreV1().Secrets(namespace)
	existing, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
	if err == nil && !isJobSecret(existing, jobName) {
		return nil, fmt.Errorf("Secret %s already exists and was not made by kubectl workqueue for Job %s: pass --name to give the Job another name", secretName, jobName)
	}
	secret := corev1ac.Secret(secretName, namespace).
		WithLabels(map[string]string{constants.LabelManagedBy: constants.ManagedBy, constants.LabelJob: jobName}).
		WithStringData(map[string]string{BrokerSecretKey: podURL})
	if _, err := secrets.Apply(ctx, secret, applyOptions); err != nil {
		return nil, fmt.Errorf("create Secret %s for the pods' BROKER_URL: %w", secretName, err)
	}
	created, err := client.BatchV1().Jobs(namespace).Apply(ctx, job, applyOptions)
	if err != nil {
		secrets.Delete(context.WithoutCancel(ctx), secretName, metav1.DeleteOptions{})
		return nil, fmt.Errorf("create Job %s: %w", jobName, err)
	}
	// Owned by the Job, the Secret is deleted with it (by hand, or by ttlSecondsAfterFinished).
	// Not cancelled by Ctrl-C: the Job exists now, and a Secret without its owner would outlive it.
	secret.WithOwnerReferences(metav1ac.OwnerReference().
		WithAPIVersion("batch/v1").WithKind("Job").WithName(created.Name).WithUID(created.UID).
		WithBlockOwnerDeletion(false))
	if _, err := secrets.Apply(context.WithoutCancel(ctx), secret, applyOptions); err != nil {
		return nil, fmt.Errorf("make Job %s the owner of Secret %s: %w", created.Name, secretName, err)
	}
	return created, nil
}
