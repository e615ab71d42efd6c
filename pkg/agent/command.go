package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// smallBody is the largest body written into the command's stdin pipe before the command
// starts: a fresh pipe always holds one page, so the write cannot block, and no copying
// goroutine is needed for the common case of a short item.
const smallBody = 4096

// outputWaitDelay bounds how long the agent waits for the command's output to be copied after
// the command exited, when a background child it left behind still holds the output open.
const outputWaitDelay = 2 * time.Second

// commandResult says how one run of the command ended.
type commandResult struct {
	started  bool
	exitCode int       // the exit status, or 128+N when killed by signal N (as shells report it)
	timedOut bool      // killed because --timeout passed
	signal   os.Signal // the signal that told the agent to stop while the command ran
	err      error     // why it could not start, or how it failed
	duration time.Duration

	// With results on, the output for the record (see resultCapture).
	output          []byte
	outputFrom      string // outcome.OutputFromFile or outcome.OutputFromStdout; empty with results off
	outputTruncated bool
}

// exitedZero reports a command that ran to exit 0 by itself: not killed for its timeout. A
// signal may have come meanwhile; the command finished its item anyway.
func (r commandResult) exitedZero() bool {
	return r.started && r.exitCode == 0 && r.err == nil && !r.timedOut
}

// cannotEverStart tells the reasons a command cannot start in any pod of the Job (not
// executable, not found, wrong architecture) from those of this pod (too many processes, no
// memory, no file descriptors), which another pod may not have.
func cannotEverStart(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES, syscall.EPERM,
		syscall.ENOEXEC, syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EISDIR, syscall.ELIBBAD} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// runCommand runs the command for one item: directly, without a shell, with the body on stdin,
// in a process group of its own so that a timeout or a second signal reaches its children too.
// Signals that arrive meanwhile are forwarded to the group; if it has not ended after the grace
// period, the group is killed.
func (a *agent) runCommand(it item) (result commandResult) {
	if r, ok := a.runFast(it); ok {
		return r
	}
	cmd := exec.Command(a.commandPath, a.cfg.Command[1:]...)
	cmd.Args[0] = a.cfg.Command[0]
	cmd.Env = append(a.env[:len(a.env):len(a.env)],
		constants.EnvItemQueue+"="+a.cfg.Queue,
		constants.EnvItemMessageID+"="+it.messageID,
		constants.EnvItemAttempt+"="+fmt.Sprint(it.attempt),
	)
	// Without results, the command writes to the agent's own stdout directly: no pipe, no copying.
	cmd.Stdout = a.cfg.Stdout
	cmd.Stderr = a.cfg.Stderr
	if a.cfg.Results != "" {
		capture, err := newResultCapture(a.cfg.ResultSize)
		if err != nil && !a.resultDirReported {
			a.logf("%v", err)
			a.resultDirReported = true
		}
		if file := capture.file(); file != "" {
			cmd.Env = append(cmd.Env, constants.EnvItemResultFile+"="+file)
		}
		cmd.Stdout = capture.stdout(a.cfg.Stdout)
		defer func() {
			if err := capture.collect(&result); err != nil {
				a.logf("item %s: %v", it.messageID, err)
			}
		}()
	}
	cmd.WaitDelay = outputWaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var pidfd int
	watchExit(cmd.SysProcAttr, &pidfd)

	body := it.delivery.Body
	var stdinReader *os.File
	if len(body) <= smallBody {
		r, err := filledPipe(body)
		if err != nil {
			return commandResult{err: fmt.Errorf("cannot pass the item to the command's input: %w", err)}
		}
		stdinReader = r
		cmd.Stdin = r
	} else {
		cmd.Stdin = bytes.NewReader(body)
	}

	// Orphans of earlier items are collected now, while no command runs, rather than right
	// after each command, which would delay settling its item.
	reapOrphans()
	start := time.Now()
	err := cmd.Start()
	if stdinReader != nil {
		stdinReader.Close()
	}
	if err != nil {
		return commandResult{err: fmt.Errorf("cannot start %s: %w", a.cfg.Command[0], err)}
	}

	waited := make(chan error, 1)
	go func() {
		awaitExit(pidfd)
		waited <- cmd.Wait()
	}()

	result = commandResult{started: true}
	group := -cmd.Process.Pid
	var timeout, grace <-chan time.Time
	if a.cfg.Timeout > 0 {
		timer := time.NewTimer(a.cfg.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	for {
		select {
		case err := <-waited:
			result.duration = time.Since(start)
			result.exitCode, result.err = exitStatus(cmd, err)
			return result
		case <-timeout:
			result.timedOut = true
			timeout = nil
			_ = syscall.Kill(group, syscall.SIGKILL)
		case sig := <-a.cfg.Signals:
			if result.signal == nil {
				result.signal = sig
				timer := time.NewTimer(a.cfg.Grace)
				defer timer.Stop()
				grace = timer.C
			}
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(group, s)
			}
		case <-grace:
			grace = nil
			a.logf("command did not stop within %s of %s; killing it", a.cfg.Grace, signalName(result.signal))
			_ = syscall.Kill(group, syscall.SIGKILL)
		}
	}
}

// exitStatus turns the result of Wait into an exit code and, for a failure, an error that says
// how the command ended.
func exitStatus(cmd *exec.Cmd, waitErr error) (int, error) {
	state := cmd.ProcessState
	if state == nil {
		return -1, fmt.Errorf("command ended abnormally: %w", waitErr)
	}
	if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 128 + int(status.Signal()), fmt.Errorf("command killed by %s", signalName(status.Signal()))
	}
	if code := state.ExitCode(); code != 0 {
		return code, fmt.Errorf("command exited with status %d", code)
	}
	// Exit 0 with ErrWaitDelay: a leftover child kept the output open; the command succeeded.
	return 0, nil
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGKILL:
		return "SIGKILL"
	case nil:
		return "a signal"
	}
	return sig.String()
}
