package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Webhook timing: each POST may take webhookTimeout; a failed one is tried
// webhookTries times in all, pausing webhookPause, then twice that.
const (
	webhookTimeout = 10 * time.Second
	webhookTries   = 3
	webhookPause   = 2 * time.Second
)

// webhook posts alerts as JSON.
type webhook struct {
	cfg    WebhookConfig
	host   string
	where  string // scheme://host only: the path may hold a secret
	client *http.Client
	pause  time.Duration
}

func newWebhook(cfg WebhookConfig, host string) *webhook {
	u, _ := url.Parse(cfg.URL)
	return &webhook{cfg: cfg, host: host, where: u.Scheme + "://" + u.Host, pause: webhookPause,
		// Alerts are rare: no idle connections to keep.
		client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}}}
}

// Payload is the JSON body of a webhook call.
type Payload struct {
	Time      time.Time `json:"time"`
	Box       string    `json:"box"`
	Condition string    `json:"condition"`
	Drive     string    `json:"drive,omitempty"`
	Severity  string    `json:"severity"`
	Message   string    `json:"message"`
	// State is "firing" (also for reminders) or "cleared".
	State string `json:"state"`
}

func (w *webhook) name() string { return "webhook" }

// wants takes alerts, not the daily summary.
func (w *webhook) wants(m Message) bool { return m.Kind != KindSummary }

func (w *webhook) send(ctx context.Context, m Message) error {
	state := "firing"
	if m.Kind == KindCleared {
		state = "cleared"
	}
	body, err := json.Marshal(Payload{Time: m.Time, Box: w.host, Condition: m.Condition, Drive: m.Drive,
		Severity: m.Severity.String(), Message: m.Text, State: state})
	if err != nil {
		return err
	}
	pause := w.pause
	for try := 1; ; try++ {
		err = w.post(ctx, body)
		if err == nil || errors.Is(err, errPermanent) || try == webhookTries {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
}

func (w *webhook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: cannot build a request for %s: %v: %w", w.where, err, errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clinicbox-alert")
	if w.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.cfg.Token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a secret
		}
		return fmt.Errorf("webhook: cannot reach %s: %v", w.where, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("webhook: %s answered %s", w.where, resp.Status)
	}
	return fmt.Errorf("webhook: %s answered %s; check alerts.webhook.url and token: %w", w.where, resp.Status, errPermanent)
}
