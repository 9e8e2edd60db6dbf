package usb_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
)

// TestReadFilesystemImages reads images made by the real mkfs tools and checks
// the result against what was asked of mkfs and against blkid.
func TestReadFilesystemImages(t *testing.T) {
	tests := []struct {
		img  usbtest.Image
		want usb.Filesystem
	}{
		{usbtest.Image{Type: "ext4", Label: "CLINIC-SON", ID: "3f1c2a5e-8b0d-4c7e-9a61-2d5f0e4b7c19"},
			usb.Filesystem{Type: "ext4", Label: "CLINIC-SON", UUID: "3f1c2a5e-8b0d-4c7e-9a61-2d5f0e4b7c19"}},
		{usbtest.Image{Type: "ext4", ID: "00000000-0000-4000-8000-000000000001"},
			usb.Filesystem{Type: "ext4", UUID: "00000000-0000-4000-8000-000000000001"}},
		{usbtest.Image{Type: "vfat", Label: "FATHER", ID: "1a2b3c4d", Size: 64 << 20},
			usb.Filesystem{Type: "vfat", Variant: "FAT32", Label: "FATHER", UUID: "1A2B-3C4D"}},
		{usbtest.Image{Type: "vfat", ID: "deadbeef", Size: 64 << 20},
			usb.Filesystem{Type: "vfat", Variant: "FAT32", UUID: "DEAD-BEEF"}},
		{usbtest.Image{Type: "exfat", Label: "GRANDFATHER"},
			usb.Filesystem{Type: "exfat", Label: "GRANDFATHER"}},
		{usbtest.Image{Type: "exfat"}, usb.Filesystem{Type: "exfat"}},
	}
	for _, tt := range tests {
		t.Run(tt.img.Type+"/"+tt.img.Label, func(t *testing.T) {
			p := usbtest.MakeImage(t, tt.img)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := usb.ReadFilesystem(f)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.UUID == "" {
				want.UUID = got.UUID // mkfs.exfat picks its own serial; blkid checks it below
			}
			if got != want {
				t.Errorf("got %+v; want %+v", got, want)
			}
			b := blkid(t, p)
			if b["TYPE"] != got.Type || b["LABEL"] != got.Label || b["UUID"] != got.UUID {
				t.Errorf("got %+v; blkid says %v", got, b)
			}
		})
	}
}

func blkid(t *testing.T, path string) map[string]string {
	prog := testenv.NeedCommand(t, "blkid")
	out, err := exec.Command(prog, "-p", "-o", "export", path).Output()
	if err != nil {
		t.Fatalf("blkid %s: %v", path, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestReadFilesystemNone(t *testing.T) {
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xAA
	mbr[446+4] = 0x0c // a FAT32 partition entry: a partition table, not a filesystem
	exfatBad := make([]byte, 4096)
	copy(exfatBad[3:], "EXFAT   ")
	exfatBad[108], exfatBad[510], exfatBad[511] = 30, 0x55, 0xAA
	tests := []struct {
		name string
		data []byte
	}{
		{"zeros", make([]byte, 8192)},
		{"short", []byte("tiny")},
		{"partition table", mbr},
		{"exfat with absurd sector size", exfatBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := usb.ReadFilesystem(bytes.NewReader(tt.data))
			if !errors.Is(err, usb.ErrNoFilesystem) {
				t.Errorf("got %+v, %v; want ErrNoFilesystem", fs, err)
			}
		})
	}
}
