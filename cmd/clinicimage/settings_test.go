package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodSettings = `
# comment
pi.goarch: arm64
pi.output: _work/pi.img
pi.storage_bytes: 2147483648

vm.goarch: amd64
vm.kernel: github.com/gokrazy/kernel.amd64
vm.firmware: none
vm.output: _work/vm.img
vm.storage_bytes: 1610612736

smoke.target: vm
smoke.qemu: qemu-system-x86_64
smoke.ovmf: /usr/share/ovmf/OVMF.fd
smoke.memory_mib: 1024
smoke.cpus: 1
smoke.boot_timeout: 4m
smoke.backup_timeout: 5m
smoke.step_timeout: 1m
`

func TestParseSettings(t *testing.T) {
	s, err := parseSettings(strings.NewReader(goodSettings))
	if err != nil {
		t.Fatal(err)
	}
	vm := s.Targets["vm"]
	if vm == nil || vm.GOARCH != "amd64" || vm.StorageBytes != 1610612736 || vm.Output != "_work/vm.img" {
		t.Fatalf("got target vm %+v; want amd64, 1610612736, _work/vm.img", vm)
	}
	if got, ok := vm.Overrides["FirmwarePackage"]; !ok || got != "" {
		t.Errorf("got FirmwarePackage override %q (set %v); want \"\" (none)", got, ok)
	}
	if got := vm.Overrides["KernelPackage"]; got != "github.com/gokrazy/kernel.amd64" {
		t.Errorf("got KernelPackage override %q; want github.com/gokrazy/kernel.amd64", got)
	}
	if s.Targets["pi"].Overrides != nil {
		t.Errorf("got pi overrides %v; want none", s.Targets["pi"].Overrides)
	}
	if s.Smoke.BootTimeout != 4*time.Minute || s.Smoke.BackupTimeout != 5*time.Minute || s.Smoke.CPUs != 1 || s.Smoke.Target != "vm" {
		t.Errorf("got smoke %+v; want boot_timeout 4m, backup_timeout 5m, cpus 1, target vm", s.Smoke)
	}
}

func TestParseSettingsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, line, replacement, want string
	}{
		{"unknown target key", "pi.goarch: arm64", "pi.goarch: arm64\npi.kernal: x", "unknown target key pi.kernal"},
		{"unknown smoke key", "smoke.cpus: 1", "smoke.cpus: 1\nsmoke.memory: 1", "unknown key smoke.memory"},
		{"set twice", "pi.goarch: arm64", "pi.goarch: arm64\npi.goarch: arm", "pi.goarch set twice"},
		{"no value", "pi.goarch: arm64", "pi.goarch:", "want \"key: value\""},
		{"no prefix", "pi.goarch: arm64", "goarch: arm64", "want TARGET.field"},
		{"bad number", "pi.storage_bytes: 2147483648", "pi.storage_bytes: 2G", "pi.storage_bytes"},
		{"bad duration", "smoke.boot_timeout: 4m", "smoke.boot_timeout: 4", "smoke.boot_timeout"},
		{"incomplete target", "pi.output: _work/pi.img", "", "target pi: set pi.goarch"},
		{"no smoke target", "smoke.target: vm", "smoke.target: nope", `smoke.target "nope"`},
		{"no qemu", "smoke.qemu: qemu-system-x86_64", "", "smoke: set qemu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(goodSettings, tc.line, tc.replacement, 1)
			if in == goodSettings {
				t.Fatalf("test case does not change the input")
			}
			_, err := parseSettings(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v; want one containing %q", err, tc.want)
			}
		})
	}
}

// TestPackerFileDoesNotRepeatConfig checks the project's gokr-packer.yml:
// it parses, and a target overrides a config.json field only to change it.
func TestPackerFileDoesNotRepeatConfig(t *testing.T) {
	root := moduleRoot(t)
	s, err := readSettings(filepath.Join(root, "gokr-packer.yml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pi", "amd64"} {
		target := s.Targets[name]
		if target == nil {
			t.Fatalf("gokr-packer.yml has no target %s", name)
		}
		for field, value := range target.Overrides {
			var inConfig string
			json.Unmarshal(cfg[field], &inConfig)
			if value == inConfig {
				t.Errorf("target %s sets %s to %q, as config.json already does", name, field, value)
			}
		}
	}
	if got := s.Targets["pi"].GOARCH; got != "arm64" {
		t.Errorf("got pi goarch %q; want arm64", got)
	}
}
