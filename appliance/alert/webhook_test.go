package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// hookServer answers with the given statuses in turn (the last one
// repeats) and keeps what it received.
type hookServer struct {
	mu       sync.Mutex
	statuses []int
	calls    int
	auth     []string
	bodies   []Payload
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var p Payload
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&p) != nil {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.bodies = append(h.bodies, p)
	w.WriteHeader(h.statuses[min(h.calls, len(h.statuses)-1)])
	h.calls++
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		calls     int
		permanent bool
		ok        bool
	}{
		{"delivered", []int{204}, 1, false, true},
		{"retried on 500", []int{500, 502, 200}, 3, false, true},
		{"gives up for now after three 500s", []int{500}, 3, false, false},
		{"not retried on 400", []int{400}, 1, true, false},
		{"not retried on 401", []int{401}, 1, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &hookServer{statuses: tc.statuses}
			srv := httptest.NewServer(h)
			defer srv.Close()
			w := newWebhook(WebhookConfig{URL: srv.URL + "/hooks/s3cret-path", Token: "tok-123"}, "clinicbox-smith")
			w.pause = time.Millisecond
			m := Message{Time: base, Kind: KindFiring, Condition: "wrong drive", Drive: "Son-2", Severity: status.Attention, Text: "Put Father-1 in instead."}
			err := w.send(context.Background(), m)
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.calls != tc.calls {
				t.Errorf("calls: got %d; want %d", h.calls, tc.calls)
			}
			if (err == nil) != tc.ok || errors.Is(err, errPermanent) != tc.permanent {
				t.Errorf("got %v; want ok %v, permanent %v", err, tc.ok, tc.permanent)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret-path") {
				t.Errorf("error shows the URL's path: %v", err)
			}
			want := Payload{Time: base, Box: "clinicbox-smith", Condition: "wrong drive", Drive: "Son-2", Severity: "attention",
				Message: "Put Father-1 in instead.", State: "firing"}
			if len(h.bodies) == 0 || !h.bodies[0].Time.Equal(want.Time) || h.bodies[0].Time.IsZero() {
				t.Fatalf("bodies: got %+v; want %+v", h.bodies, want)
			}
			h.bodies[0].Time = want.Time
			if h.bodies[0] != want || h.auth[0] != "Bearer tok-123" {
				t.Errorf("got %+v with %q; want %+v with Bearer tok-123", h.bodies[0], h.auth[0], want)
			}
		})
	}
}

func TestWebhookStates(t *testing.T) {
	h := &hookServer{statuses: []int{200}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	w := newWebhook(WebhookConfig{URL: srv.URL}, "box")
	for _, kind := range []string{KindFiring, KindReminder, KindCleared} {
		if err := w.send(context.Background(), Message{Time: base, Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for i, b := range h.bodies {
		got = append(got, b.State)
		if h.auth[i] != "" {
			t.Errorf("an Authorization header without a token: %q", h.auth[i])
		}
	}
	if strings.Join(got, ",") != "firing,firing,cleared" {
		t.Errorf("states: got %v; want firing, firing, cleared", got)
	}
	if w.wants(Message{Kind: KindSummary}) {
		t.Errorf("the webhook takes the daily summary; want e-mail only")
	}
}

func TestWebhookUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/secret"
	srv.Close()
	w := newWebhook(WebhookConfig{URL: url}, "box")
	w.pause = time.Millisecond
	err := w.send(context.Background(), Message{Time: base, Kind: KindFiring})
	if err == nil || errors.Is(err, errPermanent) || !strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), "/secret") {
		t.Errorf("got %v; want a retryable 'cannot reach' error without the path", err)
	}
}
