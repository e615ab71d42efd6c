//go:build !linux

package agent

import (
	"errors"
	"os"
	"syscall"
)

func watchExit(attr *syscall.SysProcAttr, pidfd *int) { *pidfd = -1 }

func awaitExit(pidfd int) {}

func filledPipe(body []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, writeErr := w.Write(body)
	if err := errors.Join(writeErr, w.Close()); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
