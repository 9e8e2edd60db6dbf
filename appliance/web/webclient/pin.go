package webclient

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"
)

// pinned is a TLS configuration that accepts exactly the certificate
// with the given SHA-256 fingerprint (hex, with or without colons). The
// box's certificate is self-signed, so no authority can vouch for it: the
// fingerprint, checked by a person or read from the box's state, is what
// is verified, in place of the usual chain and name checks (which is why
// InsecureSkipVerify is set: VerifyConnection does the verifying). An
// empty or malformed fingerprint accepts no certificate at all.
func pinned(fingerprint string) *tls.Config {
	want, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(fingerprint))
	return &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err != nil || len(want) != sha256.Size {
				return fmt.Errorf("webclient: no valid certificate fingerprint to check the box against (%q)", fingerprint)
			}
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("webclient: the box sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("webclient: the box's certificate has fingerprint %X, not the one expected; someone may be in between", got)
			}
			return nil
		},
	}
}
