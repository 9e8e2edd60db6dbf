package pgcluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// network returns the postgresql.conf lines for the addresses to listen on
// and, with a certificate, for TLS, whose files it writes for the server.
func (c *Cluster) network(opt Options) ([]string, error) {
	for _, a := range opt.Listen {
		if ipBytes(a) == nil {
			return nil, fmt.Errorf("pgcluster: listen address %q is not an IP address", a)
		}
	}
	conf := []string{fmt.Sprintf("listen_addresses = '%s'", strings.Join(append([]string{"127.0.0.1"}, opt.Listen...), ","))}
	if opt.TLS == nil {
		return conf, nil
	}
	crt, key := filepath.Join(c.Dir, "server.crt"), filepath.Join(c.Dir, "server.key")
	for _, f := range []struct {
		name string
		data []byte
	}{{crt, opt.TLS.CertPEM}, {key, opt.TLS.KeyPEM}} {
		// The server refuses a key that others may read.
		if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
			return nil, err
		}
		if err := c.Chown(f.name); err != nil {
			return nil, err
		}
	}
	return append(conf, "ssl = on", fmt.Sprintf("ssl_cert_file = '%s'", crt), fmt.Sprintf("ssl_key_file = '%s'", key)), nil
}

// ipBytes is an address's bytes: 4 for IPv4, 16 for IPv6, nil for neither.
func ipBytes(a string) net.IP {
	ip := net.ParseIP(a)
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}
