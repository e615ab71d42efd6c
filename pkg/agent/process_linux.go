package agent

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"
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
	// A pidfd turns readable when its process ends, and stays so. The poller reports only
	// changes, so each round first checks whether that has already happened. The deadline is a
	// safety net: should a wake-up ever be lost, the check runs again a second later.
	for {
		if err := f.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			return
		}
		err := conn.Read(func(fd uintptr) bool {
			readable, err := pollReadable(int(fd))
			return readable || err != nil
		})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

// pollReadable reports whether fd is readable right now, without waiting.
func pollReadable(fd int) (bool, error) {
	pollFD := struct {
		fd      int32
		events  int16
		revents int16
	}{fd: int32(fd), events: pollIn}
	var noWait syscall.Timespec
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pollFD)), 1, uintptr(unsafe.Pointer(&noWait)), 0, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return false, errno
		}
		return n > 0, nil
	}
}

const pollIn = 0x1 // POLLIN from poll.h

// filledPipe returns the read end of a pipe that holds body and is closed for writing. body must
// fit in the pipe's first page so that writing cannot block. The pipe is made directly rather
// than with os.Pipe, whose ends join the network poller: that costs a dozen system calls per
// item for a pipe that the command reads and the agent never waits on.
func filledPipe(body []byte) (*os.File, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, err
	}
	var writeErr error
	for written := 0; written < len(body) && writeErr == nil; {
		var n int
		n, writeErr = syscall.Write(fds[1], body[written:])
		if writeErr == syscall.EINTR {
			writeErr = nil
		}
		written += max(n, 0)
	}
	closeErr := syscall.Close(fds[1])
	if err := errors.Join(writeErr, closeErr); err != nil {
		syscall.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "item"), nil
}
