package restore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// maxReportBytes bounds a drill report read back: a report is a few KB.
const maxReportBytes = 1 << 20

// ReportCheck is what CheckReports found in a repository's drills/.
type ReportCheck struct {
	// Boxed are the reports signed by the trusted key, intact, with their
	// printable pages matching them.
	Boxed []*Report
	// Others are reports signed by another key: drills run elsewhere
	// (clinicctl drill on a PC), not evidence of the box's drills.
	Others []string
	// Problems are reports that claim the trusted key and fail its
	// check, or cannot be read: edited or forged.
	Problems []archive.Problem
}

// CheckReports checks every drill report in dir (a repository's drills/)
// against the trusted signing key: its JSON's signature, and its printable
// page against the page the JSON renders, so that neither a report turned
// from failed into passed nor a page edited to show it passes.
func CheckReports(dir string, trusted signer.PublicKey) (ReportCheck, error) {
	var rc ReportCheck
	names, err := filepath.Glob(filepath.Join(dir, "drill-*.json"))
	if err != nil {
		return rc, err
	}
	for _, p := range names {
		rep, err := readReport(p)
		switch {
		case err != nil:
			rc.problem(p, err)
		case rep.Signer != trusted.String():
			rc.Others = append(rc.Others, fmt.Sprintf("%s (signed by %s)", filepath.Base(p), rep.Signer))
		default:
			if err := checkReport(p, rep, trusted); err != nil {
				rc.problem(p, err)
				continue
			}
			rc.Boxed = append(rc.Boxed, rep)
		}
	}
	return rc, nil
}

func (rc *ReportCheck) problem(path string, err error) {
	rc.Problems = append(rc.Problems, archive.Problem{Object: "drills/" + filepath.Base(path), What: err.Error()})
}

func readReport(path string) (*Report, error) {
	b, err := archive.ReadBounded(path, maxReportBytes)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("not a drill report: %w", err)
	}
	return &rep, nil
}

func checkReport(path string, rep *Report, trusted signer.PublicKey) error {
	if err := rep.VerifySignature(trusted); err != nil {
		return fmt.Errorf("edited or forged: %w", err)
	}
	files, err := rep.Files()
	if err != nil {
		return err
	}
	page := strings.TrimSuffix(path, ".json") + ".html"
	got, err := archive.ReadBounded(page, maxReportBytes)
	if err != nil {
		return fmt.Errorf("its printable page: %w", err)
	}
	if !bytes.Equal(got, files[rep.Name()+".html"]) {
		return fmt.Errorf("its printable page %s does not match the signed report: edited", filepath.Base(page))
	}
	return nil
}
