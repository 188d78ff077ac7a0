package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is one running component.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string

	done    chan struct{} // closed when the process has exited
	waitErr error         // the result of cmd.Wait, valid once done is closed
}

// startProcess runs bin with args, appending its output to logPath (appending
// keeps the log of an earlier run of the same component when it is
// restarted).
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	// The child inherits the descriptor; ours is not needed after Start.
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own lets stop reach anything the component forks,
		// and keeps a terminal's Ctrl-C away from it: RunTests stops the
		// control plane in order instead.
		Setpgid: true,
		// Kill the component when the process that started it dies, however
		// it dies (a panic, a test timeout, SIGKILL). Linux delivers this when
		// the starting OS thread exits; Go only ends threads of goroutines
		// that exit while locked to their thread, which callers of Start
		// must not be.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace for the process
// to exit, then kills the group. It returns an error if the process had
// crashed before stop was called or if the group could not be killed.
func (p *process) stop(grace time.Duration) error {
	var errs []error
	if p.exited() {
		errs = append(errs, fmt.Errorf("%s had exited before it was stopped: %v%s", p.name, p.waitErr, p.logTail()))
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// The leader has exited; kill whatever it left in its group, then make
	// sure the group is really gone.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("%s: process group %d survived SIGKILL", p.name, pgid))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// crashErr describes an unexpected exit, with the end of the log.
func (p *process) crashErr() error {
	return fmt.Errorf("%s exited: %v%s", p.name, p.waitErr, p.logTail())
}

// logTailLines is enough to show a component's fatal error and what led to it.
const logTailLines = 25

// logTail returns the last lines of the process's log, formatted to be
// appended to an error message.
func (p *process) logTail() string {
	return tailFile(p.logPath, logTailLines)
}

func tailFile(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Components log long lines; 64 KiB holds far more than the lines wanted.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(-window, io.SeekEnd)
	}
	data, err := io.ReadAll(f)
	if err != nil || len(data) == 0 {
		return ""
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return fmt.Sprintf("\n--- last lines of %s:\n%s", path, bytes.Join(all, []byte("\n")))
}
