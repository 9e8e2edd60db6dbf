package smart

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	smartgo "github.com/anatol/smart.go"
)

// Record reads a real device's SMART pages and writes them to dir in the
// fixture format (NAME.data.bin, NAME.thresholds.bin for ATA; NAME.data.bin
// for NVMe), so tests can replay what a box's drives really report. The
// ATA page is rebuilt from the attribute fields smart.go returns (ID,
// flags, values, raw bytes): every field the verdict reads.
func Record(dev, dir, name string) error {
	d, err := smartgo.Open(dev)
	if err != nil {
		return fmt.Errorf("smart: record %s: %w", dev, err)
	}
	defer d.Close()
	write := func(suffix string, v any) error {
		var b bytes.Buffer
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			return err
		}
		page := append(b.Bytes(), make([]byte, max(0, PageSize-b.Len()))...)
		if _, nvme := v.(*smartgo.NvmeSMARTLog); !nvme {
			sealATA(page)
		}
		return os.WriteFile(filepath.Join(dir, name+suffix), page, 0o644)
	}
	switch t := d.(type) {
	case *smartgo.NVMeDevice:
		l, err := t.ReadSMART()
		if err != nil {
			return err
		}
		return write(".data.bin", l)
	case *smartgo.SataDevice:
		data, err := t.ReadSMARTData()
		if err != nil {
			return err
		}
		th, err := t.ReadSMARTThresholds()
		if err != nil {
			return err
		}
		var page smartgo.AtaSmartPageRaw
		var tp smartgo.AtaSmartThresholdsPageRaw
		page.Version, tp.Revnumber = data.Version, th.Revnumber
		i := 0
		for id, a := range data.Attrs {
			if i == len(page.Attrs) {
				break
			}
			page.Attrs[i] = smartgo.AtaSmartAttrRaw{Id: id, Flags: a.Flags, Current: a.Current, Worst: a.Worst, VendorBytes: a.VendorBytes}
			tp.ThresholdEntries[i].Id, tp.ThresholdEntries[i].Threshold = id, th.Thresholds[id]
			i++
		}
		if err := write(".data.bin", page); err != nil {
			return err
		}
		return write(".thresholds.bin", tp)
	}
	return fmt.Errorf("smart: record %s: the drive speaks SCSI only; there are no SMART pages", dev)
}

// sealATA sets an ATA SMART page's checksum byte, which makes the sum of
// its 512 bytes zero: the rebuilt page carries a checksum as the drive's
// own did, and DecodeATA checks it.
func sealATA(page []byte) {
	var sum byte
	for _, c := range page[:PageSize-1] {
		sum += c
	}
	page[PageSize-1] = -sum
}
