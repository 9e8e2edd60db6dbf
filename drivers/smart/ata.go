package smart

import (
	"bytes"
	"encoding/binary"
	"fmt"

	smartgo "github.com/anatol/smart.go"
)

var ataNames = map[uint8]string{
	1: "Raw_Read_Error_Rate", 5: "Reallocated_Sector_Ct", 9: "Power_On_Hours", 10: "Spin_Retry_Count",
	12: "Power_Cycle_Count", 187: "Reported_Uncorrect", 188: "Command_Timeout", 190: "Airflow_Temperature_Cel",
	194: "Temperature_Celsius", 196: "Reallocated_Event_Count", 197: "Current_Pending_Sector",
	198: "Offline_Uncorrectable", 199: "UDMA_CRC_Error_Count",
}

// rawValue reads an attribute's 48-bit raw value, masked as smartctl does
// for the attributes that pack more than a count into it.
func rawValue(id uint8, b [6]byte) uint64 {
	var v uint64
	for i := 5; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	switch id {
	case 5, 196, 197, 198:
		v &= 0xFFFF
	case 9:
		v &= 0xFFFFFF
	case 190, 194:
		v &= 0xFF
	}
	return v
}

// PageSize is the size of an ATA SMART page and of the NVMe SMART / health
// log page.
const PageSize = 512

// DecodeATA reads the SMART READ DATA and READ THRESHOLDS pages (ACS: a
// 2-byte revision, 30 entries of 12 bytes from offset 2, byte 511 making
// the page's sum zero) into attributes. It reads them into smart.go's
// exported raw structures, the ones smart.go reads a device's pages into,
// and converts each entry with ataAttribute, as readDevice does.
func DecodeATA(data, thresholds []byte) ([]Attribute, error) {
	var page smartgo.AtaSmartPageRaw
	if err := readPage("SMART data page", data, &page); err != nil {
		return nil, err
	}
	var th smartgo.AtaSmartThresholdsPageRaw
	if err := readPage("thresholds page", thresholds, &th); err != nil {
		return nil, err
	}
	limits := map[uint8]uint8{}
	for _, e := range th.ThresholdEntries {
		if e.Id != 0 {
			limits[e.Id] = e.Threshold
		}
	}
	var out []Attribute
	for _, a := range page.Attrs {
		if a.Id != 0 {
			out = append(out, ataAttribute(a.Id, a.Flags, a.Current, a.Worst, a.VendorBytes, limits[a.Id]))
		}
	}
	return out, nil
}

// readPage checks an ATA SMART page's size and checksum and reads it into v.
func readPage(what string, b []byte, v any) error {
	if len(b) != PageSize {
		return fmt.Errorf("smart: %s: %d bytes; want %d (a whole page as the drive sends it)", what, len(b), PageSize)
	}
	var sum byte
	for _, c := range b {
		sum += c
	}
	if sum != 0 {
		return fmt.Errorf("smart: %s: checksum byte %#02x does not make the page sum to zero: the page is damaged", what, b[PageSize-1])
	}
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, v); err != nil {
		return fmt.Errorf("smart: %s: %w", what, err)
	}
	return nil
}

// ataAttribute is one attribute as the verdict reads it; bit 0 of the
// flags marks a pre-fail attribute.
func ataAttribute(id uint8, flags uint16, current, worst uint8, raw [6]byte, threshold uint8) Attribute {
	return Attribute{ID: id, Name: ataNames[id], Value: current, Worst: worst, Threshold: threshold,
		Raw: rawValue(id, raw), PreFail: flags&1 != 0}
}

// judgeATA derives the verdict from attributes: a pre-fail attribute at or
// below its threshold is failing; sectors reallocated, pending or
// uncorrectable, or reported errors, are a warning; so is heat. Cable CRC
// errors are noted: they point at the enclosure or cable, not the disk.
func judgeATA(r *Report, attrs []Attribute) {
	r.Protocol, r.Attributes, r.Verdict = "ata", attrs, OK
	for _, a := range attrs {
		if a.PreFail && a.Threshold > 0 && a.Value <= a.Threshold {
			r.worse(Failing, fmt.Sprintf("%s has reached its failure threshold (%d ≤ %d): the drive is failing; replace it now.", nameOr(a), a.Value, a.Threshold))
		}
		if say, ok := ataWarnings[a.ID]; ok && a.Raw > 0 {
			r.worse(Warning, fmt.Sprintf(say, a.Raw))
		}
		r.readATA(a)
	}
	if r.Temperature > HotCelsius {
		r.worse(Warning, fmt.Sprintf("The drive is at %d °C: keep it away from heat and give the box air.", r.Temperature))
	}
}

// ataWarnings are the attributes whose raw count above zero is a warning,
// and what to say about the count.
var ataWarnings = map[uint8]string{
	5:   "%d sectors reallocated: the drive is wearing out; replace it soon.",
	197: "%d sectors waiting to be reallocated: the drive has trouble reading; replace it soon.",
	198: "%d sectors could not be read at all: replace the drive soon.",
	187: "%d errors the drive could not correct: replace it soon.",
	188: "%d commands timed out: check the cable and enclosure, then the drive.",
}

// readATA takes what the report shows from an attribute that is no
// warning: cable errors, power-on hours and the temperature.
func (r *Report) readATA(a Attribute) {
	switch a.ID {
	case 199:
		if a.Raw > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%d transfer (CRC) errors: usually the cable or enclosure, not the disk.", a.Raw))
		}
	case 9:
		r.PowerOnHours = int(a.Raw)
	case 194, 190:
		if r.Temperature == 0 || a.ID == 194 {
			r.Temperature = int(a.Raw)
		}
	}
}

func nameOr(a Attribute) string {
	if a.Name != "" {
		return a.Name
	}
	return fmt.Sprintf("attribute %d", a.ID)
}
