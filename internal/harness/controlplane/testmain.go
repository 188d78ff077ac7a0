package controlplane

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// RunTests is the body of TestMain for a package of integration tests:
//
//	var cp *controlplane.ControlPlane
//
//	func TestMain(m *testing.M) { os.Exit(controlplane.RunTests(m, &cp)) }
//
// It starts a control plane, stores it in *cp, runs the tests, stops the
// control plane and returns the exit code. Missing binaries fail the run
// (they are never a reason to skip): the message names `make tools`. After
// failed tests the working directory is kept, and its path printed, so the
// component logs can be read. SIGINT and SIGTERM stop the control plane
// before the test binary exits.
func RunTests(m *testing.M, cp **ControlPlane) int {
	return RunTestsWith(m, cp, Options{})
}

// RunTestsWith is RunTests with a control plane started with opts (its
// Logf is set in verbose runs).
func RunTestsWith(m *testing.M, cp **ControlPlane, opts Options) int {
	flag.Parse() // for testing.Verbose
	if testing.Verbose() {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "controlplane: "+format+"\n", args...)
		}
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		return 1
	}
	*cp = c

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		s := <-signals
		fmt.Fprintf(os.Stderr, "controlplane: %v: stopping the control plane\n", s)
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		}
		os.Exit(1)
	}()

	code := m.Run()
	if code != 0 && c.removeDir {
		c.mu.Lock()
		c.keepDir = true
		c.mu.Unlock()
		fmt.Fprintf(os.Stderr, "controlplane: tests failed; logs kept in %s\n", c.files.logs)
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
