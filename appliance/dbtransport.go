package appliance

import (
	"errors"
	"fmt"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// checkDatabaseTransport checks the TLS parameters of the database URL
// (sslmode, sslrootcert, sslsha256), naming the field and the fix.
func checkDatabaseTransport(rawURL string) error {
	_, err := postgres.CheckURL(rawURL)
	var pe *postgres.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("settings: database.url: %s; %s", pe.Problem, pe.Fix)
	}
	if err != nil {
		return fmt.Errorf("settings: database.url: %v", err)
	}
	return nil
}

// notEncrypted is the warning while the database URL opts out of TLS
// (sslmode=disable) to a server across the network: the box honors it,
// but the password and the patient data then cross the network readable.
func (a *Appliance) notEncrypted() []status.Condition {
	t, err := postgres.CheckURL(a.set.Database.URL)
	if err != nil || !t.Insecure() {
		return nil
	}
	return []status.Condition{{Name: "database not encrypted", Severity: status.Attention, Since: a.started,
		Message: "The connection to the database is not encrypted: the database URL says sslmode=disable, so anyone on the network can read " +
			"the patient data on its way to the box. Ask IT to turn TLS on at the server (ssl = on in postgresql.conf with a certificate and key, then reload), " +
			"put the certificate's fingerprint in the URL as sslsha256=..., and remove sslmode=disable."}}
}
