package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// Probe stages, in the order they are tried; a failed probe names the first that failed.
const (
	ProbeResolve = "resolve" // the broker's name resolves in the pod
	ProbeConnect = "connect" // its port accepts a TCP connection from the pod
	ProbeAMQP    = "amqp"    // an AMQP 0-9-1 broker answers there
)

// amqpHeader opens an AMQP 0-9-1 connection; a broker answers with a method frame.
var amqpHeader = []byte("AMQP\x00\x00\x09\x01")

// ProbeResult says how far a probe got.
type ProbeResult struct {
	Stage string // the stage that failed; empty when all passed
	Err   error
	Addrs []string // what the name resolved to
}

// String is one line for the pod's log and termination message, which `kubectl workqueue
// doctor` reads: "ok: ..." or "STAGE: error".
func (r ProbeResult) String() string {
	if r.Stage == "" {
		return fmt.Sprintf("ok: resolved to %v; connected; an AMQP 0-9-1 broker answered", r.Addrs)
	}
	return fmt.Sprintf("%s: %v", r.Stage, r.Err)
}

// Probe checks from inside the cluster what cannot be seen from outside it: that a pod resolves
// the broker's name, reaches its port, and finds an AMQP broker there. NetworkPolicies and
// cluster DNS show only here.
func Probe(ctx context.Context, address string, timeout time.Duration) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return ProbeResult{Stage: ProbeResolve, Err: err}
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return ProbeResult{Stage: ProbeResolve, Err: err}
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", address)
	if err != nil {
		return ProbeResult{Stage: ProbeConnect, Err: err, Addrs: addrs}
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := conn.Write(amqpHeader); err != nil {
		return ProbeResult{Stage: ProbeAMQP, Err: err, Addrs: addrs}
	}
	frameType := make([]byte, 1)
	if _, err := io.ReadFull(conn, frameType); err != nil {
		return ProbeResult{Stage: ProbeAMQP, Err: fmt.Errorf("no answer to the AMQP protocol header: %w", err), Addrs: addrs}
	}
	if frameType[0] != 1 {
		return ProbeResult{Stage: ProbeAMQP, Err: fmt.Errorf("the answer is not an AMQP 0-9-1 method frame (first byte %#x)", frameType[0]), Addrs: addrs}
	}
	return ProbeResult{Addrs: addrs}
}
