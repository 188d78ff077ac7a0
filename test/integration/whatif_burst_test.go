package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// TestWhatIfBurst asks the real exporter 1,000 what-ifs at once, 100 of
// them POSTing 10,000 unknown nodes of 250 bytes (a 2.5 MB body): every
// answer is JSON with a short error or an answer, and the exporter's
// resident memory before and after is printed (docs/whatif.md#limits). A
// GET of that size is refused by the HTTP server with its plain-text 431,
// as documented.
func TestWhatIfBurst(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "burst-a", Labels: map[string]string{"kube-spread.io/test-pool": "burst"}}}
	mustCreate(t, func() error { _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); return err })
	t.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), "burst-a", metav1.DeleteOptions{}) })
	e := startExporter(t)
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", strings.Repeat("n", 243), i)
	}
	huge, err := json.Marshal(map[string][]string{"nodes": names})
	if err != nil || len(huge) < 2_500_000 {
		t.Fatalf("body of %d bytes (%v), want 2.5 MB", len(huge), err)
	}
	if status, body, err := e.Get(ctx, whatif.PathWhatIf+"?node="+strings.Join(names, ",")); err != nil || status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET with a 2.5 MB query: status %d, err %v, body %.200s; want the server's 431", status, err, body)
	}
	before := residentBytes(t, e.PID())
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 1000 {
		wg.Go(func() {
			large := i%10 == 0
			var status int
			var body string
			var err error
			if large {
				status, body, err = post(ctx, e.URL+whatif.PathWhatIf, huge)
			} else {
				status, body, err = e.Get(ctx, whatif.PathWhatIf+"?node=burst-a")
			}
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			var answer map[string]any
			if jsonErr := json.Unmarshal([]byte(body), &answer); jsonErr != nil {
				t.Errorf("request %d: status %d, body is not JSON: %.200s", i, status, body)
			}
			if large && (status != http.StatusBadRequest || len(body) > 4096 || !strings.Contains(body, "and 9990 more")) {
				t.Errorf("request %d naming 10,000 unknown nodes: status %d, %d bytes: %.300s", i, status, len(body), body)
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	after := residentBytes(t, e.PID())
	if statuses[http.StatusOK] != 900 || statuses[http.StatusBadRequest] != 100 {
		t.Errorf("statuses %v, want 900 × 200 and 100 × 400", statuses)
	}
	t.Logf("exporter resident memory: %.1f MiB before the burst, %.1f MiB after 1,000 what-ifs (100 POSTs of 2.5 MB)", float64(before)/(1<<20), float64(after)/(1<<20))
}

func post(ctx context.Context, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer), err
}

// residentBytes reads a process's resident set size from /proc.
func residentBytes(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
