package whatif

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/repo"
	"github.com/kube-spread-exporter/kube-spread-exporter/spread"
)

// TestREADMECampaignGuard runs the README's campaign guard, as users copy
// it, against the campaign API serving the mathoid cluster at the start
// of day one.
func TestREADMECampaignGuard(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's campaign guard needs %s", tool)
		}
	}
	readme, err := os.ReadFile(filepath.Join(repo.RootForTest(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start = "```sh\n#!/bin/sh\n# Refuse a campaign"
	_, after, found := strings.Cut(string(readme), start)
	body, _, closed := strings.Cut(after, "```")
	if !found || !closed {
		t.Fatal(`README.md has no campaign guard (a sh block starting with "# Refuse a campaign")`)
	}
	script := filepath.Join(t.TempDir(), "campaign-guard")
	if err := os.WriteFile(script, []byte(strings.TrimPrefix(start, "```sh\n")+body), 0o755); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(NewHandler(&fakeSource{cluster: mathoidStartOfDayOne()}, spread.Options{DefaultMinNodes: 2}, slog.New(slog.DiscardHandler)))
	t.Cleanup(server.Close)

	for _, tc := range []struct {
		name   string
		args   []string
		env    string
		code   int
		stderr string
	}{
		{"the replay's two days", []string{"kubernetes2003,kubernetes2004", "kubernetes2001,kubernetes2002"}, "", 1,
			"refusing the campaign: no_replicas_left\n  batch 2, mathoid/Deployment/mathoid: batch 1 moves all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 2 takes them down\n  remedy: restarting mathoid/Deployment/mathoid after batch 1 makes every batch safe\n"},
		{"nodes kept away", []string{"kubernetes2003", "kubernetes2004", "kubernetes2001,kubernetes2002"}, "NODES_RETURN=false", 1,
			"refusing the campaign: no_replicas_left\n  batch 3, mathoid/Deployment/mathoid: batches 1–2 move all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 3 takes them down\n  remedy: letting the nodes of each batch return after it and restarting mathoid/Deployment/mathoid after batch 2 makes every batch safe\n"},
		{"one node, safe", []string{"kubernetes2003"}, "", 0, ""},
		{"a misspelt node", []string{"kubernetes2O03"}, "", 3,
			"preflight failed: exporter unreachable, a bad node name, or a node in two batches\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(script, tc.args...)
			cmd.Env = append(os.Environ(), "KUBE_SPREAD_EXPORTER="+server.URL)
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if exitErr := (*exec.ExitError)(nil); errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || stderr.String() != tc.stderr {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s", code, stderr.String(), tc.code, tc.stderr)
			}
		})
	}
}
