package panel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clinicbox/clinicbox/drivers/panel/paneltest"
)

// brokenLine is an output whose every switch fails, as a line the kernel
// refuses does.
type brokenLine struct{ sets int }

func (b *brokenLine) Set(bool) error { b.sets++; return errors.New("EIO") }

// An output that fails to switch is reported once, by name, however often
// the pattern switches it; the other outputs go on.
func TestOnErrorOncePerOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		amber, green := &brokenLine{}, paneltest.NewPin()
		var errs []error
		p := New(Config{Green: green, Amber: amber, OnError: func(err error) { errs = append(errs, err) }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		p.Set([]Condition{cond("swap due", Attention)})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		p.Set(nil) // amber off: another failing switch
		time.Sleep(2 * time.Second)
		synctest.Wait()
		greenOn := green.On()
		cancel()
		<-done
		if amber.sets < 2 {
			t.Fatalf("amber switched %d times; want at least 2", amber.sets)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "amber") {
			t.Errorf("got errors %v; want one naming amber", errs)
		}
		if !greenOn {
			t.Errorf("green is off after the condition cleared; want on")
		}
	})
}
