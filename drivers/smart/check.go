package smart

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	smartgo "github.com/anatol/smart.go"
)

// DefaultBridges are USB-SATA bridges (vendor:product) known to pass SAT
// ATA PASS-THROUGH safely, as listed with "sat" in smartmontools' drive
// database: JMicron JMS578, ASMedia ASM1051E/1053E/1153E. Others, NVMe
// bridges among them, are not probed: some hang or reset when asked.
var DefaultBridges = []string{"152d:0578", "174c:55aa", "174c:1153"}

// Checker checks drives. Its zero value probes real devices with the
// default bridge allowlist and a 10 s timeout.
type Checker struct {
	// Bridges are the USB bridges that may be probed; nil means
	// DefaultBridges.
	Bridges []string
	// Timeout bounds one check; zero means 10 s.
	Timeout time.Duration
	// Read reads a device's health; nil reads it with smart.go. Tests
	// put recorded pages, a hang or a panic here.
	Read func(dev string) (Report, error)
	Now  func() time.Time

	mu    sync.Mutex
	stuck map[string]bool
}

// Check reports the health of the disk dev ("/dev/sda") behind bridge
// ("vvvv:pppp"; "" when the disk is not on USB). It never blocks longer
// than the timeout: a device that did not answer is not asked again until
// Forget (it was unplugged).
func (c *Checker) Check(ctx context.Context, dev, bridge string) Report {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	r := Report{Device: dev, Verdict: Unknown, Checked: now()}
	if bridge != "" && !c.allowed(bridge) {
		r.Reasons = []string{fmt.Sprintf("The drive's USB enclosure (%s) is not known to answer health queries safely, so its health is not checked. IT can add it to the allowlist after testing it.", bridge)}
		return r
	}
	c.mu.Lock()
	stuck := c.stuck[dev]
	c.mu.Unlock()
	if stuck {
		r.Reasons = []string{"The drive did not answer health queries earlier; unplug it and plug it in again."}
		return r
	}
	read := c.Read
	if read == nil {
		read = readDevice
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	type result struct {
		r   Report
		err error
	}
	done := make(chan result, 1) // the goroutine of a stuck call is abandoned; it may finish later
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("smart: the health library failed on %s: %v", dev, p)}
			}
		}()
		got, err := read(dev)
		done <- result{got, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			r.Reasons = []string{"The drive's health could not be read: " + res.err.Error()}
			return r
		}
		res.r.Device, res.r.Checked = dev, r.Checked
		return res.r
	case <-t.C:
		c.mu.Lock()
		if c.stuck == nil {
			c.stuck = map[string]bool{}
		}
		c.stuck[dev] = true
		c.mu.Unlock()
		r.Reasons = []string{fmt.Sprintf("The drive did not answer health queries within %v.", timeout)}
		return r
	case <-ctx.Done():
		r.Reasons = []string{"The health check was stopped."}
		return r
	}
}

// Forget clears a device's stuck mark, when a drive was plugged in again.
func (c *Checker) Forget(dev string) {
	c.mu.Lock()
	delete(c.stuck, dev)
	c.mu.Unlock()
}

func (c *Checker) allowed(bridge string) bool {
	list := c.Bridges
	if list == nil {
		list = DefaultBridges
	}
	for _, b := range list {
		if b == bridge {
			return true
		}
	}
	return false
}

// readDevice asks a real device through smart.go: NVMe only for /dev/nvme
// paths (NVMe commands can break USB bridges), else SAT.
func readDevice(dev string) (Report, error) {
	d, err := smartgo.Open(dev)
	if err != nil {
		return Report{}, err
	}
	defer d.Close()
	var r Report
	switch t := d.(type) {
	case *smartgo.NVMeDevice:
		l, err := t.ReadSMART()
		if err != nil {
			return r, err
		}
		judgeNVMe(&r, l)
		if c, _, err := t.Identify(); err == nil {
			r.Model, r.Serial = printable(c.ModelNumber()), printable(c.SerialNumber())
		}
	case *smartgo.SataDevice:
		data, err := t.ReadSMARTData()
		if err != nil {
			return r, err
		}
		th, err := t.ReadSMARTThresholds()
		if err != nil {
			return r, err
		}
		var attrs []Attribute
		for id, a := range data.Attrs {
			attrs = append(attrs, ataAttribute(id, a.Flags, a.Current, a.Worst, a.VendorBytes, th.Thresholds[id]))
		}
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].ID < attrs[j].ID })
		judgeATA(&r, attrs)
		if id, err := t.Identify(); err == nil {
			r.Model, r.Serial = printable(id.ModelNumber()), printable(id.SerialNumber())
		}
	default:
		r.Verdict = Unknown
		r.Reasons = []string{"The drive speaks SCSI only: no SMART attributes to check."}
	}
	return r, nil
}

// FromATA judges decoded ATA pages (a fixture or a recording).
func FromATA(data, thresholds []byte) (Report, error) {
	attrs, err := DecodeATA(data, thresholds)
	if err != nil {
		return Report{}, err
	}
	var r Report
	judgeATA(&r, attrs)
	return r, nil
}

// FromNVMe judges a decoded NVMe health log page.
func FromNVMe(page []byte) (Report, error) {
	l, err := DecodeNVMe(page)
	if err != nil {
		return Report{}, err
	}
	var r Report
	judgeNVMe(&r, l)
	return r, nil
}

// printable keeps a drive's own string to printable characters: the drive
// chooses its bytes, and the string ends up on the page.
func printable(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s))
}
