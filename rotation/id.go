package rotation

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a drive can make the box record about it. Each is far above
// what a real drive needs: a drive ID the box makes is "drive-" and 12 hex
// digits, a USB serial at most 126 characters, a UUID 36.
const (
	MaxDriveID    = 64
	MaxGeneration = 40
	MaxFSUUID     = 64
	MaxSerial     = 128
)

// Check reports the first fact of a drive's identity that is too long or
// holds characters no drive needs, in words for the panel: such an identity
// is refused where it is read, before it can reach the records or the
// custody log.
func (id Identity) Check() error {
	if err := CheckDriveID(id.ID); err != nil {
		return err
	}
	if err := checkText("filesystem UUID", id.FSUUID, MaxFSUUID, isUUIDRune); err != nil {
		return err
	}
	return checkText("serial number", id.Serial, MaxSerial, isSerialRune)
}

// CheckDriveID reports whether id can be a drive ID: at most MaxDriveID
// ASCII letters, digits, '.', '_' and '-'. An empty ID (no identity) is
// allowed.
func CheckDriveID(id DriveID) error {
	return checkText("drive ID", string(id), MaxDriveID, isIDRune)
}

// CheckGeneration reports whether g can name a generation: at most
// MaxGeneration bytes of letters, digits, spaces and "-._'".
func CheckGeneration(g string) error {
	return checkText("generation name", g, MaxGeneration, func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || strings.ContainsRune("-._'", r)
	})
}

func checkText(what, s string, max int, ok func(rune) bool) error {
	if len(s) > max {
		return fmt.Errorf("its %s is %d bytes long, more than the %d any drive needs", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("its %s is not text", what)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !ok(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("its %s holds the character %q, which is not allowed", what, r)
	}
	return nil
}

func isIDRune(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
}

func isUUIDRune(r rune) bool { return isIDRune(r) || r == ':' }

// isSerialRune allows printable ASCII and the space some drives pad with.
func isSerialRune(r rune) bool { return r >= ' ' && r <= '~' }
