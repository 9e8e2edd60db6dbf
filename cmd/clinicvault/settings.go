package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// Settings configure the vault service (a JSON file).
type Settings struct {
	// Dir holds the repositories and the audit log.
	Dir string `json:"dir"`
	// StateDir holds the tailnet node's keys; empty means Dir/tailnet.
	StateDir string `json:"state_dir"`
	// Hostname is the vault's name on the tailnet; empty means "vault".
	Hostname string `json:"hostname"`
	// AuthKeyFile holds the auth key that joins the tailnet the first time.
	AuthKeyFile string `json:"auth_key_file"`
	// Tags the vault advertises; empty means tag:vault.
	Tags []string `json:"tags"`
	// ControlURL is the coordination server; empty means Tailscale's.
	ControlURL string `json:"control_url"`
	// Listen is the tailnet port; empty means ":8443".
	Listen string `json:"listen"`
	// Rules map tailnet tags to roles; empty means the defaults
	// (tag:clinicbox uploads, tag:clinicrestore reads, tag:support sees status).
	Rules []vault.Rule `json:"rules"`
	// RetentionDays and BackupWeeks: zero means 7 days of point-in-time
	// recovery and base backups kept 5 weeks.
	RetentionDays int `json:"pitr_days"`
	BackupWeeks   int `json:"backup_weeks"`
	// QuotaGB is the most one box's namespace may hold, in GiB; zero means
	// 100. A box at its quota shows "the vault is full for this practice".
	QuotaGB int `json:"quota_gb"`
	// AbandonHours is how long an incomplete backup upload may go without
	// new data before it is removed; zero means 48.
	AbandonHours int `json:"abandon_hours"`
	// S3 is the S3-compatible bucket the vault copies every namespace
	// into; nil means none (the directory is the only copy).
	S3 *store.S3Config `json:"s3"`
	// OffloadSeconds is how often the directory is copied into the bucket:
	// how far the bucket may lag what boxes were acknowledged for; zero
	// means 10.
	OffloadSeconds int `json:"offload_seconds"`
	// LocalKeepDays is how many days committed backups and complete WAL
	// segments stay on this node's disk once the s3 bucket holds them;
	// after that they are removed from the disk and read from the bucket
	// (restores, the keyless check), and retention removes them from the
	// bucket. It lets the bucket hold more than one node's disk. Zero
	// keeps everything on disk. Only with an s3 section. The trusted
	// standby replays from the disk: keep it within these days.
	LocalKeepDays int `json:"local_keep_days"`
	// Node names this vault node among several that share the s3 bucket
	// (its hostname, say; unique among them): each box's namespace then
	// has one writer at a time, the node holding its lease in the bucket,
	// and a node takes over the boxes of one that died once their leases
	// run out. Empty means this node is the only one writing the bucket.
	Node string `json:"node"`
	// LeaseSeconds is how long a node's lease on a box runs without
	// renewal: how long the boxes of a dead node wait before another takes
	// them over; zero means 30.
	LeaseSeconds int `json:"lease_seconds"`
	// Ack is what the acknowledgement of WAL to a box means: "fsynced"
	// (on this node's disk, the default; the bucket lags by up to
	// offload_seconds) or "stored" (in the s3 bucket: slower, and what a
	// takeover by another node can never lose).
	Ack string `json:"ack"`
	// Standby turns on the trusted-standby mode for one box.
	Standby *StandbySettings `json:"standby"`
}

// StandbySettings: only for a vault the practice owns, given the
// practice's recovery key. The vault then holds a readable copy of the
// database; without this section it never holds a key.
type StandbySettings struct {
	// Namespace is the box's namespace, as the vault's status lists it.
	Namespace string `json:"namespace"`
	// IdentityFile is the practice's recovery key (an age identity file).
	IdentityFile string `json:"identity_file"`
	// BoxKey is the box's public signing key (clinicbox-sign1-...).
	BoxKey string `json:"box_key,omitempty"`
	// Dir holds the standby's data directory; empty means Dir/standby/NS.
	Dir string `json:"dir"`
	// Port is the loopback port the standby listens on; 0 picks one.
	Port int `json:"port"`
	// Clinicctl is the path of clinicctl, which replay fetches WAL with;
	// empty means clinicctl next to clinicvault.
	Clinicctl string `json:"clinicctl"`
}

// ReadSettings reads settings, rejecting unknown fields, and fills defaults.
func ReadSettings(r io.Reader) (*Settings, error) {
	var s Settings
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("clinicvault: settings: %w", err)
	}
	if s.Hostname == "" {
		s.Hostname = "vault"
	}
	if len(s.Tags) == 0 {
		s.Tags = []string{"tag:vault"}
	}
	if s.Listen == "" {
		s.Listen = ":8443"
	}
	if s.StateDir == "" && s.Dir != "" {
		s.StateDir = s.Dir + "/tailnet"
	}
	return &s, s.Validate()
}

// Validate names the field that is wrong and how to fix it.
func (s *Settings) Validate() error {
	var errs []error
	if s.Dir == "" {
		errs = append(errs, errors.New(`dir: missing; set it to the directory that holds the repositories, e.g. "/srv/clinicvault"`))
	}
	for _, t := range s.Tags {
		if !strings.HasPrefix(t, "tag:") {
			errs = append(errs, fmt.Errorf("tags: %q: tags start with tag:", t))
		}
	}
	errs = append(errs, s.validateLimits()...)
	if s.Standby != nil {
		errs = append(errs, s.Standby.validate()...)
	}
	if s.S3 != nil {
		if err := s.S3.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.validateNodes()...)
	return errors.Join(errs...)
}

// validateNodes checks the settings of several nodes sharing the bucket.
func (s *Settings) validateNodes() []error {
	var errs []error
	if s.Node != "" && (s.S3 == nil || strings.ContainsAny(s.Node, "\"\\") || len(s.Node) > 64) {
		errs = append(errs, fmt.Errorf("node: %q: name this node (up to 64 characters, unique among the nodes) only when an s3 section gives the bucket the nodes share", s.Node))
	}
	if s.LeaseSeconds < 0 || (s.LeaseSeconds > 0 && s.LeaseSeconds < 10) || s.LeaseSeconds > 600 {
		errs = append(errs, fmt.Errorf("lease_seconds: %d: give a lease 10 to 600 seconds (0 means 30)", s.LeaseSeconds))
	}
	switch {
	case s.Ack != "" && s.Ack != "fsynced" && s.Ack != "stored":
		errs = append(errs, fmt.Errorf(`ack: %q: use "fsynced" (the default) or "stored"`, s.Ack))
	case s.Ack == "stored" && s.S3 == nil:
		errs = append(errs, errors.New(`ack: "stored" needs an s3 section: the acknowledgement then means stored in the bucket`))
	}
	if err := s.validateLocalKeep(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// validateLocalKeep checks local_keep_days.
func (s *Settings) validateLocalKeep() error {
	if s.LocalKeepDays < 0 || s.LocalKeepDays > 3650 || (s.LocalKeepDays > 0 && s.S3 == nil) {
		return fmt.Errorf("local_keep_days: %d: give 1 to 3650 days to keep on this node's disk what the s3 bucket holds, only with an s3 section (0 keeps everything)", s.LocalKeepDays)
	}
	return nil
}

// validateLimits checks how long the vault keeps what, how much, and how
// often it copies into the bucket.
func (s *Settings) validateLimits() []error {
	var errs []error
	if s.RetentionDays < 0 || (s.RetentionDays > 0 && s.RetentionDays < 7) {
		errs = append(errs, fmt.Errorf("pitr_days: %d: keep at least 7 days of point-in-time recovery (0 means 7)", s.RetentionDays))
	}
	if s.BackupWeeks < 0 || (s.BackupWeeks > 0 && s.BackupWeeks < 2) {
		errs = append(errs, fmt.Errorf("backup_weeks: %d: keep base backups at least 2 weeks (0 means 5)", s.BackupWeeks))
	}
	if s.QuotaGB < 0 || s.QuotaGB > 1<<20 {
		errs = append(errs, fmt.Errorf("quota_gb: %d: give each practice's namespace a size in GiB, e.g. 200 (0 means 100)", s.QuotaGB))
	}
	if s.AbandonHours < 0 || (s.AbandonHours > 0 && s.AbandonHours < 12) {
		errs = append(errs, fmt.Errorf("abandon_hours: %d: give a box at least 12 hours to resume an upload (0 means 48)", s.AbandonHours))
	}
	if s.OffloadSeconds < 0 || s.OffloadSeconds > 3600 {
		errs = append(errs, fmt.Errorf("offload_seconds: %d: copy into the bucket every 1 to 3600 seconds (0 means 10)", s.OffloadSeconds))
	}
	return errs
}

func (sb *StandbySettings) validate() []error {
	var errs []error
	if sb.Namespace == "" || strings.ContainsAny(sb.Namespace, "/\\.") {
		errs = append(errs, fmt.Errorf("standby.namespace: %q: set it to the box's namespace as the vault's status lists it", sb.Namespace))
	}
	if sb.IdentityFile == "" {
		errs = append(errs, errors.New("standby.identity_file: missing; the standby needs the practice's recovery key to replay WAL"))
	}
	if sb.Port < 0 || sb.Port > 65535 {
		errs = append(errs, fmt.Errorf("standby.port: %d is not a port", sb.Port))
	}
	return errs
}

func (s *Settings) limits() vault.Limits {
	return vault.Limits{
		Quota:        int64(s.QuotaGB) << 30,
		AbandonAfter: time.Duration(s.AbandonHours) * time.Hour,
	}
}

func (s *Settings) retention() vault.Retention {
	return vault.Retention{
		PITR:    time.Duration(s.RetentionDays) * 24 * time.Hour,
		Backups: time.Duration(s.BackupWeeks) * 7 * 24 * time.Hour,
	}
}

func (s *Settings) offloadEvery() time.Duration {
	if s.OffloadSeconds == 0 {
		return 10 * time.Second
	}
	return time.Duration(s.OffloadSeconds) * time.Second
}
