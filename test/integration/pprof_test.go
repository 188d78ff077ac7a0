package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestProfilesOnlyWhenEnabled: the runtime profiles are served under
// /debug/pprof/ with --web.enable-pprof, and not at all without it
// (docs/operations.md#profiling). The heap profile is the one the scale
// harness reads: a gzipped profile whose strings name the heap samples and
// the exporter's own functions. The landing page links the profiles only
// when they are served (exporter-toolkit links them by default).
func TestProfilesOnlyWhenEnabled(t *testing.T) {
	ctx := context.Background()

	off := startExporter(t)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		status, body, err := off.Get(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusNotFound {
			t.Errorf("without --web.enable-pprof, GET %s: status %d, want 404; body %.200q", path, status, body)
		}
	}
	if _, landing, err := off.Get(ctx, "/"); err != nil || strings.Contains(landing, "debug/pprof/heap") {
		t.Errorf("without --web.enable-pprof the landing page links the profiles (err %v)", err)
	}

	on := startExporter(t, "--web.enable-pprof")
	status, index, err := on.Get(ctx, "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.Contains(index, "heap") || !strings.Contains(index, "goroutine") {
		t.Errorf("GET /debug/pprof/: status %d, want 200 and an index naming heap and goroutine; body %.300q", status, index)
	}
	if _, landing, err := on.Get(ctx, "/"); err != nil || !strings.Contains(landing, "debug/pprof/heap") {
		t.Errorf("with --web.enable-pprof the landing page does not link the profiles (err %v)", err)
	}

	status, heap, err := on.Get(ctx, "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Fatalf("GET /debug/pprof/heap: status %d, body %.300q", status, heap)
	}
	zr, err := gzip.NewReader(strings.NewReader(heap))
	if err != nil {
		t.Fatalf("the heap profile is not gzipped: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("the heap profile does not decompress: %v", err)
	}
	for _, want := range []string{"inuse_space", "github.com/kube-spread-exporter/kube-spread-exporter/"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("the heap profile (%d bytes) does not name %q", len(raw), want)
		}
	}

	status, cpu, err := on.Get(ctx, "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.HasPrefix(cpu, "\x1f\x8b") {
		t.Errorf("GET /debug/pprof/profile?seconds=1: status %d, want 200 and a gzipped profile; body %.100q", status, cpu)
	}
}
