package fidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/kube-spread-exporter/kube-spread-exporter/internal/harness/exporterproc"
	"github.com/kube-spread-exporter/kube-spread-exporter/whatif"
)

// ErrNoPlacement is the failure while the exporter predates the placement
// model: the answer has no field to compare with the scheduler.
const ErrNoPlacement = "what-if answer has no placement field: the placement model is not in this exporter"

// Answer is the part of the what-if answer (docs/whatif.md) the fidelity
// test reads. It is decoded on its own, not through whatif.Answer, so the
// test states the contract it checks, field by field.
type Answer struct {
	Nodes    []string        `json:"nodes"`
	Services []ServiceAnswer `json:"services"`
}

// ServiceAnswer is one service of the answer.
type ServiceAnswer struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Now       struct {
		Replicas int `json:"replicas"`
	} `json:"now"`
	After struct {
		Replicas int `json:"replicas"`
	} `json:"after"`
	// Placement, WarmNodes and PDB come with the placement model; nil
	// before it.
	Placement *PlacementAnswer `json:"placement"`
	WarmNodes *int             `json:"warm_nodes"`
	PDB       []PDBAnswer      `json:"pdb"`
}

// PlacementAnswer predicts where the displaced replicas of a service go.
type PlacementAnswer struct {
	// State is "fit", "no_room" or "unknown".
	State         string         `json:"state"`
	Displaced     int            `json:"displaced"`
	Placed        int            `json:"placed"`
	Unplaced      int            `json:"unplaced"`
	Reasons       map[string]int `json:"reasons"`
	UnknownReason string         `json:"unknown_reason"`
}

// Placement states of the answer.
const (
	StateFit     = "fit"
	StateNoRoom  = "no_room"
	StateUnknown = "unknown"
)

// PDBAnswer is a PodDisruptionBudget the batch's evictions would consume:
// allowed disruptions now, and evictions the batch needs.
type PDBAnswer struct {
	Name    string `json:"name"`
	Allowed int    `json:"allowed"`
	Needed  int    `json:"needed"`
}

// Service returns the answer's service of that namespace, kind and name.
func (a *Answer) Service(namespace, kind, name string) *ServiceAnswer {
	for i := range a.Services {
		s := &a.Services[i]
		if s.Namespace == namespace && s.Kind == kind && s.Name == name {
			return s
		}
	}
	return nil
}

// AskWhatIf asks the exporter what happens if the nodes go down, and
// returns the decoded answer and its text.
func AskWhatIf(ctx context.Context, e *exporterproc.Exporter, nodes []string) (*Answer, string, error) {
	query := url.Values{"node": nodes}
	status, body, err := e.Get(ctx, whatif.PathWhatIf+"?"+query.Encode())
	if err != nil {
		return nil, "", fmt.Errorf("what-if %v: %w", nodes, err)
	}
	if status != http.StatusOK {
		return nil, body, fmt.Errorf("what-if %v: status %d: %s", nodes, status, body)
	}
	var answer Answer
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		return nil, body, fmt.Errorf("what-if %v: decode: %w: %s", nodes, err, body)
	}
	return &answer, body, nil
}
