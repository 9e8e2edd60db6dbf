package main

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress returns a progress callback drawing a bar on a terminal, or nil
// when w is not one (logs and pipes get no bar).
func progress(w io.Writer, what string) (func(done, total int64), func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	update := func(done, total int64) {
		if bar == nil {
			bar = progressbar.NewOptions64(max(total, 1), progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
				progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100_000_000), progressbar.OptionClearOnFinish())
		}
		if total > bar.GetMax64() {
			bar.ChangeMax64(total)
		}
		bar.Set64(done)
	}
	return update, func() {
		if bar != nil {
			bar.Finish()
			bar = nil // a second call does nothing
		}
	}
}
