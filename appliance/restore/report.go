package restore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// Report is a restore drill's evidence: what was restored, how long it took
// to get a usable database (RTO), how much recent data the restore lacked
// (RPO), and each check. It is signed with the signing key of whoever ran
// the drill, and checked against the key the operator trusts, so an edit or
// a forged report is detectable.
type Report struct {
	Started      time.Time     `json:"started"`
	Finished     time.Time     `json:"finished"`
	Host         string        `json:"host"`
	Repository   string        `json:"repository"`
	SystemID     string        `json:"system_id"`
	Backup       string        `json:"backup"`
	BackupTime   time.Time     `json:"backup_time"`
	Target       string        `json:"target"`
	Server       string        `json:"server,omitempty"` // the PostgreSQL that ran the drill, as postgres -V says it
	OK           bool          `json:"ok"`
	Failure      string        `json:"failure,omitempty"`
	RTO          float64       `json:"rto_seconds"`
	LastReplayed time.Time     `json:"last_replayed_commit"`
	RPO          float64       `json:"rpo_seconds"`
	Checks       []CheckResult `json:"checks"`
	// Scratch is "memory" when the drill restored into memory only (a
	// kernel without file-system encryption); empty means a scratch
	// directory on disk.
	Scratch string `json:"scratch,omitempty"`
	// ServerPeakRSS is the most memory the drill's PostgreSQL held (all
	// its processes, restore_command's included, shared memory counted
	// once; sampled every half second); ProgramPeakRSS the drilling
	// program's own peak (VmHWM: the box's, or clinicctl's). Bytes.
	ServerPeakRSS  int64  `json:"server_peak_rss_bytes,omitempty"`
	ProgramPeakRSS int64  `json:"program_peak_rss_bytes,omitempty"`
	Signer         string `json:"signer,omitempty"`    // the signing key, clinicbox-sign1-... (for the eye: checks use the trusted key)
	Signature      string `json:"signature,omitempty"` // over the report without these two fields
}

func (rep *Report) payload() []byte {
	c := *rep
	c.Signer, c.Signature = "", ""
	b, _ := json.Marshal(c)
	return b
}

// reportPurpose binds a drill report's signature to drill reports.
const reportPurpose = "drill-report"

// Sign signs the report with the signing key of whoever ran the drill (the
// box's own when the box drills).
func (rep *Report) Sign(k *signer.Key) error {
	if k == nil {
		return errors.New("restore: no signing key to sign the drill report with")
	}
	rep.Signer = k.Public().String()
	rep.Signature = base64.StdEncoding.EncodeToString(k.Sign(reportPurpose, rep.payload()))
	return nil
}

// VerifySignature checks that the report is unchanged since trusted (the
// box's public signing key, from the operator) signed it: never against
// the key the report names.
func (rep *Report) VerifySignature(trusted signer.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(rep.Signature)
	if err != nil {
		return fmt.Errorf("restore: the drill report's signature is damaged: %w", err)
	}
	if err := trusted.Verify(reportPurpose, rep.payload(), sig); err != nil {
		return fmt.Errorf("restore: the drill report was not signed by %s (it names %s): %w", trusted, rep.Signer, err)
	}
	return nil
}

// Files renders the report as JSON and as a printable HTML page.
func (rep *Report) Files() (map[string][]byte, error) {
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	// The page is rendered from the JSON as stored (times with their
	// offsets only), so that CheckReports can render it again from the
	// file and compare.
	var stored Report
	if err := json.Unmarshal(j, &stored); err != nil {
		return nil, err
	}
	var h bytes.Buffer
	if err := reportPage().Execute(&h, &stored); err != nil {
		return nil, err
	}
	return map[string][]byte{rep.Name() + ".json": append(j, '\n'), rep.Name() + ".html": h.Bytes()}, nil
}

// Name is the report's file name without its extension.
func (rep *Report) Name() string { return "drill-" + rep.Started.Format("20060102T150405Z") }

// Save writes the report files into the repository's drills/ directory.
func (rep *Report) Save(repo *archive.Repo) error {
	files, err := rep.Files()
	if err != nil {
		return err
	}
	return repo.SaveDrill(files)
}

// reportPage is parsed at the first drill report, not when a program
// that links this package starts.
var reportPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("drill").Funcs(template.FuncMap{
		"when": func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
		"mib":  func(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) },
	}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Restore drill {{when .Started}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
.ok{color:#176b2c;font-weight:bold}.bad{color:#b00020;font-weight:bold}code{word-break:break-all}
</style></head><body>
<h1>Restore drill: {{if .OK}}<span class="ok">PASSED</span>{{else}}<span class="bad">FAILED</span>{{end}}</h1>
{{if .Failure}}<p class="bad">{{.Failure}}</p>{{end}}
<table>
<tr><th>Started</th><td>{{when .Started}}</td></tr>
<tr><th>Finished</th><td>{{when .Finished}}</td></tr>
<tr><th>Machine</th><td>{{.Host}}</td></tr>
<tr><th>Repository</th><td>{{.Repository}} (database system {{.SystemID}})</td></tr>
<tr><th>Base backup</th><td>{{.Backup}} ({{when .BackupTime}})</td></tr>
<tr><th>Recovery target</th><td>{{.Target}}</td></tr>
<tr><th>PostgreSQL</th><td>{{.Server}}</td></tr>
<tr><th>Time to a usable database (RTO)</th><td>{{printf "%.1f" .RTO}} s</td></tr>
<tr><th>Last replayed commit</th><td>{{if not .LastReplayed.IsZero}}{{when .LastReplayed}}{{end}}</td></tr>
<tr><th>Data-loss window (RPO)</th><td>{{printf "%.1f" .RPO}} s</td></tr>
<tr><th>Scratch space</th><td>{{if eq .Scratch "memory"}}memory only (nothing on disk){{else}}a directory on disk{{end}}</td></tr>
<tr><th>Peak memory</th><td>PostgreSQL {{mib .ServerPeakRSS}}, the drilling program {{mib .ProgramPeakRSS}}</td></tr>
</table>
<h2>Checks</h2>
<table><tr><th>Check</th><th>Result</th><th>Detail</th></tr>
{{range .Checks}}<tr><td>{{.Name}}</td><td>{{if .OK}}<span class="ok">ok</span>{{else}}<span class="bad">failed</span>{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<p>Signed by <code>{{.Signer}}</code><br>Signature <code>{{.Signature}}</code></p>
<p>HIPAA 164.308(a)(7)(ii)(D): testing and revision of the data backup and restore procedures.</p>
</body></html>
`))
})
