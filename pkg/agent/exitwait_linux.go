package agent

import (
	"os"
	"syscall"
)

// watchExit asks for a pidfd of the command's process, so that awaitExit can wait for it.
func watchExit(attr *syscall.SysProcAttr, pidfd *int) {
	*pidfd = -1
	attr.PidFD = pidfd
}

// awaitExit returns once the process behind pidfd has ended, waiting in the runtime's network
// poller rather than in a thread blocked in waitid. Per item, that spares the cross-thread
// wake-ups which otherwise make the agent slower than amqp-consume on a quiet machine. It takes
// ownership of pidfd; with none (an old kernel), it returns at once and Wait blocks as usual.
func awaitExit(pidfd int) {
	if pidfd < 0 {
		return
	}
	if err := syscall.SetNonblock(pidfd, true); err != nil {
		syscall.Close(pidfd)
		return
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	conn, err := f.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd turns readable when its process ends. The first call asks the poller to wait for
	// that; one that is already readable when registered is reported at once.
	waited := false
	_ = conn.Read(func(uintptr) bool {
		done := waited
		waited = true
		return done
	})
}
