// Command kubectl-workqueue is the kubectl plugin `kubectl workqueue`: fill a RabbitMQ work queue
// in the cluster and run a Job that processes it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/plugin"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// moduleVersion is the version without -ldflags: the tag that `go install ...@v1.2.3` records
// in the binary, or "dev" for a build from a checkout.
func moduleVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C asks the command to stop cleanly; a second one ends the process at once,
	// for a command blocked where it cannot notice (reading a terminal or a pipe).
	go func() {
		<-ctx.Done()
		stop()
	}()

	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cmd := plugin.NewRootCommand(streams, moduleVersion())
	err := cmd.ExecuteContext(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "error: "+err.Error())
	os.Exit(plugin.ExitCode(err, interrupted))
}
