package plugin

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Exit codes of kubectl workqueue, distinct so that a script can tell what went wrong. The
// README lists them; keep the two in step.
const (
	ExitOK = 0
	// ExitFailed is any failure not listed below.
	ExitFailed = 1
	// ExitBadInput: a flag, an argument or an input file was wrong; nothing was changed.
	ExitBadInput = 2
	// ExitItemsFailed: items failed every attempt (dead-lettered) or were left in the queue.
	ExitItemsFailed = 3
	// ExitJobFailed: the Job failed for another reason (its deadline, pods that cannot start).
	ExitJobFailed = 4
	// ExitUnreachable: the cluster or the broker could not be reached, or refused the login.
	ExitUnreachable = 5
	// ExitInterrupted: stopped by Ctrl-C or SIGTERM, as shells report SIGINT.
	ExitInterrupted = 130
)

// ExitError gives an error its exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// withExitCode gives err the code unless it already has one.
func withExitCode(code int, err error) error {
	var exit *ExitError
	if err == nil || errors.As(err, &exit) {
		return err
	}
	return &ExitError{Code: code, Err: err}
}

// badInput marks what Complete and Validate refuse.
func badInput(err error) error { return withExitCode(ExitBadInput, err) }

// completeValidateRun runs a command's three steps, a refusal of the first two being bad input.
func completeValidateRun(complete, validate func() error, run func() error) error {
	if err := complete(); err != nil {
		return badInput(err)
	}
	if err := validate(); err != nil {
		return badInput(err)
	}
	return run()
}

// ExitCode is the process exit code for the error a command returned; interrupted says the
// user stopped the command.
func ExitCode(err error, interrupted bool) int {
	var exit *ExitError
	switch {
	case err == nil:
		return ExitOK
	case interrupted || errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &exit):
		return exit.Code
	case strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") || strings.HasPrefix(err.Error(), "unknown shorthand flag"):
		return ExitBadInput
	case unreachable(err):
		return ExitUnreachable
	}
	return ExitFailed
}

// unreachable tells errors of a network that did not carry the request, or of a server that
// did not answer it, from everything else.
func unreachable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	return errors.As(err, &netErr) || errors.As(err, &opErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsUnauthorized(err)
}
