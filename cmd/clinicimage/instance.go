package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// instance is config.json: the gokrazy instance schema as monogok reads it.
// Every field monogok knows is listed so that a misspelled field is an
// error here instead of a silently ignored setting in the image.
type instance struct {
	Hostname                   string
	DeviceType                 string
	Update                     *update
	Environment                []string
	Packages                   []string
	PackageConfig              map[string]packageConfig
	SerialConsole              string
	GokrazyPackages            *[]string
	KernelPackage              *string
	FirmwarePackage            *string
	EEPROMPackage              *string
	KernelExtraArgs            []string
	BootloaderExtraLines       []string
	BootloaderExtraEEPROM      []string
	MountDevices               []json.RawMessage
	InternalCompatibilityFlags json.RawMessage
}

type update struct {
	Hostname     string
	UseTLS       string
	NoPassword   bool
	HTTPPort     string
	HTTPSPort    string
	HTTPPassword string
	CertPEM      string
	KeyPEM       string
}

type packageConfig struct {
	GoBuildEnvironment []string
	GoBuildFlags       []string
	GoBuildTags        []string
	ExtraFilePaths     map[string]string
	ExtraFileContents  map[string]string
	Basename           string
	Environment        []string
	CommandLineFlags   []string
	DontStart          bool
	WaitForClock       bool
}

// parseInstance decodes config.json, rejecting fields monogok does not know.
func parseInstance(b []byte) (*instance, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in instance
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return &in, nil
}

// deriveConfig returns config.json with the target's overrides and the
// web interface (update) password set. Fields it does not touch pass
// through unchanged.
func deriveConfig(configJSON []byte, t *Target, password string) ([]byte, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(configJSON, &cfg); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	for field, value := range t.Overrides {
		var v any = value
		if listFields[field] {
			v = strings.Fields(value)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		cfg[field] = b
	}
	upd := map[string]any{}
	if raw, ok := cfg["Update"]; ok {
		if err := json.Unmarshal(raw, &upd); err != nil {
			return nil, fmt.Errorf("config.json: Update: %w", err)
		}
	}
	upd["HTTPPassword"] = password
	b, err := json.Marshal(upd)
	if err != nil {
		return nil, err
	}
	cfg["Update"] = b
	out, err := json.MarshalIndent(cfg, "", "    ")
	return append(out, '\n'), err
}

// passwordEnv names the environment variable that holds the update
// password of the images a builder makes.
const passwordEnv = "CLINICBOX_UPDATE_PASSWORD"

// passwordFile is the untracked file (see .gitignore) that holds it when
// the environment does not.
const passwordFile = ".update-password"

// existingPassword is the update password from $CLINICBOX_UPDATE_PASSWORD
// or the untracked .update-password; an error wrapping fs.ErrNotExist when
// neither is there.
func existingPassword(root string, getenv func(string) string) (pw, source string, err error) {
	if pw := getenv(passwordEnv); pw != "" {
		return pw, "$" + passwordEnv, nil
	}
	path := filepath.Join(root, passwordFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("no update password: set $%s or put the one the box's image was built with in %s: %w", passwordEnv, path, err)
	}
	if err != nil {
		return "", "", err
	}
	if pw := strings.TrimSpace(string(b)); pw != "" {
		return pw, path, nil
	}
	return "", "", fmt.Errorf("%s is empty", path)
}

// updatePassword returns the password of the box's web interface and
// network updates: from the environment, else from root's .update-password,
// else a new random one written there. It says where it came from.
func updatePassword(root string, getenv func(string) string) (pw, source string, err error) {
	pw, source, err = existingPassword(root, getenv)
	if !errors.Is(err, fs.ErrNotExist) {
		return pw, source, err
	}
	path := filepath.Join(root, passwordFile)
	pw = rand.Text()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := fmt.Fprintln(f, pw); err != nil {
		f.Close()
		return "", "", err
	}
	return pw, path + " (new)", f.Close()
}
