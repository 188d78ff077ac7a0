package exporterproc

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
)

// ForTest builds the exporter, runs it against kubeconfig with the flags,
// and waits until its caches have synced. It stops the exporter when the
// test ends and logs the exporter's output if the test failed.
func ForTest(t testing.TB, kubeconfig string, flags ...string) *Exporter {
	t.Helper()
	e := StartForTest(t, kubeconfig, flags...)
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// StartForTest is ForTest without waiting for the caches, for tests of
// what the exporter does before they sync.
func StartForTest(t testing.TB, kubeconfig string, flags ...string) *Exporter {
	t.Helper()
	binary := BuildForTest(t, "kube-spread-exporter")
	e, err := Start(context.Background(), binary, kubeconfig, flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", e.Log())
		}
	})
	return e
}

// BuildForTest builds ./cmd/<name> into the test's temporary directory and
// returns the binary's path; the Go build cache makes it cheap after the
// first time.
func BuildForTest(t testing.TB, name string) string {
	t.Helper()
	binary, err := BuildCommand(context.Background(), repo.RootForTest(t), t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return binary
}

// Eventually scrapes the exporter until check passes, failing the test
// after a minute. Changes travel API server, watch, cache, scrape: they are
// polled for, never waited for with a fixed sleep.
func Eventually(t testing.TB, e *Exporter, what string, check func(metrics map[string]*dto.MetricFamily) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last error
	for {
		metrics, err := e.Scrape(ctx)
		if err == nil {
			if last = check(metrics); last == nil {
				return
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not seen in /metrics within a minute: %v", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Expect returns an error unless the sample of name whose labels include
// the given ones has the value want.
func Expect(metrics map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) error {
	got, ok := Value(metrics, name, labels)
	if !ok {
		return fmt.Errorf("%s%v: no sample, want %v", name, labels, want)
	}
	if got != want {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
	return nil
}

// Absent returns an error when a sample of name with the labels exists.
func Absent(metrics map[string]*dto.MetricFamily, name string, labels map[string]string) error {
	if got, ok := Value(metrics, name, labels); ok {
		return fmt.Errorf("%s%v = %v, want no sample", name, labels, got)
	}
	return nil
}
