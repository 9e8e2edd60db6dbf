package status

import (
	"cmp"
	"slices"
)

// LatestDrills returns each drive's newest drill, by drive; drills with no
// drive (the vault's) are left out.
func LatestDrills(ds []Drill) []Drill {
	latest := map[string]Drill{}
	for _, d := range ds {
		if d.Drive != "" && !d.Time.Before(latest[d.Drive].Time) {
			latest[d.Drive] = d
		}
	}
	out := make([]Drill, 0, len(latest))
	for _, d := range latest {
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y Drill) int { return cmp.Compare(x.Drive, y.Drive) })
	return out
}
