package check

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/nagios"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// TestCampaignResult renders the campaign API's golden answers
// (whatif/testdata) as plugin output, compared whole.
func TestCampaignResult(t *testing.T) {
	for _, tc := range []struct {
		answer string
		state  nagios.State
		want   string
	}{
		{
			answer: "campaign.json",
			state:  nagios.Critical,
			want: `CRITICAL - mathoid/Deployment/mathoid would have no replica left: batch 1 moves all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 2 takes them down; remedy: restarting mathoid/Deployment/mathoid after batch 1 makes every batch safe | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0 'first_unsafe_batch'=2;;;0
OK batch 1 (kubernetes2003, kubernetes2004): ok
CRITICAL batch 2 (kubernetes2001, kubernetes2002): no_replicas_left; mathoid/Deployment/mathoid would have no replica left, mathoid/Service/mathoid would have no replica left
`,
		},
		{
			answer: "campaign-stay-away.json",
			state:  nagios.Critical,
			want: `CRITICAL - mathoid/Deployment/mathoid would have no replica left: batches 1–2 move all 4 mathoid replicas onto kubernetes2001 and kubernetes2002, and batch 3 takes them down; remedy: letting the nodes of each batch return after it and restarting mathoid/Deployment/mathoid after batch 2 makes every batch safe | 'no_replicas_left'=2;;;0 'no_room'=0;;;0 'single_homed'=0;;;0 'below_min_nodes'=0;;;0 'first_unsafe_batch'=3;;;0
OK batch 1 (kubernetes2003): ok
OK batch 2 (kubernetes2004): ok
CRITICAL batch 3 (kubernetes2001, kubernetes2002): no_replicas_left; mathoid/Deployment/mathoid would have no replica left, mathoid/Service/mathoid would have no replica left
`,
		},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			data, err := os.ReadFile("../../whatif/testdata/" + tc.answer)
			if err != nil {
				t.Fatal(err)
			}
			var answer whatif.Campaign
			if err := json.Unmarshal(data, &answer); err != nil {
				t.Fatal(err)
			}
			result := Campaign(&answer)
			var out strings.Builder
			if err := result.Write(&out); err != nil {
				t.Fatal(err)
			}
			if result.State != tc.state {
				t.Errorf("state = %v, want %v", result.State, tc.state)
			}
			if out.String() != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestCampaignURL(t *testing.T) {
	for _, tc := range []struct {
		remedyBatches *int
		want          string
	}{
		{nil, "http://exporter:10217/api/v1/whatif/campaign?batch=a%2Cb&batch=c&nodes_return=false"},
		{new(0), "http://exporter:10217/api/v1/whatif/campaign?batch=a%2Cb&batch=c&nodes_return=false&remedy_batches=0"},
		{new(80), "http://exporter:10217/api/v1/whatif/campaign?batch=a%2Cb&batch=c&nodes_return=false&remedy_batches=80"},
		// Out of range, sent all the same for the exporter to refuse.
		{new(-1), "http://exporter:10217/api/v1/whatif/campaign?batch=a%2Cb&batch=c&nodes_return=false&remedy_batches=-1"},
	} {
		got, err := CampaignURL("http://exporter:10217/metrics", [][]string{{"a", "b"}, {"c"}}, false, tc.remedyBatches)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("url = %s, want %s", got, tc.want)
		}
	}
}
