// Package status is the box's one status document (box step of the data
// path): what is wrong and what to do, where every drive is, the last
// backups and their checks, WAL lag locally and offsite, slot retention,
// SMART per drive and recent events.
//
// It carries no patient data and no secrets: database URLs appear without
// their passwords, and keys only as public recipients.
package status

import (
	"time"
)

// Severity orders conditions: the panel shows the most severe one.
type Severity int

// Severities, least severe first.
const (
	Good      Severity = iota // green steady: all good
	Busy                      // green blinking: backup or verification running
	Attention                 // amber: staff action needed
	Failure                   // red: something failed; backups may be at risk
)

var severityNames = [...]string{"good", "busy", "attention", "failure"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// MarshalText writes the severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity by name.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if n == string(b) {
			*s = Severity(i)
			return nil
		}
	}
	*s = Good
	return &UnknownSeverityError{Name: string(b)}
}

// UnknownSeverityError reports a severity name this version does not know.
type UnknownSeverityError struct{ Name string }

func (e *UnknownSeverityError) Error() string {
	return "status: unknown severity " + e.Name + "; want good, busy, attention or failure"
}

// Condition is one named thing the box wants people to know, such as
// "swap due" or "backup failed". Conditions are the only way anything
// reaches the panel or the alerts.
type Condition struct {
	// Name is steady, for machines and debouncing: "swap due",
	// "wrong drive", "backup failed", "slot retention", ...
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	// Drive is the drive the condition is about, when there is one.
	Drive string `json:"drive,omitempty"`
	// Since is when the condition began.
	Since time.Time `json:"since"`
	// Message says what is wrong and what to do, in plain words for the
	// front desk.
	Message string `json:"message"`
	// Acknowledged is set once staff pressed the button (or the page's
	// acknowledge control) for this condition: its sound stops, its light
	// stays.
	Acknowledged bool `json:"acknowledged,omitempty"`
}

// Status is the whole document, as of Time.
type Status struct {
	Time time.Time `json:"time"`
	Box  Box       `json:"box"`
	// Severity is the most severe condition's, or Good.
	Severity Severity `json:"severity"`
	// Headline says in one sentence what the front desk should do now.
	Headline string `json:"headline"`
	// Conditions are all current conditions, most severe first.
	Conditions []Condition `json:"conditions"`
	Panel      Panel       `json:"panel"`
	Drives     []Drive     `json:"drives"`
	// Disks are the box's other disks (its boot disk, an NVMe or SATA
	// disk): never written by backups, listed for their health; nil
	// before the first survey.
	Disks []Disk `json:"disks,omitempty"`
	// InBox is the drive in the box and what the box is doing with it;
	// nil when the box is empty.
	InBox *InBox `json:"in_box,omitempty"`
	// Expected is the generation name of the drive that should go in next.
	Expected string      `json:"expected,omitempty"`
	Swap     Swap        `json:"swap"`
	Backups  []Backup    `json:"backups"`
	Drills   []Drill     `json:"drills,omitempty"`
	WAL      WAL         `json:"wal"`
	Slots    []Slot      `json:"slots"`
	Offsite  []Offsite   `json:"offsite,omitempty"`
	Window   Window      `json:"window"`
	Events   []Event     `json:"events"`
	Support  Support     `json:"support"`
	Database Database    `json:"database"`
	Maint    Maintenance `json:"maintenance"`
}

// Box is the box itself.
type Box struct {
	Hostname string    `json:"hostname"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	// ClockTrusted is false until the clock has been synchronized; until
	// then no date-based decision is made.
	ClockTrusted bool `json:"clock_trusted"`
	// Setup is "ok", or what is missing from the settings in plain words.
	Setup string `json:"setup"`
	// SigningKey is the box's public signing key (clinicbox-sign1-...):
	// what every restore checks the backups against. Keep it with the
	// recovery key.
	SigningKey string `json:"signing_key,omitempty"`
}

// Panel mirrors the front panel: each light is "off", "steady", "slow",
// "fast" or "code N" (N blinks, then a pause); the buzzer is "silent",
// "quiet hours", or the pattern it sounds.
type Panel struct {
	Green  string `json:"green"`
	Amber  string `json:"amber"`
	Red    string `json:"red"`
	Buzzer string `json:"buzzer"`
	// Condition is the name of the condition the panel shows.
	Condition string `json:"condition,omitempty"`
}

// Drive is one enrolled drive.
type Drive struct {
	ID         string `json:"id"`
	Generation string `json:"generation"`
	// Where is the rotation's word for it: "in box", "offsite", "in
	// transit", "overdue", "lost", "failing", "retired".
	Where      string    `json:"where"`
	Expected   bool      `json:"expected,omitempty"`
	Serial     string    `json:"serial,omitempty"`
	Capacity   int64     `json:"capacity,omitempty"`
	Used       int64     `json:"used,omitempty"`
	InsertedAt time.Time `json:"inserted_at,omitzero"`
	AwaySince  time.Time `json:"away_since,omitzero"`
	LastBackup time.Time `json:"last_backup,omitzero"`
	Health     Health    `json:"health"`
	// HealthTrend is the drive's SMART checks over time, oldest first.
	HealthTrend []HealthSample `json:"health_trend,omitempty"`
}

// HealthSample is one SMART check, for trends.
type HealthSample struct {
	Time        time.Time `json:"time"`
	Verdict     Verdict   `json:"verdict"`
	Temperature int       `json:"temperature,omitempty"`
	BadSectors  int64     `json:"bad_sectors"`
}

// Health is a drive's last SMART check.
type Health struct {
	Verdict     Verdict  `json:"verdict"`
	Reasons     []string `json:"reasons,omitempty"`
	Temperature int      `json:"temperature,omitempty"`
	// BadSectors counts what the drive could not read or had to move:
	// ATA reallocated, pending and offline-uncorrectable sectors, or NVMe
	// media errors. A number that grows is a drive on its way out.
	BadSectors   int64     `json:"bad_sectors,omitempty"`
	PowerOnHours int       `json:"power_on_hours,omitempty"`
	Checked      time.Time `json:"checked,omitzero"`
}

// Disk is a disk in the box that is not a backup drive.
type Disk struct {
	// Name is the kernel's: "nvme0n1", "sda", "mmcblk0".
	Name string `json:"name"`
	// Model and Serial are the disk's own, from its health data; empty
	// when it has none.
	Model    string `json:"model,omitempty"`
	Serial   string `json:"serial,omitempty"`
	Protocol string `json:"protocol,omitempty"` // "ata", "nvme" or ""
	Size     int64  `json:"size,omitempty"`     // bytes
	Health   Health `json:"health"`
}

// InBox is the drive in the box.
type InBox struct {
	// Drive is the enrolled drive's ID; empty for an unknown drive.
	Drive      string `json:"drive,omitempty"`
	Generation string `json:"generation,omitempty"`
	// Decision is the rotation's: "accepted", "wrong drive", "unknown
	// drive", "foreign drive", "refused".
	Decision string `json:"decision"`
	Writable bool   `json:"writable"`
	// Activity is what the box is doing with it.
	Activity Activity `json:"activity"`
	// Progress is between 0 and 1 while backing up or verifying.
	Progress float64 `json:"progress,omitempty"`
}

// Swap is the rotation's calendar.
type Swap struct {
	// DueAt is when the drive in the box should next be swapped.
	DueAt time.Time `json:"due_at,omitzero"`
	Due   bool      `json:"due"`
	// Recent are the last drive movements, newest first.
	Recent []Movement `json:"recent,omitempty"`
}

// Movement is one entry of the custody log, in short.
type Movement struct {
	Time       time.Time `json:"time"`
	Drive      string    `json:"drive,omitempty"`
	Generation string    `json:"generation,omitempty"`
	Event      string    `json:"event"`
	Decision   string    `json:"decision"`
	Who        string    `json:"who,omitempty"`
}

// Backup is one base backup and its verification.
type Backup struct {
	ID         string    `json:"id"`
	Drive      string    `json:"drive,omitempty"` // "" for offsite
	Generation string    `json:"generation,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Bytes      int64     `json:"bytes"`
	// Verified is NotVerified until the backup has been checked.
	Verified   Verification `json:"verified"`
	VerifiedAt time.Time    `json:"verified_at,omitzero"`
	Problems   []string     `json:"problems,omitempty"`
}

// Drill is one restore drill.
type Drill struct {
	Time     time.Time `json:"time"`
	Drive    string    `json:"drive,omitempty"`
	OK       bool      `json:"ok"`
	RTO      float64   `json:"rto_seconds"`
	RPO      float64   `json:"rpo_seconds"`
	Problems []string  `json:"problems,omitempty"`
	// NotRun means the box could not run the drill at all (Problems say
	// why): it proves nothing, and is never shown as passed.
	NotRun bool `json:"not_run,omitempty"`
	// InRAM means the drill restored into memory only (the kernel cannot
	// encrypt a scratch on disk).
	InRAM bool `json:"in_ram,omitempty"`
	// ServerPeakRSS and BoxPeakRSS are the most memory the drill's
	// PostgreSQL and the box held during the drill, in bytes (see the
	// report); zero when unknown.
	ServerPeakRSS int64 `json:"server_peak_rss_bytes,omitempty"`
	BoxPeakRSS    int64 `json:"box_peak_rss_bytes,omitempty"`
	// Target is the recovery target: "latest" or a moment.
	Target string `json:"target,omitempty"`
	// Server is the version of the PostgreSQL the drill ran, the backup's
	// major version ("17.6"); empty when none was started.
	Server string `json:"server_version,omitempty"`
	// Report names the signed report's files (.json and .html) in the
	// drive's drills/ and the box's.
	Report string `json:"report,omitempty"`
}

// WAL is how far behind the server each copy of the WAL is.
type WAL struct {
	ServerLSN string `json:"server_lsn,omitempty"`
	Local     Lag    `json:"local"`
}

// Lag is one copy's distance behind the server.
type Lag struct {
	Streaming  bool      `json:"streaming"`
	FlushedLSN string    `json:"flushed_lsn,omitempty"`
	Bytes      int64     `json:"bytes"`
	Seconds    float64   `json:"seconds"`
	LastFlush  time.Time `json:"last_flush,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
}

// Slot is a replication slot on the server.
type Slot struct {
	Name          string `json:"name"`
	Exists        bool   `json:"exists"`
	Active        bool   `json:"active"`
	WALStatus     string `json:"wal_status,omitempty"`
	RetainedBytes int64  `json:"retained_bytes"`
	// LimitBytes is the server's max_slot_wal_keep_size; 0 when unlimited.
	LimitBytes int64 `json:"limit_bytes"`
}

// Offsite is one offsite destination.
type Offsite struct {
	Name         string `json:"name"`
	Connected    bool   `json:"connected"`
	Lag          Lag    `json:"lag"`
	BacklogBytes int64  `json:"backlog_bytes"`
	// LastBaseBackup is when the newest base backup the vault can restore
	// began: one whose WAL has arrived too.
	LastBaseBackup time.Time `json:"last_base_backup,omitzero"`
	// WaitingForWAL says which stored backup does not count yet, and why.
	WaitingForWAL string `json:"waiting_for_wal,omitempty"`
	Window        Range  `json:"window"`
}

// Window is the recoverable window: from when to when the database can be
// restored to any moment.
type Window struct {
	Local   Range `json:"local"`
	Offsite Range `json:"offsite"`
}

// Range is a span of time; both ends are zero when there is none.
type Range struct {
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

// Event is something that happened, for the recent-events list.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// Support is the remote-support consent window.
type Support struct {
	// ConsentUntil is when the front desk's consent for support actions
	// ends; zero when no consent is open.
	ConsentUntil time.Time `json:"consent_until,omitzero"`
}

// Database is the clinic's server, as seen by the box.
type Database struct {
	// Target is the server's address without credentials.
	Target    string `json:"target"`
	Reachable bool   `json:"reachable"`
	SystemID  string `json:"system_id,omitempty"`
	Version   int    `json:"version,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Maintenance is the last scheduled VACUUM/REINDEX run.
type Maintenance struct {
	LastRun time.Time `json:"last_run,omitzero"`
	Result  string    `json:"result,omitempty"`
}

// Sample is one point of the lag history, for charts.
type Sample struct {
	Time           time.Time `json:"time"`
	LocalSeconds   float64   `json:"local_seconds"`
	OffsiteSeconds float64   `json:"offsite_seconds"`
	RetainedBytes  int64     `json:"retained_bytes"`
}

// Worst returns the most severe of conds, or Good when there are none.
func Worst(conds []Condition) Severity {
	s := Good
	for _, c := range conds {
		s = max(s, c.Severity)
	}
	return s
}
