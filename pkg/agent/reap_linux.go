package agent

import "syscall"

const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER from linux/prctl.h

// adoptOrphans makes processes that a command leaves behind children of the agent when their
// parent exits, as they are anyway when the agent is a container's PID 1, so that reapOrphans
// collects them instead of leaving zombies to pile up during a long drain.
func adoptOrphans() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}

// reapOrphans collects the exit status of every adopted process that has ended. It must only
// run while no command is running: it would take the command's own exit status.
func reapOrphans() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
