package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestExitCode(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name        string
		err         error
		interrupted bool
		want        int
	}{
		{"success", nil, false, ExitOK},
		{"anything else", errors.New("boom"), false, ExitFailed},
		{"bad input", badInput(errors.New("--skip must not be negative")), false, ExitBadInput},
		{"a code survives wrapping", fmt.Errorf("context: %w", &ExitError{Code: ExitItemsFailed, Err: errors.New("2 items dead-lettered")}), false, ExitItemsFailed},
		{"the first code given wins", withExitCode(ExitFailed, badInput(errors.New("x"))), false, ExitBadInput},
		{"unknown flag", errors.New("unknown flag: --frobnicate"), false, ExitBadInput},
		{"network", fmt.Errorf("get jobs: %w", refused), false, ExitUnreachable},
		{"API server unavailable", apierrors.NewServiceUnavailable("etcd"), false, ExitUnreachable},
		{"forbidden is not unreachable", apierrors.NewForbidden(schema.GroupResource{Resource: "jobs"}, "j", errors.New("no")), false, ExitFailed},
		{"interrupted", errors.New("stopped"), true, ExitInterrupted},
		{"cancelled", fmt.Errorf("wait: %w", context.Canceled), false, ExitInterrupted},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err, tt.interrupted); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestUnknownFlagsAndMissingArgumentsAreBadInput(t *testing.T) {
	for _, args := range [][]string{{"fill", "q", "--frobnicate"}, {"status"}, {"delete", "a", "b"}, {"frobnicate"}} {
		_, _, err := runCommand(t, newFakeGetter(), "", args...)
		if code := ExitCode(err, false); code != ExitBadInput {
			t.Errorf("%q: exit code %d (%v), want %d", args, code, err, ExitBadInput)
		}
	}
}
