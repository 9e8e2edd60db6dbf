package smart

import (
	"reflect"
	"strings"
	"testing"
)

// Pages built by offset from ACS decode, through the production decoder,
// into the fields the specification puts there: IDs, pre-fail flag,
// current and worst values, thresholds matched by ID, and raw values
// (masked as smartctl shows them).
func TestDecodeATASpecLayout(t *testing.T) {
	attrs := []ataAttr{
		{1, true, 117, 99, 6, [6]byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06}},
		{5, true, 100, 100, 10, [6]byte{0x0C, 0x00, 0x00, 0x00, 0x07, 0x00}}, // high bytes: not part of the count
		{9, false, 92, 92, 0, [6]byte{0x45, 0x23, 0x01, 0xAA, 0x00, 0x00}},   // hours in the low 24 bits
		{194, false, 36, 45, 0, [6]byte{36, 0, 20, 0, 50, 0}},                // current, min, max
		{197, false, 100, 100, 0, [6]byte{3, 0, 0, 0, 0, 0}},
		{200, true, 1, 1, 51, [6]byte{0, 0, 0, 0, 0, 0x80}}, // an ID this code has no name for
	}
	got, err := DecodeATA(ataDataPage(attrs), ataThresholdsPage(attrs))
	if err != nil {
		t.Fatal(err)
	}
	want := []Attribute{
		{ID: 1, Name: "Raw_Read_Error_Rate", Value: 117, Worst: 99, Threshold: 6, Raw: 0x060504030201, PreFail: true},
		{ID: 5, Name: "Reallocated_Sector_Ct", Value: 100, Worst: 100, Threshold: 10, Raw: 12, PreFail: true},
		{ID: 9, Name: "Power_On_Hours", Value: 92, Worst: 92, Raw: 0x012345},
		{ID: 194, Name: "Temperature_Celsius", Value: 36, Worst: 45, Raw: 36},
		{ID: 197, Name: "Current_Pending_Sector", Value: 100, Worst: 100, Raw: 3},
		{ID: 200, Value: 1, Worst: 1, Threshold: 51, Raw: 0x800000000000, PreFail: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	r, err := FromATA(ataDataPage(attrs), ataThresholdsPage(attrs))
	if err != nil {
		t.Fatal(err)
	}
	// Attribute 200 is pre-fail at 1 against a threshold of 51.
	if r.Verdict != Failing || r.PowerOnHours != 0x012345 || r.Temperature != 36 {
		t.Errorf("report: %s, %d hours, %d °C; want failing, %d hours, 36 °C", r.Verdict, r.PowerOnHours, r.Temperature, 0x012345)
	}
}

// A page of the wrong size, or whose checksum byte does not make its sum
// zero, is refused with the reason.
func TestDecodeATARefusesDamagedPages(t *testing.T) {
	good := healthyATA()
	flipped := ataDataPage(good)
	flipped[2+12*2+3] ^= 0x40 // attribute 9's current value, in transit
	for _, tc := range []struct {
		name       string
		data, th   []byte
		wantReason string
	}{
		{"checksum", flipped, ataThresholdsPage(good), "checksum"},
		{"thresholds checksum", ataDataPage(good), append(ataThresholdsPage(good)[:511], 0x00), "thresholds page: checksum"},
		{"short", ataDataPage(good)[:362], ataThresholdsPage(good), "362 bytes; want 512"},
		{"long", append(ataDataPage(good), 0), ataThresholdsPage(good), "513 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeATA(tc.data, tc.th)
			if err == nil || !strings.Contains(err.Error(), tc.wantReason) {
				t.Errorf("got %v; want an error saying %q", err, tc.wantReason)
			}
		})
	}
}

// An NVMe health log built by offset from the NVMe base specification
// decodes into smart.go's structure, the one a device's page is read into,
// with each field from its offset, and judges as the fields say.
func TestDecodeNVMeSpecLayout(t *testing.T) {
	page := nvmeHealthPage(nvmeLog{critical: 0x01, kelvin: 0x0136, spare: 4, spareThresh: 10, used: 42,
		unitsRead: 0x0102030405060708, hours: 0x00ABCDEF, unsafe: 0x77, media: 0x0203})
	l, err := DecodeNVMe(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"critical warning (byte 0)", uint64(l.CritWarning), 0x01},
		{"composite temperature (bytes 1-2)", uint64(l.Temperature), 0x0136},
		{"available spare (byte 3)", uint64(l.AvailSpare), 4},
		{"available spare threshold (byte 4)", uint64(l.SpareThresh), 10},
		{"percentage used (byte 5)", uint64(l.PercentUsed), 42},
		{"data units read (byte 32)", l.DataUnitsRead.Val[0], 0x0102030405060708},
		{"data units written (byte 48)", l.DataUnitsWritten.Val[0], 0x0203040506},
		{"power cycles (byte 112)", l.PowerCycles.Val[0], 55},
		{"power-on hours (byte 128)", l.PowerOnHours.Val[0], 0x00ABCDEF},
		{"unsafe shutdowns (byte 144)", l.UnsafeShutdowns.Val[0], 0x77},
		{"media errors (byte 160)", l.MediaErrors.Val[0], 0x0203},
		{"error log entries (byte 176)", l.NumErrLogEntries.Val[0], 9},
		{"temperature sensor 1 (byte 200)", uint64(l.TempSensor[0]), 316},
	} {
		if f.got != f.want {
			t.Errorf("%s: got %#x; want %#x", f.name, f.got, f.want)
		}
	}
	r, err := FromNVMe(page)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Failing || r.Temperature != 0x0136-273 || r.PowerOnHours != 0x00ABCDEF || r.MediaErrors != 0x0203 || r.PercentUsed != 42 {
		t.Errorf("report %+v; want failing (spare below threshold), 37 °C, %d hours, 515 media errors, 42%% used", r, 0x00ABCDEF)
	}
	if !strings.Contains(strings.Join(r.Reasons, " "), "spare space below its threshold") {
		t.Errorf("reasons %q do not name critical warning bit 0", r.Reasons)
	}
	if _, err := DecodeNVMe(page[:256]); err == nil || !strings.Contains(err.Error(), "256 bytes; want 512") {
		t.Errorf("a short page: got %v; want it refused", err)
	}
}
