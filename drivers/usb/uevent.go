package usb

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pilebones/go-udev/netlink"
)

// MaxMessage is the largest uevent accepted. The kernel builds each event in a
// 2 KiB environment buffer (UEVENT_BUFFER_SIZE) plus the "action@devpath"
// header; anything much larger did not come from it.
const MaxMessage = 8192

// maxVars bounds the variables of one event (the kernel allows 64).
const maxVars = 64

// ErrMalformed marks a message that is not a well-formed kernel uevent.
var ErrMalformed = errors.New("malformed uevent")

// parseUEvent decodes one raw kernel uevent: "action@devpath\0KEY=VAL\0...".
//
// go-udev's netlink.ParseUEvent is not used here because it rejects a message
// whose values contain '=' (a GPT partition's PARTNAME is chosen by whoever
// formatted the drive, so one such name would hide the drive), drops a last
// variable that lacks its NUL, and hands anything starting with "libudev" to
// a parser that reads a header with unchecked offsets. This parser splits each
// variable at its first '=', bounds size and count, and checks that the header
// agrees with ACTION and DEVPATH. It still returns go-udev's UEvent type.
func parseUEvent(msg []byte) (*netlink.UEvent, error) {
	if len(msg) == 0 || len(msg) > MaxMessage {
		return nil, fmt.Errorf("usb: parse uevent: %d bytes: %w", len(msg), ErrMalformed)
	}
	if msg[len(msg)-1] != 0 {
		return nil, fmt.Errorf("usb: parse uevent: not NUL-terminated: %w", ErrMalformed)
	}
	fields := bytes.Split(msg[:len(msg)-1], []byte{0})
	act, devpath, ok := bytes.Cut(fields[0], []byte("@"))
	if !ok || len(devpath) == 0 || devpath[0] != '/' {
		return nil, fmt.Errorf("usb: parse uevent: header %q: %w", fields[0], ErrMalformed)
	}
	action, err := netlink.ParseKObjAction(string(act))
	if err != nil {
		return nil, fmt.Errorf("usb: parse uevent: %v: %w", err, ErrMalformed)
	}
	if len(fields)-1 > maxVars {
		return nil, fmt.Errorf("usb: parse uevent: %d variables: %w", len(fields)-1, ErrMalformed)
	}
	env := make(map[string]string, len(fields)-1)
	for _, f := range fields[1:] {
		k, v, ok := bytes.Cut(f, []byte("="))
		if !ok || len(k) == 0 {
			return nil, fmt.Errorf("usb: parse uevent: variable %q: %w", f, ErrMalformed)
		}
		env[string(k)] = string(v)
	}
	if env["ACTION"] != string(act) || env["DEVPATH"] != string(devpath) {
		return nil, fmt.Errorf("usb: parse uevent: header %q disagrees with ACTION/DEVPATH: %w", fields[0], ErrMalformed)
	}
	return &netlink.UEvent{Action: action, KObj: string(devpath), Env: env}, nil
}
