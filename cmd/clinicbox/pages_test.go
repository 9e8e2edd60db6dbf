package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// The tailnet's certificate is asked for again after a failure, less
// often each time, and reaches the pages once the tailnet issues it: a
// certificate service unreachable at start, or HTTPS turned on in the
// tailnet later, needs no restart. (The tailnet answers are scripted: the
// test control server issues no certificates.)
func TestTailnetCertRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var asked []time.Duration
		answers := []error{errors.New("acme: no route"), nil, errors.New("acme: rate limited")}
		fetch := func(context.Context) (*tls.Config, string, bool, error) {
			asked = append(asked, time.Since(start))
			if len(asked) <= len(answers) {
				return nil, "box.tail0.ts.net", false, answers[len(asked)-1]
			}
			return &tls.Config{}, "box.tail0.ts.net", true, nil
		}
		cfg, name, ok := tailnetCert(t.Context(), fetch, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if !ok || cfg == nil || name != "box.tail0.ts.net" {
			t.Fatalf("got %v %q %v; want the certificate once issued", cfg, name, ok)
		}
		want := []time.Duration{0, time.Minute, 3 * time.Minute, 7 * time.Minute}
		if len(asked) != len(want) {
			t.Fatalf("asked at %v; want at %v", asked, want)
		}
		for i := range want {
			if asked[i] != want[i] {
				t.Errorf("asked at %v; want at %v", asked, want)
				break
			}
		}
	})
}

// Stopping the box ends the wait.
func TestTailnetCertStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan bool)
		go func() {
			_, _, ok := tailnetCert(ctx, func(context.Context) (*tls.Config, string, bool, error) {
				return nil, "", false, nil
			}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			done <- ok
		}()
		time.Sleep(5 * time.Hour) // virtual time: several retries
		cancel()
		if <-done {
			t.Error("got a certificate; want none after the box stopped")
		}
	})
}
