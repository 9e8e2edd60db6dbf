package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Target is one image built from config.json.
type Target struct {
	Name string
	// GOARCH is the architecture the packages are built for.
	GOARCH string
	// Output is where the image is written, relative to the module root.
	Output string
	// StorageBytes is the image size; /perm takes what the boot and root
	// partitions (1.1 GB) leave.
	StorageBytes int64
	// Overrides maps a config.json field to the value this target uses
	// instead; "" removes the package the field names; a list field
	// (listFields) holds its items separated by spaces. Nil means
	// config.json as it is.
	Overrides map[string]string
}

// Smoke holds the settings of the smoke test.
type Smoke struct {
	// Target names the image that is booted.
	Target string
	// Qemu is the emulator binary, OVMF its UEFI firmware (a PC only).
	Qemu, OVMF string
	// Machine is qemu's board; "" means a PC booted by OVMF. "raspi3b"
	// boots the kernel and the device tree DTB from the image's boot
	// partition directly, as the Pi's firmware would (see pivm.go).
	Machine, DTB string
	// MemoryMiB and CPUs size the virtual machine.
	MemoryMiB, CPUs int
	// BootTimeout bounds the wait for the web interface; BackupTimeout
	// the wait for a base backup and its verification; StepTimeout every
	// other step.
	BootTimeout, BackupTimeout, StepTimeout time.Duration
}

// Settings is what gokr-packer.yml holds.
type Settings struct {
	Targets map[string]*Target
	Smoke   Smoke
	// SmokePi is make smoke-pi (keys smokepi.*): the Pi image on an
	// emulated Raspberry Pi 3B. Its zero value means not configured.
	SmokePi Smoke
}

// overrideFields maps a target key in gokr-packer.yml to the config.json
// field it replaces.
var overrideFields = map[string]string{
	"kernel":         "KernelPackage",
	"firmware":       "FirmwarePackage",
	"eeprom":         "EEPROMPackage",
	"serial_console": "SerialConsole",
	"kernel_args":    "KernelExtraArgs",
}

// listFields are the config.json fields that hold a list of strings.
var listFields = map[string]bool{"KernelExtraArgs": true}

// readSettings reads gokr-packer.yml from path.
func readSettings(path string) (*Settings, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := parseSettings(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// parseSettings reads the flat "prefix.key: value" lines of gokr-packer.yml.
// The file is valid YAML, but a YAML library would be a new dependency for
// a dozen fixed keys, so it is read line by line here.
func parseSettings(r io.Reader) (*Settings, error) {
	s := &Settings{Targets: map[string]*Target{}}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || value == "" {
			return nil, fmt.Errorf("line %d: want \"key: value\", got %q", n, line)
		}
		if seen[key] {
			return nil, fmt.Errorf("line %d: %s set twice", n, key)
		}
		seen[key] = true
		if err := s.set(key, value); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return s, s.validate()
}

func (s *Settings) set(key, value string) error {
	prefix, field, ok := strings.Cut(key, ".")
	if !ok {
		return fmt.Errorf("key %s: want TARGET.field or smoke.field", key)
	}
	switch prefix {
	case "smoke":
		return s.Smoke.set(prefix, field, value)
	case "smokepi":
		return s.SmokePi.set(prefix, field, value)
	}
	t := s.Targets[prefix]
	if t == nil {
		t = &Target{Name: prefix}
		s.Targets[prefix] = t
	}
	return t.set(field, value)
}

func (t *Target) set(field, value string) (err error) {
	switch field {
	case "goarch":
		t.GOARCH = value
	case "output":
		t.Output = value
	case "storage_bytes":
		t.StorageBytes, err = strconv.ParseInt(value, 10, 64)
	default:
		cfgField, ok := overrideFields[field]
		if !ok {
			return fmt.Errorf("unknown target key %s.%s", t.Name, field)
		}
		if value == "none" {
			value = ""
		}
		if t.Overrides == nil {
			t.Overrides = map[string]string{}
		}
		t.Overrides[cfgField] = value
	}
	if err != nil {
		return fmt.Errorf("%s.%s: %w", t.Name, field, err)
	}
	return nil
}

func (m *Smoke) set(prefix, field, value string) (err error) {
	switch field {
	case "target":
		m.Target = value
	case "qemu":
		m.Qemu = value
	case "ovmf":
		m.OVMF = value
	case "machine":
		m.Machine = value
	case "dtb":
		m.DTB = value
	case "memory_mib":
		m.MemoryMiB, err = strconv.Atoi(value)
	case "cpus":
		m.CPUs, err = strconv.Atoi(value)
	case "boot_timeout":
		m.BootTimeout, err = time.ParseDuration(value)
	case "backup_timeout":
		m.BackupTimeout, err = time.ParseDuration(value)
	case "step_timeout":
		m.StepTimeout, err = time.ParseDuration(value)
	default:
		return fmt.Errorf("unknown key %s.%s", prefix, field)
	}
	if err != nil {
		return fmt.Errorf("%s.%s: %w", prefix, field, err)
	}
	return nil
}

func (s *Settings) validate() error {
	for name, t := range s.Targets {
		if t.GOARCH == "" || t.Output == "" || t.StorageBytes <= 0 {
			return fmt.Errorf("target %s: set %[1]s.goarch, %[1]s.output and %[1]s.storage_bytes", name)
		}
	}
	if err := s.Smoke.validate("smoke", s.Targets); err != nil {
		return err
	}
	if s.SmokePi != (Smoke{}) {
		return s.SmokePi.validate("smokepi", s.Targets)
	}
	return nil
}

func (m Smoke) validate(prefix string, targets map[string]*Target) error {
	if targets[m.Target] == nil {
		return fmt.Errorf("%s.target %q: no such target", prefix, m.Target)
	}
	if m.Qemu == "" || m.MemoryMiB <= 0 || m.CPUs <= 0 || m.BootTimeout <= 0 || m.BackupTimeout <= 0 || m.StepTimeout <= 0 {
		return fmt.Errorf("%s: set qemu, memory_mib, cpus, boot_timeout, backup_timeout and step_timeout", prefix)
	}
	switch m.Machine {
	case "":
		if m.OVMF == "" {
			return fmt.Errorf("%s: set ovmf (the UEFI firmware a PC boots from) or machine", prefix)
		}
	case piMachine:
		if m.DTB == "" {
			return fmt.Errorf("%s: set dtb, the device tree of the boot partition that %s boots with", prefix, piMachine)
		}
	default:
		return fmt.Errorf("%s.machine %q: want %s, or no machine for a PC", prefix, m.Machine, piMachine)
	}
	return nil
}
