package main

import (
	"context"
	"fmt"
	"regexp"

	"github.com/clinicbox/clinicbox/appliance/web/webclient"
)

// fingerprintRE finds the certificate fingerprint clinicbox logs at its
// start ("fingerprint=AB:CD:..."), 32 hex pairs.
var fingerprintRE = regexp.MustCompile(`fingerprint=((?:[0-9A-F]{2}:){31}[0-9A-F]{2})\b`)

// logFingerprint returns the fingerprint in a clinicbox log line.
func logFingerprint(line string) (string, error) {
	m := fingerprintRE.FindStringSubmatch(line)
	if m == nil {
		return "", fmt.Errorf("no certificate fingerprint in clinicbox's log line %q", line)
	}
	return m[1], nil
}

// pinBox reads the fingerprint of the box's own certificate from
// clinicbox's log on the gokrazy page, as an IT person could, and has
// the box's client trust that certificate and no other. The certificate
// lives on /perm, so the pin holds across updates and restarts.
func pinBox(ctx context.Context, s *smoke) error {
	line, err := s.ui.WaitLog(ctx, "/user/clinicbox", "stdout", "fingerprint=")
	if err != nil {
		return err
	}
	fp, err := logFingerprint(line)
	if err != nil {
		return err
	}
	s.box = webclient.New(s.box.Base, s.box.Password, fp)
	fmt.Fprintf(s.out, "smoke: the box's pages' certificate, from its log: SHA-256 %s\n", fp)
	return nil
}
