package agent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// zzSpawn is an EXPERIMENT (issue 14, route 2: starting the command with less runtime work),
// not yet measured against os/exec in the agent benchmark: only a binary linked with
// -ldflags "-X github.com/kubectl-workqueue/kubectl-workqueue/pkg/agent.zzSpawn=fork" (as
// BenchmarkDrainRateVersusAmqpConsume builds one) uses runFast; a release never does. It is to be
// made production code if it wins, or deleted.
var zzSpawn string

var zzFast = zzSpawn == "fork"

func (a *agent) runFast(it item) (commandResult, bool) {
	stdout, ok1 := a.cfg.Stdout.(*os.File)
	stderr, ok2 := a.cfg.Stderr.(*os.File)
	if !zzFast || a.cfg.Results != "" || !ok1 || !ok2 || len(it.delivery.Body) > smallBody {
		return commandResult{}, false
	}
	env := append(a.env[:len(a.env):len(a.env)],
		constants.EnvItemQueue+"="+a.cfg.Queue,
		constants.EnvItemMessageID+"="+it.messageID,
		constants.EnvItemAttempt+"="+strconv.Itoa(it.attempt),
	)
	r, err := filledPipe(it.delivery.Body)
	if err != nil {
		return commandResult{err: err}, true
	}
	reapOrphans()
	pidfd := -1
	start := time.Now()
	pid, err := syscall.ForkExec(a.commandPath, a.cfg.Command, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{r.Fd(), stdout.Fd(), stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd},
	})
	r.Close()
	if err != nil {
		return commandResult{err: fmt.Errorf("cannot start %s: %w", a.cfg.Command[0], err)}, true
	}
	result := commandResult{started: true}
	group := -pid
	var f *os.File
	if pidfd >= 0 && syscall.SetNonblock(pidfd, true) == nil {
		f = os.NewFile(uintptr(pidfd), "pidfd")
		defer f.Close()
	}
	var timeoutAt, graceAt time.Time
	if a.cfg.Timeout > 0 {
		timeoutAt = start.Add(a.cfg.Timeout)
	}
	for {
		// wait for exit, up to the next thing to check
		next := time.Now().Add(100 * time.Millisecond)
		if !timeoutAt.IsZero() && timeoutAt.Before(next) {
			next = timeoutAt
		}
		if !graceAt.IsZero() && graceAt.Before(next) {
			next = graceAt
		}
		exited := false
		if f != nil {
			conn, _ := f.SyscallConn()
			_ = f.SetReadDeadline(next)
			err := conn.Read(func(fd uintptr) bool {
				readable, err := pollReadable(int(fd))
				return readable || err != nil
			})
			exited = !errors.Is(err, os.ErrDeadlineExceeded)
		}
		if exited || f == nil {
			var status syscall.WaitStatus
			// Never a blocking wait: signals and the timeout must still be seen. Without a pidfd
			// (an old kernel) this polls every millisecond.
			wpid, err := syscall.Wait4(pid, &status, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if wpid == pid {
				result.duration = time.Since(start)
				switch {
				case status.Signaled():
					result.exitCode, result.err = 128+int(status.Signal()), fmt.Errorf("command killed by %s", signalName(status.Signal()))
				case status.ExitStatus() != 0:
					result.exitCode, result.err = status.ExitStatus(), fmt.Errorf("command exited with status %d", status.ExitStatus())
				}
				return result, true
			}
			if f == nil {
				time.Sleep(time.Millisecond)
			}
		}
		select {
		case sig := <-a.cfg.Signals:
			if result.signal == nil {
				result.signal = sig
				graceAt = time.Now().Add(a.cfg.Grace)
			}
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(group, s)
			}
		default:
		}
		now := time.Now()
		if !timeoutAt.IsZero() && !now.Before(timeoutAt) {
			result.timedOut = true
			timeoutAt = time.Time{}
			_ = syscall.Kill(group, syscall.SIGKILL)
		}
		if !graceAt.IsZero() && !now.Before(graceAt) {
			graceAt = time.Time{}
			_ = syscall.Kill(group, syscall.SIGKILL)
		}
	}
}
