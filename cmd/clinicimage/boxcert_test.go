package main

import "testing"

func TestLogFingerprint(t *testing.T) {
	const fp = "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9"
	tests := []struct {
		name, line, want string
		ok               bool
	}{
		{"clinicbox's start line", `time=2026-12-03T10:00:00Z level=INFO msg=running database=postgres://clinicbox@10.0.2.2:5432/postgres state=/perm/clinicbox pages=:8080 fingerprint=` + fp, fp, true},
		{"last on the line", "fingerprint=" + fp, fp, true},
		{"cut short", "fingerprint=" + fp[:50], "", false},
		{"lower case", "fingerprint=0a:1b", "", false},
		{"none", "level=INFO msg=running", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := logFingerprint(tt.line)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("got %q, %v; want %q (ok %v)", got, err, tt.want, tt.ok)
			}
		})
	}
}
