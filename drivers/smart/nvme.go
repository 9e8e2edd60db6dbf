package smart

import (
	"bytes"
	"encoding/binary"
	"fmt"

	smartgo "github.com/anatol/smart.go"
)

// DecodeNVMe reads a raw 512-byte NVMe SMART / health log page (log
// identifier 02h) into smart.go's exported structure, the one smart.go
// reads a device's page into.
func DecodeNVMe(page []byte) (*smartgo.NvmeSMARTLog, error) {
	if len(page) != PageSize {
		return nil, fmt.Errorf("smart: NVMe health log: %d bytes; want %d (the whole log page)", len(page), PageSize)
	}
	var l smartgo.NvmeSMARTLog
	if err := binary.Read(bytes.NewReader(page), binary.LittleEndian, &l); err != nil {
		return nil, fmt.Errorf("smart: NVMe health log: %w", err)
	}
	return &l, nil
}

// judgeNVMe derives the verdict from the NVMe health log: any critical
// warning bit is failing; life used at 100% is failing and at 90% a
// warning; media errors are a warning.
func judgeNVMe(r *Report, l *smartgo.NvmeSMARTLog) {
	r.Protocol, r.Verdict = "nvme", OK
	r.CriticalWarning, r.PercentUsed, r.MediaErrors = l.CritWarning, l.PercentUsed, l.MediaErrors.Val[0]
	r.PowerOnHours = int(l.PowerOnHours.Val[0])
	if l.Temperature > 0 {
		r.Temperature = int(l.Temperature) - 273
	}
	warnings := []string{"spare space below its threshold", "temperature out of range", "reliability degraded by media errors", "media switched to read-only", "volatile memory backup failed", "persistent memory unreliable"}
	for bit, what := range warnings {
		if l.CritWarning&(1<<bit) != 0 {
			r.worse(Failing, "The drive reports a critical warning: "+what+". Replace it now.")
		}
	}
	switch {
	case l.PercentUsed >= 100:
		r.worse(Failing, fmt.Sprintf("The drive has used %d%% of its rated life: replace it now.", l.PercentUsed))
	case l.PercentUsed >= 90:
		r.worse(Warning, fmt.Sprintf("The drive has used %d%% of its rated life: replace it soon.", l.PercentUsed))
	}
	if r.MediaErrors > 0 {
		r.worse(Warning, fmt.Sprintf("%d media errors: the drive is wearing out; replace it soon.", r.MediaErrors))
	}
	if r.Temperature > HotCelsius+15 { // NVMe runs hotter than disks
		r.worse(Warning, fmt.Sprintf("The drive is at %d °C: give the box air.", r.Temperature))
	}
}
