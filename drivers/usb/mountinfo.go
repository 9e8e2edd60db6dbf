package usb

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mountEntry is one line of /proc/self/mountinfo: a device and where it is mounted.
type mountEntry struct {
	major, minor uint32
	dir          string
}

// mountTable is the whole of /proc/self/mountinfo.
type mountTable []mountEntry

// has reports whether the device major:minor is mounted anywhere.
func (t mountTable) has(major, minor uint32) bool {
	for _, m := range t {
		if m.major == major && m.minor == minor {
			return true
		}
	}
	return false
}

// at reports whether anything is mounted at dir.
func (t mountTable) at(dir string) bool {
	for _, m := range t {
		if m.dir == dir {
			return true
		}
	}
	return false
}

// readMountInfo reads a mountinfo file ("36 35 98:0 / /mnt rw ... - ext4 ...").
func readMountInfo(p string) (mountTable, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("usb: read mounts: %w", err)
	}
	defer f.Close()
	var t mountTable
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		maj, mnr, ok := strings.Cut(fs[2], ":")
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(mnr, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		t = append(t, mountEntry{uint32(a), uint32(b), unescapeMount(fs[4])})
	}
	return t, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
