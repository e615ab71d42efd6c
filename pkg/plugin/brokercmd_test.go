package plugin

import (
	"strings"
	"testing"
)

func TestBrokerInstallDryRunClientPrintsNoCredentials(t *testing.T) {
	getter := newFakeGetter()
	out, errOut, err := runCommand(t, getter, "", "broker", "install", "--dry-run=client", "-o", "yaml", "--storage-size", "5Gi")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Service", "kind: StatefulSet", "name: rabbitmq-service", "storage: 5Gi", "RABBITMQ_DEFAULT_PASS", "secretKeyRef", "image: rabbitmq:4.0.5"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if strings.Contains(out, "kind: Secret") || !strings.Contains(errOut, "not shown: Secret workqueue-broker") {
		t.Errorf("the Secret: stdout\n%s\nstderr %s", out, errOut)
	}
	if n := len(getter.client.Actions()); n != 0 {
		t.Errorf("a client dry run made %d calls to the cluster", n)
	}
}

func TestBrokerInstallRejectsBadInputBeforeTouchingTheCluster(t *testing.T) {
	cases := []rejection{
		{[]string{"broker", "install", "--ephemeral", "--storage-size", "1Gi"}, "--ephemeral keeps no volume"},
		{[]string{"broker", "install", "--storage-size", "0"}, "--ephemeral"},
		{[]string{"broker", "install", "--name", "Rabbit"}, `StatefulSet name "Rabbit"`},
		{[]string{"broker", "install", "--service", "1mq"}, `Service name "1mq"`},
		{[]string{"broker", "install", "--limits", "memory=lots"}, "not a quantity"},
		{[]string{"broker", "install", "--requests", "memory=2Gi", "--limits", "memory=1Gi"}, "above its limit"},
		{[]string{"broker", "install", "--image-pull-policy", "Sometimes"}, "--image-pull-policy"},
		{[]string{"broker", "install", "--dry-run=maybe"}, "--dry-run"},
		{[]string{"broker", "install", "extra"}, "unknown command"},
		{[]string{"broker", "instal"}, `unknown command "instal"`},
	}
	expectRejections(t, cases)
}

func TestBrokerUninstallWithNothingInstalledSaysSo(t *testing.T) {
	_, _, err := runCommand(t, newFakeGetter(), "", "broker", "uninstall")
	if err == nil || !strings.Contains(err.Error(), "no broker installed by kubectl workqueue in namespace test-ns") {
		t.Fatalf("got %v", err)
	}
}
