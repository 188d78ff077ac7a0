package cluster

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ListWatchErrorWindow is the rate window of the KubeSpreadListWatchErrors
// alert (rate(kube_spread_list_watch_errors_total[5m]) > 0): errors less
// than this apart belong to one streak, during which the alert's condition
// holds without a break. The check's health mode compares a streak's
// length with the alert's `for` (docs/check.md).
const ListWatchErrorWindow = 5 * time.Minute

// RequestErrors counts failed list and watch requests per resource, seen
// at the HTTP transport of the client the informers use.
//
// Counting there, not in the informers' watch error handler, is
// deliberate: client-go's reflector retries a refused connection inside
// its watch-list loop without ever calling the handler, so an API server
// that is down at start-up, or goes down later, would leave a handler-based
// counter at zero. Every request that fails is seen here.
type RequestErrors struct {
	logger *slog.Logger
	mu     sync.Mutex
	byName map[string]*resourceErrors
}

type resourceErrors struct {
	count   atomic.Uint64
	failing atomic.Bool // to log a failure streak once, and its end
	streak  ErrorStreak
}

// ErrorStreak remembers when the current streak of errors began and when
// the last error of it came: errors less than ListWatchErrorWindow apart
// extend the streak, a longer pause starts a new one. It is what a
// Prometheus rule with rate(...[window]) > 0 and a `for` would need the
// history of the counter for. The zero value has seen no error; it is safe
// for concurrent use.
type ErrorStreak struct {
	mu          sync.Mutex
	since, last time.Time
}

// Record notes an error at the time given.
func (s *ErrorStreak) Record(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() || at.Sub(s.last) >= ListWatchErrorWindow {
		s.since = at
	}
	if at.After(s.last) {
		s.last = at
	}
}

// Streak returns when the current streak began and its last error; both
// zero before the first error.
func (s *ErrorStreak) Streak() (since, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since, s.last
}

// NewRequestErrors returns an empty counter.
func NewRequestErrors(logger *slog.Logger) *RequestErrors {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RequestErrors{logger: logger, byName: make(map[string]*resourceErrors)}
}

// Count returns the failed requests for a resource (plural, lowercase).
func (e *RequestErrors) Count(resource string) uint64 {
	return e.get(resource).count.Load()
}

// Streak returns when the current streak of failed requests for a
// resource began and when the last one failed; zero times before the
// first failure. See ErrorStreak.
func (e *RequestErrors) Streak(resource string) (since, last time.Time) {
	return e.get(resource).streak.Streak()
}

func (e *RequestErrors) get(resource string) *resourceErrors {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.byName[resource]
	if r == nil {
		r = &resourceErrors{}
		e.byName[resource] = r
	}
	return r
}

// WrapTransport is a rest.Config WrapTransport function: it observes every
// GET of a resource collection (list or watch).
func (e *RequestErrors) WrapTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		resource := collectionResource(req)
		if resource == "" {
			return resp, err
		}
		r := e.get(resource)
		// 410 Gone is the API server asking for a relist after a watch
		// fell behind: routine, not a failure.
		failed := err != nil || (resp.StatusCode >= 400 && resp.StatusCode != http.StatusGone)
		switch {
		case failed:
			r.count.Add(1)
			r.streak.Record(time.Now())
			reason := ""
			if err != nil {
				reason = err.Error()
			} else {
				reason = resp.Status
			}
			if !r.failing.Swap(true) {
				e.logger.Warn("list/watch failed", "resource", resource, "err", reason)
			} else {
				e.logger.Debug("list/watch failed again", "resource", resource, "err", reason)
			}
		case r.failing.Swap(false):
			e.logger.Info("list/watch recovered", "resource", resource)
		}
		return resp, err
	})
}

// collectionResource returns the resource of a GET on a collection, such as
// "pods" for /api/v1/pods?watch=true or "deployments" for
// /apis/apps/v1/deployments, or "" for any other request.
func collectionResource(req *http.Request) string {
	if req.Method != http.MethodGet {
		return ""
	}
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "api":
		return parts[2]
	case len(parts) == 4 && parts[0] == "apis":
		return parts[3]
	}
	return ""
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
