package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/kube-spread-exporter/kube-spread-exporter/api"
)

// ErrNoAPI: the exporter does not serve the JSON API (a version before
// it, or a proxy that passes /metrics only); the check reads /metrics.
var ErrNoAPI = errors.New("the exporter serves no " + api.PathServices + " or " + api.PathHealth)

// APIURL derives the URL of an API path from the exporter's metrics URL:
// the same scheme, host and credentials, with the last path element
// (/metrics, or whatever --web.telemetry-path is) replaced by path.
func APIURL(metricsURL, path string, query url.Values) (string, error) {
	u, err := url.Parse(metricsURL)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", metricsURL, err)
	}
	prefix := u.Path
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		prefix = prefix[:i]
	}
	u.Path = prefix + path
	u.RawQuery = query.Encode()
	return u.String(), nil
}

// ServicesQuery is the query of /api/v1/services for the check of every
// service the regular expressions select: only the troubled ones are
// listed, the totals come with the answer.
func ServicesQuery(namespace, kind, name string) url.Values {
	return url.Values{
		api.ParamNamespace: {namespace}, api.ParamKind: {kind}, api.ParamName: {name},
		api.ParamSeverity: {"critical,warning"},
	}
}

// ServiceQuery is the query of /api/v1/services for exactly one service:
// its names quoted, so that a dot in a name is a dot.
func ServiceQuery(key ServiceKey) url.Values {
	return url.Values{
		api.ParamNamespace: {regexp.QuoteMeta(key.Namespace)},
		api.ParamKind:      {regexp.QuoteMeta(key.Kind)},
		api.ParamName:      {regexp.QuoteMeta(key.Name)},
	}
}

// FetchServices asks the exporter's /api/v1/services. It fails with
// ErrNoAPI when the exporter does not serve it, and with an error wrapping
// ErrCachesNotSynced while the exporter has no figures.
func FetchServices(ctx context.Context, src Source, query url.Values) (*api.Services, error) {
	target, err := APIURL(src.URL, api.PathServices, query)
	if err != nil {
		return nil, err
	}
	answer, _, err := exchange(ctx, src, target, "application/json", "services answer", decodeJSON[api.Services])
	return answer, apiError(err)
}

// FetchHealth asks the exporter's /api/v1/health; ErrNoAPI when it does
// not serve it.
func FetchHealth(ctx context.Context, src Source) (*api.Health, error) {
	target, err := APIURL(src.URL, api.PathHealth, nil)
	if err != nil {
		return nil, err
	}
	answer, _, err := exchange(ctx, src, target, "application/json", "health answer", decodeJSON[api.Health])
	if err == nil && answer.Time.IsZero() {
		return nil, fmt.Errorf("parse health answer of %s: no time in it", target)
	}
	return answer, apiError(err)
}

func decodeJSON[T any](body []byte) (*T, error) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// apiError turns the answers that mean "no API here" into ErrNoAPI: 404
// from an exporter before the API (its landing page answers every unknown
// path so) or a proxy, 405 and 501 from a proxy. 503 is the API's "caches
// not synced".
func apiError(err error) error {
	var httpErr *HTTPError
	if !errors.As(err, &httpErr) {
		return err
	}
	switch httpErr.Code {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return fmt.Errorf("%w (%s)", ErrNoAPI, err)
	case http.StatusServiceUnavailable:
		if waiting, ok := strings.CutPrefix(httpErr.Text, "informer caches not synced: "); ok {
			return fmt.Errorf("%w (waiting for %s)", ErrCachesNotSynced, waiting)
		}
	}
	return err
}
