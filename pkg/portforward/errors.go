// Package portforward reaches a pod behind a Service from the laptop: it resolves the Service to a
// ready pod and container port, then forwards a local port to it through the API server the way
// kubectl port-forward does (WebSocket first, SPDY as the fallback).
package portforward

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is. The errors returned by this package carry a message written
// for the user (what went wrong and what to do); these only classify them.
var (
	// ErrServiceNotFound: the Service does not exist in the namespace.
	ErrServiceNotFound = errors.New("service not found")
	// ErrNoSelector: the Service has no pod selector, so there is no pod to forward to.
	ErrNoSelector = errors.New("service has no selector")
	// ErrNoSuchPort: the Service (or the chosen pod) has no port matching the request.
	ErrNoSuchPort = errors.New("no such port")
	// ErrNoReadyPod: no Running, Ready, not-terminating pod matches the Service's selector.
	ErrNoReadyPod = errors.New("no ready pod")
	// ErrForbidden: the user may not create pods/portforward in the namespace.
	ErrForbidden = errors.New("forbidden")
	// ErrLost: an established forward ended on its own (connection lost, pod gone). Build a new
	// Session to retry: one failed connection ends the whole forward.
	ErrLost = errors.New("port-forward lost")
)

// classifiedError is a user-facing message that also matches a sentinel (kind) and wraps its cause.
type classifiedError struct {
	kind  error
	msg   string
	cause error
}

func (e *classifiedError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *classifiedError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func classified(kind error, cause error, format string, args ...any) error {
	return &classifiedError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// ForbiddenError says which RBAC permission is missing to port-forward. It matches ErrForbidden.
type ForbiddenError struct {
	Namespace, Pod string
	Cause          error
}

func (e *ForbiddenError) Error() string {
	msg := fmt.Sprintf("not allowed to port-forward to pod %s/%s: your user lacks the RBAC permission create pods/portforward in namespace %q; ask a cluster admin for it",
		e.Namespace, e.Pod, e.Namespace)
	if e.Cause != nil {
		msg += " (" + e.Cause.Error() + ")"
	}
	return msg
}

func (e *ForbiddenError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrForbidden}
	}
	return []error{ErrForbidden, e.Cause}
}

// LostError says why a forward ended on its own. It matches ErrLost.
type LostError struct {
	Target Target
	// Detail is the last error the forwarder saw on a connection (often the pod side refusing or
	// resetting it), empty when the connection to the API server simply closed.
	Detail string
	Cause  error
}

func (e *LostError) Error() string {
	msg := fmt.Sprintf("lost the port-forward to pod %s/%s port %d", e.Target.Namespace, e.Target.Pod, e.Target.Port)
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg + " (start a new port-forward to retry)"
}

func (e *LostError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrLost}
	}
	return []error{ErrLost, e.Cause}
}
