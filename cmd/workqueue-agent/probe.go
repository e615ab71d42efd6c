package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/agent"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// probeTimeout bounds the whole probe: `kubectl workqueue doctor` waits for it.
const probeTimeout = 15 * time.Second

// runProbe is `workqueue-agent probe HOST:PORT`, which `kubectl workqueue doctor` runs in a pod
// of the cluster and whose log it reads: one line, and exit 0 when an AMQP broker answered, 1
// otherwise.
func runProbe(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "workqueue-agent: usage: workqueue-agent probe HOST:PORT")
		return outcome.ExitMisconfigured
	}
	result := agent.Probe(context.Background(), args[0], probeTimeout)
	fmt.Fprintln(stdout, result.String())
	if result.Stage != "" {
		return 1
	}
	return 0
}
