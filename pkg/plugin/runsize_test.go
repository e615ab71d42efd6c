package plugin

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
)

func TestDescribePick(t *testing.T) {
	cases := []struct {
		pick             job.ParallelismPick
		mode             constants.Mode
		completionsGiven bool
		want             string
	}{
		{job.ParallelismPick{Parallelism: 2, Default: 2, Items: 120}, constants.ModeOne, false,
			"parallelism 2 (default 2; 120 items ready): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 1, Default: 2, Items: 1}, constants.ModeOne, false,
			"parallelism 1 (default 2; 1 item ready): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 1, Default: 2, Items: 1}, constants.ModeOne, true,
			"parallelism 1 (default 2; 1 completion): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 2, Default: 2, Items: 0}, constants.ModeDrain, false,
			"parallelism 2 (default 2; no items ready yet): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 2, Default: 2, Items: -1, QuotasUnread: "quotas not read with --dry-run=client"}, constants.ModeDrain, false,
			"parallelism 2 (default 2; quotas not read with --dry-run=client): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 2, Default: 2, Items: 120, Room: &job.QuotaRoom{Quota: "team", Resource: "pods", Pods: 6}}, constants.ModeOne, false,
			"parallelism 2 (default 2; 120 items ready; quota team allows 6 more pods): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 1, Default: 2, Items: 120, Room: &job.QuotaRoom{Quota: "compute", Resource: "requests.cpu", Pods: 1}}, constants.ModeDrain, false,
			"parallelism 1 (default 2; 120 items ready; quota compute allows 1 more pod by requests.cpu): set --parallelism to choose"},
		{job.ParallelismPick{Parallelism: 2, Default: 2, Items: 120, QuotasUnread: "quotas not read: you may not list resourcequotas"}, constants.ModeOne, false,
			"parallelism 2 (default 2; 120 items ready; quotas not read: you may not list resourcequotas): set --parallelism to choose"},
	}
	for _, tc := range cases {
		if got := describePick(tc.pick, tc.mode, tc.completionsGiven); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestModeHint(t *testing.T) {
	spec := func(mode constants.Mode, completions, parallelism int32) job.Spec {
		s := job.Spec{Mode: mode, Parallelism: parallelism}
		if mode == constants.ModeOne {
			s.Completions = &completions
		}
		return s
	}
	for _, tc := range []struct {
		spec job.Spec
		want string
	}{
		{spec(constants.ModeOne, 100, 2), ""},
		{spec(constants.ModeOne, 101, 2), `hint: --mode one starts a pod for each of the 101 items; when an item takes less time than a pod takes to start (seconds), --mode drain is faster: see "Choosing a mode" in the README`},
		{spec(constants.ModeOne, 2000, 40), ""},
		{spec(constants.ModeOne, 2001, 40), "each of the 2001 items"},
		{spec(constants.ModeDrain, 0, 2), ""},
	} {
		got := modeHint(tc.spec)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s, %d items, parallelism %d: got %q, want %q", tc.spec.Mode, ptrValueOr(tc.spec.Completions), tc.spec.Parallelism, got, tc.want)
		}
	}
}

func ptrValueOr(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

// What run prints on stderr about its parallelism and mode, in a run that touches nothing: a
// client dry run with --completions reads neither queue nor cluster.
func TestRunSaysWhatParallelismItPicked(t *testing.T) {
	base := []string{"run", "job1", "--image", "i", "--dry-run=client", "-o", "yaml", "--broker-url", "amqp://u:p@h/"}
	cases := []struct {
		args        []string
		want        []string // stderr lines, exactly
		parallelism string
	}{
		{[]string{"--completions", "3"},
			[]string{"parallelism 2 (default 2; 3 completions; quotas not read with --dry-run=client): set --parallelism to choose"}, "parallelism: 2"},
		{[]string{"--completions", "1"},
			[]string{"parallelism 1 (default 2; 1 completion; quotas not read with --dry-run=client): set --parallelism to choose"}, "parallelism: 1"},
		{[]string{"--completions", "3", "--parallelism", "5"}, nil, "parallelism: 5"},
		{[]string{"--completions", "500"}, []string{
			"parallelism 2 (default 2; 500 completions; quotas not read with --dry-run=client): set --parallelism to choose",
			`hint: --mode one starts a pod for each of the 500 items; when an item takes less time than a pod takes to start (seconds), --mode drain is faster: see "Choosing a mode" in the README`,
		}, "parallelism: 2"},
		{[]string{"--completions", "500", "--parallelism", "10"}, nil, "parallelism: 10"},
		{[]string{"--mode", "drain"},
			[]string{"parallelism 2 (default 2; quotas not read with --dry-run=client): set --parallelism to choose"}, "parallelism: 2"},
	}
	for _, tc := range cases {
		out, errOut, err := runCommand(t, newFakeGetter(), "", append(append(base, tc.args...), "--", "cat")...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		var lines []string
		if errOut != "" {
			lines = strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		}
		if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%v: stderr\n%s\nwant\n%s", tc.args, errOut, strings.Join(tc.want, "\n"))
		}
		if !strings.Contains(out, tc.parallelism+"\n") {
			t.Errorf("%v: the Job lacks %q:\n%s", tc.args, tc.parallelism, out)
		}
	}
}

// With the queue and the cluster read (a server dry run), the line names the ready items and
// the quota that bounds the pods.
func TestRunPicksParallelismFromTheQueueAndTheQuota(t *testing.T) {
	url, name := brokerURL(t), testQueue(t)
	items := []string{"fill", name, "--broker-url", url, "-q"}
	for _, item := range []string{"a", "b", "c", "d", "e"} {
		items = append(items, "--item", item)
	}
	if _, _, err := runCommand(t, newFakeGetter(), "", items...); err != nil {
		t.Fatal(err)
	}
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "test-ns"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"requests.cpu": resource.MustParse("1")}},
		Status: corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{"requests.cpu": resource.MustParse("1")},
			Used: corev1.ResourceList{"requests.cpu": resource.MustParse("600m")}}}
	args := []string{"run", name, "--name", "picked", "--image", "i", "--dry-run=server", "-o", "yaml", "--broker-url", url}

	_, errOut, err := runCommand(t, newFakeGetter(quota), "", append(args, "--", "cat")...)
	want := "parallelism 2 (default 2; 5 items ready): set --parallelism to choose\n"
	if err != nil || errOut != want {
		t.Fatalf("without requests: %v\n%s", err, errOut)
	}
	out, errOut, err := runCommand(t, newFakeGetter(quota), "", append(args, "--requests", "cpu=200m", "--", "cat")...)
	want = "parallelism 2 (default 2; 5 items ready; quota team allows 2 more pods by requests.cpu): set --parallelism to choose\n"
	if err != nil || errOut != want || !strings.Contains(out, "parallelism: 2\n") {
		t.Fatalf("with requests of 200m: %v\n%s", err, errOut)
	}
	_, errOut, err = runCommand(t, newFakeGetter(quota), "", append(args, "--requests", "cpu=300m", "--", "cat")...)
	want = "parallelism 1 (default 2; 5 items ready; quota team allows 1 more pod by requests.cpu): set --parallelism to choose\n"
	if err != nil || errOut != want {
		t.Fatalf("with requests of 300m: %v\n%s", err, errOut)
	}
}
