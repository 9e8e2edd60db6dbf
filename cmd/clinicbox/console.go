package main

import (
	"fmt"
	"log/slog"
	"os"
)

// showOnConsole returns what shows the page's setup code to someone at
// the box: a line on the console at path (/dev/console: a monitor on the
// Pi's HDMI, the amd64 image's serial port), which is never served over
// the network. The web pages also write the code to the service's log.
// An empty path shows nothing on a console.
func showOnConsole(path string, log *slog.Logger) func(code string) {
	return func(code string) {
		if path == "" {
			return
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			log.Warn("the setup code is not on the box's screen; it is in this log", "console", path, "err", err)
			return
		}
		defer f.Close()
		if _, err := fmt.Fprintf(f, "\r\nclinicbox: setup code for the box's page: %s\r\n\r\n", code); err != nil {
			log.Warn("the setup code is not on the box's screen; it is in this log", "console", path, "err", err)
		}
	}
}
