package web

import (
	"crypto/rand"
	"crypto/subtle"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
)

// Setting the box password is armed only from the box itself, so that
// nobody else on the practice network can claim it: a press of the box's
// button opens setup for setupWindow, or the form carries the one-time
// setup code the box shows on its own screen (the console: a monitor on
// the Pi's HDMI, the serial port) and in its log, never on the network.

// setupWindow is how long a press of the button keeps setup open.
const setupWindow = 10 * time.Minute

// setupClosed is what a visitor is told when setup is not armed.
const setupClosed = "Setup is closed. To open it, press the button on the box once (setup then stays open for 10 minutes), or type the setup code shown on the box's screen."

// codeAlphabet leaves out letters and digits that look alike (0 O 1 I L).
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// setupGate is the arming of the password's setup.
type setupGate struct {
	mu sync.Mutex
	// until is the end of the window the button opened; zero when none.
	until time.Time
	// code is the one-time setup code; "" when the password is set.
	code string
}

// newSetupCode returns ten characters (49 bits) as XXXXX-XXXXX.
func newSetupCode() string {
	b := make([]byte, 0, 11)
	n := big.NewInt(int64(len(codeAlphabet)))
	for i := range 10 {
		if i == 5 {
			b = append(b, '-')
		}
		x, _ := rand.Int(rand.Reader, n) // never fails on Linux
		b = append(b, codeAlphabet[x.Int64()])
	}
	return string(b)
}

// normalCode is a typed code as compared: upper case, without spaces and
// dashes.
func normalCode(s string) string {
	return strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(strings.TrimSpace(s)))
}

// armed reports whether setup is open at now, or code is the setup code.
func (g *setupGate) armed(now time.Time, code string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.until) {
		return true
	}
	want := normalCode(g.code)
	return want != "" && subtle.ConstantTimeCompare([]byte(normalCode(code)), []byte(want)) == 1
}

// openUntil is the end of the button's window, or zero when it is closed
// at now.
func (g *setupGate) openUntil(now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.until) {
		return g.until
	}
	return time.Time{}
}

// disarm closes the window and forgets the code: the password is set.
func (g *setupGate) disarm() {
	g.mu.Lock()
	g.until, g.code = time.Time{}, ""
	g.mu.Unlock()
}

// newCode makes a new setup code and shows it at the box.
func (s *Server) newCode() {
	code := newSetupCode()
	s.setupGate.mu.Lock()
	s.setupGate.code = code
	s.setupGate.mu.Unlock()
	s.log.Warn("the box's page has no password yet: to set it, press the box's button once, or type this setup code on the page", "setup_code", code)
	if s.cfg.ShowSetupCode != nil {
		s.cfg.ShowSetupCode(code)
	}
}

// PasswordSet reports whether the LAN password is set.
func (s *Server) PasswordSet() bool { return s.password.isSet() }

// OpenSetup opens the password's setup for ten minutes, for someone at
// the box (a press of its button), and reports whether it did: it does
// nothing once a password is set.
func (s *Server) OpenSetup(who string) bool {
	if s.password.isSet() {
		return false
	}
	s.openSetup(who, "pressed the box's button")
	return true
}

func (s *Server) openSetup(who, why string) {
	s.setupGate.mu.Lock()
	s.setupGate.until = s.now().Add(setupWindow)
	s.setupGate.mu.Unlock()
	rec := audit.Record{Time: s.now(), Caller: who, Role: RoleStaff, Action: "open setup", Allowed: true, Why: why}
	if _, err := s.cfg.Audit.Append(rec); err != nil {
		s.log.Error("audit", "op", "open setup", "err", err)
	}
}
