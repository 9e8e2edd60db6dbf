package offsite_test

import (
	"bytes"

	"github.com/clinicbox/clinicbox/appliance/signer"
)

// testSigner signs the test repositories.
var testSigner = signer.FromSeed(bytes.Repeat([]byte{7}, 32))
