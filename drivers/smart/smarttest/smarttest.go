// Package smarttest scripts drive health for tests of what uses
// drivers/smart (drive step of the data path): a Read function for
// smart.Checker that answers from reports by device, hangs, or panics.
package smarttest

import (
	"fmt"

	"github.com/clinicbox/clinicbox/drivers/smart"
)

// Reports answers each device with its report; unknown devices get an error.
func Reports(byDevice map[string]smart.Report) func(string) (smart.Report, error) {
	return func(dev string) (smart.Report, error) {
		r, ok := byDevice[dev]
		if !ok {
			return smart.Report{}, fmt.Errorf("smarttest: no report for %s", dev)
		}
		return r, nil
	}
}

// Hang never answers until release is closed.
func Hang(release <-chan struct{}) func(string) (smart.Report, error) {
	return func(string) (smart.Report, error) {
		<-release
		return smart.Report{Verdict: smart.OK}, nil
	}
}

// Panic panics like a library bug on an odd device.
func Panic(string) (smart.Report, error) { panic("smarttest: odd device") }

// Failing is a report of a drive past a pre-fail threshold.
func Failing() smart.Report {
	return smart.Report{Protocol: "ata", Verdict: smart.Failing, Reasons: []string{"Reallocated_Sector_Ct has reached its failure threshold (30 ≤ 36): the drive is failing; replace it now."}}
}
