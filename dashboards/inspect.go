package dashboards

import (
	"encoding/json"
	"fmt"
)

// The types below read back the committed JSON, for the tests: they hold
// only what the tests check, in Grafana's classic dashboard model.

// Board is a dashboard as its JSON file has it.
type Board struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Panels     []Panel
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Links []Link `json:"links"`
}

// Panel is one panel of a Board.
type Panel struct {
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *DatasourceRef `json:"datasource"`
	Targets     []Target       `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit  string `json:"unit"`
			Links []Link `json:"links"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Instant    bool           `json:"instant"`
	Datasource *DatasourceRef `json:"datasource"`
}

// DatasourceRef names a data source by type and uid.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a template variable.
type Variable struct {
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Query      any            `json:"query"`
	Datasource *DatasourceRef `json:"datasource"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
}

// Link is a dashboard link or a panel's data link.
type Link struct {
	Title string `json:"title"`
	Type  string `json:"type"`
	URL   string `json:"url"`
}

// ParseBoard reads a dashboard's JSON.
func ParseBoard(raw []byte) (*Board, error) {
	var b Board
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("parse dashboard: %w", err)
	}
	return &b, nil
}
