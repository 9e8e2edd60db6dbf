package main

import (
	"strings"
	"testing"
)

func TestReadSettings(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		err        string // a part of the error; empty means valid
	}{
		{"minimal", `{"dir": "/srv/clinicvault"}`, ""},
		{"rules", `{"dir": "/srv/v", "rules": [{"tag": "tag:clinicbox", "role": "upload"}]}`, ""},
		{"no dir", `{}`, "dir: missing"},
		{"unknown field", `{"dir": "/srv/v", "colour": "red"}`, "unknown field"},
		{"short retention", `{"dir": "/srv/v", "pitr_days": 3}`, "pitr_days: 3"},
		{"quota and abandon age", `{"dir": "/srv/v", "quota_gb": 500, "abandon_hours": 72}`, ""},
		{"negative quota", `{"dir": "/srv/v", "quota_gb": -1}`, "quota_gb: -1"},
		{"hasty abandon", `{"dir": "/srv/v", "abandon_hours": 1}`, "abandon_hours: 1"},
		{"bad tag", `{"dir": "/srv/v", "tags": ["vault"]}`, "tags start with tag:"},
		{"standby", `{"dir": "/srv/v", "standby": {"namespace": "nBOX1", "identity_file": "/etc/clinicvault/recovery.key", "port": 5433}}`, ""},
		{"standby without key", `{"dir": "/srv/v", "standby": {"namespace": "nBOX1"}}`, "standby.identity_file"},
		{"s3", `{"dir": "/srv/v", "s3": {"endpoint": "https://s3.example.net", "bucket": "clinic-vault", "credentials_file": "/etc/clinicvault/s3.json", "ca_file": "/etc/clinicvault/ca.pem", "object_lock": {"mode": "COMPLIANCE", "days": 60}}}`, ""},
		{"s3 over plain http", `{"dir": "/srv/v", "s3": {"endpoint": "http://s3.example.net", "bucket": "clinic-vault", "credentials_file": "k"}}`, "use https"},
		{"s3 without credentials", `{"dir": "/srv/v", "s3": {"endpoint": "https://s3.example.net", "bucket": "clinic-vault"}}`, "s3.credentials_file"},
		{"s3 credentials inline", `{"dir": "/srv/v", "s3": {"endpoint": "https://s3.example.net", "bucket": "b", "secret_access_key": "x"}}`, "unknown field"},
		{"two nodes, ack when stored", `{"dir": "/srv/v", "node": "vault-a", "lease_seconds": 20, "ack": "stored", "s3": {"endpoint": "https://s3.example.net", "bucket": "clinic-vault", "credentials_file": "k"}}`, ""},
		{"node without a bucket", `{"dir": "/srv/v", "node": "vault-a"}`, "node: \"vault-a\""},
		{"hasty lease", `{"dir": "/srv/v", "lease_seconds": 2}`, "lease_seconds: 2"},
		{"ack stored without a bucket", `{"dir": "/srv/v", "ack": "stored"}`, "ack: \"stored\" needs an s3"},
		{"unknown ack", `{"dir": "/srv/v", "ack": "maybe"}`, "ack: \"maybe\""},
		{"local keep", `{"dir": "/srv/v", "local_keep_days": 14, "s3": {"endpoint": "https://s3.example.net", "bucket": "clinic-vault", "credentials_file": "k"}}`, ""},
		{"local keep without a bucket", `{"dir": "/srv/v", "local_keep_days": 14}`, "local_keep_days: 14"},
		{"offload too rare", `{"dir": "/srv/v", "offload_seconds": 86400}`, "offload_seconds"},
		{"standby escaping", `{"dir": "/srv/v", "standby": {"namespace": "../etc", "identity_file": "k"}}`, "standby.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadSettings(strings.NewReader(tc.json))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("got %v; want valid settings", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %v; want an error containing %q", err, tc.err)
			case tc.err == "" && (s.Hostname != "vault" || s.Listen != ":8443" || s.StateDir != s.Dir+"/tailnet"):
				t.Errorf("got defaults %+v; want hostname vault, :8443 and the state under dir", s)
			}
		})
	}
}
