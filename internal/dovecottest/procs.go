package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The processes of a server are found in /proc and waited for with
// pidfds (Linux 5.3 and later), which tell when a process that is not
// our child exits, so that the methods that end processes (Crash, Stop,
// DropConnections) return once they are gone rather than after some
// guessed delay.

// procInfo is what /proc/<pid>/stat says of a process.
type procInfo struct {
	pid, ppid, pgrp int
	comm            string
	exited          bool // a zombie: its sockets are closed already
}

// procs lists the processes of the system whose stat match keeps.
func procs(keep func(procInfo) bool) ([]procInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...
		open, close := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(string(stat[close+1:]))
		if len(fields) < 3 {
			continue
		}
		p := procInfo{pid: pid, comm: string(stat[open+1 : close]), exited: fields[0] == "Z" || fields[0] == "X"}
		p.ppid, _ = strconv.Atoi(fields[1])
		p.pgrp, _ = strconv.Atoi(fields[2])
		if keep(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// exitTimeout bounds the wait for killed processes to exit: a guard
// against a process that cannot be killed, never a delay.
const exitTimeout = 10 * time.Second

// killAndWait sends SIGKILL to each process of ps and returns once every
// one of them has exited. It returns how many it signalled.
func killAndWait(ps []procInfo) (int, error) {
	var fds []int
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	n := 0
	for _, p := range ps {
		// The pidfd first: it names this process, whatever pid is
		// reused after it exits.
		fd, err := pidfdOpen(p.pid)
		if errors.Is(err, syscall.ESRCH) {
			continue // exited and reaped already
		}
		if err != nil {
			return n, fmt.Errorf("pidfd_open %d: %w", p.pid, err)
		}
		fds = append(fds, fd)
		if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n, waitExited(fds, exitTimeout)
}

// sysPidfdOpen is pidfd_open(2), the same number on every architecture
// Go supports on Linux.
const sysPidfdOpen = 434

func pidfdOpen(pid int) (int, error) {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	syscall.CloseOnExec(int(fd))
	return int(fd), nil
}

// waitExited waits until each pidfd of fds is readable, which it becomes
// when its process exits, or fails after timeout.
func waitExited(fds []int, timeout time.Duration) error {
	if len(fds) == 0 {
		return nil
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	defer syscall.Close(ep)
	for _, fd := range fds {
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll: %w", err)
		}
	}
	deadline := time.Now().Add(timeout)
	events := make([]syscall.EpollEvent, len(fds))
	for left := len(fds); left > 0; {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("%d killed processes still running after %v", left, timeout)
		}
		n, err := syscall.EpollWait(ep, events, int(wait.Milliseconds())+1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll: %w", err)
		}
		for _, ev := range events[:n] {
			_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, int(ev.Fd), nil)
			left--
		}
	}
	return nil
}
