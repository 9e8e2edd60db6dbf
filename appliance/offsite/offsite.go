// Package offsite ships the box's WAL and base backups to the offsite vault
// over the tailnet, the box's side of the vault step of the data path: its
// own replication slot per destination, WAL sealed to the drives' recipients
// and sent at every flush, acknowledged to the server only once the vault
// has fsynced it; base backups uploaded resumably under a bandwidth cap; and
// the lag from commit to durable at the vault.
package offsite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Config describes one offsite destination.
type Config struct {
	// Name names the destination (letters, digits, underscores); the slot
	// is clinicbox_offsite_<Name> unless Slot is set.
	Name string
	// DB is the PostgreSQL URL of a role with REPLICATION.
	DB   string
	Slot string
	// Recipients are the age public keys WAL is sealed to: the same as the
	// drives', so the vault holds the same repository format.
	Recipients []string
	// Signer is the box's signing key: every WAL record sent is signed.
	Signer *signer.Key
	// VaultURL is the vault's address on the tailnet ("http://vault:8443").
	VaultURL string
	// VaultURLs are further vault nodes that share the first's bucket: the
	// box moves on to the next when the one in use cannot be reached or
	// answers that another node writes its namespace now.
	VaultURLs []string
	// Client carries requests over the tailnet (tailnet.Node.HTTPClient).
	// Nil means http.DefaultClient (the system's tailscaled routes it).
	Client *http.Client
	// Bandwidth caps base backup uploads by hour; zero means no cap.
	Bandwidth Bandwidth
	// Schedule says when a base backup is due offsite.
	Schedule Schedule
	// Spool is a directory on /perm where incremental base backups are
	// built and uploaded from (spool.go); "" uploads every base backup
	// whole from the drive.
	Spool string
	// Identities open the drive's backups to build incremental ones (the
	// box's key); without them every base backup goes whole.
	Identities []age.Identity
	// MaxChain bounds the incremental backups built on one full one; zero
	// means 13 (two weeks of daily backups).
	MaxChain int
	// SpoolLimit bounds the stored bytes of an incremental backup in the
	// spool; a larger one goes whole from the drive. Zero means 384 MiB.
	SpoolLimit int64
	// FlushInterval is how often received WAL is sealed and sent while it
	// keeps arriving; zero means 200 ms.
	FlushInterval time.Duration
	// PollInterval is how often the server's WAL position is read for the
	// lag and the backlog; zero means 5 s.
	PollInterval time.Duration
	// OnDurable, when set, is called with each position the vault
	// acknowledges as durable.
	OnDurable func(tli uint32, lsn archive.LSN)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ContinueNamespace names the vault namespace of the box this one
	// replaces: at start the box asks the vault to move it to this box's
	// tailnet identity, signed with Signer (move.go). Empty means the
	// box's own namespace.
	ContinueNamespace string
}

// Status is the destination's part of the appliance's status document.
type Status struct {
	Destination string `json:"destination"`
	Slot        string `json:"slot"`
	// Connected reports whether WAL is streaming to the vault right now.
	Connected bool        `json:"connected"`
	Timeline  uint32      `json:"timeline"`
	Durable   archive.LSN `json:"durable_lsn"`
	// LastDurable is when the vault last acknowledged WAL.
	LastDurable time.Time `json:"last_durable"`
	// LagSeconds is the age of the oldest WAL the server wrote that is not
	// yet durable at the vault (0 when the vault holds everything); see
	// lagTracker for how it is measured.
	LagSeconds float64 `json:"lag_seconds"`
	// LastLagSeconds is commit-to-durable of the latest acknowledgement.
	LastLagSeconds float64 `json:"last_lag_seconds"`
	// BacklogBytes is WAL the server holds that the vault does not.
	BacklogBytes int64  `json:"backlog_bytes"`
	LastError    string `json:"last_error,omitempty"`
	// VaultFull reports whether the vault refused the last WAL because this
	// practice's quota there is used up: only the vault's operator can fix
	// that, not the link.
	VaultFull     bool      `json:"vault_full,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// WireBytes and RawBytes count sealed WAL sent and the raw WAL in it.
	WireBytes int64 `json:"wal_wire_bytes"`
	RawBytes  int64 `json:"wal_raw_bytes"`
	// LastBaseBackup is the newest base backup stored in the vault.
	LastBaseBackup     string    `json:"last_base_backup,omitempty"`
	LastBaseBackupTime time.Time `json:"last_base_backup_time,omitzero"`
	LastBaseBackupTLI  uint32    `json:"last_base_backup_timeline,omitempty"`
	// Restorable is the newest base backup the vault can restore: stored,
	// and the WAL up to its end stored durably too (WAL travels on its own
	// stream, so a backup can arrive before the WAL that makes it
	// consistent). Zero until one is.
	Restorable     string    `json:"restorable_base_backup,omitempty"`
	RestorableTime time.Time `json:"restorable_base_backup_time,omitzero"`
	// WaitingForWAL is the stored backup whose WAL has not all arrived
	// yet, with the position the vault's WAL must reach.
	WaitingForWAL   string      `json:"waiting_for_wal,omitempty"`
	WaitingForWALTo archive.LSN `json:"waiting_for_wal_to,omitzero"`
	// Uploading is the backup being uploaded, with bytes done and total.
	Uploading   string `json:"uploading,omitempty"`
	UploadDone  int64  `json:"upload_done,omitempty"`
	UploadTotal int64  `json:"upload_total,omitempty"`
	// LogsRefused says why the vault refuses the box's custody or audit
	// log; empty while it takes them.
	LogsRefused string `json:"logs_refused,omitempty"`
}

// Shipper ships WAL and base backups to one vault.
type Shipper struct {
	cfg      Config
	log      *slog.Logger
	vault    *client
	throttle *throttle
	gate     *walGate // WAL sends in flight, which base uploads wait for
	rate     linkRate
	lag      lagTracker
	wire     atomic.Int64
	raw      atomic.Int64
	moved    atomic.Bool // the vault moved ContinueNamespace to this box

	// spoolMu serializes the uploads through the spool.
	spoolMu sync.Mutex
	// runCtx is Run's context, which spooled uploads run under; nil
	// before Run.
	runCtx atomic.Pointer[context.Context]
	// mu guards st, waiting and the logs' state.
	mu      sync.Mutex
	st      Status
	waiting *archive.Backup // stored in the vault, its WAL not all there yet
	// logHeads are the heads the vault holds, by log; nil until asked.
	logHeads map[string]chain.Head
	// logsRefused are the logs the vault refused, not sent again.
	logsRefused map[string]*LogRefused
}

// New checks the configuration; Run starts shipping.
func New(cfg Config, log *slog.Logger) (*Shipper, error) {
	if cfg.Slot == "" {
		cfg.Slot = "clinicbox_offsite_" + cfg.Name
	}
	switch {
	case cfg.Name == "" || !postgres.ValidSlotName(cfg.Slot):
		return nil, fmt.Errorf("offsite: destination name %q: use lower-case letters, digits and underscores", cfg.Name)
	case cfg.DB == "":
		return nil, errors.New("offsite: no database URL; set DB to the replication role's URL")
	case cfg.VaultURL == "":
		return nil, errors.New("offsite: no vault URL; set VaultURL, like http://vault:8443")
	}
	if err := checkURLs(append([]string{cfg.VaultURL}, cfg.VaultURLs...)); err != nil {
		return nil, err
	}
	if cfg.Signer == nil {
		return nil, archive.ErrNoSigner
	}
	if _, err := archive.ParseRecipients(cfg.Recipients); err != nil {
		return nil, err
	}
	if err := cfg.Bandwidth.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 200 * time.Millisecond
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{cfg: cfg, log: log, vault: newClient(append([]string{cfg.VaultURL}, cfg.VaultURLs...), cfg.Client)}
	s.throttle = newThrottle(cfg.Bandwidth, cfg.Now)
	s.gate = newWALGate()
	s.st = Status{Destination: cfg.Name, Slot: cfg.Slot}
	return s, nil
}

func (s *Shipper) now() time.Time { return s.cfg.Now() }

// call is one request to the vault with the per-request time limit.
func (s *Shipper) call(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, reqTimeout)
	defer cancel()
	return s.vault.do(ctx, method, path, q, body, out)
}

// callYielding is call for a base upload chunk: its body pauses while WAL
// is being sent (yieldReader).
func (s *Shipper) callYielding(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, reqTimeout)
	defer cancel()
	y := &yieldReader{ctx: ctx, gate: s.gate, r: bytes.NewReader(body)}
	return s.vault.doReader(ctx, method, path, q, y, int64(len(body)), out)
}

// ack records what the vault holds durably.
func (s *Shipper) ack(tli uint32, lsn archive.LSN) {
	now := s.now()
	s.lag.durable(lsn, now)
	s.mu.Lock()
	if tli > s.st.Timeline || (tli == s.st.Timeline && lsn > s.st.Durable) {
		s.st.Timeline, s.st.Durable = tli, lsn
	}
	s.st.LastDurable = now
	s.promote()
	s.mu.Unlock()
	if s.cfg.OnDurable != nil {
		s.cfg.OnDurable(tli, lsn)
	}
}

// stored records a base backup the vault now holds: restorable at once if
// the vault's WAL already reaches its end, else once it does. s.mu is held.
func (s *Shipper) stored(b *archive.Backup) {
	if s.st.LastBaseBackupTime.Before(b.Start) {
		s.st.LastBaseBackup, s.st.LastBaseBackupTime, s.st.LastBaseBackupTLI = b.ID, b.Start, b.EndTimeline
	}
	if s.st.RestorableTime.Before(b.Start) {
		s.waiting = b
		s.st.WaitingForWAL, s.st.WaitingForWALTo = b.ID, b.EndLSN
		s.promote()
	}
}

// promote makes the backup waiting for its WAL restorable once the WAL
// the vault holds durably reaches its end. s.mu is held.
func (s *Shipper) promote() {
	b := s.waiting
	if b == nil || s.st.Timeline < b.EndTimeline || s.st.Timeline == b.EndTimeline && s.st.Durable < b.EndLSN {
		return
	}
	s.st.Restorable, s.st.RestorableTime = b.ID, b.Start
	s.st.WaitingForWAL, s.st.WaitingForWALTo, s.waiting = "", 0, nil
}

func (s *Shipper) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _ := code(err)
	s.st.VaultFull = c == "quota"
	if err == nil {
		s.st.LastError = ""
		return
	}
	s.st.LastError, s.st.LastErrorTime = err.Error(), s.now()
}

func (s *Shipper) setConnected(c bool) {
	s.mu.Lock()
	s.st.Connected = c
	s.mu.Unlock()
}

// Status returns the destination's status now.
func (s *Shipper) Status() Status {
	cur, last := s.lag.lag(s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.LagSeconds, st.LastLagSeconds = cur.Seconds(), last.Seconds()
	st.WireBytes, st.RawBytes = s.wire.Load(), s.raw.Load()
	return st
}

// checkURLs checks the vault nodes' addresses.
func checkURLs(urls []string) error {
	for _, u := range urls {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("offsite: vault URL %q: %w", u, err)
		}
	}
	return nil
}
