package agent

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestAwaitExitReturnsForAProcessThatEndedBeforeTheWait(t *testing.T) {
	for _, tt := range []struct {
		name    string
		command []string
		before  time.Duration // how long to let it run before waiting
	}{
		{"ended already", []string{"true"}, 300 * time.Millisecond},
		{"ends while waited for", []string{"sleep", "0.3"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.command[0], tt.command[1:]...)
			cmd.SysProcAttr = &syscall.SysProcAttr{}
			var pidfd int
			watchExit(cmd.SysProcAttr, &pidfd)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if pidfd < 0 {
				t.Skip("the kernel gives no pidfd; awaitExit falls back to a blocking wait")
			}
			time.Sleep(tt.before)
			done := make(chan struct{})
			go func() {
				awaitExit(pidfd)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("awaitExit did not return for a process that ended")
			}
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
