// Package childproc runs the helper processes of the tests and the demo
// (the exporter, Prometheus): each dies with the process that started it,
// even on a panic or a kill, and keeps its output for the test's log.
package childproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a running child process.
type Process struct {
	name    string
	cmd     *exec.Cmd
	output  syncBuffer
	exited  chan struct{}
	once    sync.Once
	stopErr error
}

// Start runs binary with args in dir ("" for the current directory).
// name says what it is, in errors.
func Start(name, binary, dir string, args ...string) (*Process, error) {
	return StartWithEnv(name, binary, dir, nil, args...)
}

// StartWithEnv is Start with env (NAME=value) added to the environment
// the process inherits.
func StartWithEnv(name, binary, dir string, env []string, args ...string) (*Process, error) {
	p := &Process{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	// The child dies with the test process, even on a panic or kill.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, binary, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Output returns what the process has written to stdout and stderr so far.
func (p *Process) Output() string { return p.output.String() }

// PID returns the process id, for reading its /proc figures.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the process to end, with SIGKILL after
// 10s. It is safe to call more than once.
func (p *Process) Stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = fmt.Errorf("%s did not stop within 10s of SIGTERM", p.name)
		}
	})
	return p.stopErr
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for the process's writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitHTTPReady polls url until it answers 200, the process exits, or
// timeout passes; the error carries the last answer and the process's
// output. For servers with a readiness endpoint (Prometheus' and
// Alertmanager's /-/ready).
func (p *Process) WaitHTTPReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready; log:\n%s", p.name, p.Output())
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d %q", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %s; %s log:\n%s", url, last, p.name, p.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
