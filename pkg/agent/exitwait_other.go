//go:build !linux

package agent

import "syscall"

func watchExit(attr *syscall.SysProcAttr, pidfd *int) { *pidfd = -1 }

func awaitExit(pidfd int) {}
