package rotation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// DefaultOverdueAfter is how many business days a drive may stay away before
// it is reported overdue when Policy.OverdueAfter is zero: a working week.
const DefaultOverdueAfter = 5

// Policy is the practice's rotation settings. Its methods Decide and
// Evaluate are the rotation's pure transitions.
type Policy struct {
	// Calendar is the practice's business days and swap time.
	Calendar Calendar `json:"calendar"`
	// Generations are the names given, in order, to newly enrolled drives
	// that are not given one; empty means DefaultGenerations.
	Generations []string `json:"generations,omitempty"`
	// Strict means a wrong drive is not written at all; the zero value is
	// lenient: a wrong drive still gets the night's backup, and the panel
	// says what to fix.
	Strict bool `json:"strict,omitempty"`
	// OverdueAfter is how many business days a drive may be away before
	// it is reported overdue (possibly lost); zero means DefaultOverdueAfter.
	OverdueAfter int `json:"overdue_after,omitempty"`
	// Verify checks a drive's identity signature against the box's key.
	// It must be set: with a nil Verify every drive counts as foreign.
	Verify VerifyFunc `json:"-"`
}

// Validate reports settings the rotation cannot work with, naming the field
// and the fix.
func (p *Policy) Validate() error {
	if err := p.Calendar.Validate(); err != nil {
		return err
	}
	if p.OverdueAfter < 0 {
		return fmt.Errorf("rotation: policy overdue_after: %d is negative; use a number of business days, or 0 for %d", p.OverdueAfter, DefaultOverdueAfter)
	}
	if len(p.Generations) == 1 {
		return errors.New("rotation: policy generations: a rotation needs at least two generation names")
	}
	seen := map[string]bool{}
	for _, g := range p.Generations {
		if g == "" || seen[g] {
			return fmt.Errorf("rotation: policy generations: name %q is empty or repeated; give each generation its own name", g)
		}
		if err := CheckGeneration(g); err != nil {
			return fmt.Errorf("rotation: policy generations: %q: %v; use a short name of letters and digits", g, err)
		}
		seen[g] = true
	}
	if p.Verify == nil {
		return errors.New("rotation: policy verify: not set; pass a function that checks drive identities against the box key")
	}
	return nil
}

// generations returns the configured generation names or the defaults.
func (p *Policy) generations() []string {
	if len(p.Generations) == 0 {
		return DefaultGenerations
	}
	return p.Generations
}

// overdueAfter returns the configured overdue limit or the default.
func (p *Policy) overdueAfter() int {
	if p.OverdueAfter == 0 {
		return DefaultOverdueAfter
	}
	return p.OverdueAfter
}

// verified reports whether id carries this box's signature.
func (p *Policy) verified(id Identity) bool {
	return p.Verify != nil && id.ID != "" && p.Verify(id)
}

// strictUnmarshal decodes JSON into v, rejecting unknown fields and
// trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
