package hardware_test

import (
	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/hardware"
)

// The adapters are what the appliance consumes.
var (
	_ appliance.DriveSource = (*hardware.USBDrives)(nil)
	_ appliance.Health      = hardware.SMARTHealth{}
	_ appliance.DiskSurvey  = hardware.SMARTHealth{}
	_ appliance.Panel       = hardware.StatusPanel{}
)
