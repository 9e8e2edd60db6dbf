package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/hardware"
	"github.com/clinicbox/clinicbox/drivers/panel"
)

// startPanel drives the front panel on GPIO, or on the board's own LEDs
// when no GPIO chip answers, and turns its button into the appliance's
// button presses.
func startPanel(ctx context.Context, set *appliance.Settings, log *slog.Logger) (appliance.Panel, <-chan appliance.Button) {
	pins := panel.Pins{Green: set.Panel.Green, Amber: set.Panel.Amber, Red: set.Panel.Red, Buzzer: set.Panel.Buzzer, Button: set.Panel.Button}
	cfg, err := panel.OpenGPIO(pins)
	if err != nil {
		log.Warn("front panel not on GPIO; using the board's LEDs", "err", err)
		if cfg, err = panel.BoardLEDs("/sys"); err != nil {
			log.Warn("no front panel at all: status is on the pages only", "err", err)
			return nil, nil
		}
	}
	if cfg.Chip != "" {
		down := cfg.Button != nil && cfg.Button.Pressed()
		log.Info("front panel on GPIO", "chip", cfg.Chip, "green", pins.Green, "amber", pins.Amber, "red", pins.Red,
			"buzzer", pins.Buzzer, "button", pins.Button, "button_down", down)
	}
	cfg.OnError = func(err error) { log.Warn("front panel: a light or the buzzer does not switch", "err", err) }
	loc, _ := set.Location()
	quiet := set.QuietHours
	cfg.Quiet = func(now time.Time) bool { return quiet.Contains(now, loc) }
	p := panel.New(cfg)
	go p.Run(ctx)
	buttons := make(chan appliance.Button, 4)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-p.Events():
				b := appliance.Ack
				switch ev.Kind {
				case panel.LongPress:
					b = appliance.LongPress
				case panel.ResetPress:
					b = appliance.ResetPassword
				}
				select {
				case buttons <- b:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return hardware.StatusPanel{P: p}, buttons
}
