package amserver

import (
	"strings"
	"testing"
	"time"
)

func TestRewire(t *testing.T) {
	const config = `route:
  receiver: default
  group_wait: 30s
  routes:
    - receiver: pager
      group_wait: 10s
    - receiver: tickets
receivers:
  - name: default
  - name: pager
    webhook_configs:
      - url: https://pager.example.invalid/hook
  - name: tickets
    webhook_configs:
      - url: https://tickets.example.invalid/hook
`
	for _, tc := range []struct {
		name   string
		config string
		timers Timers
		want   []string // substrings of the result
		absent []string
		err    string
	}{
		{
			name:   "webhooks point at the test, every timer that is set is shortened",
			config: config,
			timers: Timers{GroupWait: 2 * time.Second, GroupInterval: 5 * time.Second, RepeatInterval: time.Hour},
			want: []string{
				"url: http://127.0.0.1:1/pager", "url: http://127.0.0.1:1/tickets",
				"group_wait: 2s", "group_interval: 5s", "repeat_interval: 1h",
			},
			absent: []string{"example.invalid", "group_wait: 10s", "group_wait: 30s"},
		},
		{
			name:   "zero timers keep the configuration's",
			config: config,
			want:   []string{"url: http://127.0.0.1:1/pager", "group_wait: 30s", "group_wait: 10s"},
			absent: []string{"group_interval", "repeat_interval"},
		},
		{name: "no webhook receiver", config: "route:\n  receiver: default\nreceivers:\n  - name: default\n", err: "no webhook receiver"},
		{name: "no route", config: "receivers:\n  - name: pager\n    webhook_configs:\n      - url: https://x.invalid\n", err: "no route"},
		{name: "not YAML", config: "route: [\n", err: "parse alertmanager config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rewire([]byte(tc.config), "http://127.0.0.1:1", tc.timers)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Rewire: error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("result lacks %q:\n%s", want, got)
				}
			}
			for _, absent := range tc.absent {
				if strings.Contains(got, absent) {
					t.Errorf("result has %q:\n%s", absent, got)
				}
			}
		})
	}
}
