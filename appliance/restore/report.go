package restore

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Report is a restore drill's evidence: what was restored, how long it took
// to get a usable database (RTO), how much recent data the restore lacked
// (RPO), and each check. It is signed with a key derived from the box's
// identity, so an edit is detectable.
type Report struct {
	Started      time.Time     `json:"started"`
	Finished     time.Time     `json:"finished"`
	Host         string        `json:"host"`
	Repository   string        `json:"repository"`
	SystemID     string        `json:"system_id"`
	Backup       string        `json:"backup"`
	BackupTime   time.Time     `json:"backup_time"`
	Target       string        `json:"target"`
	OK           bool          `json:"ok"`
	Failure      string        `json:"failure,omitempty"`
	RTO          float64       `json:"rto_seconds"`
	LastReplayed time.Time     `json:"last_replayed_commit"`
	RPO          float64       `json:"rpo_seconds"`
	Checks       []CheckResult `json:"checks"`
	Signer       string        `json:"signer,omitempty"`    // ed25519 public key, base64
	Signature    string        `json:"signature,omitempty"` // over the report without these two fields
}

// signingKey derives the report signing key from the box's age identity.
func signingKey(ids []age.Identity) (ed25519.PrivateKey, error) {
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			seed := sha256.Sum256([]byte("clinicbox drill report signing v1\n" + x.String()))
			return ed25519.NewKeyFromSeed(seed[:]), nil
		}
	}
	return nil, errors.New("restore: no X25519 identity to sign the report with")
}

func (rep *Report) payload() []byte {
	c := *rep
	c.Signer, c.Signature = "", ""
	b, _ := json.Marshal(c)
	return b
}

// Sign signs the report.
func (rep *Report) Sign(ids []age.Identity) error {
	k, err := signingKey(ids)
	if err != nil {
		return err
	}
	rep.Signer = base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	rep.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k, rep.payload()))
	return nil
}

// VerifySignature reports whether the report is unchanged since signing by
// the named signer.
func (rep *Report) VerifySignature(signer string) bool {
	pub, err1 := base64.StdEncoding.DecodeString(signer)
	sig, err2 := base64.StdEncoding.DecodeString(rep.Signature)
	if err1 != nil || err2 != nil || len(pub) != ed25519.PublicKeySize || rep.Signer != signer {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), rep.payload(), sig)
}

// Files renders the report as JSON and as a printable HTML page.
func (rep *Report) Files() (map[string][]byte, error) {
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	var h bytes.Buffer
	if err := reportPage.Execute(&h, rep); err != nil {
		return nil, err
	}
	stamp := rep.Started.Format("20060102T150405Z")
	return map[string][]byte{"drill-" + stamp + ".json": append(j, '\n'), "drill-" + stamp + ".html": h.Bytes()}, nil
}

// Save writes the report files into the repository's drills/ directory.
func (rep *Report) Save(repo *archive.Repo) error {
	files, err := rep.Files()
	if err != nil {
		return err
	}
	return repo.SaveDrill(files)
}

var reportPage = template.Must(template.New("drill").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
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
<tr><th>Time to a usable database (RTO)</th><td>{{printf "%.1f" .RTO}} s</td></tr>
<tr><th>Last replayed commit</th><td>{{if not .LastReplayed.IsZero}}{{when .LastReplayed}}{{end}}</td></tr>
<tr><th>Data-loss window (RPO)</th><td>{{printf "%.1f" .RPO}} s</td></tr>
</table>
<h2>Checks</h2>
<table><tr><th>Check</th><th>Result</th><th>Detail</th></tr>
{{range .Checks}}<tr><td>{{.Name}}</td><td>{{if .OK}}<span class="ok">ok</span>{{else}}<span class="bad">failed</span>{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<p>Signed by <code>{{.Signer}}</code><br>Signature <code>{{.Signature}}</code></p>
<p>HIPAA 164.308(a)(7)(ii)(D): testing and revision of the data backup and restore procedures.</p>
</body></html>
`))
